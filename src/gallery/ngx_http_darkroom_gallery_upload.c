
/*
 * darkroom: private client galleries, photos uploaded from the browser
 * (the admin API's PUT <slug>/uploads/<name>).
 *
 * The body never enters memory: the core's task_start_file has nginx write
 * it to a temp file (client_body_temp_path), and the thread gets its name.
 * There the first bytes must be those of a JPEG, PNG, TIFF or WebP file
 * (else 415, the file removed with the request), the file is moved to
 * <darkroom_gallery_root>/<slug>/<name> (renamed, or copied to a temp name
 * beside it and renamed when the temp path is on another file system: the
 * old file is replaced at once), then the upload's row and its
 * photo_import job are written in one transaction.  The import itself
 * (checksums, pixels, web copy, proof) runs out of nginx, in
 * tools/darkroom-importer.
 *
 * The name is the last segment of the raw URI, percent-decoded here: nginx
 * has already resolved "..%2F" in r->uri, so it is read before that.
 */


#include "ngx_http_darkroom_gallery.h"
#include "ngx_http_darkroom_upload_name.h"

#include <fcntl.h>


typedef struct {
    char                              *slug;
    char                              *name;
    char                              *root;      /* "/" end */
} ngx_http_darkroom_upload_t;


static ngx_int_t ngx_http_darkroom_upload_route(ngx_http_request_t *r,
    ngx_str_t *slug, ngx_str_t *name);
static ngx_int_t ngx_http_darkroom_upload_refuse(ngx_http_request_t *r,
    ngx_uint_t status, const char *code, const char *message);
static ngx_int_t ngx_http_darkroom_upload_prepare(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t);
static void ngx_http_darkroom_upload_work(ngx_http_darkroom_task_t *t);
static ngx_int_t ngx_http_darkroom_upload_sniff(const char *file);
static ngx_int_t ngx_http_darkroom_upload_move(ngx_http_darkroom_task_t *t,
    ngx_http_darkroom_upload_t *u);
static ngx_int_t ngx_http_darkroom_upload_copy(const char *from,
    const char *dir, const char *to);


/*
 * On the event loop, from the admin handler (credentials recorded): a PUT
 * of <slug>/uploads/<name>, NGX_DECLINED for any other request.  A bad
 * name is refused before a byte of the body is read.
 */

ngx_int_t
ngx_http_darkroom_gallery_upload(ngx_http_request_t *r)
{
    ngx_str_t                              slug, name;
    ngx_http_darkroom_gallery_loc_conf_t  *glcf;

    if (r->method != NGX_HTTP_PUT
        || ngx_http_darkroom_upload_route(r, &slug, &name) != NGX_OK)
    {
        return NGX_DECLINED;
    }

    if (!ngx_http_darkroom_upload_name_valid(name.data, name.len)) {
        return ngx_http_darkroom_upload_refuse(r, NGX_HTTP_BAD_REQUEST,
                   "bad_name",
                   "A file name is 1 to 200 letters, digits, spaces and "
                   "._-() not starting with a dot, ending .jpg .jpeg .png "
                   ".tif .tiff or .webp.");
    }

    if (r->headers_in.content_length_n == 0) {
        return ngx_http_darkroom_upload_refuse(r, NGX_HTTP_BAD_REQUEST,
                   "empty", "The file is empty.");
    }

    glcf = ngx_http_get_module_loc_conf(r, ngx_http_darkroom_gallery_module);

    if (glcf->root.len == 0) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "darkroom: an upload needs darkroom_gallery_root");
        return ngx_http_darkroom_upload_refuse(r,
                   NGX_HTTP_INTERNAL_SERVER_ERROR, "internal_error",
                   "Uploads are not configured here.");
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "darkroom upload: \"%V\" to gallery \"%V\"",
                   &name, &slug);

    return ngx_http_darkroom_task_start_file(r,
               sizeof(ngx_http_darkroom_upload_t),
               ngx_http_darkroom_upload_prepare,
               ngx_http_darkroom_upload_work, NULL);
}


/* the body is in its file: the work's strings */

static ngx_int_t
ngx_http_darkroom_upload_prepare(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t)
{
    ngx_str_t                              slug, name;
    ngx_http_darkroom_upload_t            *u = t->data;
    ngx_http_darkroom_gallery_loc_conf_t  *glcf;

    if (t->body_file.len == 0 || t->body_size == 0) {
        return ngx_http_darkroom_send_error(r, NGX_HTTP_BAD_REQUEST, "empty",
                                            "The file is empty.");
    }

    if (ngx_http_darkroom_upload_route(r, &slug, &name) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    glcf = ngx_http_get_module_loc_conf(r, ngx_http_darkroom_gallery_module);

    u->slug = ngx_http_darkroom_cstr(r->pool, slug.data, slug.len);
    u->name = ngx_http_darkroom_cstr(r->pool, name.data, name.len);
    u->root = ngx_http_darkroom_cstr(r->pool, glcf->root.data,
                                     glcf->root.len);

    if (u->slug == NULL || u->name == NULL || u->root == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_OK;
}


/*
 * The raw URI's last three segments are <slug>/uploads/<name>: the slug
 * as it is (a-z 0-9 -, else not this route), the name percent-decoded
 * into the pool.
 */

static ngx_int_t
ngx_http_darkroom_upload_route(ngx_http_request_t *r, ngx_str_t *slug,
    ngx_str_t *name)
{
    u_char     *p, *end, *seg[3], *dst, *src;
    size_t      len[3];
    ngx_int_t   i;

    p = r->unparsed_uri.data;
    end = r->args_start ? r->args_start - 1
                        : r->unparsed_uri.data + r->unparsed_uri.len;

    if (end < p) {
        return NGX_ERROR;
    }

    /* the last three segments, from the end */

    for (i = 2; i >= 0; i--) {
        len[i] = 0;

        while (end > p && end[-1] != '/') {
            end--;
            len[i]++;
        }

        seg[i] = end;

        if (end == p) {
            return NGX_ERROR;
        }

        end--;   /* the slash */
    }

    if (len[1] != 7 || ngx_strncmp(seg[1], "uploads", 7) != 0
        || len[0] == 0 || len[0] > NGX_HTTP_DARKROOM_GALLERY_SLUG_MAX)
    {
        return NGX_ERROR;
    }

    for (i = 0; i < (ngx_int_t) len[0]; i++) {
        if (!((seg[0][i] >= 'a' && seg[0][i] <= 'z')
              || (seg[0][i] >= '0' && seg[0][i] <= '9') || seg[0][i] == '-'))
        {
            return NGX_ERROR;
        }
    }

    slug->data = seg[0];
    slug->len = len[0];

    dst = ngx_pnalloc(r->pool, len[2] + 1);
    if (dst == NULL) {
        return NGX_ERROR;
    }

    name->data = dst;
    src = seg[2];
    ngx_unescape_uri(&dst, &src, len[2], 0);
    name->len = dst - name->data;

    return NGX_OK;
}


/* refused before the body is read: nginx drops what the client sends */

static ngx_int_t
ngx_http_darkroom_upload_refuse(ngx_http_request_t *r, ngx_uint_t status,
    const char *code, const char *message)
{
    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "darkroom upload: refused, %s", code);

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_darkroom_send_error(r, status, code, message);
}


/* in a thread: the file checked, moved, recorded with its import job */

static void
ngx_http_darkroom_upload_work(ngx_http_darkroom_task_t *t)
{
    char                         bytes[NGX_OFF_T_LEN + 1];
    PGresult                    *res;
    const char                  *params[3];
    ngx_http_darkroom_upload_t  *u = t->data;

    if (ngx_http_darkroom_upload_sniff((char *) t->body_file.data)
        != NGX_OK)
    {
        ngx_http_darkroom_trace("upload: \"%s\" is no JPEG, PNG, TIFF "
                                "or WebP", u->name);
        ngx_http_darkroom_error_set(&t->err,
                                    NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                    "unsupported_type",
                                    "The file is not a JPEG, PNG, TIFF or "
                                    "WebP image.");
        return;
    }

    params[0] = u->slug;
    params[1] = u->name;
    params[2] = bytes;

    res = ngx_http_darkroom_db_exec(&t->db,
                                    "SELECT gallery_upload_gallery($1)", 1,
                                    params, &t->err);
    if (res == NULL) {
        return;
    }

    PQclear(res);

    if (ngx_http_darkroom_upload_move(t, u) != NGX_OK) {
        return;
    }

    snprintf(bytes, sizeof(bytes), "%lld", (long long) t->body_size);

    res = ngx_http_darkroom_db_exec(&t->db,
               "SELECT gallery_upload_receive($1, $2, $3::bigint)", 3,
               params, &t->err);
    if (res == NULL) {
        return;
    }

    ngx_http_darkroom_task_answer(t, res, "There is no such gallery.");

    if (t->out) {
        t->status = NGX_HTTP_ACCEPTED;
    }
}


/* in a thread: the first bytes are a JPEG's, PNG's, TIFF's or WebP's */

static ngx_int_t
ngx_http_darkroom_upload_sniff(const char *file)
{
    int      fd;
    u_char   h[NGX_HTTP_DARKROOM_UPLOAD_HEAD];
    ssize_t  n;

    fd = open(file, O_RDONLY);
    if (fd == -1) {
        return NGX_ERROR;
    }

    n = read(fd, h, sizeof(h));
    close(fd);

    if (n < 0 || !ngx_http_darkroom_upload_image_head(h, n)) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * In a thread: the temp file becomes <root><slug>/<name>, replacing what
 * was there at once.  Across file systems rename() fails with EXDEV: the
 * file is copied to a temp name in the gallery's folder, then renamed.
 */

static ngx_int_t
ngx_http_darkroom_upload_move(ngx_http_darkroom_task_t *t,
    ngx_http_darkroom_upload_t *u)
{
    int      err;
    char    *from, dir[PATH_MAX], to[PATH_MAX];
    u_char   why[128], *last;

    from = (char *) t->body_file.data;

    if ((size_t) snprintf(dir, sizeof(dir), "%s%s", u->root, u->slug)
            >= sizeof(dir)
        || (size_t) snprintf(to, sizeof(to), "%s/%s", dir, u->name)
            >= sizeof(to))
    {
        ngx_http_darkroom_error_set(&t->err, NGX_HTTP_BAD_REQUEST,
                                    "bad_name", "The file name is too long.");
        return NGX_ERROR;
    }

    if (mkdir(dir, 0755) == -1 && errno != EEXIST) {
        err = errno;
        goto failed;
    }

    /* readable by the importer, which may run as another user */

    if (rename(from, to) == 0) {
        (void) chmod(to, 0644);
        ngx_http_darkroom_trace("upload: renamed to \"%s\"", to);
        return NGX_OK;
    }

    err = errno;

    if (err == EXDEV) {
        if (ngx_http_darkroom_upload_copy(from, dir, to) == NGX_OK) {
            unlink(from);
            ngx_http_darkroom_trace("upload: copied to \"%s\" (the temp "
                                    "path is on another file system)", to);
            return NGX_OK;
        }

        err = errno;
    }

failed:

    ngx_http_darkroom_error_set(&t->err, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                "internal_error",
                                "The file could not be stored.");
    /* nginx's table of messages, read-only: safe here, unlike strerror() */
    last = ngx_strerror(err, why, sizeof(why) - 1);
    *last = '\0';

    snprintf(t->err.detail, sizeof(t->err.detail),
             "upload to \"%.280s\" failed: %.80s", to, (char *) why);

    return NGX_ERROR;
}


/* in a thread: from copied to a temp file in dir, renamed to to */

static ngx_int_t
ngx_http_darkroom_upload_copy(const char *from, const char *dir,
    const char *to)
{
    int      in, out, err;
    char     tmp[PATH_MAX], buf[65536];
    ssize_t  n;

    if ((size_t) snprintf(tmp, sizeof(tmp), "%s/.upload-XXXXXX", dir)
        >= sizeof(tmp))
    {
        errno = ENAMETOOLONG;
        return NGX_ERROR;
    }

    in = open(from, O_RDONLY);
    if (in == -1) {
        return NGX_ERROR;
    }

    out = mkstemp(tmp);
    if (out == -1) {
        err = errno;
        close(in);
        errno = err;
        return NGX_ERROR;
    }

    for ( ;; ) {
        n = read(in, buf, sizeof(buf));

        if (n <= 0 || write(out, buf, n) != n) {
            break;
        }
    }

    err = errno;

    if (n == 0 && fchmod(out, 0644) == 0 && fsync(out) == 0
        && close(out) == 0)
    {
        close(in);

        if (rename(tmp, to) == 0) {
            return NGX_OK;
        }

        err = errno;
        unlink(tmp);
        errno = err;
        return NGX_ERROR;
    }

    close(out);
    close(in);
    unlink(tmp);
    errno = err ? err : EIO;

    return NGX_ERROR;
}
