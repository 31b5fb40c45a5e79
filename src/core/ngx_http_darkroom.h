
/*
 * darkroom: a photographer's shop, galleries and print fulfilment in nginx.
 *
 * Shared types and the small internal APIs every area of the module uses:
 * the thread task layer (park a request, run work in a thread pool, resume),
 * the per-thread Postgres connection, the libcurl client, background jobs
 * and the uniform JSON replies.
 */


#ifndef _NGX_HTTP_DARKROOM_H_INCLUDED_
#define _NGX_HTTP_DARKROOM_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <ngx_thread_pool.h>

#include <libpq-fe.h>
#include <cJSON.h>

#include "ngx_http_darkroom_metrics.h"


#define NGX_HTTP_DARKROOM_VERSION        "0.1.0"

#define NGX_HTTP_DARKROOM_RETRY_AFTER    5
#define NGX_HTTP_DARKROOM_FETCH_MAX      (1024 * 1024)

/*
 * the largest body a task reads into memory (a JSON document): more is
 * 413 too_large, whatever client_max_body_size allows; an upload's body
 * (ngx_http_darkroom_task_start_file) stays in its file and has no cap
 */
#define NGX_HTTP_DARKROOM_BODY_MAX       (1024 * 1024)

/* the largest secret or key file read at configuration */
#define NGX_HTTP_DARKROOM_FILE_MAX       (64 * 1024)

/* the sizes of an error's parts, and of a thread's trace */
#define NGX_HTTP_DARKROOM_CODE_LEN       40
#define NGX_HTTP_DARKROOM_EVENT_LEN      256  /* a Stripe event id */
#define NGX_HTTP_DARKROOM_REQUEST_ID_LEN 33   /* $request_id: 32 hex */
#define NGX_HTTP_DARKROOM_MESSAGE_LEN    200
#define NGX_HTTP_DARKROOM_DETAIL_LEN     400
#define NGX_HTTP_DARKROOM_TRACE_LEN      2048

/* a status token in hex (128 bits), a SHA-256 in hex; add 1 for the NUL */
#define NGX_HTTP_DARKROOM_TOKEN_LEN      32
#define NGX_HTTP_DARKROOM_SHA256_HEX_LEN 64
#define NGX_HTTP_DARKROOM_TOKEN_SIZE     (NGX_HTTP_DARKROOM_TOKEN_LEN + 1)
#define NGX_HTTP_DARKROOM_HASH_SIZE      (NGX_HTTP_DARKROOM_SHA256_HEX_LEN + 1)


/*
 * An error made inside a thread, handed back to the event loop: the client
 * sees status, code and message; the detail goes to the error log only.
 */

typedef struct {
    ngx_uint_t                   status;
    ngx_uint_t                   retry_after;
    char                         sqlstate[6];
    char                         code[NGX_HTTP_DARKROOM_CODE_LEN];
    char                         message[NGX_HTTP_DARKROOM_MESSAGE_LEN];
    char                         detail[NGX_HTTP_DARKROOM_DETAIL_LEN];
    ngx_uint_t                   provider_status;  /* 0: no answer */
} ngx_http_darkroom_error_t;


/*
 * What a thread did, for a debug log (NGX_DEBUG builds only): entries
 * (NUL-terminated, one after another) that the thread appends with
 * ngx_http_darkroom_trace() and the event loop logs at debug level once
 * the work is done.  Plain memory: the thread neither logs nor allocates.
 * Never a secret in it: no header values, no bodies.
 */

typedef struct {
    size_t                       len;
    ngx_uint_t                   dropped;      /* entries that did not fit */
    uint64_t                     posted;       /* monotonic ms */
    uint64_t                     started;
    uint64_t                     ended;
    char                         text[NGX_HTTP_DARKROOM_TRACE_LEN];
} ngx_http_darkroom_trace_t;


typedef struct {
    u_char                      *file;
    ngx_uint_t                   line;
} ngx_http_darkroom_use_t;


/*
 * A keyring: "kid:key" lines read from a file named in the configuration.
 * The first key signs, every key verifies, so a new key is added beside
 * the old one and nginx reloaded: rotation without a window.  Media,
 * galleries and labs sign and check links with it.
 */

typedef struct {
    ngx_str_t                    kid;
    ngx_str_t                    key;
} ngx_http_darkroom_key_t;

typedef struct {
    ngx_str_t                    file;
    ngx_array_t                  keys;         /* key_t, the first signs */
} ngx_http_darkroom_keyring_t;


typedef struct {
    ngx_flag_t                   json_errors;  /* a darkroom endpoint */
    ngx_http_darkroom_keyring_t *link_keys;    /* darkroom_media_keys */
} ngx_http_darkroom_loc_conf_t;


/*
 * A lifetime of signed links some feature makes: the media module refuses
 * to start when links would outlive what every location accepts.
 */

typedef struct {
    const char                  *directive;
    time_t                       ttl;
    const char                  *consequence;
    u_char                      *file;         /* NULL: the main context */
    ngx_uint_t                   line;
} ngx_http_darkroom_link_ttl_t;


/* where a signed link carrying g=<id>.<gen> is checked and logged */

typedef ngx_int_t (*ngx_http_darkroom_link_check_pt)(ngx_http_request_t *r,
    ngx_str_t *g);
typedef void (*ngx_http_darkroom_link_log_pt)(ngx_http_request_t *r,
    ngx_str_t *g, ngx_str_t *path, ngx_uint_t status, off_t bytes);


/*
 * A gallery's cart handed to the shop (issue 14): once the gallery's
 * thread has let the visitor in, the gallery's done() calls it to start
 * the shop's quote (quote = 1) or checkout on the same request, for the
 * gallery (id in decimal) in currency (the gallery's, NULL: the shop's);
 * Stripe's Cancel returns to cancel_url (NULL: the shop's).  Returns what
 * to finalize the request with.
 */

typedef ngx_int_t (*ngx_http_darkroom_gallery_sale_pt)(ngx_http_request_t *r,
    const char *gallery, const char *currency, ngx_str_t *cancel_url,
    ngx_uint_t quote);


/* a check /health runs: a SQL function answering one JSON value */

typedef struct {
    const char                  *name;         /* member of the answer */
    const char                  *function;     /* "lab_health_json" */
} ngx_http_darkroom_health_check_t;


/* darkroom_jobs_kind_concurrency: a kind's cap of runners per worker */

typedef struct {
    ngx_str_t                    kind;
    ngx_uint_t                   n;
    u_char                      *file;
    ngx_uint_t                   line;
} ngx_http_darkroom_kind_cap_t;


typedef struct ngx_http_darkroom_public_conf_s
    ngx_http_darkroom_public_conf_t;

typedef struct {
    ngx_str_t                    conninfo;     /* NUL-terminated */
    ngx_str_t                    pool_name;
    ngx_thread_pool_t           *pool;
    ngx_msec_t                   db_timeout;
    ngx_msec_t                   fetch_timeout;

    ngx_flag_t                   jobs;
    ngx_msec_t                   jobs_interval;
    ngx_msec_t                   jobs_lease;
    ngx_msec_t                   jobs_backoff;
    ngx_msec_t                   jobs_backoff_max;
    ngx_uint_t                   jobs_batch;
    ngx_uint_t                   jobs_concurrency;
    ngx_array_t                 *jobs_kind_caps;   /* kind_cap_t */

    ngx_array_t                 *admin_tokens;

    /* console sessions (darkroom_console_session_idle, _max) */
    ngx_msec_t                   session_idle;
    ngx_msec_t                   session_max;

    /* darkroom_order_keys: the status tokens of orders (NULL: none) */
    ngx_http_darkroom_keyring_t *order_keys;

    ngx_array_t                 *job_kinds;    /* registered job kinds */
    ngx_array_t                  keyrings;     /* keyring_t *, read once */
    ngx_array_t                  link_ttls;    /* link_ttl_t */
    ngx_array_t                  health_checks; /* health_check_t */

    /* digital delivery: the download link signer (_download.c) */
    ngx_str_t                    download_url;  /* base, no trailing / */
    size_t                       download_origin; /* where its path starts */
    ngx_http_darkroom_keyring_t *download_keys; /* the first signs */
    time_t                       download_ttl;
    ngx_int_t                    download_limit;

    /* darkroom_currency, set by the shop: galleries sell in it too */
    ngx_str_t                    shop_currency;

    /* darkroom_public_cache (NULL: none) and the answers it may hold */
    ngx_http_darkroom_public_conf_t *public_cache;
    ngx_array_t                  public_sources; /* public_source_t * */

    /* darkroom_retention: the purge job's interval (0: off) */
    ngx_msec_t                   retention;

    /* where a directive that needs the database was first used */
    u_char                      *db_user_file;
    ngx_uint_t                   db_user_line;
    ngx_str_t                    db_user;
} ngx_http_darkroom_main_conf_t;


/* what a thread needs to reach Postgres; plain memory, read-only there */

typedef struct {
    const char                  *conninfo;
    ngx_msec_t                   timeout;
    uint64_t                     deadline;     /* monotonic ms, 0 = none */
} ngx_http_darkroom_db_t;


typedef struct ngx_http_darkroom_task_s  ngx_http_darkroom_task_t;


/*
 * An order written by another area (a booking's deposit, issue 16)
 * checked out through the shop, in a pool thread: the Stripe Checkout
 * Session of the pending order (id in decimal) is made and attached as
 * the shop's own checkout does (same idempotency key, same webhook);
 * token is the order's status token for the shop's success and cancel
 * URLs.  NGX_OK: *url (malloc'd) is the payment page; else err is set.
 */

typedef ngx_int_t (*ngx_http_darkroom_order_checkout_pt)(
    ngx_http_darkroom_task_t *t, const char *order, const char *token,
    char **url);


/*
 * The credential of an admin request (ngx_http_darkroom_auth.c): recorded
 * by ngx_http_darkroom_admin_auth() on the event loop, checked in the
 * task's thread before the area's work, which then writes the audit row.
 */

#define NGX_HTTP_DARKROOM_AUTH_TOKEN    1    /* darkroom_admin_token_file */
#define NGX_HTTP_DARKROOM_AUTH_KEY      2    /* drk_<id>_<secret> */
#define NGX_HTTP_DARKROOM_AUTH_SESSION  3    /* cookie darkroom_admin */

typedef struct {
    ngx_uint_t                   kind;
    const char                  *scope;        /* read write refunds owner */
    char                        *csrf;         /* X-CSRF-Token or NULL */
    char                        *path;         /* the URI */
    char                         method[16];
    char                         ip[NGX_SOCKADDR_STRLEN + 1];
    char                         key[24];      /* an API key's id */
    char                         hash[65];     /* SHA-256 hex of the secret */
    ngx_uint_t                   idle;         /* seconds */
    ngx_uint_t                   max;

    /* who it is, set in the thread */
    int64_t                      account;      /* 0: none */
    int64_t                      key_id;
    int64_t                      session;
    char                         actor[256];
    char                         role[8];

    unsigned                     csrf_missing:1;
} ngx_http_darkroom_auth_t;

/* runs on the event loop after the body is read: NGX_OK posts the work */
typedef ngx_int_t (*ngx_http_darkroom_prepare_pt)(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t);
/* runs in a pool thread: no nginx pools, no nginx logging */
typedef void (*ngx_http_darkroom_work_pt)(ngx_http_darkroom_task_t *t);
/* runs on the event loop when the work is done: returns what to finalize */
typedef ngx_int_t (*ngx_http_darkroom_done_pt)(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t);


struct ngx_http_darkroom_task_s {
    void                        *data;         /* the area's own context */
    ngx_str_t                    body;         /* request body, contiguous */
    ngx_str_t                    body_file;    /* task_start_file: its name,
                                                  NUL-terminated, or empty */
    off_t                        body_size;    /* task_start_file: bytes */
    ngx_http_darkroom_db_t       db;
    ngx_msec_t                   fetch_timeout;
    ngx_http_darkroom_main_conf_t *conf;       /* read-only in threads */
    ngx_http_darkroom_error_t    err;          /* err.status: failed */
    ngx_http_darkroom_auth_t    *auth;         /* an admin request's */

    /* the answer work made when done is NULL: status and malloc'd JSON */
    ngx_uint_t                   status;
    char                        *out;
    size_t                       out_len;

    ngx_http_darkroom_prepare_pt prepare;
    ngx_http_darkroom_work_pt    work;
    ngx_http_darkroom_done_pt    done;
    ngx_http_request_t          *request;      /* event loop only */
    uint64_t                     posted;       /* metrics_now() at post */

    /* set by prepare: the area runs the work of many requests together
     * (the webhook's group commit) and calls _task_complete() for each */
    ngx_int_t                  (*post)(ngx_http_request_t *r,
                                       ngx_http_darkroom_task_t *t);

    /* $request_id, copied on the event loop at the post (empty: none);
     * writes: not GET or HEAD, so the task's jobs get it (db) */
    char                         request_id[NGX_HTTP_DARKROOM_REQUEST_ID_LEN];
    unsigned                     writes:1;

    /* what $darkroom_order, _stripe_event and _result log: set on the
     * event loop by ngx_http_darkroom_log_note() (ngx_http_darkroom_vars.c) */
    char                         log_order[32];
    char                         log_event[NGX_HTTP_DARKROOM_EVENT_LEN];
    char                         log_result[NGX_HTTP_DARKROOM_CODE_LEN];

#if (NGX_DEBUG)
    ngx_http_darkroom_trace_t   *trace;        /* NULL: no debug log */
#endif
};


/* an outgoing HTTP call made with libcurl inside a thread */

typedef struct {
    const char                  *method;       /* "GET", "POST", ... */
    const char                  *url;
    const char                 **headers;      /* NULL-terminated */
    const char                  *body;
    size_t                       body_len;
    ngx_msec_t                   timeout;

    /* the provider deduplicates it otherwise than by an Idempotency-Key
     * header (Prodigi's idempotencyKey in the body): a resend is harmless */
    unsigned                     resend_safe:1;
} ngx_http_darkroom_fetch_req_t;

typedef struct {
    long                         status;       /* 0: no HTTP answer */
    char                        *body;         /* malloc'd, NUL-terminated */
    size_t                       body_len;
    char                        *headers;      /* malloc'd raw header block */
    size_t                       headers_len;
} ngx_http_darkroom_fetch_resp_t;


/* a claimed background job, as its handler sees it (in a thread) */

typedef struct {
    int64_t                      id;
    const char                  *kind;
    cJSON                       *payload;
    ngx_uint_t                   attempts;     /* including this one */
    ngx_uint_t                   max_attempts;
    ngx_msec_t                   retry_after;  /* handler's hint, 0 = none */
    ngx_msec_t                   fetch_timeout;
    ngx_http_darkroom_db_t      *db;
    ngx_http_darkroom_main_conf_t *conf;       /* read-only */

    /* the $request_id of the request that queued it ("": none), also in
     * the error log lines of its outcome */
    const char                  *request_id;
} ngx_http_darkroom_job_t;

/*
 * NGX_OK: done; NGX_ERROR: transient, retried with backoff;
 * NGX_DECLINED: can never succeed, the job is marked dead at once;
 * NGX_AGAIN: not yet, run again after job->retry_after (not a failure).
 */
typedef ngx_int_t (*ngx_http_darkroom_job_pt)(ngx_http_darkroom_job_t *job,
    ngx_http_darkroom_error_t *err);

typedef struct {
    const char                  *kind;
    ngx_http_darkroom_job_pt     handler;
    ngx_uint_t                   recurring;    /* one row, always there */
} ngx_http_darkroom_job_kind_t;


extern ngx_module_t  ngx_http_darkroom_module;


/* module */
char *ngx_http_darkroom_needs_db(ngx_conf_t *cf, ngx_command_t *cmd);
ngx_http_darkroom_main_conf_t *ngx_http_darkroom_use(ngx_conf_t *cf,
    ngx_command_t *cmd, ngx_http_handler_pt handler,
    ngx_http_darkroom_use_t *use);
char *ngx_http_darkroom_require(ngx_conf_t *cf, ngx_http_darkroom_use_t *use,
    const char *feature, void *value, const char *directive);
char *ngx_http_darkroom_url(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_http_darkroom_base_url(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* secret */
ngx_int_t ngx_http_darkroom_file_read(ngx_conf_t *cf, ngx_pool_t *pool,
    ngx_str_t *name, size_t max, const char *what, ngx_str_t *text);
char *ngx_http_darkroom_secret_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_darkroom_secret_match(ngx_array_t *secrets,
    u_char *value, size_t len);

/* a path segment (an ngx_str_t) is the literal string s */
#define ngx_http_darkroom_is(p, s)                                           \
    ((p).len == sizeof(s) - 1 && ngx_strncmp((p).data, s, sizeof(s) - 1) == 0)

/* http: helpers for handlers on the event loop (ngx_http_darkroom_http.c) */
ngx_int_t ngx_http_darkroom_admin_auth(ngx_http_request_t *r);
ngx_int_t ngx_http_darkroom_admin_refuse(ngx_http_request_t *r);
void ngx_http_darkroom_admin_scope(ngx_http_request_t *r, const char *scope);
ngx_int_t ngx_http_darkroom_auth_check(ngx_http_darkroom_task_t *t);
void ngx_http_darkroom_auth_audit(ngx_http_darkroom_task_t *t);
ngx_int_t ngx_http_darkroom_random_b64(u_char *out, char *hash);
ngx_int_t ngx_http_darkroom_cookie(ngx_http_request_t *r, const char *name,
    ngx_str_t *value);
void ngx_http_darkroom_location_path(ngx_http_request_t *r,
    ngx_str_t *path);
ngx_int_t ngx_http_darkroom_path_split(ngx_http_request_t *r,
    ngx_str_t *seg, ngx_uint_t n);
char *ngx_http_darkroom_cstr(ngx_pool_t *pool, u_char *data, size_t len);
char *ngx_http_darkroom_query_arg(ngx_http_request_t *r, const char *name);
ngx_table_elt_t *ngx_http_darkroom_header_in(ngx_http_request_t *r,
    const char *name, size_t len);
ngx_int_t ngx_http_darkroom_token(u_char *token, u_char *hash);
ngx_int_t ngx_http_darkroom_sha256_hex(const u_char *data, size_t len,
    char *out);
char *ngx_http_darkroom_order_url(ngx_str_t *tpl, const char *token,
    const char *ref);

/* keyring (ngx_http_darkroom_keyring.c) */
ngx_http_darkroom_keyring_t *ngx_http_darkroom_keyring_read(ngx_conf_t *cf,
    ngx_str_t *name);
char *ngx_http_darkroom_keyring_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_http_darkroom_key_t *ngx_http_darkroom_keyring_find(
    ngx_http_darkroom_keyring_t *kr, u_char *kid, size_t len);
ngx_int_t ngx_http_darkroom_order_token(ngx_http_darkroom_keyring_t *kr,
    const char *kid, const char *seed, u_char *token, u_char *hash);
size_t ngx_http_darkroom_link_url(ngx_str_t *base, size_t origin,
    ngx_http_darkroom_key_t *key, u_char *path, size_t plen, int64_t exp,
    char *buf, size_t size);
ngx_int_t ngx_http_darkroom_link_key(ngx_http_request_t *r, ngx_str_t *kid,
    ngx_str_t *key);
ngx_int_t ngx_http_darkroom_link_ttl(ngx_conf_t *cf, const char *directive,
    time_t ttl, const char *consequence, u_char *file, ngx_uint_t line);

/* set by the gallery module; by default every link stands, none is logged */
extern ngx_http_darkroom_link_check_pt  ngx_http_darkroom_link_check;
extern ngx_http_darkroom_link_log_pt    ngx_http_darkroom_link_log;

/* the owner's alerts, in the metrics timer's thread (_alerts.c) */
void ngx_http_darkroom_alerts_run(ngx_http_darkroom_db_t *db,
    ngx_uint_t db_ok, ngx_http_darkroom_alerts_run_t *run);

/* set by the shop module; by default 404, "There is no shop here." */
extern ngx_http_darkroom_gallery_sale_pt  ngx_http_darkroom_gallery_sale;
extern ngx_http_darkroom_order_checkout_pt  ngx_http_darkroom_order_checkout;

/* a member of a JSON object that is a string, or NULL */

static ngx_inline const char *
ngx_http_darkroom_json_str(cJSON *obj, const char *name)
{
    cJSON  *v;

    v = cJSON_GetObjectItemCaseSensitive(obj, name);

    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* task */
ngx_http_darkroom_task_t *ngx_http_darkroom_task_of(ngx_http_request_t *r);
ngx_http_darkroom_task_t *ngx_http_darkroom_task_peek(ngx_http_request_t *r);

#define NGX_HTTP_DARKROOM_LOG_ORDER   0   /* $darkroom_order */
#define NGX_HTTP_DARKROOM_LOG_EVENT   1   /* $darkroom_stripe_event */
#define NGX_HTTP_DARKROOM_LOG_RESULT  2   /* $darkroom_result */

ngx_int_t ngx_http_darkroom_vars_add(ngx_conf_t *cf);
void ngx_http_darkroom_request_id_copy(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t);
const char *ngx_http_darkroom_request_id(ngx_uint_t db);
void ngx_http_darkroom_request_id_job(const char *rid);
void ngx_http_darkroom_log_note(ngx_http_request_t *r, ngx_uint_t what,
    const char *value);
ngx_int_t ngx_http_darkroom_task_start(ngx_http_request_t *r, size_t size,
    ngx_http_darkroom_prepare_pt prepare, ngx_http_darkroom_work_pt work,
    ngx_http_darkroom_done_pt done);
ngx_int_t ngx_http_darkroom_task_start_file(ngx_http_request_t *r,
    size_t size, ngx_http_darkroom_prepare_pt prepare,
    ngx_http_darkroom_work_pt work, ngx_http_darkroom_done_pt done);
uint64_t ngx_http_darkroom_monotonic_ms(void);
void ngx_http_darkroom_hold(ngx_log_t *log);
void ngx_http_darkroom_release(void);
void ngx_http_darkroom_task_answer(ngx_http_darkroom_task_t *t,
    PGresult *res, const char *missing);
void ngx_http_darkroom_task_complete(ngx_http_darkroom_task_t *t);

/*
 * trace: in a thread, ngx_http_darkroom_trace() appends an entry to the
 * trace the task layer or the job runner made current for the thread (if
 * the debug log is on); on the event loop, _trace_log() logs the entries.
 * Compiled out without NGX_DEBUG.
 */
#if (NGX_DEBUG)
void ngx_http_darkroom_trace_begin(ngx_http_darkroom_trace_t *tr);
void ngx_http_darkroom_trace_end(void);
ngx_uint_t ngx_http_darkroom_tracing(void);
void ngx_http_darkroom_trace(const char *fmt, ...);
void ngx_http_darkroom_trace_log(ngx_log_t *log,
    ngx_http_darkroom_trace_t *tr, const char *who);
#else
#define ngx_http_darkroom_trace_begin(tr)
#define ngx_http_darkroom_trace_end()
#define ngx_http_darkroom_tracing()  0
#define ngx_http_darkroom_trace(...)
#define ngx_http_darkroom_trace_log(log, tr, who)
#endif

/* db: the worker's exit, closing every thread's connection */
void ngx_http_darkroom_db_exit(ngx_log_t *log);
/* db: at configuration time, a parsed conninfo's multi-host form */
const char *ngx_http_darkroom_db_conninfo_check(PQconninfoOption *opts);

/* db: thread side */
PGresult *ngx_http_darkroom_db_exec(ngx_http_darkroom_db_t *db,
    const char *sql, int nparams, const char *const *params,
    ngx_http_darkroom_error_t *err);
ngx_int_t ngx_http_darkroom_db_command(ngx_http_darkroom_db_t *db,
    const char *sql, int nparams, const char *const *params,
    ngx_http_darkroom_error_t *err);
void ngx_http_darkroom_db_error(ngx_http_darkroom_error_t *err,
    const char *state, const char *primary, const char *detail,
    const char *text);
ngx_int_t ngx_http_darkroom_db_tx(ngx_http_darkroom_db_t *db,
    ngx_int_t (*fn)(ngx_http_darkroom_db_t *db, void *data,
    ngx_http_darkroom_error_t *err), void *data,
    ngx_http_darkroom_error_t *err);

/*
 * Result columns by name, never by position: a SQL function's columns are
 * its contract.  In a loop over rows look the column up once with
 * ngx_http_darkroom_db_col() (-1: no such column) and read
 * PQgetvalue(res, row, col).  ngx_http_darkroom_db_value() reads a column
 * the result does not have, or a row it does not have, as "", as libpq
 * reads NULL; ngx_http_darkroom_db_null() tells them apart.
 */

#define ngx_http_darkroom_db_col(res, name)  PQfnumber(res, name)

static ngx_inline const char *
ngx_http_darkroom_db_value(PGresult *res, int row, const char *name)
{
    int    col;
    char  *v;

    col = PQfnumber(res, name);
    v = (col < 0) ? NULL : PQgetvalue(res, row, col);

    return v ? v : "";
}

static ngx_inline ngx_uint_t
ngx_http_darkroom_db_null(PGresult *res, int row, const char *name)
{
    int  col;

    col = PQfnumber(res, name);

    return (col < 0) ? 1 : (ngx_uint_t) PQgetisnull(res, row, col);
}

/* a column's value, or NULL for a missing row or column or a NULL value */

static ngx_inline const char *
ngx_http_darkroom_db_field(PGresult *res, int row, const char *name)
{
    return ngx_http_darkroom_db_null(res, row, name)
           ? NULL : PQgetvalue(res, row, PQfnumber(res, name));
}

/*
 * The answer of "SELECT f($1, ...)" where f returns one value (a JSON
 * document, a count): the only value of a one-row, one-column result, or
 * NULL if there is no row, the value is NULL or the result is another
 * shape.  Nothing to name: the column is the function.
 */

static ngx_inline const char *
ngx_http_darkroom_db_only(PGresult *res)
{
    if (PQntuples(res) != 1 || PQnfields(res) != 1
        || PQgetisnull(res, 0, 0))
    {
        return NULL;
    }

    return PQgetvalue(res, 0, 0);
}

/* scrypt (ngx_http_darkroom_scrypt.c), in threads */

/* "scrypt$<log2 N>$<r>$<p>$<salt>$<key>", base64url, into out */
ngx_int_t ngx_http_darkroom_scrypt_hash(const u_char *pw, size_t len,
    u_char *out, size_t size);
/* 1: the password matches, 0: it does not, NGX_ERROR: a bad hash */
ngx_int_t ngx_http_darkroom_scrypt_verify(const u_char *pw, size_t len,
    const u_char *stored);

/* download links (ngx_http_darkroom_download.c); sign ones thread-safe */
extern char  ngx_http_darkroom_download_ttl_text[];
extern char  ngx_http_darkroom_download_limit_text[];
char *ngx_http_darkroom_download_url_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_darkroom_download_init(ngx_conf_t *cf,
    ngx_http_darkroom_main_conf_t *dmcf);
void ngx_http_darkroom_download_process(ngx_http_darkroom_main_conf_t *dmcf);
size_t ngx_http_darkroom_download_url(ngx_http_darkroom_main_conf_t *dmcf,
    int64_t grant, const char *nonce, const char *name, int64_t exp,
    char *buf, size_t size);
ngx_int_t ngx_http_darkroom_download_sign_json(
    ngx_http_darkroom_main_conf_t *dmcf, cJSON *downloads);

/* jobs */
ngx_int_t ngx_http_darkroom_job_register(ngx_conf_t *cf, const char *kind,
    ngx_http_darkroom_job_pt handler);
char *ngx_http_darkroom_retention(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_darkroom_retention_postconfiguration(ngx_conf_t *cf);
ngx_int_t ngx_http_darkroom_job_register_recurring(ngx_conf_t *cf,
    const char *kind, ngx_http_darkroom_job_pt handler);
ngx_int_t ngx_http_darkroom_jobs_postconfiguration(ngx_conf_t *cf);
ngx_int_t ngx_http_darkroom_jobs_init_process(ngx_cycle_t *cycle);
ngx_int_t ngx_http_darkroom_job_http_post(ngx_http_darkroom_job_t *job,
    ngx_http_darkroom_error_t *err);

/* fetch: thread side */
ngx_int_t ngx_http_darkroom_fetch(ngx_http_darkroom_fetch_req_t *req,
    ngx_http_darkroom_fetch_resp_t *resp, ngx_http_darkroom_error_t *err);
void ngx_http_darkroom_fetch_free(ngx_http_darkroom_fetch_resp_t *resp);
size_t ngx_http_darkroom_fetch_header(ngx_http_darkroom_fetch_resp_t *resp,
    const char *name, char *value, size_t size);

/* reply */
void ngx_http_darkroom_error_set(ngx_http_darkroom_error_t *err,
    ngx_uint_t status, const char *code, const char *fmt, ...);
cJSON *ngx_http_darkroom_json_object(ngx_http_darkroom_error_t *err,
    const char *body, ngx_uint_t empty_ok);
ngx_int_t ngx_http_darkroom_send_json(ngx_http_request_t *r,
    ngx_uint_t status, u_char *json, size_t len);
ngx_int_t ngx_http_darkroom_send_body(ngx_http_request_t *r,
    ngx_uint_t status, const char *type, u_char *body, size_t len);
ngx_int_t ngx_http_darkroom_send_error(ngx_http_request_t *r,
    ngx_uint_t status, const char *code, const char *message);
ngx_int_t ngx_http_darkroom_send_task_error(ngx_http_request_t *r,
    ngx_http_darkroom_error_t *err);
ngx_table_elt_t *ngx_http_darkroom_header_out(ngx_http_request_t *r,
    const char *name, u_char *value, size_t len);
ngx_int_t ngx_http_darkroom_reply_init(ngx_conf_t *cf);

/*
 * Public answers, the same for every visitor, served from shared memory
 * (ngx_http_darkroom_cache.c).  A source is registered at configuration
 * time; its build runs in a pool thread (no nginx memory, no logging)
 * whenever the version named like it in public_versions moves, and puts
 * every entry it makes with _public_put() (copied).  A handler answers
 * with _public_send(): NGX_DECLINED means no entry, take the query path.
 */

typedef struct {
    ngx_http_darkroom_db_t      *db;
    ngx_http_darkroom_error_t   *err;
    ngx_http_darkroom_main_conf_t *conf;       /* read-only */
    void                        *items;        /* core's */
} ngx_http_darkroom_public_build_t;

typedef ngx_int_t (*ngx_http_darkroom_public_build_pt)(
    ngx_http_darkroom_public_build_t *b);

typedef struct {
    const char                  *name;         /* its public_versions row */
    ngx_http_darkroom_public_build_pt  build;
} ngx_http_darkroom_public_source_t;

char *ngx_http_darkroom_public_cache(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_darkroom_public_source(ngx_conf_t *cf,
    ngx_http_darkroom_public_source_t *source);
ngx_int_t ngx_http_darkroom_public_init_process(ngx_cycle_t *cycle);
ngx_int_t ngx_http_darkroom_public_send(ngx_http_request_t *r,
    ngx_str_t *key);
ngx_int_t ngx_http_darkroom_public_put(ngx_http_darkroom_public_build_t *b,
    const char *key, const char *type, const char *body, size_t len);

/*
 * On the event loop: a feature's own entries in the same zone, put when it
 * has made one (_set, copied) and read by its handler (_get: a copy in the
 * request's pool); NGX_DECLINED: no zone, no entry, or no room.  The value
 * is opaque; whether it is still good is the feature's to tell.
 */
ngx_int_t ngx_http_darkroom_public_get(ngx_http_request_t *r,
    ngx_str_t *key, ngx_str_t *value);
ngx_int_t ngx_http_darkroom_public_set(ngx_http_request_t *r,
    ngx_str_t *key, u_char *value, size_t len);

/* health */
char *ngx_http_darkroom_health(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_darkroom_health_add(ngx_conf_t *cf, const char *name,
    const char *function);


#endif /* _NGX_HTTP_DARKROOM_H_INCLUDED_ */
