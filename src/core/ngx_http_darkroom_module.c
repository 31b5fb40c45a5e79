
/*
 * darkroom: the module, its main configuration and directive table.
 *
 * Each capability lives in a file of its own; this file only ties them to
 * nginx: directives, configuration merge and the per-worker start-up.
 */


#include "ngx_http_darkroom.h"

#include <curl/curl.h>
#include <openssl/sha.h>


static ngx_int_t ngx_http_darkroom_postconfiguration(ngx_conf_t *cf);
static void *ngx_http_darkroom_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_darkroom_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_darkroom_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_darkroom_init_main_conf(ngx_conf_t *cf, void *conf);
static char *ngx_http_darkroom_db(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_darkroom_db_pool(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_darkroom_jobs_backoff(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_darkroom_jobs_kind_concurrency(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_http_darkroom_init_module(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_darkroom_init_process(ngx_cycle_t *cycle);
static void ngx_http_darkroom_exit_process(ngx_cycle_t *cycle);


static char *ngx_http_darkroom_msec_min(ngx_conf_t *cf, void *post,
    void *data);


static ngx_conf_num_bounds_t  ngx_http_darkroom_jobs_batch_bounds = {
    ngx_conf_check_num_bounds, 1, 1000
};

static ngx_conf_num_bounds_t  ngx_http_darkroom_jobs_concurrency_bounds = {
    ngx_conf_check_num_bounds, 1, 64
};

/* the smallest value a timeout or interval directive accepts, in ms */

static ngx_conf_num_bounds_t  ngx_http_darkroom_db_timeout_min = {
    ngx_http_darkroom_msec_min, 100, 0
};

static ngx_conf_num_bounds_t  ngx_http_darkroom_interval_min = {
    ngx_http_darkroom_msec_min, 1, 0
};

static ngx_conf_num_bounds_t  ngx_http_darkroom_lease_min = {
    ngx_http_darkroom_msec_min, 1000, 0
};

static ngx_command_t  ngx_http_darkroom_commands[] = {

    { ngx_string("darkroom_db"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_darkroom_db,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("darkroom_db_pool"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_darkroom_db_pool,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("darkroom_db_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_darkroom_main_conf_t, db_timeout),
      &ngx_http_darkroom_db_timeout_min },

    { ngx_string("darkroom_fetch_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_darkroom_main_conf_t, fetch_timeout),
      &ngx_http_darkroom_db_timeout_min },

    { ngx_string("darkroom_jobs"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_darkroom_main_conf_t, jobs),
      NULL },

    { ngx_string("darkroom_retention"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_darkroom_retention,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("darkroom_jobs_interval"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_darkroom_main_conf_t, jobs_interval),
      &ngx_http_darkroom_interval_min },

    { ngx_string("darkroom_jobs_lease"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_darkroom_main_conf_t, jobs_lease),
      &ngx_http_darkroom_lease_min },

    { ngx_string("darkroom_jobs_backoff"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_darkroom_jobs_backoff,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("darkroom_jobs_batch"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_darkroom_main_conf_t, jobs_batch),
      &ngx_http_darkroom_jobs_batch_bounds },

    { ngx_string("darkroom_admin_token_file"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_darkroom_secret_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_darkroom_main_conf_t, admin_tokens),
      NULL },

    { ngx_string("darkroom_order_keys"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_darkroom_keyring_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_darkroom_main_conf_t, order_keys),
      NULL },

    { ngx_string("darkroom_jobs_concurrency"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_darkroom_main_conf_t, jobs_concurrency),
      &ngx_http_darkroom_jobs_concurrency_bounds },

    { ngx_string("darkroom_jobs_kind_concurrency"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_darkroom_jobs_kind_concurrency,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("darkroom_download_url"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_darkroom_download_url_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_darkroom_main_conf_t, download_url),
      NULL },

    { ngx_string("darkroom_download_keys"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_darkroom_keyring_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_darkroom_main_conf_t, download_keys),
      NULL },

    { ngx_string("darkroom_download_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_darkroom_main_conf_t, download_ttl),
      NULL },

    { ngx_string("darkroom_download_limit"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_darkroom_main_conf_t, download_limit),
      NULL },

    { ngx_string("darkroom_public_cache"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_darkroom_public_cache,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("darkroom_health"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_darkroom_health,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_darkroom_module_ctx = {
    ngx_http_darkroom_vars_add,            /* preconfiguration */
    ngx_http_darkroom_postconfiguration,   /* postconfiguration */

    ngx_http_darkroom_create_main_conf,    /* create main configuration */
    ngx_http_darkroom_init_main_conf,      /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_darkroom_create_loc_conf,     /* create location configuration */
    ngx_http_darkroom_merge_loc_conf       /* merge location configuration */
};


ngx_module_t  ngx_http_darkroom_module = {
    NGX_MODULE_V1,
    &ngx_http_darkroom_module_ctx,         /* module context */
    ngx_http_darkroom_commands,            /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    ngx_http_darkroom_init_module,         /* init module */
    ngx_http_darkroom_init_process,        /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_darkroom_exit_process,        /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_str_t  ngx_http_darkroom_default_pool = ngx_string("default");


static void *
ngx_http_darkroom_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_darkroom_main_conf_t  *dmcf;

    dmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_darkroom_main_conf_t));
    if (dmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     dmcf->conninfo = { 0, NULL };
     *     dmcf->pool_name = { 0, NULL };
     *     dmcf->pool = NULL;
     *     dmcf->db_user_file = NULL;
     */

    dmcf->db_timeout = NGX_CONF_UNSET_MSEC;
    dmcf->fetch_timeout = NGX_CONF_UNSET_MSEC;
    dmcf->jobs = NGX_CONF_UNSET;
    dmcf->jobs_interval = NGX_CONF_UNSET_MSEC;
    dmcf->retention = NGX_CONF_UNSET_MSEC;
    dmcf->jobs_lease = NGX_CONF_UNSET_MSEC;
    dmcf->jobs_backoff = NGX_CONF_UNSET_MSEC;
    dmcf->jobs_backoff_max = NGX_CONF_UNSET_MSEC;
    dmcf->jobs_batch = NGX_CONF_UNSET_UINT;
    dmcf->jobs_concurrency = NGX_CONF_UNSET_UINT;

    dmcf->admin_tokens = NGX_CONF_UNSET_PTR;
    dmcf->session_idle = NGX_CONF_UNSET_MSEC;
    dmcf->session_max = NGX_CONF_UNSET_MSEC;
    dmcf->download_keys = NGX_CONF_UNSET_PTR;
    dmcf->download_ttl = NGX_CONF_UNSET;
    dmcf->download_limit = NGX_CONF_UNSET;
    dmcf->order_keys = NGX_CONF_UNSET_PTR;

    if (ngx_array_init(&dmcf->keyrings, cf->pool, 2,
                       sizeof(ngx_http_darkroom_keyring_t *))
        != NGX_OK
        || ngx_array_init(&dmcf->link_ttls, cf->pool, 2,
                          sizeof(ngx_http_darkroom_link_ttl_t))
           != NGX_OK
        || ngx_array_init(&dmcf->health_checks, cf->pool, 2,
                          sizeof(ngx_http_darkroom_health_check_t))
           != NGX_OK
        || ngx_array_init(&dmcf->public_sources, cf->pool, 2,
                          sizeof(ngx_http_darkroom_public_source_t *))
           != NGX_OK)
    {
        return NULL;
    }

    return dmcf;
}


static void *
ngx_http_darkroom_create_loc_conf(ngx_conf_t *cf)
{
    /*
     * set by ngx_pcalloc():
     *
     *     conf->json_errors = 0;
     *     conf->link_keys = NULL;
     */

    return ngx_pcalloc(cf->pool, sizeof(ngx_http_darkroom_loc_conf_t));
}


/* json_errors is the location's own, never inherited; the keys are */

static char *
ngx_http_darkroom_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_darkroom_loc_conf_t *prev = parent;
    ngx_http_darkroom_loc_conf_t *conf = child;

    if (conf->link_keys == NULL) {
        conf->link_keys = prev->link_keys;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_darkroom_postconfiguration(ngx_conf_t *cf)
{
    if (ngx_http_darkroom_jobs_postconfiguration(cf) != NGX_OK
        || ngx_http_darkroom_retention_postconfiguration(cf) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_darkroom_reply_init(cf);
}


static char *
ngx_http_darkroom_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_darkroom_main_conf_t *dmcf = conf;

    ngx_conf_init_msec_value(dmcf->db_timeout, 10000);
    ngx_conf_init_msec_value(dmcf->fetch_timeout, 30000);
    ngx_conf_init_value(dmcf->jobs, 1);
    ngx_conf_init_msec_value(dmcf->jobs_interval, 1000);
    ngx_conf_init_msec_value(dmcf->retention, 0);
    ngx_conf_init_msec_value(dmcf->jobs_lease, 300000);
    ngx_conf_init_msec_value(dmcf->jobs_backoff, 10000);
    ngx_conf_init_msec_value(dmcf->jobs_backoff_max, 3600000);
    ngx_conf_init_uint_value(dmcf->jobs_batch, 20);
    ngx_conf_init_uint_value(dmcf->jobs_concurrency, 4);

    ngx_conf_init_ptr_value(dmcf->admin_tokens, NULL);
    ngx_conf_init_msec_value(dmcf->session_idle, 30 * 60 * 1000);
    ngx_conf_init_msec_value(dmcf->session_max, 12 * 60 * 60 * 1000);
    ngx_conf_init_ptr_value(dmcf->order_keys, NULL);

    if (ngx_http_darkroom_download_init(cf, dmcf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    if (dmcf->conninfo.data == NULL) {

        if (dmcf->db_user_file) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"%V\" requires \"darkroom_db\" in %s:%ui",
                          &dmcf->db_user, dmcf->db_user_file,
                          dmcf->db_user_line);
            return NGX_CONF_ERROR;
        }

        if (dmcf->pool_name.data) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"darkroom_db_pool\" is set but "
                          "\"darkroom_db\" is not");
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;
    }

    if (dmcf->pool) {
        return NGX_CONF_OK;
    }

    /* nginx itself creates the "default" pool when no directive does */

    dmcf->pool_name = ngx_http_darkroom_default_pool;

    dmcf->pool = ngx_thread_pool_add(cf, &dmcf->pool_name);
    if (dmcf->pool == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_darkroom_db(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_darkroom_main_conf_t *dmcf = conf;

    char              *errmsg;
    size_t             len;
    ngx_str_t         *value;
    const char        *why;
    PQconninfoOption  *opts;

    if (dmcf->conninfo.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "empty connection string in \"%V\"",
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    /* ngx_conf_t strings are NUL-terminated, so libpq can parse in place */

    errmsg = NULL;
    opts = PQconninfoParse((char *) value[1].data, &errmsg);

    if (opts == NULL) {
        /* the message names the bad keyword, never a password value */
        len = errmsg ? ngx_strlen(errmsg) : 0;

        while (len && (errmsg[len - 1] == '\n' || errmsg[len - 1] == '.')) {
            errmsg[--len] = '\0';
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid connection string in \"%V\": %s",
                           &cmd->name,
                           errmsg ? errmsg : "out of memory");
        if (errmsg) {
            PQfreemem(errmsg);
        }
        return NGX_CONF_ERROR;
    }

    /* what libpq would refuse only at each connect: a multi-host form */

    why = ngx_http_darkroom_db_conninfo_check(opts);

    PQconninfoFree(opts);

    if (why) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid connection string in \"%V\": %s",
                           &cmd->name, why);
        return NGX_CONF_ERROR;
    }

    dmcf->conninfo = value[1];

    return NGX_CONF_OK;
}


static char *
ngx_http_darkroom_db_pool(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_darkroom_main_conf_t *dmcf = conf;

    ngx_str_t  *value;

    if (dmcf->pool_name.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 0) {
        return "takes a thread pool name";
    }

    dmcf->pool_name = value[1];

    /* registered here so that an unknown pool is reported at this line */

    dmcf->pool = ngx_thread_pool_add(cf, &dmcf->pool_name);
    if (dmcf->pool == NULL) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_darkroom_jobs_backoff(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_darkroom_main_conf_t *dmcf = conf;

    ngx_str_t   *value;
    ngx_msec_t   base, max;

    if (dmcf->jobs_backoff != NGX_CONF_UNSET_MSEC) {
        return "is duplicate";
    }

    value = cf->args->elts;

    base = ngx_parse_time(&value[1], 0);
    if (base == (ngx_msec_t) NGX_ERROR || base == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid backoff \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    max = 3600000;

    if (cf->args->nelts == 3) {
        max = ngx_parse_time(&value[2], 0);
        if (max == (ngx_msec_t) NGX_ERROR || max < base) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid maximum backoff \"%V\", it must "
                               "be a time not below \"%V\"",
                               &value[2], &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    dmcf->jobs_backoff = base;
    dmcf->jobs_backoff_max = max;

    return NGX_CONF_OK;
}


static char *
ngx_http_darkroom_msec_min(ngx_conf_t *cf, void *post, void *data)
{
    ngx_conf_num_bounds_t *bounds = post;
    ngx_msec_t            *ms = data;

    if (*ms < (ngx_msec_t) bounds->low) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "value must be at least %ims", bounds->low);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * An absolute http(s) URL, kept NUL-terminated for libcurl and the
 * providers.  Shared by the directives of every darkroom module.
 */

char *
ngx_http_darkroom_url(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    ngx_str_t  *value, *field;

    field = (ngx_str_t *) (p + cmd->offset);

    if (field->data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if ((ngx_strncmp(value[1].data, "http://", 7) != 0
         && ngx_strncmp(value[1].data, "https://", 8) != 0)
        || ngx_strlchr(value[1].data, value[1].data + value[1].len, ' '))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid URL \"%V\", it must start with "
                           "http:// or https://", &value[1]);
        return NGX_CONF_ERROR;
    }

    *field = value[1];

    return NGX_CONF_OK;
}


/*
 * A base URL (a provider's API, where labs fetch print files): no query or
 * fragment, and no trailing slash, since the paths bring theirs.  Shared by
 * the directives of every darkroom module.
 */

char *
ngx_http_darkroom_base_url(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    char       *rv;
    ngx_str_t  *value, *field;

    value = cf->args->elts;

    if (ngx_strlchr(value[1].data, value[1].data + value[1].len, '?')
        || ngx_strlchr(value[1].data, value[1].data + value[1].len, '#'))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid URL \"%V\", a base URL has no query",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    rv = ngx_http_darkroom_url(cf, cmd, conf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    field = (ngx_str_t *) (p + cmd->offset);

    while (field->len > sizeof("https://") - 1
           && field->data[field->len - 1] == '/')
    {
        field->data[--field->len] = '\0';
    }

    return NGX_CONF_OK;
}


/* a feature used at use->file:use->line needs a directive that is unset */

char *
ngx_http_darkroom_require(ngx_conf_t *cf, ngx_http_darkroom_use_t *use,
    const char *feature, void *value, const char *directive)
{
    if (use->file && value == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"%s\" requires \"%s\" in %s:%ui",
                      feature, directive, use->file, use->line);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * Makes the location's content handler and records where a feature is
 * used, so that a missing requirement is reported at that line.
 */

ngx_http_darkroom_main_conf_t *
ngx_http_darkroom_use(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_http_handler_pt handler, ngx_http_darkroom_use_t *use)
{
    ngx_http_core_loc_conf_t       *clcf;
    ngx_http_darkroom_loc_conf_t   *dlcf;
    ngx_http_darkroom_main_conf_t  *dmcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    /* errors nginx makes in this location are answered in JSON too */
    dlcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_darkroom_module);
    dlcf->json_errors = 1;

    if (clcf->handler) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" conflicts with another content handler "
                           "in this location", &cmd->name);
        return NULL;
    }

    clcf->handler = handler;
    ngx_http_darkroom_metrics_location(cf, &cmd->name);

    dmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_darkroom_module);

    if (use && use->file == NULL) {
        use->file = cf->conf_file->file.name.data;
        use->line = cf->conf_file->line;
    }

    (void) ngx_http_darkroom_needs_db(cf, cmd);

    return dmcf;
}


/*
 * Called by every directive whose handler needs Postgres: remembers where
 * it was first used so that a missing "darkroom_db" is reported there.
 */

char *
ngx_http_darkroom_needs_db(ngx_conf_t *cf, ngx_command_t *cmd)
{
    ngx_http_darkroom_main_conf_t  *dmcf;

    dmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_darkroom_module);

    if (dmcf->db_user_file == NULL) {
        dmcf->db_user_file = cf->conf_file->file.name.data;
        dmcf->db_user_line = cf->conf_file->line;
        dmcf->db_user = cmd->name;
    }

    return NGX_CONF_OK;
}


/* darkroom_jobs_kind_concurrency <kind> <n>: the kind's runners per worker */

static char *
ngx_http_darkroom_jobs_kind_concurrency(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_darkroom_main_conf_t *dmcf = conf;

    u_char                        *p;
    ngx_int_t                      n;
    ngx_str_t                     *value;
    ngx_uint_t                     i;
    ngx_http_darkroom_kind_cap_t  *cap;

    value = cf->args->elts;

    for (p = value[1].data; p < value[1].data + value[1].len; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')
              || *p == '_'))
        {
            break;
        }
    }

    if (value[1].len == 0 || value[1].len > 64
        || p != value[1].data + value[1].len)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid job kind \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    n = ngx_atoi(value[2].data, value[2].len);

    if (n < 1 || n > 64) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid number of runners \"%V\", it must be "
                           "1 to 64", &value[2]);
        return NGX_CONF_ERROR;
    }

    if (dmcf->jobs_kind_caps == NULL) {
        dmcf->jobs_kind_caps = ngx_array_create(cf->pool, 4,
                                       sizeof(ngx_http_darkroom_kind_cap_t));
        if (dmcf->jobs_kind_caps == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    cap = dmcf->jobs_kind_caps->elts;

    for (i = 0; i < dmcf->jobs_kind_caps->nelts; i++) {
        if (cap[i].kind.len == value[1].len
            && ngx_strncmp(cap[i].kind.data, value[1].data, value[1].len)
               == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate job kind \"%V\"", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    cap = ngx_array_push(dmcf->jobs_kind_caps);
    if (cap == NULL) {
        return NGX_CONF_ERROR;
    }

    cap->kind = value[1];
    cap->n = n;
    cap->file = cf->conf_file->file.name.data;
    cap->line = cf->conf_file->line;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_darkroom_init_module(ngx_cycle_t *cycle)
{
    /* libcurl's global set-up is not thread-safe: do it before any thread */

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "curl_global_init() failed");
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_darkroom_init_process(ngx_cycle_t *cycle)
{
    ngx_http_darkroom_main_conf_t  *dmcf;

    dmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_darkroom_module);
    if (dmcf) {
        ngx_http_darkroom_download_process(dmcf);
    }

    if (ngx_http_darkroom_public_init_process(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_darkroom_jobs_init_process(cycle);
}


static void
ngx_http_darkroom_exit_process(ngx_cycle_t *cycle)
{
    /*
     * nginx's thread pool module destroys the pools at exit after their
     * queued tasks ran, so a running job finishes and records its outcome;
     * then the threads' connections are closed here.
     */

    ngx_http_darkroom_db_exit(cycle->log);
}
