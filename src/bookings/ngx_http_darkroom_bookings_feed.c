
/*
 * darkroom: a photographer's private calendar feed (issue 16), the
 * directive darkroom_bookings_feed in a location:
 *
 *   GET <location>/<photographer>.ics?key=<secret>
 *
 * The database keeps only the SHA-256 (hex) of the secret
 * (photographers.feed_hash, set by booking_feed_rotate() in SQL, which
 * revokes the old URL).  The key's hash is made here, the stored one read
 * in the task's thread and the two compared in constant time; a wrong,
 * missing or revoked key, like an unknown photographer, is a 404.  The
 * feed is booking_feed_ics() (sql/functions/bookings_mail.sql), sent as
 * text/calendar.
 */


#include "ngx_http_darkroom.h"


#define NGX_HTTP_DARKROOM_FEED_ID_MAX    64     /* photographers.id */
#define NGX_HTTP_DARKROOM_FEED_KEY_MAX   256


typedef struct {
    char        id[NGX_HTTP_DARKROOM_FEED_ID_MAX + 1];
    char        hash[NGX_HTTP_DARKROOM_HASH_SIZE];   /* of the key */
} ngx_http_darkroom_feed_t;


char *ngx_http_darkroom_bookings_feed(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_darkroom_feed_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_darkroom_feed_prepare(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t);
static void ngx_http_darkroom_feed_work(ngx_http_darkroom_task_t *t);
static ngx_int_t ngx_http_darkroom_feed_done(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t);
static ngx_uint_t ngx_http_darkroom_feed_same(const char *a, const char *b,
    size_t len);


char *
ngx_http_darkroom_bookings_feed(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    if (ngx_http_darkroom_use(cf, cmd, ngx_http_darkroom_feed_handler, NULL)
        == NULL)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_darkroom_feed_handler(ngx_http_request_t *r)
{
    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    return ngx_http_darkroom_task_start(r, sizeof(ngx_http_darkroom_feed_t),
                                        ngx_http_darkroom_feed_prepare,
                                        ngx_http_darkroom_feed_work,
                                        ngx_http_darkroom_feed_done);
}


/* the last path segment is <photographer>.ics; the key is ?key= */

static ngx_int_t
ngx_http_darkroom_feed_prepare(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t)
{
    u_char                    *seg;
    size_t                     len;
    ngx_str_t                  key;
    ngx_uint_t                 i;
    ngx_http_darkroom_feed_t  *f = t->data;

    seg = r->uri.data + r->uri.len;
    len = 0;

    while (seg > r->uri.data && seg[-1] != '/') {
        seg--;
        len++;
    }

    if (len < 5 || ngx_strncmp(seg + len - 4, ".ics", 4) != 0) {
        goto not_found;
    }

    len -= 4;

    for (i = 0; i < len; i++) {
        if (!((seg[i] >= 'a' && seg[i] <= 'z')
              || (seg[i] >= '0' && seg[i] <= '9')
              || (seg[i] == '-' && i > 0)))
        {
            goto not_found;
        }
    }

    if (len == 0 || len > NGX_HTTP_DARKROOM_FEED_ID_MAX
        || ngx_http_arg(r, (u_char *) "key", 3, &key) != NGX_OK
        || key.len == 0 || key.len > NGX_HTTP_DARKROOM_FEED_KEY_MAX)
    {
        goto not_found;
    }

    ngx_memcpy(f->id, seg, len);
    f->id[len] = '\0';

    if (ngx_http_darkroom_sha256_hex(key.data, key.len, f->hash) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "darkroom bookings feed: \"%s\" asked for", f->id);

    return NGX_OK;

not_found:

    return ngx_http_darkroom_send_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                        "There is no feed at this address.");
}


/* in a thread: the stored hash, compared; then the feed */

static void
ngx_http_darkroom_feed_work(ngx_http_darkroom_task_t *t)
{
    ngx_http_darkroom_feed_t  *f = t->data;

    PGresult                  *res;
    ngx_uint_t                 same;
    const char                *params[1], *stored;

    params[0] = f->id;

    res = ngx_http_darkroom_db_exec(&t->db, "SELECT booking_feed_hash($1)",
                                    1, params, &t->err);
    if (res == NULL) {
        return;
    }

    stored = ngx_http_darkroom_db_only(res);

    same = stored != NULL
           && strlen(stored) == NGX_HTTP_DARKROOM_SHA256_HEX_LEN
           && ngx_http_darkroom_feed_same(stored, f->hash,
                                          NGX_HTTP_DARKROOM_SHA256_HEX_LEN);

    PQclear(res);

    if (!same) {
        ngx_http_darkroom_error_set(&t->err, NGX_HTTP_NOT_FOUND, "not_found",
                                    "There is no feed at this address.");
        return;
    }

    res = ngx_http_darkroom_db_exec(&t->db, "SELECT booking_feed_ics($1)",
                                    1, params, &t->err);
    if (res) {
        ngx_http_darkroom_task_answer(t, res,
                                      "There is no feed at this address.");
    }
}


static ngx_int_t
ngx_http_darkroom_feed_done(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t)
{
    if (t->err.status) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "darkroom bookings feed: refused, %ui",
                       t->err.status);
        return ngx_http_darkroom_send_task_error(r, &t->err);
    }

    if (t->out == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "darkroom bookings feed: %uz bytes sent", t->out_len);

    /* the URL is the credential: kept by no cache on the way */

    if (ngx_http_darkroom_header_out(r, "Cache-Control",
                                     (u_char *) "private, no-store", 17)
        == NULL)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_darkroom_send_body(r, NGX_HTTP_OK,
                                       "text/calendar; charset=utf-8",
                                       (u_char *) t->out, t->out_len);
}


/* a == b over len bytes, in a time that does not depend on where */

static ngx_uint_t
ngx_http_darkroom_feed_same(const char *a, const char *b, size_t len)
{
    size_t   i;
    u_char   diff;

    diff = 0;

    for (i = 0; i < len; i++) {
        diff |= (u_char) a[i] ^ (u_char) b[i];
    }

    return diff == 0;
}
