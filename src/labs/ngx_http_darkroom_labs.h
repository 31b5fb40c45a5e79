/*
 * darkroom: print fulfilment through labs, what the lab files share.
 *
 * Three layers, calls pointing down:
 *
 *   ngx_http_darkroom_labs_module.c  directives, jobs, callbacks, the lab
 *                                    admin API; reaches a lab only through
 *                                    its driver, by the lab's name, in the
 *                                    table ngx_http_darkroom_lab_drivers[]
 *   ngx_http_darkroom_lab_<lab>.c    one file per lab and API, each with
 *                                    its driver: requests and answers;
 *                                    calls only the client
 *                                    (lab_prodigi, lab_printspace_escher,
 *                                    lab_printspace_legacy)
 *   ngx_http_darkroom_lab_client.c   what drivers share: one HTTP call to
 *                                    a lab, results and errors, drafts,
 *                                    signed asset links, callback tokens,
 *                                    the check on a lab's order ids
 *
 * The lab is "printspace" in names, directives and stored data; the
 * company, in messages, is theprintspace.  Everything here but the
 * configuration is used inside pool threads: no nginx pools, no nginx
 * logging.
 */


#ifndef _NGX_HTTP_DARKROOM_LABS_H_INCLUDED_
#define _NGX_HTTP_DARKROOM_LABS_H_INCLUDED_


#include "ngx_http_darkroom.h"


#define NGX_HTTP_DARKROOM_LAB_TOKEN_LEN     64  /* hex HMAC-SHA256 */
#define NGX_HTTP_DARKROOM_LAB_TOKEN_SIZE  (NGX_HTTP_DARKROOM_LAB_TOKEN_LEN + 1)
#define NGX_HTTP_DARKROOM_LAB_ORDER_ID_LEN  128 /* a lab's order id, NUL */
#define NGX_HTTP_DARKROOM_LAB_PATH_LEN      300 /* an API path with an id */
#define NGX_HTTP_DARKROOM_LAB_REF_LEN       200 /* order ref and line */
#define NGX_HTTP_DARKROOM_LAB_URL_LEN       1024 /* API and callback URLs */
#define NGX_HTTP_DARKROOM_LAB_ASSET_LEN     4096 /* a signed asset link */
#define NGX_HTTP_DARKROOM_LAB_CAUSE_LEN     64  /* "job:<id>" for history */
#define NGX_HTTP_DARKROOM_LAB_STATUS_LEN    32  /* lab_orders.status */
#define NGX_HTTP_DARKROOM_LAB_WORD_LEN      64  /* a lab's status word */
#define NGX_HTTP_DARKROOM_LAB_ERROR_LEN     400 /* what went wrong */
#define NGX_HTTP_DARKROOM_LAB_REASON_LEN    300 /* why it needs a person */

#define ngx_http_darkroom_lab_alnum(c)                                       \
    (((c) >= '0' && (c) <= '9') || ((c) >= 'a' && (c) <= 'z')                \
     || ((c) >= 'A' && (c) <= 'Z'))

/* darkroom_printspace_protocol: creativehub's current API, or the old */
#define NGX_HTTP_DARKROOM_PRINTSPACE_ESCHER  0
#define NGX_HTTP_DARKROOM_PRINTSPACE_LEGACY  1


typedef struct ngx_http_darkroom_lab_driver_s  ngx_http_darkroom_lab_driver_t;


/* one lab account: where its API is and the keys to it */

typedef struct {
    ngx_str_t                     api;              /* NUL-terminated */
    ngx_array_t                  *keys;             /* the first is sent */
    ngx_uint_t                    protocol;         /* the API's variant */
} ngx_http_darkroom_lab_account_t;


typedef struct {
    ngx_http_darkroom_lab_account_t        prodigi;
    ngx_str_t                              prodigi_shipping;
    ngx_http_darkroom_lab_account_t        printspace;
    ngx_str_t                              printspace_api_file; /* where */
    ngx_uint_t                             printspace_api_line; /* set */
    ngx_str_t                              printspace_delivery; /* "": min */
    ngx_msec_t                             poll_interval;
    ngx_uint_t                             reroute_attempts;
    time_t                                 reroute_time;
    time_t                                 fulfil_delay;

    ngx_str_t                              asset_url;     /* origin, path */
    size_t                                 asset_origin;  /* its length */
    ngx_http_darkroom_keyring_t           *asset_keys;    /* first signs */
    time_t                                 asset_ttl;
    ngx_str_t                              gallery_asset_url; /* originals
                                                                 of gallery
                                                                 lines */
    size_t                                 gallery_asset_origin;

    ngx_str_t                              callback_url;
    ngx_array_t                           *callback_secrets; /* 1st signs */

    ngx_http_darkroom_use_t                use_callback;
    ngx_http_darkroom_use_t                use_admin;
    const ngx_http_darkroom_lab_driver_t  *callback_driver;  /* the first */
} ngx_http_darkroom_labs_conf_t;


/*
 * What a call to a lab came to.  rc: NGX_OK done; NGX_AGAIN failed in a
 * way worth retrying (no answer, 5xx, 429, auth); NGX_DECLINED the lab
 * refused the request itself (validation), retrying will not help.
 */

typedef struct {
    ngx_int_t       rc;
    long            status;
    char            lab_order_id[NGX_HTTP_DARKROOM_LAB_ORDER_ID_LEN];
    char            outcome[NGX_HTTP_DARKROOM_LAB_WORD_LEN];
    char            error[NGX_HTTP_DARKROOM_LAB_ERROR_LEN];
    char           *detail;                /* malloc'd JSON */
    ngx_msec_t      retry_after;
    const char     *idempotency_key;       /* sent as a header */
} ngx_http_darkroom_lab_result_t;


/* a lab order's state at its lab, in darkroom's words */

typedef struct {
    const char     *stage;                 /* submitted, in_production,
                                              shipped, cancelled, or
                                              attention (see reason) */
    char            lab_status[NGX_HTTP_DARKROOM_LAB_WORD_LEN];
    char            reason[NGX_HTTP_DARKROOM_LAB_REASON_LEN];
    char           *shipments;             /* malloc'd JSON */
} ngx_http_darkroom_lab_state_t;


/* one call of a driver: the lab, the lab order, what a thread may use */

typedef struct {
    ngx_http_darkroom_labs_conf_t         *lcf;
    const ngx_http_darkroom_lab_driver_t  *driver;
    ngx_http_darkroom_db_t                *db;
    ngx_msec_t                             timeout;
    const char                            *id;        /* the lab order */
    const char                            *cause;     /* for its history */
    const char                            *callback;  /* URL, or NULL */
} ngx_http_darkroom_lab_call_t;


/* send the lab order (doc: lab_submit_json()); res says how it went */
typedef void (*ngx_http_darkroom_lab_submit_pt)(
    ngx_http_darkroom_lab_call_t *call, cJSON *doc,
    ngx_http_darkroom_lab_result_t *res);
/* the lab's order (its id: order) as it is now */
typedef void (*ngx_http_darkroom_lab_fetch_pt)(
    ngx_http_darkroom_lab_call_t *call, const char *order,
    ngx_http_darkroom_lab_state_t *st, ngx_http_darkroom_lab_result_t *res);
/* cancel it: NGX_DECLINED in res->rc when the lab says it is too late */
typedef void (*ngx_http_darkroom_lab_cancel_pt)(
    ngx_http_darkroom_lab_call_t *call, const char *order,
    ngx_http_darkroom_lab_result_t *res);
/* the event id a callback's body names (kept for history), or NULL */
typedef const char *(*ngx_http_darkroom_lab_callback_pt)(cJSON *body);
/* a lab's order (JSON) in darkroom's words */
typedef ngx_int_t (*ngx_http_darkroom_lab_read_pt)(cJSON *order,
    ngx_http_darkroom_lab_state_t *st);


/*
 * A lab as darkroom speaks to it.  Entries with one name are variants of
 * that lab's API (protocol): the account's protocol picks one, and a lab
 * order sent through one (lab_orders.lab_api) is followed only there.
 */

struct ngx_http_darkroom_lab_driver_s {
    const char                        *name;     /* lab_orders.lab */
    const char                        *api;      /* lab_orders.lab_api,
                                                    NULL: one API */
    ngx_uint_t                         protocol; /* account.protocol */
    const char                        *brand;    /* in messages */
    const char                        *site;     /* where a person acts */
    const char                        *auth;     /* header, %.*s: the key */
    size_t                             account;  /* offsetof in the conf */
    unsigned                           resend_safe:1;

    ngx_http_darkroom_lab_submit_pt    submit;
    ngx_http_darkroom_lab_fetch_pt     fetch;
    ngx_http_darkroom_lab_cancel_pt    cancel;   /* NULL: none, by hand */
    ngx_http_darkroom_lab_callback_pt  callback; /* NULL: polled only */
};


#define ngx_http_darkroom_lab_account(lcf, d)                                \
    ((ngx_http_darkroom_lab_account_t *) ((u_char *) (lcf) + (d)->account))


extern ngx_module_t  ngx_http_darkroom_labs_module;

/* the drivers, in ngx_http_darkroom_lab_<name>.c */
extern const ngx_http_darkroom_lab_driver_t  ngx_http_darkroom_lab_prodigi;
extern const ngx_http_darkroom_lab_driver_t
    ngx_http_darkroom_lab_printspace_escher;
extern const ngx_http_darkroom_lab_driver_t
    ngx_http_darkroom_lab_printspace_legacy;


/* the lab client: thread side */
ngx_int_t ngx_http_darkroom_lab_http(ngx_http_darkroom_lab_call_t *call,
    const char *method, const char *path, const char *body, cJSON **out,
    ngx_http_darkroom_lab_result_t *res);
void ngx_http_darkroom_lab_fetch(ngx_http_darkroom_lab_call_t *call,
    const char *path, const char *member, ngx_http_darkroom_lab_read_pt reader,
    ngx_http_darkroom_lab_state_t *st, ngx_http_darkroom_lab_result_t *res);
ngx_int_t ngx_http_darkroom_lab_draft(ngx_http_darkroom_lab_call_t *call,
    const char *order, ngx_http_darkroom_lab_result_t *res);
ngx_int_t ngx_http_darkroom_lab_asset_url(ngx_http_darkroom_lab_call_t *call,
    const char *print_path, ngx_uint_t gallery, char *buf, size_t size);
void ngx_http_darkroom_lab_error(ngx_http_darkroom_lab_result_t *res,
    const char *fmt, ...);
void ngx_http_darkroom_lab_refused(ngx_http_darkroom_lab_result_t *res,
    cJSON *answer, const char *fmt, ...);
ngx_int_t ngx_http_darkroom_lab_id_ok(const char *id, size_t size);
ngx_int_t ngx_http_darkroom_lab_token(ngx_str_t *secret, const char *id,
    char *hex);


#endif /* _NGX_HTTP_DARKROOM_LABS_H_INCLUDED_ */
