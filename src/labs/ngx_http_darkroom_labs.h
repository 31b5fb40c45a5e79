
/*
 * darkroom: print fulfilment through labs, what the lab files share.
 *
 * ngx_http_darkroom_labs_module.c holds the directives, the jobs, the
 * Prodigi callback and the lab admin API; ngx_http_darkroom_lab_prodigi.c
 * and ngx_http_darkroom_lab_printspace.c speak each lab's API: building
 * requests and reading answers.  Everything here but the configuration is
 * used inside pool threads: no nginx pools, no nginx logging.
 */


#ifndef _NGX_HTTP_DARKROOM_LABS_H_INCLUDED_
#define _NGX_HTTP_DARKROOM_LABS_H_INCLUDED_


#include "ngx_http_darkroom.h"


#define NGX_HTTP_DARKROOM_LAB_TOKEN_LEN  64     /* hex HMAC-SHA256 */

#define ngx_http_darkroom_lab_alnum(c)                                       \
    (((c) >= '0' && (c) <= '9') || ((c) >= 'a' && (c) <= 'z')                \
     || ((c) >= 'A' && (c) <= 'Z'))

/* darkroom_printspace_protocol: creativehub's current API, or the old */
#define NGX_HTTP_DARKROOM_PS_ESCHER      0
#define NGX_HTTP_DARKROOM_PS_LEGACY      1


typedef struct {
    ngx_str_t                    prodigi_api;       /* NUL-terminated */
    ngx_array_t                 *prodigi_keys;
    ngx_str_t                    prodigi_shipping;
    ngx_str_t                    printspace_api;
    ngx_str_t                    printspace_api_file;  /* where it is set, */
    ngx_uint_t                   printspace_api_line;  /* for nginx -t */
    ngx_array_t                 *printspace_keys;
    ngx_str_t                    printspace_delivery;  /* empty: cheapest */
    ngx_uint_t                   printspace_protocol;
    ngx_msec_t                   poll_interval;
    ngx_uint_t                   reroute_attempts;
    time_t                       reroute_time;
    time_t                       fulfil_delay;

    ngx_str_t                    asset_url;         /* origin and prefix */
    size_t                       asset_origin;      /* length of origin */
    ngx_http_darkroom_keyring_t *asset_keys;        /* the first signs */
    time_t                       asset_ttl;

    ngx_str_t                    callback_url;
    ngx_array_t                 *callback_secrets;  /* the first signs */

    ngx_http_darkroom_use_t      use_callback;
    ngx_http_darkroom_use_t      use_admin;
} ngx_http_darkroom_labs_conf_t;


/*
 * What a call to a lab came to.  rc: NGX_OK done; NGX_AGAIN failed in a
 * way worth retrying (no answer, 5xx, 429, auth); NGX_DECLINED the lab
 * refused the request itself (validation), retrying will not help.
 */

typedef struct {
    ngx_int_t                    rc;
    long                         status;
    char                         lab_order_id[128];
    char                         outcome[64];
    char                         error[400];
    char                        *detail;            /* malloc'd JSON */
    ngx_msec_t                   retry_after;
    const char                  *idempotency_key;   /* sent as a header */
} ngx_http_darkroom_lab_result_t;


/* a lab order's state at its lab, in darkroom's words */

typedef struct {
    const char                  *stage;    /* submitted, in_production,
                                              shipped, cancelled, or
                                              attention (see reason) */
    char                         lab_status[64];
    char                         reason[300];
    char                        *shipments;         /* malloc'd JSON */
} ngx_http_darkroom_lab_state_t;


typedef enum {
    NGX_HTTP_DARKROOM_LAB_PRODIGI = 0,
    NGX_HTTP_DARKROOM_LAB_PRINTSPACE
} ngx_http_darkroom_lab_e;


/* a lab's order (JSON) in darkroom's words */
typedef ngx_int_t (*ngx_http_darkroom_lab_read_pt)(cJSON *order,
    ngx_http_darkroom_lab_state_t *st);


extern ngx_module_t  ngx_http_darkroom_labs_module;


/* labs module: thread side */
ngx_int_t ngx_http_darkroom_lab_http(ngx_http_darkroom_labs_conf_t *lcf,
    ngx_http_darkroom_lab_e lab, ngx_msec_t timeout, const char *method,
    const char *path, const char *body, cJSON **out,
    ngx_http_darkroom_lab_result_t *res);
ngx_int_t ngx_http_darkroom_lab_asset_url(ngx_http_darkroom_labs_conf_t *lcf,
    const char *print_path, char *buf, size_t size);
ngx_int_t ngx_http_darkroom_lab_token(ngx_str_t *secret, const char *id,
    char *hex);
void ngx_http_darkroom_lab_error(ngx_http_darkroom_lab_result_t *res,
    const char *fmt, ...);
void ngx_http_darkroom_lab_refused(ngx_http_darkroom_lab_result_t *res,
    cJSON *answer, const char *fmt, ...);
ngx_int_t ngx_http_darkroom_lab_id_ok(const char *id, size_t size);
void ngx_http_darkroom_lab_fetch(ngx_http_darkroom_labs_conf_t *lcf,
    ngx_http_darkroom_lab_e lab, ngx_msec_t timeout, const char *path,
    const char *member, ngx_http_darkroom_lab_read_pt reader,
    ngx_http_darkroom_lab_state_t *st, ngx_http_darkroom_lab_result_t *res);

/* Prodigi (API v4) */
char *ngx_http_darkroom_prodigi_order(ngx_http_darkroom_labs_conf_t *lcf,
    cJSON *doc, const char *callback, ngx_http_darkroom_lab_result_t *res);
void ngx_http_darkroom_prodigi_submit(ngx_http_darkroom_labs_conf_t *lcf,
    ngx_msec_t timeout, cJSON *doc, const char *callback,
    ngx_http_darkroom_lab_result_t *res);
void ngx_http_darkroom_prodigi_refused(cJSON *answer,
    ngx_http_darkroom_lab_result_t *res);
ngx_int_t ngx_http_darkroom_prodigi_state(cJSON *order,
    ngx_http_darkroom_lab_state_t *st);
void ngx_http_darkroom_prodigi_fetch(ngx_http_darkroom_labs_conf_t *lcf,
    ngx_msec_t timeout, const char *id, ngx_http_darkroom_lab_state_t *st,
    ngx_http_darkroom_lab_result_t *res);
void ngx_http_darkroom_prodigi_cancel(ngx_http_darkroom_labs_conf_t *lcf,
    ngx_msec_t timeout, const char *id, ngx_http_darkroom_lab_result_t *res);

/* theprintspace, creativehub's current API ("Escher V2") */
void ngx_http_darkroom_escher_submit(ngx_http_darkroom_labs_conf_t *lcf,
    ngx_msec_t timeout, cJSON *doc, ngx_http_darkroom_lab_result_t *res);
ngx_int_t ngx_http_darkroom_escher_state(cJSON *order,
    ngx_http_darkroom_lab_state_t *st);
void ngx_http_darkroom_escher_fetch(ngx_http_darkroom_labs_conf_t *lcf,
    ngx_msec_t timeout, const char *id, ngx_http_darkroom_lab_state_t *st,
    ngx_http_darkroom_lab_result_t *res);

/* theprintspace, creativehub's earlier API (ApiKey, embryonic orders) */
void ngx_http_darkroom_printspace_submit(ngx_http_darkroom_labs_conf_t *lcf,
    ngx_msec_t timeout, cJSON *doc, ngx_http_darkroom_db_t *db,
    const char *cause, ngx_http_darkroom_lab_result_t *res);
ngx_int_t ngx_http_darkroom_printspace_state(cJSON *order,
    ngx_http_darkroom_lab_state_t *st);
void ngx_http_darkroom_printspace_fetch(ngx_http_darkroom_labs_conf_t *lcf,
    ngx_msec_t timeout, const char *id, ngx_http_darkroom_lab_state_t *st,
    ngx_http_darkroom_lab_result_t *res);


#endif /* _NGX_HTTP_DARKROOM_LABS_H_INCLUDED_ */
