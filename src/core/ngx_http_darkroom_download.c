
/*
 * darkroom: the signer of download links (digital delivery).
 *
 * The shop signs the links of its order page and the mail module those of
 * the delivery email, in their threads; the media module's
 * darkroom_download location checks them.  So the signer lives here, in
 * core: a base URL (darkroom_download_url) and a keyring
 * (darkroom_download_keys, kid:key lines, the first signs), read-only after
 * the configuration, and functions that do no nginx allocation or logging.
 *
 * A link is the media link format (ngx_http_darkroom_sign.h) of the path
 *
 *     <base path>/<grant id>/<nonce>/<file name>?exp=<expiry>&kid=..&sig=..
 *
 * where the nonce is the grant's (an admin re-issue changes it) and exp is
 * the grant's expires_at.  The grant's lifetime and count
 * (darkroom_download_ttl, darkroom_download_limit) are set on every
 * database session darkroom opens (ngx_http_darkroom_db.c), so the SQL
 * that writes grants sees them whoever calls it.
 */


#include "ngx_http_darkroom.h"
#include "ngx_http_darkroom_sign.h"


#define NGX_HTTP_DARKROOM_DOWNLOAD_PATH_MAX  512


/* the values the database sessions of this process are given */

char  ngx_http_darkroom_download_ttl_text[NGX_INT64_LEN + 1] = "2592000";
char  ngx_http_darkroom_download_limit_text[NGX_INT64_LEN + 1] = "5";


/* darkroom_download_url: a base URL, where its path starts is kept */

char *
ngx_http_darkroom_download_url_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_darkroom_main_conf_t *dmcf = conf;

    char    *rv;
    u_char  *slash;

    rv = ngx_http_darkroom_base_url(cf, cmd, conf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    slash = ngx_strlchr(dmcf->download_url.data + 8,
                        dmcf->download_url.data + dmcf->download_url.len,
                        '/');

    dmcf->download_origin = slash
                            ? (size_t) (slash - dmcf->download_url.data)
                            : dmcf->download_url.len;

    return NGX_CONF_OK;
}


/* defaults and checks, from the core's init_main_conf */

char *
ngx_http_darkroom_download_init(ngx_conf_t *cf,
    ngx_http_darkroom_main_conf_t *dmcf)
{
    ngx_conf_init_ptr_value(dmcf->download_keys, NULL);
    ngx_conf_init_value(dmcf->download_ttl, 30 * 86400);
    ngx_conf_init_value(dmcf->download_limit, 5);

    if (dmcf->download_ttl < 60 || dmcf->download_ttl > 3650 * 86400) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"darkroom_download_ttl\" must be between 1m "
                           "and 3650d");
        return NGX_CONF_ERROR;
    }

    if (dmcf->download_limit < 1 || dmcf->download_limit > 10000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"darkroom_download_limit\" must be between 1 "
                           "and 10000");
        return NGX_CONF_ERROR;
    }

    if ((dmcf->download_url.data == NULL) != (dmcf->download_keys == NULL)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"darkroom_download_url\" and "
                           "\"darkroom_download_keys\" go together: links "
                           "are signed with the keys for the URL");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* in a worker, before any task: what its database sessions are given */

void
ngx_http_darkroom_download_process(ngx_http_darkroom_main_conf_t *dmcf)
{
    snprintf(ngx_http_darkroom_download_ttl_text,
             sizeof(ngx_http_darkroom_download_ttl_text), "%lld",
             (long long) dmcf->download_ttl);
    snprintf(ngx_http_darkroom_download_limit_text,
             sizeof(ngx_http_darkroom_download_limit_text), "%lld",
             (long long) dmcf->download_limit);
}


/*
 * The signed URL of a grant's download, NUL-terminated in buf.  Returns
 * its length, or 0: no signer configured, a value out of shape, or buf too
 * small.  Thread-safe: reads the configuration, writes only buf.
 */

size_t
ngx_http_darkroom_download_url(ngx_http_darkroom_main_conf_t *dmcf,
    int64_t grant, const char *nonce, const char *name, int64_t exp,
    char *buf, size_t size)
{
    u_char                    path[NGX_HTTP_DARKROOM_DOWNLOAD_PATH_MAX];
    size_t                    plen, n, origin;
    ngx_http_darkroom_key_t  *key;

    if (dmcf->download_url.data == NULL || dmcf->download_keys == NULL
        || dmcf->download_keys->keys.nelts == 0 || grant <= 0 || exp <= 0)
    {
        return 0;
    }

    key = dmcf->download_keys->keys.elts;     /* the first signs */
    origin = dmcf->download_origin;

    plen = dmcf->download_url.len - origin;
    n = snprintf((char *) path + plen,
                 sizeof(path) - plen, "/%lld/%s/%s",
                 (long long) grant, nonce, name);

    if (plen + n >= sizeof(path) || origin + 1 >= size) {
        return 0;
    }

    ngx_memcpy(path, dmcf->download_url.data + origin, plen);
    plen += n;

    if (ngx_http_darkroom_sign_path(path, plen)
        != NGX_HTTP_DARKROOM_SIGN_OK)
    {
        return 0;
    }

    return ngx_http_darkroom_link_url(&dmcf->download_url, origin, key,
                                      path, plen, exp, buf, size);
}


/*
 * download_links_json() made each object of the array with "grant",
 * "nonce" and "exp" for signing: they are replaced by "url" (null when no
 * signer is configured or the values are out of shape).  Thread-safe.
 */

ngx_int_t
ngx_http_darkroom_download_sign_json(ngx_http_darkroom_main_conf_t *dmcf,
    cJSON *downloads)
{
    char        url[NGX_HTTP_DARKROOM_DOWNLOAD_PATH_MAX + 512];
    cJSON      *d, *grant, *exp, *v;
    const char  *nonce, *name;

    if (!cJSON_IsArray(downloads)) {
        return NGX_OK;
    }

    cJSON_ArrayForEach(d, downloads) {
        grant = cJSON_GetObjectItemCaseSensitive(d, "grant");
        exp = cJSON_GetObjectItemCaseSensitive(d, "exp");
        nonce = ngx_http_darkroom_json_str(d, "nonce");
        name = ngx_http_darkroom_json_str(d, "name");

        if (cJSON_IsNumber(grant) && cJSON_IsNumber(exp) && nonce && name
            && ngx_http_darkroom_download_url(dmcf,
                   (int64_t) grant->valuedouble, nonce, name,
                   (int64_t) exp->valuedouble, url, sizeof(url)))
        {
            v = cJSON_CreateString(url);

        } else {
            v = cJSON_CreateNull();
        }

        if (v == NULL) {
            return NGX_ERROR;
        }

        cJSON_DeleteItemFromObjectCaseSensitive(d, "grant");
        cJSON_DeleteItemFromObjectCaseSensitive(d, "nonce");
        cJSON_DeleteItemFromObjectCaseSensitive(d, "exp");

        if (!cJSON_AddItemToObject(d, "url", v)) {
            cJSON_Delete(v);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}
