
/*
 * darkroom: keyrings and the services around signed links.
 *
 * A keyring file holds "kid:key" lines (blank lines and "#" comments
 * skipped); each file is read once per configuration however many
 * locations name it.  The media module keeps the location's keyring in
 * the core's location configuration, so galleries and labs sign with it
 * without knowing the media module; the gallery module, in turn, sets the
 * hooks through which the media module checks and logs gallery links.
 */


#include "ngx_http_darkroom.h"
#include "ngx_http_darkroom_sign.h"


static ngx_int_t ngx_http_darkroom_link_check_none(ngx_http_request_t *r,
    ngx_str_t *g);
static void ngx_http_darkroom_link_log_none(ngx_http_request_t *r,
    ngx_str_t *g, ngx_str_t *path, ngx_uint_t status, off_t bytes);
static char *ngx_http_darkroom_keyring_parse(ngx_conf_t *cf,
    ngx_http_darkroom_keyring_t *kr, u_char *p, size_t len);
static char *ngx_http_darkroom_keyring_line(ngx_conf_t *cf,
    ngx_http_darkroom_keyring_t *kr, u_char *s, u_char *e, ngx_uint_t line);


ngx_http_darkroom_link_check_pt  ngx_http_darkroom_link_check =
    ngx_http_darkroom_link_check_none;
ngx_http_darkroom_link_log_pt    ngx_http_darkroom_link_log =
    ngx_http_darkroom_link_log_none;


static ngx_int_t
ngx_http_darkroom_link_check_none(ngx_http_request_t *r, ngx_str_t *g)
{
    return NGX_OK;
}


static void
ngx_http_darkroom_link_log_none(ngx_http_request_t *r, ngx_str_t *g,
    ngx_str_t *path, ngx_uint_t status, off_t bytes)
{
}


/* the keyring in a file, read at most once per configuration */

ngx_http_darkroom_keyring_t *
ngx_http_darkroom_keyring_read(ngx_conf_t *cf, ngx_str_t *name)
{
    char                            *rv;
    ngx_str_t                        file, text;
    ngx_uint_t                       i;
    ngx_http_darkroom_keyring_t     *kr, **krp;
    ngx_http_darkroom_main_conf_t   *dmcf;

    file = *name;

    if (ngx_conf_full_name(cf->cycle, &file, 1) != NGX_OK) {
        return NULL;
    }

    dmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_darkroom_module);

    krp = dmcf->keyrings.elts;

    for (i = 0; i < dmcf->keyrings.nelts; i++) {
        if (krp[i]->file.len == file.len
            && ngx_strncmp(krp[i]->file.data, file.data, file.len) == 0)
        {
            return krp[i];
        }
    }

    if (ngx_http_darkroom_file_read(cf, cf->temp_pool, &file,
                                    NGX_HTTP_DARKROOM_FILE_MAX,
                                    "keys", &text)
        != NGX_OK)
    {
        return NULL;
    }

    kr = ngx_pcalloc(cf->pool, sizeof(ngx_http_darkroom_keyring_t));
    if (kr == NULL
        || ngx_array_init(&kr->keys, cf->pool, 4,
                          sizeof(ngx_http_darkroom_key_t))
           != NGX_OK)
    {
        ngx_explicit_memzero(text.data, text.len);
        return NULL;
    }

    kr->file = file;

    rv = ngx_http_darkroom_keyring_parse(cf, kr, text.data, text.len);

    /* the keys were copied: the file's text goes */

    ngx_explicit_memzero(text.data, text.len);

    if (rv != NGX_CONF_OK) {
        return NULL;
    }

    krp = ngx_array_push(&dmcf->keyrings);
    if (krp == NULL) {
        return NULL;
    }

    *krp = kr;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, cf->log, 0,
                   "darkroom keyring: \"%V\", %ui keys",
                   &kr->file, kr->keys.nelts);

    return kr;
}


static char *
ngx_http_darkroom_keyring_parse(ngx_conf_t *cf,
    ngx_http_darkroom_keyring_t *kr, u_char *p, size_t len)
{
    u_char      *end, *eol, *s, *e;
    ngx_uint_t   line;

    end = p + len;
    line = 0;

    while (p < end) {

        line++;

        eol = ngx_strlchr(p, end, '\n');
        if (eol == NULL) {
            eol = end;
        }

        s = p;
        e = eol;
        p = eol + 1;

        if (e > s && e[-1] == '\r') {
            e--;
        }

        while (s < e && (*s == ' ' || *s == '\t')) {
            s++;
        }

        while (e > s && (e[-1] == ' ' || e[-1] == '\t')) {
            e--;
        }

        if (s == e || *s == '#') {
            continue;
        }

        if (ngx_http_darkroom_keyring_line(cf, kr, s, e, line)
            != NGX_CONF_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    if (kr->keys.nelts == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "keys file %V has no keys", &kr->file);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* one "kid:key" line, from s to e, checked and copied */

static char *
ngx_http_darkroom_keyring_line(ngx_conf_t *cf,
    ngx_http_darkroom_keyring_t *kr, u_char *s, u_char *e, ngx_uint_t line)
{
    u_char                   *colon, *c;
    ngx_http_darkroom_key_t  *key;

    colon = ngx_strlchr(s, e, ':');

    if (colon == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "keys file %V:%ui: expected \"kid:key\"",
                           &kr->file, line);
        return NGX_CONF_ERROR;
    }

    if (ngx_http_darkroom_sign_value(NGX_HTTP_DARKROOM_P_KID, s, colon - s)
        != NGX_HTTP_DARKROOM_SIGN_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "keys file %V:%ui: a key id is 1 to 32 "
                           "characters of A-Z a-z 0-9 . _ -",
                           &kr->file, line);
        return NGX_CONF_ERROR;
    }

    if (e - colon - 1 < NGX_HTTP_DARKROOM_SIGN_KEY_MIN) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "keys file %V:%ui: key shorter than %d bytes",
                           &kr->file, line, NGX_HTTP_DARKROOM_SIGN_KEY_MIN);
        return NGX_CONF_ERROR;
    }

    for (c = colon + 1; c < e; c++) {
        if (*c < 0x20 || *c == 0x7f) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "keys file %V:%ui: control character "
                               "in key", &kr->file, line);
            return NGX_CONF_ERROR;
        }
    }

    if (ngx_http_darkroom_keyring_find(kr, s, colon - s)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "keys file %V:%ui: duplicate key id \"%*s\"",
                           &kr->file, line, colon - s, s);
        return NGX_CONF_ERROR;
    }

    key = ngx_array_push(&kr->keys);
    if (key == NULL) {
        return NGX_CONF_ERROR;
    }

    key->kid.len = colon - s;
    key->kid.data = ngx_pnalloc(cf->pool, key->kid.len);
    key->key.len = e - colon - 1;
    key->key.data = ngx_pnalloc(cf->pool, key->key.len);

    if (key->kid.data == NULL || key->key.data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(key->kid.data, s, key->kid.len);
    ngx_memcpy(key->key.data, colon + 1, key->key.len);

    return NGX_CONF_OK;
}


ngx_http_darkroom_key_t *
ngx_http_darkroom_keyring_find(ngx_http_darkroom_keyring_t *kr, u_char *kid,
    size_t len)
{
    ngx_uint_t                i;
    ngx_http_darkroom_key_t  *k;

    k = kr->keys.elts;

    for (i = 0; i < kr->keys.nelts; i++) {
        if (k[i].kid.len == len && ngx_strncmp(k[i].kid.data, kid, len) == 0)
        {
            return &k[i];
        }
    }

    return NULL;
}


/*
 * An order's status token (and the SHA-256 of it, hex, if hash is not
 * NULL) from its seed and the key kid of the darkroom_order_keys keyring.
 * NGX_DECLINED: no keyring, or no such key any more.  Safe in threads:
 * reads the configuration, allocates and logs nothing.
 */

ngx_int_t
ngx_http_darkroom_order_token(ngx_http_darkroom_keyring_t *kr,
    const char *kid, const char *seed, u_char *token, u_char *hash)
{
    ngx_http_darkroom_key_t  *k;

    if (kr == NULL || kid == NULL || seed == NULL) {
        return NGX_DECLINED;
    }

    k = ngx_http_darkroom_keyring_find(kr, (u_char *) kid, ngx_strlen(kid));
    if (k == NULL) {
        return NGX_DECLINED;
    }

    if (!ngx_http_darkroom_sign_order_token(k->key.data, k->key.len,
                                            (u_char *) seed,
                                            ngx_strlen(seed),
                                            (char *) token))
    {
        return NGX_ERROR;
    }

    if (hash == NULL) {
        return NGX_OK;
    }

    return ngx_http_darkroom_sha256_hex(token, NGX_HTTP_DARKROOM_TOKEN_LEN,
                                        (char *) hash);
}


/* the key that signs links where r is: the first of darkroom_media_keys */

ngx_int_t
ngx_http_darkroom_link_key(ngx_http_request_t *r, ngx_str_t *kid,
    ngx_str_t *key)
{
    ngx_http_darkroom_key_t       *k;
    ngx_http_darkroom_loc_conf_t  *dlcf;

    dlcf = ngx_http_get_module_loc_conf(r, ngx_http_darkroom_module);

    if (dlcf->link_keys == NULL) {
        return NGX_DECLINED;
    }

    k = dlcf->link_keys->keys.elts;

    *kid = k[0].kid;
    *key = k[0].key;

    return NGX_OK;
}


/*
 * A feature that signs links for up to ttl seconds says so here; for each
 * consequence only the longest is kept, with where it was set.
 */

ngx_int_t
ngx_http_darkroom_link_ttl(ngx_conf_t *cf, const char *directive,
    time_t ttl, const char *consequence, u_char *file, ngx_uint_t line)
{
    ngx_uint_t                      i;
    ngx_http_darkroom_link_ttl_t   *lt;
    ngx_http_darkroom_main_conf_t  *dmcf;

    dmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_darkroom_module);

    lt = dmcf->link_ttls.elts;

    for (i = 0; i < dmcf->link_ttls.nelts; i++) {
        if (lt[i].consequence == consequence) {
            break;
        }
    }

    if (i == dmcf->link_ttls.nelts) {
        lt = ngx_array_push(&dmcf->link_ttls);
        if (lt == NULL) {
            return NGX_ERROR;
        }

        lt->ttl = -1;

    } else {
        lt = &lt[i];
    }

    if (ttl > lt->ttl) {
        lt->directive = directive;
        lt->ttl = ttl;
        lt->consequence = consequence;
        lt->file = file;
        lt->line = line;
    }

    return NGX_OK;
}


/* a directive naming a keyring file: sets a keyring_t * at cmd->offset */

char *
ngx_http_darkroom_keyring_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    char  *p = conf;

    ngx_str_t                     *value;
    ngx_http_darkroom_keyring_t  **kr;

    kr = (ngx_http_darkroom_keyring_t **) (p + cmd->offset);

    if (*kr != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    *kr = ngx_http_darkroom_keyring_read(cf, &value[1]);

    return *kr ? NGX_CONF_OK : NGX_CONF_ERROR;
}


/*
 * A signed link, NUL-terminated in buf: base's origin (its first origin
 * bytes), then path signed with key to expire at exp.  Returns its length,
 * 0 when it does not fit or the path cannot be signed.  Thread-safe: the
 * labs' asset links and the download links are made in job threads.
 */

size_t
ngx_http_darkroom_link_url(ngx_str_t *base, size_t origin,
    ngx_http_darkroom_key_t *key, u_char *path, size_t plen, int64_t exp,
    char *buf, size_t size)
{
    int                             rc;
    char                            exps[NGX_INT64_LEN + 1];
    size_t                          len;
    ngx_http_darkroom_sign_link_t   link;

    if (origin + 1 >= size) {
        return 0;
    }

    snprintf(exps, sizeof(exps), "%lld", (long long) exp);

    ngx_memzero(&link, sizeof(ngx_http_darkroom_sign_link_t));
    link.path.data = path;
    link.path.len = plen;
    link.param[NGX_HTTP_DARKROOM_P_EXP].data = (u_char *) exps;
    link.param[NGX_HTTP_DARKROOM_P_EXP].len = strlen(exps);
    link.param[NGX_HTTP_DARKROOM_P_KID].data = key->kid.data;
    link.param[NGX_HTTP_DARKROOM_P_KID].len = key->kid.len;

    ngx_memcpy(buf, base->data, origin);

    len = ngx_http_darkroom_sign_url(&link, key->key.data, key->key.len,
                                     (u_char *) buf + origin,
                                     size - origin - 1, &rc);

    if (len == 0 || rc != NGX_HTTP_DARKROOM_SIGN_OK
        || len > size - origin - 1)
    {
        return 0;
    }

    buf[origin + len] = '\0';

    return origin + len;
}
