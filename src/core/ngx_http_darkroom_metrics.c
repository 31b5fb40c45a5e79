
/*
 * darkroom: Prometheus metrics.
 *
 * The counters and histograms of ngx_http_darkroom_metrics.h live in one
 * shared memory zone, "darkroom_metrics", made at configuration time with
 * a size fixed by the table, so a reload keeps the counts.  Every area
 * adds to them with ngx_atomic_fetch_add(), on the event loop or in a
 * pool thread.  A log phase handler counts the requests of darkroom
 * locations by handler and status class.  The darkroom_metrics content
 * handler reads the zone and writes the Prometheus text format 0.0.4; a
 * scrape never reaches PostgreSQL.
 */


#include "ngx_http_darkroom.h"
#include "ngx_http_darkroom_metrics.h"


typedef struct {
    ngx_uint_t                   handler;      /* metrics_handler_e */
} ngx_http_darkroom_metrics_loc_conf_t;


typedef struct {
    const char                  *directive;
    ngx_uint_t                   handler;
} ngx_http_darkroom_metrics_map_t;


static ngx_int_t ngx_http_darkroom_metrics_init(ngx_conf_t *cf);
static void *ngx_http_darkroom_metrics_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_darkroom_metrics_init_main_conf(ngx_conf_t *cf,
    void *conf);
static char *ngx_http_darkroom_metrics_interval(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_http_darkroom_metrics_init_process(ngx_cycle_t *cycle);
static void *ngx_http_darkroom_metrics_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_darkroom_metrics_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);
static char *ngx_http_darkroom_metrics_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_http_darkroom_metrics_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_int_t ngx_http_darkroom_metrics_log(ngx_http_request_t *r);
static ngx_int_t ngx_http_darkroom_metrics_handler(ngx_http_request_t *r);
static u_char *ngx_http_darkroom_metrics_requests(u_char *p, u_char *last,
    ngx_http_darkroom_metrics_sh_t *sh);
static u_char *ngx_http_darkroom_metrics_core(u_char *p, u_char *last,
    ngx_http_darkroom_metrics_sh_t *sh);
static u_char *ngx_http_darkroom_metrics_shop(u_char *p, u_char *last,
    ngx_http_darkroom_metrics_sh_t *sh);
static u_char *ngx_http_darkroom_metrics_named(u_char *p, u_char *last,
    ngx_http_darkroom_metrics_sh_t *sh);
static u_char *ngx_http_darkroom_metrics_queue(u_char *p, u_char *last,
    ngx_http_darkroom_metrics_sh_t *sh);
static u_char *ngx_http_darkroom_metrics_gauges(u_char *p, u_char *last,
    ngx_http_darkroom_metrics_names_t *names, const char *metric,
    ngx_atomic_t *values, ngx_uint_t ms);
static u_char *ngx_http_darkroom_metrics_family(u_char *p, u_char *last,
    const char *name, const char *type, const char *help);
static u_char *ngx_http_darkroom_metrics_histogram(u_char *p, u_char *last,
    const char *name, const char *help, ngx_http_darkroom_histogram_t *h);
static u_char *ngx_http_darkroom_metrics_series(u_char *p, u_char *last,
    const char *name, const char *lab, ngx_http_darkroom_histogram_t *h);
static u_char *ngx_http_darkroom_metrics_labs(u_char *p, u_char *last,
    ngx_http_darkroom_metrics_sh_t *sh);
static u_char *ngx_http_darkroom_metrics_lab_states(u_char *p, u_char *last,
    ngx_http_darkroom_metrics_sh_t *sh);
static u_char *ngx_http_darkroom_metrics_by_name(u_char *p, u_char *last,
    ngx_http_darkroom_metrics_sh_t *sh, ngx_uint_t dim, const char *metric,
    const char *help, const char *label, ngx_atomic_t *counts,
    ngx_uint_t width, const char **outcomes);
static u_char *ngx_http_darkroom_metrics_label(u_char *p, u_char *last,
    const char *value);


/*
 * The size of an answer: the fixed families, then per name claimed (one
 * more, for "other" or a name claimed meanwhile) a line per outcome and
 * the gauges; a line is at most 200 bytes with a name escaped twice over
 */
#define NGX_HTTP_DARKROOM_METRICS_FIXED  (24 * 1024)
#define NGX_HTTP_DARKROOM_METRICS_LINE   200


ngx_http_darkroom_metrics_sh_t  *ngx_http_darkroom_metrics;


static ngx_str_t  ngx_http_darkroom_metrics_zone_name =
    ngx_string("darkroom_metrics");


static const char  *ngx_http_darkroom_metrics_handlers[] = {
    "none", "catalogue", "checkout", "cart_quote", "order_status",
    "stripe_webhook", "admin", "lab_webhook", "lab_admin", "gallery",
    "gallery_admin", "download", "console", "bookings", "bookings_admin",
    "bookings_feed", "health", "metrics", "other"
};

static const char  *ngx_http_darkroom_metrics_classes[] = {
    "1xx", "2xx", "3xx", "4xx", "5xx", "none"
};

static const char  *ngx_http_darkroom_metrics_webhooks[] = {
    "applied", "duplicate", "ignored", "bad_signature", "stale", "refused",
    "error"
};

static const char  *ngx_http_darkroom_metrics_job_outcomes[] = {
    "done", "error", "dead", "again"
};

static const char  *ngx_http_darkroom_metrics_call_outcomes[] = {
    "ok", "error"
};

static const char  *ngx_http_darkroom_metrics_limit_outcomes[] = {
    "passed", "rejected"
};

/* upper bounds of the buckets: microseconds, and as written (seconds) */

static const uint64_t  ngx_http_darkroom_metrics_bounds[] = {
    500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
    1000000, 2500000, 5000000, 10000000
};

static const char  *ngx_http_darkroom_metrics_le[] = {
    "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
    "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"
};

/* the counters without labels */

typedef struct {
    const char                  *name;
    const char                  *help;
    size_t                       offset;       /* in the shared memory */
} ngx_http_darkroom_metrics_counter_t;

#define ngx_http_darkroom_metrics_at(field)                                  \
    offsetof(ngx_http_darkroom_metrics_sh_t, field)

static ngx_http_darkroom_metrics_counter_t
    ngx_http_darkroom_metrics_counters[] =
{
    { "darkroom_tasks_posted_total",
      "Request tasks posted to the thread pool.",
      ngx_http_darkroom_metrics_at(tasks_posted) },
    { "darkroom_tasks_queue_full_total",
      "Request tasks refused with 503 because the thread pool's queue was "
      "full.", ngx_http_darkroom_metrics_at(tasks_queue_full) },
    { "darkroom_db_connect_failures_total",
      "PostgreSQL connections that could not be made.",
      ngx_http_darkroom_metrics_at(db_connect_failures) },
    { "darkroom_db_unavailable_total",
      "503 answers because PostgreSQL was unavailable.",
      ngx_http_darkroom_metrics_at(db_unavailable) },
    { "darkroom_checkouts_created_total",
      "Stripe Checkout Sessions attached to orders.",
      ngx_http_darkroom_metrics_at(checkouts) },
    { "darkroom_media_links_total", "Signed media links let in.",
      ngx_http_darkroom_metrics_at(media_links) },
    { "darkroom_downloads_total",
      "Digital downloads served (darkroom_download, 2xx).",
      ngx_http_darkroom_metrics_at(downloads) },
    { "darkroom_download_bytes_total",
      "Body bytes sent by digital downloads.",
      ngx_http_darkroom_metrics_at(download_bytes) },
    { "darkroom_gallery_zips_total",
      "Gallery ZIP downloads answered (2xx, a range included).",
      ngx_http_darkroom_metrics_at(gallery_zips) },
    { "darkroom_gallery_zip_bytes_total",
      "Body bytes sent by gallery ZIP downloads.",
      ngx_http_darkroom_metrics_at(gallery_zip_bytes) },
    { NULL, NULL, 0 }
};

/* the directives of darkroom content handlers, as a bounded label */

static ngx_http_darkroom_metrics_map_t  ngx_http_darkroom_metrics_map[] = {
    { "darkroom_catalogue", NGX_HTTP_DARKROOM_H_CATALOGUE },
    { "darkroom_checkout", NGX_HTTP_DARKROOM_H_CHECKOUT },
    { "darkroom_cart_quote", NGX_HTTP_DARKROOM_H_CART_QUOTE },
    { "darkroom_order_status", NGX_HTTP_DARKROOM_H_ORDER_STATUS },
    { "darkroom_stripe_webhook", NGX_HTTP_DARKROOM_H_STRIPE_WEBHOOK },
    { "darkroom_admin", NGX_HTTP_DARKROOM_H_ADMIN },
    { "darkroom_lab_callback", NGX_HTTP_DARKROOM_H_LAB_WEBHOOK },
    { "darkroom_lab_admin", NGX_HTTP_DARKROOM_H_LAB_ADMIN },
    { "darkroom_gallery", NGX_HTTP_DARKROOM_H_GALLERY },
    { "darkroom_gallery_admin", NGX_HTTP_DARKROOM_H_GALLERY_ADMIN },
    { "darkroom_download", NGX_HTTP_DARKROOM_H_DOWNLOAD },
    { "darkroom_console_api", NGX_HTTP_DARKROOM_H_CONSOLE },
    { "darkroom_bookings", NGX_HTTP_DARKROOM_H_BOOKINGS },
    { "darkroom_bookings_hold", NGX_HTTP_DARKROOM_H_BOOKINGS },
    { "darkroom_bookings_admin", NGX_HTTP_DARKROOM_H_BOOKINGS_ADMIN },
    { "darkroom_bookings_feed", NGX_HTTP_DARKROOM_H_BOOKINGS_FEED },
    { "darkroom_health", NGX_HTTP_DARKROOM_H_HEALTH },
    { NULL, 0 }
};


static ngx_command_t  ngx_http_darkroom_metrics_commands[] = {

    { ngx_string("darkroom_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_darkroom_metrics_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("darkroom_metrics_jobs_interval"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_darkroom_metrics_interval,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("darkroom_alerts"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_darkroom_metrics_main_conf_t, alerts.enable),
      NULL },

    { ngx_string("darkroom_alert_cooldown"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_darkroom_metrics_main_conf_t, alerts.cooldown),
      NULL },

    { ngx_string("darkroom_alert_db_down"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_darkroom_metrics_main_conf_t, alerts.db_down),
      NULL },

    { ngx_string("darkroom_alert_signatures"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_darkroom_alerts_signatures,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_darkroom_metrics_main_conf_t, alerts),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_darkroom_metrics_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_darkroom_metrics_init,        /* postconfiguration */

    ngx_http_darkroom_metrics_create_main_conf,
    ngx_http_darkroom_metrics_init_main_conf,

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_darkroom_metrics_create_loc_conf,
    ngx_http_darkroom_metrics_merge_loc_conf
};


ngx_module_t  ngx_http_darkroom_metrics_module = {
    NGX_MODULE_V1,
    &ngx_http_darkroom_metrics_module_ctx, /* module context */
    ngx_http_darkroom_metrics_commands,    /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_darkroom_metrics_init_process, /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static void *
ngx_http_darkroom_metrics_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_darkroom_metrics_main_conf_t  *mmcf;

    mmcf = ngx_pcalloc(cf->pool,
                       sizeof(ngx_http_darkroom_metrics_main_conf_t));
    if (mmcf == NULL) {
        return NULL;
    }

    mmcf->jobs_interval = NGX_CONF_UNSET_MSEC;
    mmcf->alerts.enable = NGX_CONF_UNSET;
    mmcf->alerts.cooldown = NGX_CONF_UNSET;
    mmcf->alerts.db_down = NGX_CONF_UNSET;
    mmcf->alerts.sig_count = NGX_CONF_UNSET_UINT;
    mmcf->alerts.sig_window = NGX_CONF_UNSET;

    return mmcf;
}


static char *
ngx_http_darkroom_metrics_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_darkroom_metrics_main_conf_t *mmcf = conf;

    ngx_conf_init_msec_value(mmcf->jobs_interval, 15000);
    ngx_http_darkroom_alerts_init_conf(&mmcf->alerts);

    return NGX_CONF_OK;
}


/* darkroom_metrics_jobs_interval <time>: at least 1s, at most a day */

static char *
ngx_http_darkroom_metrics_interval(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_darkroom_metrics_main_conf_t *mmcf = conf;

    ngx_str_t   *value;
    ngx_msec_t   ms;

    if (mmcf->jobs_interval != NGX_CONF_UNSET_MSEC) {
        return "is duplicate";
    }

    value = cf->args->elts;
    ms = ngx_parse_time(&value[1], 0);

    if (ms == (ngx_msec_t) NGX_ERROR || ms < 1000 || ms > 86400000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid interval \"%V\", it must be a time "
                           "from 1s to 1d", &value[1]);
        return NGX_CONF_ERROR;
    }

    mmcf->jobs_interval = ms;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_darkroom_metrics_init_process(ngx_cycle_t *cycle)
{
    ngx_http_darkroom_metrics_main_conf_t  *mmcf;

    mmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                            ngx_http_darkroom_metrics_module);
    if (mmcf == NULL) {
        return NGX_OK;
    }

    return ngx_http_darkroom_metrics_jobs_start(cycle, mmcf);
}


static void *
ngx_http_darkroom_metrics_create_loc_conf(ngx_conf_t *cf)
{
    /*
     * set by ngx_pcalloc():
     *
     *     conf->handler = NGX_HTTP_DARKROOM_H_NONE;
     */

    return ngx_pcalloc(cf->pool, sizeof(ngx_http_darkroom_metrics_loc_conf_t));
}


/* the handler is the location's own, as its content handler is */

static char *
ngx_http_darkroom_metrics_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    return NGX_CONF_OK;
}


/*
 * Called by ngx_http_darkroom_use() for every darkroom content handler:
 * the location's requests are counted under the directive's label.
 */

void
ngx_http_darkroom_metrics_location(ngx_conf_t *cf, ngx_str_t *directive)
{
    ngx_http_darkroom_metrics_map_t       *m;
    ngx_http_darkroom_metrics_loc_conf_t  *mlcf;

    mlcf = ngx_http_conf_get_module_loc_conf(cf,
                                             ngx_http_darkroom_metrics_module);

    mlcf->handler = NGX_HTTP_DARKROOM_H_OTHER;

    for (m = ngx_http_darkroom_metrics_map; m->directive; m++) {
        if (directive->len == ngx_strlen(m->directive)
            && ngx_strncmp(directive->data, m->directive, directive->len)
               == 0)
        {
            mlcf->handler = m->handler;
            break;
        }
    }
}


static char *
ngx_http_darkroom_metrics_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_darkroom_metrics_loc_conf_t *mlcf = conf;

    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" conflicts with another content handler "
                           "in this location", &cmd->name);
        return NGX_CONF_ERROR;
    }

    /* no database: a scrape reads shared memory only */

    clcf->handler = ngx_http_darkroom_metrics_handler;
    mlcf->handler = NGX_HTTP_DARKROOM_H_METRICS;

    return NGX_CONF_OK;
}


/* the zone (whether or not a location answers it) and the log handler */

static ngx_int_t
ngx_http_darkroom_metrics_init(ngx_conf_t *cf)
{
    size_t                      size;
    ngx_shm_zone_t             *shm_zone;
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    size = 8 * ngx_pagesize
           + ngx_align(sizeof(ngx_http_darkroom_metrics_sh_t), ngx_pagesize);

    shm_zone = ngx_shared_memory_add(cf, &ngx_http_darkroom_metrics_zone_name,
                                     size, &ngx_http_darkroom_metrics_module);
    if (shm_zone == NULL) {
        return NGX_ERROR;
    }

    shm_zone->init = ngx_http_darkroom_metrics_init_zone;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_darkroom_metrics_log;

    return NGX_OK;
}


/* a reload keeps the previous zone, and with it the counts */

static ngx_int_t
ngx_http_darkroom_metrics_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_slab_pool_t                 *shpool;
    ngx_http_darkroom_metrics_sh_t  *sh;

    if (data) {
        shm_zone->data = data;
        ngx_http_darkroom_metrics = data;
        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        sh = shpool->data;

    } else {
        sh = ngx_slab_calloc(shpool, sizeof(ngx_http_darkroom_metrics_sh_t));
        if (sh == NULL) {
            return NGX_ERROR;
        }

        shpool->data = sh;
    }

    shm_zone->data = sh;
    ngx_http_darkroom_metrics = sh;

    return NGX_OK;
}


/*
 * The slot of a name in a dimension, claimed the first time it is seen:
 * a reader scans the published slots without a lock, a new name is added
 * under the dimension's spinlock.  Past the table's room: "other".
 */

ngx_uint_t
ngx_http_darkroom_metrics_name(ngx_uint_t dim, const u_char *name,
    size_t len)
{
    ngx_uint_t                          i, n;
    ngx_http_darkroom_metrics_names_t  *names;

    names = &ngx_http_darkroom_metrics->names[dim];

    if (len == 0 || len >= NGX_HTTP_DARKROOM_METRICS_NAME_LEN) {
        return NGX_HTTP_DARKROOM_METRICS_NAMES - 1;
    }

    for ( ;; ) {
        n = names->n;

        for (i = 0; i < n; i++) {
            if (ngx_strncmp(names->name[i], name, len) == 0
                && names->name[i][len] == '\0')
            {
                return i;
            }
        }

        if (n == NGX_HTTP_DARKROOM_METRICS_NAMES - 1) {
            return n;
        }

        if (!ngx_atomic_cmp_set(&names->lock, 0, 1)) {
            ngx_cpu_pause();
            continue;
        }

        if (names->n == n) {
            ngx_memcpy(names->name[n], name, len);
            names->name[n][len] = '\0';
            ngx_memory_barrier();
            names->n = n + 1;
        }

        ngx_memory_barrier();
        names->lock = 0;
    }
}


void
ngx_http_darkroom_metrics_observe(ngx_http_darkroom_histogram_t *h,
    uint64_t us)
{
    ngx_uint_t  i;

    for (i = 0; i < NGX_HTTP_DARKROOM_METRICS_BUCKETS; i++) {
        if (us <= ngx_http_darkroom_metrics_bounds[i]) {
            break;
        }
    }

    (void) ngx_atomic_fetch_add(&h->count[i], 1);
    (void) ngx_atomic_fetch_add(&h->sum_us, (ngx_atomic_int_t) us);
}


/*
 * stripe_handle_event()'s result, once the event's transaction ran:
 * counted, and its outcome's name returned (for $darkroom_result)
 */

const char *
ngx_http_darkroom_metrics_webhook_result(const char *result)
{
    ngx_uint_t  o;

    if (ngx_strcmp(result, "duplicate") == 0) {
        o = NGX_HTTP_DARKROOM_WH_DUPLICATE;

    } else if (ngx_strncmp(result, "ignored", 7) == 0) {
        o = NGX_HTTP_DARKROOM_WH_IGNORED;

    } else if (ngx_strncmp(result, "unprocessable", 13) == 0) {
        o = NGX_HTTP_DARKROOM_WH_REFUSED;

    } else {
        o = NGX_HTTP_DARKROOM_WH_APPLIED;
    }

    ngx_http_darkroom_metric_inc(webhooks[o]);

    return ngx_http_darkroom_metrics_webhooks[o];
}


/* a call to a lab (start: from _now()), failed or not */

void
ngx_http_darkroom_metrics_lab(const char *lab, ngx_uint_t failed,
    uint64_t start)
{
    ngx_uint_t  slot;

    if (ngx_http_darkroom_metrics == NULL) {
        return;
    }

    slot = ngx_http_darkroom_metrics_name(NGX_HTTP_DARKROOM_NAMES_LAB,
                                          (u_char *) lab, ngx_strlen(lab));

    (void) ngx_atomic_fetch_add(&ngx_http_darkroom_metrics->lab[slot][failed],
                                1);

    ngx_http_darkroom_metric_observe(lab_time[slot],
                                     ngx_http_darkroom_metrics_now() - start);
}


/* the gallery revocation list, as a worker just loaded it (event loop) */

void
ngx_http_darkroom_metrics_revocations(ngx_uint_t n)
{
    if (ngx_http_darkroom_metrics) {
        ngx_http_darkroom_metrics->revocations = n;
        ngx_http_darkroom_metrics->revocations_at = ngx_time();
    }
}


/* a registered kind's run: a handler's NGX_OK, _ERROR, _DECLINED, _AGAIN */

void
ngx_http_darkroom_metrics_job(const char *kind, ngx_int_t rc)
{
    ngx_uint_t  o;

    o = (rc == NGX_OK) ? 0 : (rc == NGX_DECLINED) ? 2
                           : (rc == NGX_AGAIN) ? 3 : 1;

    ngx_http_darkroom_metric_named(jobs, NGX_HTTP_DARKROOM_NAMES_JOB_KIND,
                                   kind, ngx_strlen(kind), o);
}


/* log phase: a darkroom location's request, by handler and status class */

static ngx_int_t
ngx_http_darkroom_metrics_log(ngx_http_request_t *r)
{
    off_t                                  sent;
    ngx_uint_t                             status, class;
    ngx_http_darkroom_metrics_loc_conf_t  *mlcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_darkroom_metrics_module);

    if (mlcf->handler == NGX_HTTP_DARKROOM_H_NONE
        || ngx_http_darkroom_metrics == NULL)
    {
        return NGX_OK;
    }

    status = r->err_status ? r->err_status : r->headers_out.status;
    class = (status >= 100 && status < 600) ? status / 100 - 1 : 5;

    ngx_http_darkroom_metric_inc(requests[mlcf->handler][class]);

    if (class != 1) {
        return NGX_OK;
    }

    sent = r->connection->sent - r->header_size;
    sent = sent > 0 ? sent : 0;

    if (mlcf->handler == NGX_HTTP_DARKROOM_H_DOWNLOAD) {
        ngx_http_darkroom_metric_inc(downloads);
        ngx_http_darkroom_metric_add(download_bytes, sent);

    } else if (mlcf->handler == NGX_HTTP_DARKROOM_H_GALLERY
               && ngx_http_darkroom_is(r->headers_out.content_type,
                                       "application/zip"))
    {
        ngx_http_darkroom_metric_inc(gallery_zips);
        ngx_http_darkroom_metric_add(gallery_zip_bytes, sent);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_darkroom_metrics_handler(ngx_http_request_t *r)
{
    u_char                          *body, *p, *last;
    size_t                           size;
    ngx_int_t                        rc;
    ngx_uint_t                       i, lines;
    ngx_http_darkroom_metrics_sh_t  *sh;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    sh = ngx_http_darkroom_metrics;
    if (sh == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    lines = 0;

    for (i = 0; i < NGX_HTTP_DARKROOM_NAMES_N; i++) {
        lines += (sh->names[i].n + 2) * NGX_HTTP_DARKROOM_METRICS_JOB_OUTCOMES;
    }

    lines += (sh->names[NGX_HTTP_DARKROOM_NAMES_JOB_KIND].n + 1) * 3
             + (sh->names[NGX_HTTP_DARKROOM_NAMES_LAB].n + 1)
               * (NGX_HTTP_DARKROOM_METRICS_BUCKETS + 3);

    size = NGX_HTTP_DARKROOM_METRICS_FIXED
           + lines * NGX_HTTP_DARKROOM_METRICS_LINE;

    body = ngx_pnalloc(r->pool, size);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    last = body + size;

    p = ngx_http_darkroom_metrics_requests(body, last, sh);
    p = ngx_http_darkroom_metrics_core(p, last, sh);
    p = ngx_http_darkroom_metrics_shop(p, last, sh);
    p = ngx_http_darkroom_metrics_named(p, last, sh);
    p = ngx_http_darkroom_metrics_queue(p, last, sh);
    p = ngx_http_darkroom_metrics_labs(p, last, sh);

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "darkroom metrics: %uz bytes", (size_t) (p - body));

    return ngx_http_darkroom_send_body(r, NGX_HTTP_OK,
                                       "text/plain; version=0.0.4; "
                                       "charset=utf-8", body, p - body);
}


static u_char *
ngx_http_darkroom_metrics_family(u_char *p, u_char *last, const char *name,
    const char *type, const char *help)
{
    return ngx_slprintf(p, last, "# HELP %s %s\n# TYPE %s %s\n",
                        name, help, name, type);
}


/* the series seen so far: a handler's class that never occurred is left */

static u_char *
ngx_http_darkroom_metrics_requests(u_char *p, u_char *last,
    ngx_http_darkroom_metrics_sh_t *sh)
{
    ngx_uint_t         h, c;
    ngx_atomic_uint_t  v;

    p = ngx_http_darkroom_metrics_family(p, last, "darkroom_requests_total",
            "counter", "Requests answered by darkroom locations, by "
            "handler and status class.");

    for (h = 1; h < NGX_HTTP_DARKROOM_H_N; h++) {
        for (c = 0; c < NGX_HTTP_DARKROOM_METRICS_CLASSES; c++) {
            v = sh->requests[h][c];

            if (v) {
                p = ngx_slprintf(p, last, "darkroom_requests_total"
                                 "{handler=\"%s\",class=\"%s\"} %uA\n",
                                 ngx_http_darkroom_metrics_handlers[h],
                                 ngx_http_darkroom_metrics_classes[c], v);
            }
        }
    }

    return p;
}


static u_char *
ngx_http_darkroom_metrics_core(u_char *p, u_char *last,
    ngx_http_darkroom_metrics_sh_t *sh)
{
    ngx_atomic_t                        *v;
    ngx_http_darkroom_metrics_counter_t  *c;

    for (c = ngx_http_darkroom_metrics_counters; c->name; c++) {
        v = (ngx_atomic_t *) ((u_char *) sh + c->offset);

        p = ngx_http_darkroom_metrics_family(p, last, c->name, "counter",
                                             c->help);
        p = ngx_slprintf(p, last, "%s %uA\n", c->name, *v);
    }

    p = ngx_http_darkroom_metrics_histogram(p, last,
            "darkroom_task_wait_seconds",
            "Time a request task waited in the thread pool's queue.",
            &sh->task_wait);

    p = ngx_http_darkroom_metrics_histogram(p, last,
            "darkroom_task_run_seconds",
            "Time a request task ran in a pool thread.", &sh->task_run);

    return ngx_http_darkroom_metrics_histogram(p, last,
            "darkroom_db_statement_seconds",
            "Time of a PostgreSQL statement, sent to last result.",
            &sh->db_statement);
}


static u_char *
ngx_http_darkroom_metrics_shop(u_char *p, u_char *last,
    ngx_http_darkroom_metrics_sh_t *sh)
{
    ngx_uint_t  i;

    p = ngx_http_darkroom_metrics_family(p, last,
            "darkroom_stripe_webhooks_total", "counter",
            "Stripe webhook deliveries by outcome.");

    for (i = 0; i < NGX_HTTP_DARKROOM_WH_N; i++) {
        p = ngx_slprintf(p, last,
                         "darkroom_stripe_webhooks_total{outcome=\"%s\"} "
                         "%uA\n", ngx_http_darkroom_metrics_webhooks[i],
                         sh->webhooks[i]);
    }

    return p;
}


static u_char *
ngx_http_darkroom_metrics_named(u_char *p, u_char *last,
    ngx_http_darkroom_metrics_sh_t *sh)
{
    p = ngx_http_darkroom_metrics_by_name(p, last, sh,
            NGX_HTTP_DARKROOM_NAMES_JOB_KIND, "darkroom_job_runs_total",
            "Background job runs by kind and outcome.", "kind",
            &sh->jobs[0][0], NGX_HTTP_DARKROOM_METRICS_JOB_OUTCOMES,
            ngx_http_darkroom_metrics_job_outcomes);

    p = ngx_http_darkroom_metrics_by_name(p, last, sh,
            NGX_HTTP_DARKROOM_NAMES_LIMIT_ZONE,
            "darkroom_limit_requests_total",
            "Requests checked by a darkroom_limit zone, by outcome.", "zone",
            &sh->limit[0][0], 2, ngx_http_darkroom_metrics_limit_outcomes);

    p = ngx_http_darkroom_metrics_by_name(p, last, sh,
            NGX_HTTP_DARKROOM_NAMES_MAIL_PROVIDER, "darkroom_emails_total",
            "Emails handed to a provider, by provider and outcome.",
            "provider", &sh->mail[0][0],
            NGX_HTTP_DARKROOM_METRICS_CALL_OUTCOMES,
            ngx_http_darkroom_metrics_call_outcomes);

    return ngx_http_darkroom_metrics_by_name(p, last, sh,
            NGX_HTTP_DARKROOM_NAMES_LAB, "darkroom_lab_calls_total",
            "Calls to print labs, by lab and outcome.", "lab",
            &sh->lab[0][0], NGX_HTTP_DARKROOM_METRICS_CALL_OUTCOMES,
            ngx_http_darkroom_metrics_call_outcomes);
}


/* the job queue's gauges, as the last refresh left them */

static u_char *
ngx_http_darkroom_metrics_queue(u_char *p, u_char *last,
    ngx_http_darkroom_metrics_sh_t *sh)
{
    ngx_http_darkroom_metrics_names_t  *names;

    names = &sh->names[NGX_HTTP_DARKROOM_NAMES_JOB_KIND];

    p = ngx_http_darkroom_metrics_family(p, last, "darkroom_jobs_due",
            "gauge", "Jobs due now and not leased, by kind.");
    p = ngx_http_darkroom_metrics_gauges(p, last, names, "darkroom_jobs_due",
                                         sh->jobs_due, 0);

    p = ngx_http_darkroom_metrics_family(p, last,
            "darkroom_jobs_oldest_due_seconds", "gauge",
            "How long the oldest due job of a kind has been due.");
    p = ngx_http_darkroom_metrics_gauges(p, last, names,
                                         "darkroom_jobs_oldest_due_seconds",
                                         sh->jobs_oldest_ms, 1);

    p = ngx_http_darkroom_metrics_family(p, last, "darkroom_jobs_dead",
            "gauge", "Dead jobs (gave up) by kind.");
    p = ngx_http_darkroom_metrics_gauges(p, last, names, "darkroom_jobs_dead",
                                         sh->jobs_dead, 0);

    p = ngx_http_darkroom_metrics_family(p, last,
            "darkroom_jobs_refreshed_timestamp_seconds", "gauge",
            "When the job queue gauges were last read (0: never).");

    p = ngx_slprintf(p, last,
                     "darkroom_jobs_refreshed_timestamp_seconds %uA\n",
                     sh->jobs_refreshed);

    p = ngx_http_darkroom_metrics_lab_states(p, last, sh);

    p = ngx_http_darkroom_metrics_family(p, last,
            "darkroom_gallery_revocations", "gauge",
            "Galleries in the revocation list signed links are checked "
            "against.");
    p = ngx_slprintf(p, last, "darkroom_gallery_revocations %uA\n",
                     sh->revocations);

    p = ngx_http_darkroom_metrics_family(p, last,
            "darkroom_gallery_revocations_refreshed_timestamp_seconds",
            "gauge", "When the revocation list was last loaded (0: never).");

    return ngx_slprintf(p, last,
                "darkroom_gallery_revocations_refreshed_timestamp_seconds "
                "%uA\n", sh->revocations_at);
}


static u_char *
ngx_http_darkroom_metrics_gauges(u_char *p, u_char *last,
    ngx_http_darkroom_metrics_names_t *names, const char *metric,
    ngx_atomic_t *values, ngx_uint_t ms)
{
    ngx_uint_t         i, n;
    ngx_atomic_uint_t  v;

    n = names->n;

    for (i = 0; i < n; i++) {
        v = values[i];

        p = ngx_slprintf(p, last, "%s{kind=\"", metric);
        p = ngx_http_darkroom_metrics_label(p, last, names->name[i]);

        p = ms ? ngx_slprintf(p, last, "\"} %uA.%03uA\n", v / 1000, v % 1000)
               : ngx_slprintf(p, last, "\"} %uA\n", v);
    }

    return p;
}


/* a histogram with cumulative buckets; the count is the +Inf bucket's */

static u_char *
ngx_http_darkroom_metrics_histogram(u_char *p, u_char *last,
    const char *name, const char *help, ngx_http_darkroom_histogram_t *h)
{
    p = ngx_http_darkroom_metrics_family(p, last, name, "histogram", help);

    return ngx_http_darkroom_metrics_series(p, last, name, NULL, h);
}


/* one histogram's series, for the lab named (NULL: no label) */

static u_char *
ngx_http_darkroom_metrics_series(u_char *p, u_char *last, const char *name,
    const char *lab, ngx_http_darkroom_histogram_t *h)
{
    uint64_t    sum;
    ngx_uint_t  i, total;
    u_char      labels[NGX_HTTP_DARKROOM_METRICS_NAME_LEN * 2 + 16], *l;

    l = labels;

    if (lab) {
        l = ngx_cpymem(l, "lab=\"", 5);
        l = ngx_http_darkroom_metrics_label(l, labels + sizeof(labels) - 3,
                                            lab);
        l = ngx_cpymem(l, "\",", 2);
    }

    total = 0;

    for (i = 0; i <= NGX_HTTP_DARKROOM_METRICS_BUCKETS; i++) {
        total += h->count[i];
        p = ngx_slprintf(p, last, "%s_bucket{%*sle=\"%s\"} %ui\n",
                         name, (size_t) (l - labels), labels,
                         ngx_http_darkroom_metrics_le[i], total);
    }

    sum = h->sum_us;

    if (lab) {
        l[-1] = '}';
        return ngx_slprintf(p, last,
                            "%s_sum{%*s %uL.%06uL\n%s_count{%*s %ui\n",
                            name, (size_t) (l - labels), labels,
                            sum / 1000000, sum % 1000000,
                            name, (size_t) (l - labels), labels, total);
    }

    return ngx_slprintf(p, last, "%s_sum %uL.%06uL\n%s_count %ui\n",
                        name, sum / 1000000, sum % 1000000, name, total);
}


/* lab orders by lab and state: the names are "lab:state" */

static u_char *
ngx_http_darkroom_metrics_lab_states(u_char *p, u_char *last,
    ngx_http_darkroom_metrics_sh_t *sh)
{
    char                               *colon;
    ngx_uint_t                          i, n;
    ngx_http_darkroom_metrics_names_t  *names;
    char            name[NGX_HTTP_DARKROOM_METRICS_NAME_LEN];

    p = ngx_http_darkroom_metrics_family(p, last, "darkroom_lab_orders",
            "gauge", "Lab orders by lab and state, as the job queue's "
            "timer last read them.");

    names = &sh->names[NGX_HTTP_DARKROOM_NAMES_LAB_STATE];
    n = names->n;

    for (i = 0; i < n; i++) {

        /* a copy: the shared name is read by others meanwhile */
        ngx_cpystrn((u_char *) name, (u_char *) names->name[i],
                    sizeof(name));
        colon = ngx_strchr(name, ':');

        if (colon == NULL) {
            continue;
        }

        *colon = '\0';
        p = ngx_slprintf(p, last, "darkroom_lab_orders{lab=\"");
        p = ngx_http_darkroom_metrics_label(p, last, name);
        p = ngx_slprintf(p, last, "\",state=\"");
        p = ngx_http_darkroom_metrics_label(p, last, colon + 1);
        p = ngx_slprintf(p, last, "\"} %uA\n", sh->lab_orders[i]);
    }

    return p;
}


/* the time of lab calls, by lab */

static u_char *
ngx_http_darkroom_metrics_labs(u_char *p, u_char *last,
    ngx_http_darkroom_metrics_sh_t *sh)
{
    ngx_uint_t                          i, n;
    ngx_http_darkroom_metrics_names_t  *names;

    p = ngx_http_darkroom_metrics_family(p, last, "darkroom_lab_call_seconds",
            "histogram", "Time of a call to a print lab, by lab.");

    names = &sh->names[NGX_HTTP_DARKROOM_NAMES_LAB];
    n = names->n;

    for (i = 0; i < n; i++) {
        p = ngx_http_darkroom_metrics_series(p, last,
                                             "darkroom_lab_call_seconds",
                                             names->name[i], &sh->lab_time[i]);
    }

    return p;
}


/* a counter family by the claimed names of a dimension, and "other" */

static u_char *
ngx_http_darkroom_metrics_by_name(u_char *p, u_char *last,
    ngx_http_darkroom_metrics_sh_t *sh, ngx_uint_t dim, const char *metric,
    const char *help, const char *label, ngx_atomic_t *counts,
    ngx_uint_t width, const char **outcomes)
{
    ngx_uint_t                          i, o, n, other;
    ngx_atomic_t                       *c;
    ngx_http_darkroom_metrics_names_t  *names;

    p = ngx_http_darkroom_metrics_family(p, last, metric, "counter", help);

    names = &sh->names[dim];
    n = names->n;
    other = NGX_HTTP_DARKROOM_METRICS_NAMES - 1;

    for (i = 0; i <= other; i++) {

        if (i >= n && i != other) {
            continue;
        }

        c = counts + i * width;

        for (o = 0; o < width; o++) {
            if (i == other && c[o] == 0) {
                continue;
            }

            p = ngx_slprintf(p, last, "%s{%s=\"", metric, label);
            p = ngx_http_darkroom_metrics_label(p, last, i == other
                                                ? "other" : names->name[i]);
            p = ngx_slprintf(p, last, "\",outcome=\"%s\"} %uA\n",
                             outcomes[o], c[o]);
        }
    }

    return p;
}


/* a label value escaped as the format wants: backslash, quote, newline */

static u_char *
ngx_http_darkroom_metrics_label(u_char *p, u_char *last, const char *value)
{
    for ( /* void */ ; *value && p + 2 < last; value++) {

        if (*value == '\\' || *value == '"') {
            *p++ = '\\';
            *p++ = *value;

        } else if (*value == '\n') {
            *p++ = '\\';
            *p++ = 'n';

        } else {
            *p++ = *value;
        }
    }

    return p;
}
