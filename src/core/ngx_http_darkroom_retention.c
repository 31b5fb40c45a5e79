
/*
 * darkroom: retention (issue 19, docs/retention.md).
 *
 * "darkroom_retention <interval> | off" (off by default): the recurring
 * job "retention" calls retention_purge() (sql/functions/retention.sql),
 * one bounded batch of each kind of data past its period per statement,
 * each statement its own short transaction, until a batch finds nothing
 * or NGX_HTTP_DARKROOM_RETENTION_ROUNDS were run; then it comes back
 * after the interval.  The periods are rows of retention_settings, changed
 * through the shop's admin API.  The files of expired galleries are the
 * gallery module's job ("gallery_files_purge"), which the same directive
 * turns on.
 */


#include "ngx_http_darkroom.h"


#define NGX_HTTP_DARKROOM_RETENTION_ROUNDS  100


static ngx_int_t ngx_http_darkroom_retention_job(ngx_http_darkroom_job_t *job,
    ngx_http_darkroom_error_t *err);


char *
ngx_http_darkroom_retention(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_darkroom_main_conf_t  *dmcf = conf;

    ngx_str_t  *value;

    if (dmcf->retention != NGX_CONF_UNSET_MSEC) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        dmcf->retention = 0;
        return NGX_CONF_OK;
    }

    dmcf->retention = ngx_parse_time(&value[1], 0);

    if (dmcf->retention == (ngx_msec_t) NGX_ERROR
        || dmcf->retention < 60000)
    {
        return "takes \"off\" or an interval of a minute or more";
    }

    return ngx_http_darkroom_needs_db(cf, cmd);
}


ngx_int_t
ngx_http_darkroom_retention_postconfiguration(ngx_conf_t *cf)
{
    ngx_http_darkroom_main_conf_t  *dmcf;

    dmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_darkroom_module);

    if (dmcf->retention == 0 || dmcf->retention == NGX_CONF_UNSET_MSEC) {
        return NGX_OK;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, cf->log, 0,
                   "darkroom retention: every %M ms", dmcf->retention);

    return ngx_http_darkroom_job_register_recurring(cf, "retention",
                                          ngx_http_darkroom_retention_job);
}


/* in a thread: batches until one finds nothing, then again later */

static ngx_int_t
ngx_http_darkroom_retention_job(ngx_http_darkroom_job_t *job,
    ngx_http_darkroom_error_t *err)
{
    PGresult    *res;
    ngx_int_t    found;
    ngx_uint_t   round;
    const char  *v;

    for (round = 0; round < NGX_HTTP_DARKROOM_RETENTION_ROUNDS; round++) {

        /* the rows this batch changed, every kind of data together */

        res = ngx_http_darkroom_db_exec(job->db,
                  "SELECT sum(n::bigint) FROM jsonb_each_text("
                  "retention_purge()) AS c (kind, n)", 0, NULL, err);
        if (res == NULL) {
            return NGX_ERROR;
        }

        v = ngx_http_darkroom_db_only(res);
        found = v ? ngx_atoi((u_char *) v, ngx_strlen(v)) : NGX_ERROR;
        PQclear(res);

        if (found == NGX_ERROR) {
            snprintf(err->detail, sizeof(err->detail),
                     "retention_purge: no count");
            return NGX_ERROR;
        }

        if (found == 0) {
            break;
        }
    }

    job->retry_after = job->conf->retention;

    return NGX_AGAIN;
}
