
/*
 * darkroom: secrets from files.
 *
 * API keys, webhook secrets and tokens are read from files named in the
 * configuration, one per line (blank lines and "#" comments skipped), so
 * a new one can be added beside the old one and nginx reloaded: rotation
 * without a window where either fails.  Values are compared in constant
 * time and never logged.
 */


#include "ngx_http_darkroom.h"

#include <openssl/crypto.h>


/*
 * A small file named in the configuration, whole, NUL-terminated, in pool
 * (cf->pool when the caller keeps pointers into it, cf->temp_pool when it
 * copies what it needs): name is a full path; what names the kind of file
 * in errors.
 */

ngx_int_t
ngx_http_darkroom_file_read(ngx_conf_t *cf, ngx_pool_t *pool,
    ngx_str_t *name, size_t max, const char *what, ngx_str_t *text)
{
    u_char           *buf;
    size_t            size;
    ssize_t           n;
    ngx_fd_t          fd;
    ngx_file_info_t   fi;

    fd = ngx_open_file(name->data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_open_file_n " \"%s\" failed", name->data);
        return NGX_ERROR;
    }

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR
        || (size_t) ngx_file_size(&fi) > max)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "%s file \"%s\" is unreadable or larger than "
                           "%uz bytes", what, name->data, max);
        ngx_close_file(fd);
        return NGX_ERROR;
    }

    size = (size_t) ngx_file_size(&fi);

    buf = ngx_pnalloc(pool, size + 1);
    if (buf == NULL) {
        ngx_close_file(fd);
        return NGX_ERROR;
    }

    n = ngx_read_fd(fd, buf, size);
    ngx_close_file(fd);

    if (n == -1 || (size_t) n != size) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "cannot read %s file \"%s\"", what, name->data);
        return NGX_ERROR;
    }

    buf[size] = '\0';

    text->data = buf;
    text->len = size;

    return NGX_OK;
}


/* darkroom_*_file <path>: a secret per line, several for rotation */

char *
ngx_http_darkroom_secret_slot(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    u_char        *start, *end, *eol, *q;
    size_t         len;
    ngx_str_t     *value, *s, name, text;
    ngx_array_t  **secrets;

    secrets = (ngx_array_t **) (p + cmd->offset);

    if (*secrets != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;
    name = value[1];

    if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK
        || ngx_http_darkroom_file_read(cf, cf->pool, &name,
                                       NGX_HTTP_DARKROOM_FILE_MAX, "secret",
                                       &text)
           != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    *secrets = ngx_array_create(cf->pool, 2, sizeof(ngx_str_t));
    if (*secrets == NULL) {
        return NGX_CONF_ERROR;
    }

    end = text.data + text.len;

    for (q = text.data; q < end; q = eol + 1) {
        eol = ngx_strlchr(q, end, '\n');
        if (eol == NULL) {
            eol = end;
        }

        start = q;
        len = eol - q;

        while (len && (start[0] == ' ' || start[0] == '\t')) {
            start++;
            len--;
        }

        while (len && (start[len - 1] == '\r' || start[len - 1] == ' '
                       || start[len - 1] == '\t'))
        {
            len--;
        }

        if (len == 0 || start[0] == '#') {
            continue;
        }

        s = ngx_array_push(*secrets);
        if (s == NULL) {
            return NGX_CONF_ERROR;
        }

        s->data = start;
        s->len = len;
        start[len] = '\0';
    }

    if ((*secrets)->nelts == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "secret file \"%s\" holds no secret", name.data);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * Whether value equals one of the secrets.  Every secret is compared in
 * full, in constant time for secrets of the value's length, so neither
 * the answer's timing nor which key matched leaks anything useful.
 */

ngx_int_t
ngx_http_darkroom_secret_match(ngx_array_t *secrets, u_char *value,
    size_t len)
{
    ngx_str_t   *s;
    ngx_uint_t   i, match;

    if (secrets == NULL || secrets == NGX_CONF_UNSET_PTR || len == 0) {
        return 0;
    }

    s = secrets->elts;
    match = 0;

    for (i = 0; i < secrets->nelts; i++) {
        if (s[i].len == len) {
            match |= (CRYPTO_memcmp(s[i].data, value, len) == 0);
        }
    }

    return match;
}
