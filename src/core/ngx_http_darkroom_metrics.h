
/*
 * darkroom: Prometheus metrics (ngx_http_darkroom_metrics.c).
 *
 * A fixed, compile-time table of counters and histograms in one shared
 * memory zone, made at configuration time, so every worker's counts add
 * up and survive a reload.  Updates are ngx_atomic_fetch_add() on plain
 * memory: no allocation, no logging, safe in pool threads.  Labels are
 * bounded: an enum here, or a name from the configuration (a job kind, a
 * limit zone, a mail provider, a lab) claimed once in a table of at most
 * NGX_HTTP_DARKROOM_METRICS_NAMES; more names count as "other".
 * The darkroom_metrics handler writes the Prometheus text format 0.0.4.
 */


#ifndef _NGX_HTTP_DARKROOM_METRICS_H_INCLUDED_
#define _NGX_HTTP_DARKROOM_METRICS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <time.h>


/* the darkroom handler that answered a request (darkroom_requests_total) */

typedef enum {
    NGX_HTTP_DARKROOM_H_NONE = 0,              /* not a darkroom location */
    NGX_HTTP_DARKROOM_H_CATALOGUE,
    NGX_HTTP_DARKROOM_H_CHECKOUT,
    NGX_HTTP_DARKROOM_H_CART_QUOTE,
    NGX_HTTP_DARKROOM_H_ORDER_STATUS,
    NGX_HTTP_DARKROOM_H_STRIPE_WEBHOOK,
    NGX_HTTP_DARKROOM_H_ADMIN,
    NGX_HTTP_DARKROOM_H_LAB_WEBHOOK,
    NGX_HTTP_DARKROOM_H_LAB_ADMIN,
    NGX_HTTP_DARKROOM_H_GALLERY,
    NGX_HTTP_DARKROOM_H_GALLERY_ADMIN,
    NGX_HTTP_DARKROOM_H_DOWNLOAD,
    NGX_HTTP_DARKROOM_H_CONSOLE,
    NGX_HTTP_DARKROOM_H_BOOKINGS,
    NGX_HTTP_DARKROOM_H_BOOKINGS_ADMIN,
    NGX_HTTP_DARKROOM_H_BOOKINGS_FEED,
    NGX_HTTP_DARKROOM_H_HEALTH,
    NGX_HTTP_DARKROOM_H_METRICS,
    NGX_HTTP_DARKROOM_H_OTHER,                 /* a handler not listed */
    NGX_HTTP_DARKROOM_H_N
} ngx_http_darkroom_metrics_handler_e;

/* status classes: 1xx .. 5xx, and "none" (no status: the client left) */
#define NGX_HTTP_DARKROOM_METRICS_CLASSES   6


/* Stripe webhook outcomes (darkroom_stripe_webhooks_total) */

typedef enum {
    NGX_HTTP_DARKROOM_WH_APPLIED = 0,
    NGX_HTTP_DARKROOM_WH_DUPLICATE,
    NGX_HTTP_DARKROOM_WH_IGNORED,
    NGX_HTTP_DARKROOM_WH_BAD_SIGNATURE,
    NGX_HTTP_DARKROOM_WH_STALE,
    NGX_HTTP_DARKROOM_WH_REFUSED,
    NGX_HTTP_DARKROOM_WH_ERROR,
    NGX_HTTP_DARKROOM_WH_N
} ngx_http_darkroom_metrics_webhook_e;


/* job outcomes: done, error (retried), dead, again (not yet) */
#define NGX_HTTP_DARKROOM_METRICS_JOB_OUTCOMES  4

/* the outcomes of a call (mail, lab): ok, error */
#define NGX_HTTP_DARKROOM_METRICS_CALL_OUTCOMES 2

/* the dimensions whose label values are names from the configuration */

typedef enum {
    NGX_HTTP_DARKROOM_NAMES_JOB_KIND = 0,
    NGX_HTTP_DARKROOM_NAMES_LIMIT_ZONE,
    NGX_HTTP_DARKROOM_NAMES_MAIL_PROVIDER,
    NGX_HTTP_DARKROOM_NAMES_LAB,
    NGX_HTTP_DARKROOM_NAMES_LAB_STATE,          /* "lab:state" */
    NGX_HTTP_DARKROOM_NAMES_WEBHOOK,            /* alerts: an endpoint */
    NGX_HTTP_DARKROOM_NAMES_N
} ngx_http_darkroom_metrics_names_e;

/* slots per dimension; the last one is "other" */
#define NGX_HTTP_DARKROOM_METRICS_NAMES     32
#define NGX_HTTP_DARKROOM_METRICS_NAME_LEN  48


/*
 * Histogram buckets, microseconds (exposed in seconds); one more count
 * for +Inf.  Counts are per bucket, made cumulative when written out.
 */

#define NGX_HTTP_DARKROOM_METRICS_BUCKETS   14

typedef struct {
    ngx_atomic_t                 count[NGX_HTTP_DARKROOM_METRICS_BUCKETS + 1];
    ngx_atomic_t                 sum_us;
} ngx_http_darkroom_histogram_t;


typedef struct {
    ngx_atomic_t                 lock;
    ngx_atomic_t                 n;            /* slots claimed */
    char                         name[NGX_HTTP_DARKROOM_METRICS_NAMES]
                                     [NGX_HTTP_DARKROOM_METRICS_NAME_LEN];
} ngx_http_darkroom_metrics_names_t;


/* the shared memory: one instance, every worker and thread adds to it */

typedef struct {
    ngx_atomic_t                 requests[NGX_HTTP_DARKROOM_H_N]
                                     [NGX_HTTP_DARKROOM_METRICS_CLASSES];

    ngx_atomic_t                 tasks_posted;
    ngx_atomic_t                 tasks_queue_full;
    ngx_http_darkroom_histogram_t  task_wait;
    ngx_http_darkroom_histogram_t  task_run;

    ngx_http_darkroom_histogram_t  db_statement;
    ngx_atomic_t                 db_connect_failures;
    ngx_atomic_t                 db_unavailable;  /* 503s answered */

    ngx_atomic_t                 webhooks[NGX_HTTP_DARKROOM_WH_N];
    ngx_atomic_t                 checkouts;

    ngx_atomic_t                 jobs[NGX_HTTP_DARKROOM_METRICS_NAMES]
                                     [NGX_HTTP_DARKROOM_METRICS_JOB_OUTCOMES];
    ngx_atomic_t                 limit[NGX_HTTP_DARKROOM_METRICS_NAMES][2];
    ngx_atomic_t                 mail[NGX_HTTP_DARKROOM_METRICS_NAMES]
                                     [NGX_HTTP_DARKROOM_METRICS_CALL_OUTCOMES];
    ngx_atomic_t                 lab[NGX_HTTP_DARKROOM_METRICS_NAMES]
                                     [NGX_HTTP_DARKROOM_METRICS_CALL_OUTCOMES];
    ngx_http_darkroom_histogram_t  lab_time[NGX_HTTP_DARKROOM_METRICS_NAMES];

    ngx_atomic_t                 media_links;     /* signed links let in */
    ngx_atomic_t                 downloads;       /* darkroom_download 2xx */
    ngx_atomic_t                 download_bytes;
    ngx_atomic_t                 gallery_zips;    /* darkroom_gallery ZIPs */
    ngx_atomic_t                 gallery_zip_bytes;
    ngx_atomic_t                 revocations;     /* the list's entries */
    ngx_atomic_t                 revocations_at;  /* unix time, 0: never */

    /* gauges of the job queue by kind, refreshed by one worker's timer */
    ngx_atomic_t                 jobs_due[NGX_HTTP_DARKROOM_METRICS_NAMES];
    ngx_atomic_t                 jobs_oldest_ms
                                     [NGX_HTTP_DARKROOM_METRICS_NAMES];
    ngx_atomic_t                 jobs_dead[NGX_HTTP_DARKROOM_METRICS_NAMES];
    ngx_atomic_t                 jobs_refreshed;  /* unix time, 0: never */
    ngx_atomic_t                 lab_orders[NGX_HTTP_DARKROOM_METRICS_NAMES];

    ngx_http_darkroom_metrics_names_t  names[NGX_HTTP_DARKROOM_NAMES_N];

    /*
     * The owner's alerts (ngx_http_darkroom_alerts.c), of this node: what
     * PostgreSQL's outage cannot be kept in, and webhook signatures.
     * db_down_since: unix time of the first failed connection since the
     * last success, 0 while it answers; db_down_told: this outage's email
     * went (or is going); db_recovered: the seconds of a told outage that
     * ended, its note not yet queued; db_told_at: the last such email.
     */
    ngx_atomic_t                 db_down_since;
    ngx_atomic_t                 db_down_told;
    ngx_atomic_t                 db_recovered;
    ngx_atomic_t                 db_told_at;

    /* per endpoint: bad signatures in a row (none good between, no gap
     * over the window), the unix time of the last one */
    ngx_atomic_t                 sig_bad[NGX_HTTP_DARKROOM_METRICS_NAMES];
    ngx_atomic_t                 sig_last[NGX_HTTP_DARKROOM_METRICS_NAMES];
    ngx_atomic_t                 sig_first[NGX_HTTP_DARKROOM_METRICS_NAMES];
} ngx_http_darkroom_metrics_sh_t;


/* darkroom_alerts and its settings (seconds) */

typedef struct {
    ngx_flag_t                   enable;
    time_t                       cooldown;
    time_t                       db_down;
    ngx_uint_t                   sig_count;
    time_t                       sig_window;
} ngx_http_darkroom_alerts_conf_t;


/* one check, in a pool thread: what it did, logged on the event loop */

#define NGX_HTTP_DARKROOM_ALERTS_NOTE_LEN  512

typedef struct {
    ngx_http_darkroom_alerts_conf_t  *conf;
    ngx_uint_t                   level;     /* of the note; 0: none */
    char                         note[NGX_HTTP_DARKROOM_ALERTS_NOTE_LEN];
} ngx_http_darkroom_alerts_run_t;


/*
 * Set by the mail module (thread side): sends subject and text to the
 * shop's alert address through the configured provider, at once, without
 * PostgreSQL; key is the message's Idempotency-Key.  NULL: no mail.
 */

typedef ngx_int_t (*ngx_http_darkroom_alert_mail_pt)(const char *subject,
    const char *text, const char *key, ngx_msec_t timeout, char *reason,
    size_t size);

extern ngx_http_darkroom_alert_mail_pt  ngx_http_darkroom_alert_mail;


typedef struct {
    ngx_msec_t                   jobs_interval;  /* the queue's refresh */
    ngx_http_darkroom_alerts_conf_t  alerts;
} ngx_http_darkroom_metrics_main_conf_t;

extern ngx_module_t  ngx_http_darkroom_metrics_module;


/* NULL until the zone is made (and in a build without http{}) */
extern ngx_http_darkroom_metrics_sh_t  *ngx_http_darkroom_metrics;


ngx_uint_t ngx_http_darkroom_metrics_name(ngx_uint_t dim, const u_char *name,
    size_t len);
void ngx_http_darkroom_metrics_observe(ngx_http_darkroom_histogram_t *h,
    uint64_t us);
void ngx_http_darkroom_metrics_location(ngx_conf_t *cf, ngx_str_t *directive);
const char *ngx_http_darkroom_metrics_webhook_result(const char *result);
void ngx_http_darkroom_metrics_job(const char *kind, ngx_int_t rc);
void ngx_http_darkroom_metrics_lab(const char *lab, ngx_uint_t failed,
    uint64_t start);
void ngx_http_darkroom_metrics_revocations(ngx_uint_t n);
ngx_int_t ngx_http_darkroom_metrics_jobs_start(ngx_cycle_t *cycle,
    ngx_http_darkroom_metrics_main_conf_t *mmcf);

/* the owner's alerts (ngx_http_darkroom_alerts.c) */
void ngx_http_darkroom_alerts_db(ngx_uint_t up);
void ngx_http_darkroom_alerts_signature(const char *endpoint,
    ngx_uint_t good);
char *ngx_http_darkroom_alerts_signatures(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
void ngx_http_darkroom_alerts_init_conf(ngx_http_darkroom_alerts_conf_t *ac);


/* a counter field of the shared memory, plus n */

#define ngx_http_darkroom_metric_add(field, n)                               \
    do {                                                                     \
        if (ngx_http_darkroom_metrics) {                                     \
            (void) ngx_atomic_fetch_add(&ngx_http_darkroom_metrics->field,   \
                                        (ngx_atomic_int_t) (n));             \
        }                                                                    \
    } while (0)

#define ngx_http_darkroom_metric_inc(field)                                  \
    ngx_http_darkroom_metric_add(field, 1)

/* a named dimension's counter: e.g. limit zone "login", outcome 1 */

#define ngx_http_darkroom_metric_named(field, dim, name, len, outcome)       \
    do {                                                                     \
        if (ngx_http_darkroom_metrics) {                                     \
            (void) ngx_atomic_fetch_add(&ngx_http_darkroom_metrics->field    \
                [ngx_http_darkroom_metrics_name(dim, (u_char *) (name),      \
                                                len)][outcome], 1);          \
        }                                                                    \
    } while (0)


/* a monotonic clock in microseconds, for the histograms (thread-safe) */

static ngx_inline uint64_t
ngx_http_darkroom_metrics_now(void)
{
    struct timespec  ts;

    (void) clock_gettime(CLOCK_MONOTONIC, &ts);

    return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

/* observes us microseconds in histogram field */

#define ngx_http_darkroom_metric_observe(field, us)                          \
    do {                                                                     \
        if (ngx_http_darkroom_metrics) {                                     \
            ngx_http_darkroom_metrics_observe(                               \
                &ngx_http_darkroom_metrics->field, (us));                    \
        }                                                                    \
    } while (0)

/* observes the time since start (from _now()) in histogram field */

#define ngx_http_darkroom_metric_since(field, start)                         \
    ngx_http_darkroom_metric_observe(field,                                  \
                                     ngx_http_darkroom_metrics_now() - (start))


#endif /* _NGX_HTTP_DARKROOM_METRICS_H_INCLUDED_ */
