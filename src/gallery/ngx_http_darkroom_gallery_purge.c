
/*
 * darkroom: the files of expired galleries deleted (issue 19).
 *
 * With "darkroom_retention" on, the recurring job "gallery_files_purge"
 * asks gallery_files_due() (sql/functions/retention.sql) for the galleries
 * expired longer than retention_settings.gallery_files_days whose files
 * are still there, deletes each file under every darkroom_gallery_root of
 * the configuration (a file already gone is fine), then the gallery's
 * upload folder if empty, and marks the gallery (gallery_files_purged())
 * once all its files are gone.  Paths come from columns that refuse "..",
 * and are checked again here.  Runs in a pool thread: no nginx memory, no
 * nginx log.
 */


#include "ngx_http_darkroom_gallery.h"


#define NGX_HTTP_DARKROOM_GALLERY_PURGE_BATCH  20     /* galleries a run */


static ngx_int_t ngx_http_darkroom_gallery_purge_job(
    ngx_http_darkroom_job_t *job, ngx_http_darkroom_error_t *err);
static ngx_int_t ngx_http_darkroom_gallery_purge_file(const char *dir,
    const char *path, ngx_uint_t folder, ngx_http_darkroom_error_t *err);
static ngx_int_t ngx_http_darkroom_gallery_purge_done(
    ngx_http_darkroom_job_t *job, const char *id,
    ngx_http_darkroom_error_t *err);


/* the roots of every location (each NUL-terminated, "/" at the end) */
static ngx_array_t  *ngx_http_darkroom_gallery_purge_roots;


/* a location's darkroom_gallery_root, remembered once */

ngx_int_t
ngx_http_darkroom_gallery_purge_root(ngx_conf_t *cf, ngx_str_t *root)
{
    ngx_str_t                              *r;
    ngx_uint_t                              i;
    ngx_http_darkroom_gallery_main_conf_t  *gmcf;

    gmcf = ngx_http_conf_get_module_main_conf(cf,
                                             ngx_http_darkroom_gallery_module);

    if (gmcf->roots == NULL) {
        gmcf->roots = ngx_array_create(cf->pool, 2, sizeof(ngx_str_t));
        if (gmcf->roots == NULL) {
            return NGX_ERROR;
        }
    }

    r = gmcf->roots->elts;

    for (i = 0; i < gmcf->roots->nelts; i++) {
        if (r[i].len == root->len
            && ngx_strncmp(r[i].data, root->data, root->len) == 0)
        {
            return NGX_OK;
        }
    }

    r = ngx_array_push(gmcf->roots);
    if (r == NULL) {
        return NGX_ERROR;
    }

    r->len = root->len;
    r->data = (u_char *) ngx_http_darkroom_cstr(cf->pool, root->data,
                                                root->len);

    return r->data ? NGX_OK : NGX_ERROR;
}


ngx_int_t
ngx_http_darkroom_gallery_purge_init(ngx_conf_t *cf)
{
    ngx_http_darkroom_main_conf_t          *dmcf;
    ngx_http_darkroom_gallery_main_conf_t  *gmcf;

    dmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_darkroom_module);
    gmcf = ngx_http_conf_get_module_main_conf(cf,
                                             ngx_http_darkroom_gallery_module);

    if (dmcf->retention == 0 || gmcf->roots == NULL) {
        return NGX_OK;
    }

    ngx_http_darkroom_gallery_purge_roots = gmcf->roots;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, cf->log, 0,
                   "darkroom gallery: expired galleries' files purged "
                   "under %ui roots", gmcf->roots->nelts);

    return ngx_http_darkroom_job_register_recurring(cf,
               "gallery_files_purge", ngx_http_darkroom_gallery_purge_job);
}


static ngx_int_t
ngx_http_darkroom_gallery_purge_job(ngx_http_darkroom_job_t *job,
    ngx_http_darkroom_error_t *err)
{
    int          i, n;
    PGresult    *res;
    ngx_str_t   *roots;
    ngx_uint_t   r, failed, failures, galleries;
    const char  *params[1], *id, *slug, *path;
    char         batch[NGX_INT_T_LEN + 1];

    snprintf(batch, sizeof(batch), "%d",
             NGX_HTTP_DARKROOM_GALLERY_PURGE_BATCH);
    params[0] = batch;

    res = ngx_http_darkroom_db_exec(job->db,
              "SELECT id, slug, path FROM gallery_files_due($1::int)",
              1, params, err);
    if (res == NULL) {
        return NGX_ERROR;
    }

    roots = ngx_http_darkroom_gallery_purge_roots->elts;
    n = PQntuples(res);
    failed = 0;
    failures = 0;
    galleries = 0;

    for (i = 0; i < n; i++) {
        id = PQgetvalue(res, i, 0);
        slug = PQgetvalue(res, i, 1);
        path = PQgetisnull(res, i, 2) ? NULL : PQgetvalue(res, i, 2);

        for (r = 0; path && r < ngx_http_darkroom_gallery_purge_roots->nelts;
             r++)
        {
            if (ngx_http_darkroom_gallery_purge_file((char *) roots[r].data,
                                                     path, 0, err)
                != NGX_OK)
            {
                failed = 1;
                failures++;
            }
        }

        if (i + 1 < n && ngx_strcmp(PQgetvalue(res, i + 1, 0), id) == 0) {
            continue;
        }

        /* the gallery's last file: its upload folder, then its mark */

        galleries++;

        for (r = 0; r < ngx_http_darkroom_gallery_purge_roots->nelts; r++) {
            (void) ngx_http_darkroom_gallery_purge_file(
                       (char *) roots[r].data, slug, 1, err);
        }

        if (!failed && ngx_http_darkroom_gallery_purge_done(job, id, err)
                       != NGX_OK)
        {
            PQclear(res);
            return NGX_ERROR;
        }

        failed = 0;
    }

    PQclear(res);

    if (failures) {
        return NGX_ERROR;       /* err->detail: the last; retried later */
    }

    /* a full batch: more are due now; else look again in the interval */

    job->retry_after = (galleries >= NGX_HTTP_DARKROOM_GALLERY_PURGE_BATCH)
                       ? 1000 : job->conf->retention;

    return NGX_AGAIN;
}


/*
 * one file under a root (gone is fine), or, with folder, the folder if it
 * is empty (best effort: never an error)
 */

static ngx_int_t
ngx_http_darkroom_gallery_purge_file(const char *dir, const char *path,
    ngx_uint_t folder, ngx_http_darkroom_error_t *err)
{
    int   rc;
    char  file[NGX_MAX_PATH];

    if (path[0] == '/' || ngx_strstr(path, "..")
        || snprintf(file, sizeof(file), "%s%s", dir, path)
           >= (int) sizeof(file))
    {
        snprintf(err->detail, sizeof(err->detail),
                 "gallery_files_purge: refused path \"%.64s\"", path);
        return NGX_ERROR;
    }

    rc = folder ? rmdir(file) : unlink(file);

    if (rc == 0 || errno == ENOENT || folder) {
        return NGX_OK;          /* a folder not empty, or not ours: kept */
    }

    snprintf(err->detail, sizeof(err->detail),
             "gallery_files_purge: %s \"%.200s\" failed (%d)",
             folder ? "rmdir" : "unlink", file, errno);

    return NGX_ERROR;
}


static ngx_int_t
ngx_http_darkroom_gallery_purge_done(ngx_http_darkroom_job_t *job,
    const char *id, ngx_http_darkroom_error_t *err)
{
    const char  *params[1];

    params[0] = id;

    return ngx_http_darkroom_db_command(job->db,
               "SELECT gallery_files_purged($1::bigint)", 1, params, err);
}
