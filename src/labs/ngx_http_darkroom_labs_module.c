
/*
 * darkroom: print fulfilment through labs (Prodigi, theprintspace).
 *
 * A paid order's "fulfil_order" job splits it into one lab order per lab
 * (sql/007_labs.sql decides, from the lab mapping).  Each lab order then
 * has its own jobs:
 *
 *   lab_submit  send it, with a stable idempotency key; a retryable
 *               failure counts towards darkroom_lab_reroute_after, after
 *               which it is rerouted to another lab, once, or marked for
 *               attention; a refusal (validation) is marked at once
 *   lab_poll    follow it at the lab until shipped or cancelled
 *               (for labs without callbacks the only way; else a net)
 *   lab_cancel  cancel it at the lab (a refund before production), or
 *               flag it for a person where the lab has no cancel API
 *
 * This file calls a lab only through its driver, looked up by the lab
 * order's lab name in ngx_http_darkroom_lab_drivers[] (one file per lab
 * and API, see ngx_http_darkroom_labs.h).  A lab's callbacks reach
 * "darkroom_lab_callback <lab>": the URL carries a per-lab-order token,
 * HMAC-SHA256 of the lab order id under darkroom_lab_callback_secret_file,
 * checked in constant time on the event loop; then the order is fetched
 * from the lab rather than trusting the body.  "darkroom_lab_admin" lists
 * lab orders with their history and retries, reroutes or cancels them,
 * and lists and edits the product-to-lab mapping (lab_products).
 */


#include "ngx_http_darkroom_labs.h"
#include "ngx_http_darkroom_sign.h"

#include <openssl/crypto.h>


#define NGX_HTTP_DARKROOM_LABS_ADMIN_ARGS  3
#define NGX_HTTP_DARKROOM_LAB_ANSWER_LEN   128  /* the callback's answer */


/* a callback location's lab */

typedef struct {
    const ngx_http_darkroom_lab_driver_t  *callback;
} ngx_http_darkroom_labs_loc_conf_t;


typedef struct {
    char                              id[NGX_INT64_LEN + 1];
    char                              event[128];
} ngx_http_darkroom_lab_callback_t;


typedef enum {
    NGX_HTTP_DARKROOM_LABS_LIST = 0,
    NGX_HTTP_DARKROOM_LABS_GET,
    NGX_HTTP_DARKROOM_LABS_RETRY,
    NGX_HTTP_DARKROOM_LABS_REROUTE,
    NGX_HTTP_DARKROOM_LABS_CANCEL,
    NGX_HTTP_DARKROOM_LABS_RESOLVE,
    NGX_HTTP_DARKROOM_LABS_PRODUCTS,
    NGX_HTTP_DARKROOM_LABS_PRODUCT_PUT,
    NGX_HTTP_DARKROOM_LABS_PRODUCT_DELETE
} ngx_http_darkroom_labs_route_e;


typedef struct {
    ngx_http_darkroom_labs_route_e    route;
    char                             *arg[NGX_HTTP_DARKROOM_LABS_ADMIN_ARGS];
    char                             *body;
} ngx_http_darkroom_labs_admin_t;


static void *ngx_http_darkroom_labs_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_darkroom_labs_init_main_conf(ngx_conf_t *cf,
    void *conf);
static char *ngx_http_darkroom_labs_require_keys(ngx_conf_t *cf,
    ngx_http_darkroom_labs_conf_t *lcf);
static void *ngx_http_darkroom_labs_create_loc_conf(ngx_conf_t *cf);
static ngx_int_t ngx_http_darkroom_labs_postconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_darkroom_labs_init_process(ngx_cycle_t *cycle);
static char *ngx_http_darkroom_labs_api(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_darkroom_labs_url(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_darkroom_labs_printspace_api(ngx_conf_t *cf,
    ngx_http_darkroom_labs_conf_t *lcf);
static char *ngx_http_darkroom_labs_shipping(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_darkroom_labs_delivery(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_darkroom_labs_reroute(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_darkroom_labs_callback(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_darkroom_labs_admin(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);

static ngx_int_t ngx_http_darkroom_job_fulfil(ngx_http_darkroom_job_t *job,
    ngx_http_darkroom_error_t *err);
static ngx_int_t ngx_http_darkroom_job_lab_submit(
    ngx_http_darkroom_job_t *job, ngx_http_darkroom_error_t *err);
static ngx_int_t ngx_http_darkroom_job_lab_poll(ngx_http_darkroom_job_t *job,
    ngx_http_darkroom_error_t *err);
static ngx_int_t ngx_http_darkroom_job_lab_cancel(
    ngx_http_darkroom_job_t *job, ngx_http_darkroom_error_t *err);
static const ngx_http_darkroom_lab_driver_t *ngx_http_darkroom_lab_driver(
    ngx_http_darkroom_labs_conf_t *lcf, const char *name);
static ngx_uint_t ngx_http_darkroom_labs_configured(
    ngx_http_darkroom_labs_conf_t *lcf);
static void ngx_http_darkroom_lab_call_init(ngx_http_darkroom_lab_call_t *call,
    ngx_http_darkroom_db_t *db, ngx_msec_t timeout, const char *id,
    const char *cause);
static ngx_int_t ngx_http_darkroom_lab_refresh(
    ngx_http_darkroom_lab_call_t *call, char *status, size_t size,
    ngx_http_darkroom_lab_result_t *lr);
static ngx_int_t ngx_http_darkroom_lab_final(const char *status);
static ngx_int_t ngx_http_darkroom_lab_send(ngx_http_darkroom_job_t *job,
    cJSON *doc, const char *lab, const char *id, const char *cause,
    ngx_http_darkroom_lab_result_t *lr, ngx_http_darkroom_error_t *err);
static ngx_int_t ngx_http_darkroom_lab_submit_done(
    ngx_http_darkroom_job_t *job, const char *id, const char *cause,
    ngx_http_darkroom_lab_result_t *lr, ngx_http_darkroom_error_t *err);
static ngx_int_t ngx_http_darkroom_lab_job_id(ngx_http_darkroom_job_t *job,
    char *id, ngx_http_darkroom_error_t *err);
static ngx_int_t ngx_http_darkroom_lab_api_match(
    const ngx_http_darkroom_lab_driver_t *d, const char *api,
    ngx_http_darkroom_lab_result_t *lr);
static ngx_int_t ngx_http_darkroom_lab_api_stamp(
    ngx_http_darkroom_lab_call_t *call, ngx_http_darkroom_lab_result_t *lr,
    ngx_http_darkroom_error_t *err);
static ngx_int_t ngx_http_darkroom_lab_callback_url(
    ngx_http_darkroom_labs_conf_t *lcf, const char *id, char *buf,
    size_t size);
static void ngx_http_darkroom_lab_follow(ngx_http_darkroom_lab_call_t *call,
    PGresult *res, ngx_http_darkroom_lab_state_t *st,
    ngx_http_darkroom_lab_result_t *lr);
static ngx_int_t ngx_http_darkroom_lab_cancel_by_hand(
    ngx_http_darkroom_lab_call_t *call, ngx_http_darkroom_error_t *err);
static ngx_int_t ngx_http_darkroom_lab_cancel_target(
    ngx_http_darkroom_lab_call_t *call, char *order, size_t size,
    ngx_http_darkroom_error_t *err);

static ngx_int_t ngx_http_darkroom_lab_callback_handler(
    ngx_http_request_t *r);
static ngx_int_t ngx_http_darkroom_lab_token_ok(
    ngx_http_darkroom_labs_conf_t *lcf, const char *id, u_char *token);
static ngx_int_t ngx_http_darkroom_lab_callback_prepare(
    ngx_http_request_t *r, ngx_http_darkroom_task_t *t);
static void ngx_http_darkroom_lab_callback_work(ngx_http_darkroom_task_t *t);

static ngx_int_t ngx_http_darkroom_labs_admin_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_darkroom_labs_admin_prepare(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t);
static ngx_int_t ngx_http_darkroom_labs_admin_route(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t);
static ngx_int_t ngx_http_darkroom_labs_products_route(
    ngx_http_request_t *r, ngx_http_darkroom_task_t *t, ngx_str_t *seg,
    ngx_uint_t n);
static void ngx_http_darkroom_labs_admin_work(ngx_http_darkroom_task_t *t);
static PGresult *ngx_http_darkroom_labs_products_work(
    ngx_http_darkroom_task_t *t);


static ngx_conf_enum_t  ngx_http_darkroom_printspace_protocols[] = {
    { ngx_string("escher"), NGX_HTTP_DARKROOM_PRINTSPACE_ESCHER },
    { ngx_string("legacy"), NGX_HTTP_DARKROOM_PRINTSPACE_LEGACY },
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_http_darkroom_labs_commands[] = {

    { ngx_string("darkroom_prodigi_api"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_darkroom_labs_api,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_darkroom_labs_conf_t, prodigi.api),
      NULL },

    { ngx_string("darkroom_prodigi_key_file"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_darkroom_secret_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_darkroom_labs_conf_t, prodigi.keys),
      NULL },

    { ngx_string("darkroom_prodigi_shipping_method"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_darkroom_labs_shipping,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("darkroom_printspace_api"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_darkroom_labs_api,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_darkroom_labs_conf_t, printspace.api),
      NULL },

    { ngx_string("darkroom_printspace_key_file"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_darkroom_secret_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_darkroom_labs_conf_t, printspace.keys),
      NULL },

    { ngx_string("darkroom_printspace_protocol"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_darkroom_labs_conf_t, printspace.protocol),
      &ngx_http_darkroom_printspace_protocols },

    { ngx_string("darkroom_printspace_delivery"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_darkroom_labs_delivery,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("darkroom_lab_poll_interval"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_darkroom_labs_conf_t, poll_interval),
      NULL },

    { ngx_string("darkroom_lab_reroute_after"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_darkroom_labs_reroute,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("darkroom_fulfil_delay"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_darkroom_labs_conf_t, fulfil_delay),
      NULL },

    { ngx_string("darkroom_lab_asset_url"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_darkroom_labs_url,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_darkroom_labs_conf_t, asset_url),
      NULL },

    { ngx_string("darkroom_lab_gallery_asset_url"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_darkroom_labs_url,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_darkroom_labs_conf_t, gallery_asset_url),
      NULL },

    { ngx_string("darkroom_lab_asset_keys"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_darkroom_keyring_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_darkroom_labs_conf_t, asset_keys),
      NULL },

    { ngx_string("darkroom_lab_asset_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_darkroom_labs_conf_t, asset_ttl),
      NULL },

    { ngx_string("darkroom_lab_callback_url"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_darkroom_labs_url,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_darkroom_labs_conf_t, callback_url),
      NULL },

    { ngx_string("darkroom_lab_callback_secret_file"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_darkroom_secret_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_darkroom_labs_conf_t, callback_secrets),
      NULL },

    { ngx_string("darkroom_lab_callback"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_darkroom_labs_callback,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("darkroom_lab_admin"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_darkroom_labs_admin,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_darkroom_labs_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_darkroom_labs_postconfiguration, /* postconfiguration */

    ngx_http_darkroom_labs_create_main_conf, /* create main configuration */
    ngx_http_darkroom_labs_init_main_conf, /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_darkroom_labs_create_loc_conf, /* create location
                                              configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_darkroom_labs_module = {
    NGX_MODULE_V1,
    &ngx_http_darkroom_labs_module_ctx,    /* module context */
    ngx_http_darkroom_labs_commands,       /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_darkroom_labs_init_process,   /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


/*
 * The labs darkroom speaks, one entry per lab and API (see
 * ngx_http_darkroom_lab_driver_t); adding a lab is one driver file and one
 * entry here.  Looked up by the lab's name (lab_orders.lab) only.
 */

static const ngx_http_darkroom_lab_driver_t  *ngx_http_darkroom_lab_drivers[] =
{
    &ngx_http_darkroom_lab_prodigi,
    &ngx_http_darkroom_lab_printspace_escher,
    &ngx_http_darkroom_lab_printspace_legacy,
    NULL
};


/* the worker's configuration, read-only, for the jobs' threads */
static ngx_http_darkroom_labs_conf_t  *ngx_http_darkroom_labs_conf;


static void *
ngx_http_darkroom_labs_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_darkroom_labs_conf_t  *lcf;

    lcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_darkroom_labs_conf_t));
    if (lcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     lcf->prodigi.api = { 0, NULL };
     *     lcf->printspace.api = { 0, NULL };
     *     lcf->asset_url = { 0, NULL };
     *     lcf->gallery_asset_url = { 0, NULL };
     *     lcf->callback_url = { 0, NULL };
     *     lcf->use_callback = { NULL, 0 };
     */

    lcf->prodigi.keys = NGX_CONF_UNSET_PTR;
    lcf->printspace.keys = NGX_CONF_UNSET_PTR;
    lcf->printspace.protocol = NGX_CONF_UNSET_UINT;
    lcf->asset_keys = NGX_CONF_UNSET_PTR;
    lcf->callback_secrets = NGX_CONF_UNSET_PTR;
    lcf->poll_interval = NGX_CONF_UNSET_MSEC;
    lcf->reroute_attempts = NGX_CONF_UNSET_UINT;
    lcf->reroute_time = NGX_CONF_UNSET;
    lcf->fulfil_delay = NGX_CONF_UNSET;
    lcf->asset_ttl = NGX_CONF_UNSET;

    return lcf;
}


static char *
ngx_http_darkroom_labs_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_darkroom_labs_conf_t *lcf = conf;

    ngx_http_darkroom_main_conf_t  *dmcf;

    if (lcf->prodigi.api.data == NULL) {
        ngx_str_set(&lcf->prodigi.api, "https://api.sandbox.prodigi.com");
    }

    if (ngx_http_darkroom_labs_printspace_api(cf, lcf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    if (lcf->prodigi_shipping.data == NULL) {
        ngx_str_set(&lcf->prodigi_shipping, "Standard");
    }

    if (lcf->printspace_delivery.data == NULL) {
        ngx_str_set(&lcf->printspace_delivery, "");
    }

    ngx_conf_init_ptr_value(lcf->prodigi.keys, NULL);
    ngx_conf_init_ptr_value(lcf->printspace.keys, NULL);
    ngx_conf_init_ptr_value(lcf->asset_keys, NULL);
    ngx_conf_init_ptr_value(lcf->callback_secrets, NULL);
    ngx_conf_init_msec_value(lcf->poll_interval, 600000);
    ngx_conf_init_uint_value(lcf->reroute_attempts, 5);
    ngx_conf_init_value(lcf->reroute_time, 3600);
    ngx_conf_init_value(lcf->fulfil_delay, 0);
    ngx_conf_init_value(lcf->asset_ttl, 30 * 86400);

    if (lcf->poll_interval < 100) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"darkroom_lab_poll_interval\" must be at least "
                      "100ms");
        return NGX_CONF_ERROR;
    }

    if (lcf->asset_url.data
        && ngx_http_darkroom_link_ttl(cf, "darkroom_lab_asset_ttl",
                                      lcf->asset_ttl,
                                      "labs could not download print files",
                                      NULL, 0)
           != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    dmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_darkroom_module);

    if (ngx_http_darkroom_labs_configured(lcf)
        && (lcf->asset_url.data == NULL || lcf->asset_keys == NULL))
    {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "a lab key file needs \"darkroom_lab_asset_url\" and "
                      "\"darkroom_lab_asset_keys\": labs fetch the print "
                      "files through signed URLs");
        return NGX_CONF_ERROR;
    }

    if (lcf->gallery_asset_url.data && lcf->asset_keys == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"darkroom_lab_gallery_asset_url\" requires "
                      "\"darkroom_lab_asset_keys\"");
        return NGX_CONF_ERROR;
    }

    if (lcf->callback_url.data && lcf->callback_secrets == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"darkroom_lab_callback_url\" requires "
                      "\"darkroom_lab_callback_secret_file\"");
        return NGX_CONF_ERROR;
    }

    if (ngx_http_darkroom_require(cf, &lcf->use_callback,
                                       "darkroom_lab_callback",
                                       lcf->callback_secrets,
                                       "darkroom_lab_callback_secret_file")
        != NGX_CONF_OK
        || ngx_http_darkroom_labs_require_keys(cf, lcf) != NGX_CONF_OK
        || ngx_http_darkroom_require(cf, &lcf->use_admin,
                                          "darkroom_lab_admin",
                                          dmcf->admin_tokens,
                                          "darkroom_admin_token_file")
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* a callback location's lab needs its key file: the callback fetches */

static char *
ngx_http_darkroom_labs_require_keys(ngx_conf_t *cf,
    ngx_http_darkroom_labs_conf_t *lcf)
{
    u_char                                 *directive;
    const ngx_http_darkroom_lab_driver_t   *d;

    d = lcf->callback_driver;

    if (d == NULL) {
        return NGX_CONF_OK;
    }

    directive = ngx_pnalloc(cf->pool, ngx_strlen(d->name)
                                      + sizeof("darkroom__key_file"));
    if (directive == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_sprintf(directive, "darkroom_%s_key_file%Z", d->name);

    return ngx_http_darkroom_require(cf, &lcf->use_callback,
                                     "darkroom_lab_callback",
                                     ngx_http_darkroom_lab_account(lcf, d)
                                         ->keys,
                                     (const char *) directive);
}


static void *
ngx_http_darkroom_labs_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_darkroom_labs_loc_conf_t  *llcf;

    llcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_darkroom_labs_loc_conf_t));
    if (llcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     llcf->callback = NULL;
     */

    return llcf;
}


static ngx_int_t
ngx_http_darkroom_labs_postconfiguration(ngx_conf_t *cf)
{
    /* /health tells of lab orders stuck or failed */

    if (ngx_http_darkroom_health_add(cf, "labs", "lab_health") != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_darkroom_job_register(cf, "fulfil_order",
                                       ngx_http_darkroom_job_fulfil)
        != NGX_OK
        || ngx_http_darkroom_job_register(cf, "lab_submit",
                                          ngx_http_darkroom_job_lab_submit)
           != NGX_OK
        || ngx_http_darkroom_job_register(cf, "lab_poll",
                                          ngx_http_darkroom_job_lab_poll)
           != NGX_OK
        || ngx_http_darkroom_job_register(cf, "lab_cancel",
                                          ngx_http_darkroom_job_lab_cancel)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_darkroom_labs_init_process(ngx_cycle_t *cycle)
{
    ngx_http_darkroom_labs_conf = ngx_http_cycle_get_module_main_conf(cycle,
                                      ngx_http_darkroom_labs_module);

    return NGX_OK;
}


/*
 * The driver of a lab by its name (lab_orders.lab): the variant of the
 * lab's API its account speaks; with lcf NULL (configuration, before the
 * protocols are known) any variant.  NULL: darkroom has no such lab.
 */

static const ngx_http_darkroom_lab_driver_t *
ngx_http_darkroom_lab_driver(ngx_http_darkroom_labs_conf_t *lcf,
    const char *name)
{
    const ngx_http_darkroom_lab_driver_t  **d;

    for (d = ngx_http_darkroom_lab_drivers; *d; d++) {
        if (ngx_strcmp((*d)->name, name) == 0
            && (lcf == NULL
                || ngx_http_darkroom_lab_account(lcf, *d)->protocol
                   == (*d)->protocol))
        {
            return *d;
        }
    }

    return NULL;
}


/* whether any lab has a key file: without, the shop prints its own */

static ngx_uint_t
ngx_http_darkroom_labs_configured(ngx_http_darkroom_labs_conf_t *lcf)
{
    const ngx_http_darkroom_lab_driver_t  **d;

    for (d = ngx_http_darkroom_lab_drivers; *d; d++) {
        if (ngx_http_darkroom_lab_account(lcf, *d)->keys) {
            return 1;
        }
    }

    return 0;
}


static void
ngx_http_darkroom_lab_call_init(ngx_http_darkroom_lab_call_t *call,
    ngx_http_darkroom_db_t *db, ngx_msec_t timeout, const char *id,
    const char *cause)
{
    ngx_memzero(call, sizeof(ngx_http_darkroom_lab_call_t));

    call->lcf = ngx_http_darkroom_labs_conf;
    call->db = db;
    call->timeout = timeout;
    call->id = id;
    call->cause = cause;
}


/* "sandbox", "live" or a base URL */

static char *
ngx_http_darkroom_labs_api(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    ngx_str_t                      *value, *field;
    ngx_http_darkroom_labs_conf_t  *lcf = conf;

    field = (ngx_str_t *) (p + cmd->offset);
    value = cf->args->elts;

    if (field->data) {
        return "is duplicate";
    }

    if (cmd->offset == offsetof(ngx_http_darkroom_labs_conf_t,
                                printspace.api))
    {
        /* checked once the protocol is known: nginx -t names this line */
        lcf->printspace_api_file = cf->conf_file->file.name;
        lcf->printspace_api_line = cf->conf_file->line;
    }

    if (ngx_strcmp(value[1].data, "sandbox") == 0
        || ngx_strcmp(value[1].data, "live") == 0)
    {
        if (cmd->offset == offsetof(ngx_http_darkroom_labs_conf_t,
                                    prodigi.api))
        {
            if (value[1].data[0] == 's') {
                ngx_str_set(field, "https://api.sandbox.prodigi.com");
            } else {
                ngx_str_set(field, "https://api.prodigi.com");
            }

        } else {
            /* the host depends on darkroom_printspace_protocol */
            *field = value[1];
        }

        return NGX_CONF_OK;
    }

    return ngx_http_darkroom_labs_url(cf, cmd, conf);
}


/*
 * theprintspace's base URL once the protocol is known: the current API
 * ("escher", the default) has no sandbox; the earlier one's sandbox host
 * is api.sandbox.tps-test.io (its swagger's "host").
 */

static char *
ngx_http_darkroom_labs_printspace_api(ngx_conf_t *cf,
    ngx_http_darkroom_labs_conf_t *lcf)
{
    ngx_str_t  *api;

    ngx_conf_init_uint_value(lcf->printspace.protocol,
                             NGX_HTTP_DARKROOM_PRINTSPACE_ESCHER);
    api = &lcf->printspace.api;

    if (lcf->printspace.protocol == NGX_HTTP_DARKROOM_PRINTSPACE_LEGACY) {
        if (api->data == NULL || ngx_strcmp(api->data, "sandbox") == 0) {
            ngx_str_set(api, "https://api.sandbox.tps-test.io");

        } else if (ngx_strcmp(api->data, "live") == 0) {
            ngx_str_set(api, "https://api.creativehub.io");
        }

        return NGX_CONF_OK;
    }

    if (api->data && ngx_strcmp(api->data, "live") == 0) {
        ngx_str_set(api, "https://escher-v2.creativehub.io");
        return NGX_CONF_OK;
    }

    if (api->data && ngx_strcmp(api->data, "sandbox") == 0) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "creativehub's current API has no sandbox: set "
                      "\"darkroom_printspace_api live\" (or a URL), or "
                      "\"darkroom_printspace_protocol legacy\" for the "
                      "earlier API and its sandbox in %V:%ui",
                      &lcf->printspace_api_file, lcf->printspace_api_line);
        return NGX_CONF_ERROR;
    }

    if (api->data == NULL && lcf->printspace.keys != NGX_CONF_UNSET_PTR
        && lcf->printspace.keys != NULL)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "creativehub's current API has no sandbox: set "
                           "\"darkroom_printspace_api live\" (or a URL), "
                           "or \"darkroom_printspace_protocol legacy\" for "
                           "the earlier API and its sandbox");
        return NGX_CONF_ERROR;
    }

    if (api->data == NULL) {
        ngx_str_set(api, "https://escher-v2.creativehub.io");
    }

    return NGX_CONF_OK;
}


/* a base URL; for the assets' one, also where its origin ends */

static char *
ngx_http_darkroom_labs_url(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_darkroom_labs_conf_t *lcf = conf;

    char    *rv;
    u_char  *slash;

    rv = ngx_http_darkroom_base_url(cf, cmd, conf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    if (cmd->offset == offsetof(ngx_http_darkroom_labs_conf_t, asset_url)) {
        slash = ngx_strlchr(lcf->asset_url.data + 8,
                            lcf->asset_url.data + lcf->asset_url.len, '/');
        lcf->asset_origin = slash ? (size_t) (slash - lcf->asset_url.data)
                                  : lcf->asset_url.len;
    }

    if (cmd->offset
        == offsetof(ngx_http_darkroom_labs_conf_t, gallery_asset_url))
    {
        slash = ngx_strlchr(lcf->gallery_asset_url.data + 8,
                            lcf->gallery_asset_url.data
                            + lcf->gallery_asset_url.len, '/');
        lcf->gallery_asset_origin = slash
                                    ? (size_t) (slash
                                                - lcf->gallery_asset_url.data)
                                    : lcf->gallery_asset_url.len;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_darkroom_labs_shipping(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_darkroom_labs_conf_t *lcf = conf;

    ngx_str_t   *value;
    ngx_uint_t   i;

    static const char  *methods[] = {
        "Budget", "Standard", "Express", "Overnight", NULL
    };

    if (lcf->prodigi_shipping.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    for (i = 0; methods[i]; i++) {
        if (ngx_strcasecmp(value[1].data, (u_char *) methods[i]) == 0) {
            lcf->prodigi_shipping.data = (u_char *) methods[i];
            lcf->prodigi_shipping.len = ngx_strlen(methods[i]);
            return NGX_CONF_OK;
        }
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid shipping method \"%V\", it must be Budget, "
                       "Standard, Express or Overnight", &value[1]);
    return NGX_CONF_ERROR;
}


static char *
ngx_http_darkroom_labs_delivery(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_darkroom_labs_conf_t *lcf = conf;

    ngx_str_t  *value;

    if (lcf->printspace_delivery.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 0) {
        return "takes \"cheapest\" or a delivery option's name";
    }

    if (ngx_strcmp(value[1].data, "cheapest") == 0) {
        ngx_str_set(&lcf->printspace_delivery, "");
        return NGX_CONF_OK;
    }

    lcf->printspace_delivery = value[1];

    return NGX_CONF_OK;
}


static char *
ngx_http_darkroom_labs_reroute(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_darkroom_labs_conf_t *lcf = conf;

    ngx_int_t   n;
    ngx_str_t  *value;

    if (lcf->reroute_attempts != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    n = ngx_atoi(value[1].data, value[1].len);
    if (n < 1 || n > 1000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid number of attempts \"%V\", it must be "
                           "1 to 1000", &value[1]);
        return NGX_CONF_ERROR;
    }

    lcf->reroute_attempts = n;
    lcf->reroute_time = 0;

    if (cf->args->nelts == 3) {
        lcf->reroute_time = ngx_parse_time(&value[2], 1);
        if (lcf->reroute_time == (time_t) NGX_ERROR) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid time \"%V\"", &value[2]);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_darkroom_labs_callback(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_darkroom_labs_loc_conf_t *llcf = conf;

    ngx_str_t                             *value;
    ngx_http_darkroom_labs_conf_t         *lcf;
    const ngx_http_darkroom_lab_driver_t  *d;

    value = cf->args->elts;

    d = ngx_http_darkroom_lab_driver(NULL, (const char *) value[1].data);

    if (d == NULL || d->callback == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           d ? "lab \"%V\" sends no callbacks (it is "
                               "polled)"
                             : "unknown lab \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    lcf = ngx_http_conf_get_module_main_conf(cf,
                                             ngx_http_darkroom_labs_module);

    if (ngx_http_darkroom_use(cf, cmd, ngx_http_darkroom_lab_callback_handler,
                              &lcf->use_callback)
        == NULL)
    {
        return NGX_CONF_ERROR;
    }

    llcf->callback = d;

    /* the first lab's key file is required (see init_main_conf) */
    if (lcf->callback_driver == NULL) {
        lcf->callback_driver = d;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_darkroom_labs_admin(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_darkroom_labs_conf_t  *lcf;

    lcf = ngx_http_conf_get_module_main_conf(cf,
                                             ngx_http_darkroom_labs_module);

    if (ngx_http_darkroom_use(cf, cmd, ngx_http_darkroom_labs_admin_handler,
                              &lcf->use_admin)
        == NULL)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* ------------------------------------------------------------------ */
/* jobs                                                                */


static ngx_int_t
ngx_http_darkroom_lab_job_id(ngx_http_darkroom_job_t *job, char *id,
    ngx_http_darkroom_error_t *err)
{
    cJSON  *v;

    v = cJSON_GetObjectItemCaseSensitive(job->payload, "lab_order_id");

    if (!cJSON_IsNumber(v)) {
        v = cJSON_GetObjectItemCaseSensitive(job->payload, "order_id");
    }

    if (!cJSON_IsNumber(v) || v->valuedouble < 1) {
        snprintf(err->detail, sizeof(err->detail),
                 "%s: the payload has no id", job->kind);
        return NGX_DECLINED;
    }

    snprintf(id, NGX_INT64_LEN + 1, "%.0f", v->valuedouble);

    return NGX_OK;
}


/* "fulfil_order": the split, all in SQL (lab_fulfil) */

static ngx_int_t
ngx_http_darkroom_job_fulfil(ngx_http_darkroom_job_t *job,
    ngx_http_darkroom_error_t *err)
{
    char                            id[NGX_INT64_LEN + 1];
    char                            delay[NGX_INT64_LEN + 1];
    char                            cause[NGX_HTTP_DARKROOM_LAB_CAUSE_LEN];
    PGresult                       *res;
    const char                     *params[3];
    ngx_http_darkroom_labs_conf_t  *lcf = ngx_http_darkroom_labs_conf;

    if (!ngx_http_darkroom_labs_configured(lcf)) {
        /* no lab is configured: this shop makes and ships its own prints */
        return NGX_OK;
    }

    if (ngx_http_darkroom_lab_job_id(job, id, err) != NGX_OK) {
        return NGX_DECLINED;
    }

    snprintf(delay, sizeof(delay), "%ld", (long) lcf->fulfil_delay);
    snprintf(cause, sizeof(cause), "job:%lld", (long long) job->id);

    params[0] = id;
    params[1] = delay;
    params[2] = cause;

    res = ngx_http_darkroom_db_exec(job->db,
              "SELECT lab_fulfil($1::bigint, $2::int, $3)", 3, params, err);

    if (res == NULL) {
        return NGX_ERROR;
    }

    PQclear(res);

    return NGX_OK;
}


/*
 * "lab_submit": send one lab order to its lab.  Exactly once at the lab:
 * the idempotency key is the lab order's, fixed when it was made, so a
 * retry (after a timeout, a 5xx or a worker killed mid-send) finds the
 * order the first try made.
 */

/*
 * A lab order's ids mean something only at the API it was sent through
 * (lab_orders.lab_api): with another variant of the lab's API configured
 * now (d), neither polling nor sending again can help, a person must
 * decide.  NGX_DECLINED: another API, lr says so.
 */

static ngx_int_t
ngx_http_darkroom_lab_api_match(const ngx_http_darkroom_lab_driver_t *d,
    const char *api, ngx_http_darkroom_lab_result_t *lr)
{
    if (d->api == NULL || api == NULL || *api == '\0'
        || ngx_strcmp(api, d->api) == 0)
    {
        return NGX_OK;
    }

    lr->rc = NGX_DECLINED;
    ngx_http_darkroom_lab_error(lr, "%s: this lab order was sent through "
        "%s's %s API, but darkroom_%s_protocol is now %s: set it back (with "
        "that API's key file and URL) until the order is done, or finish it "
        "in %s by hand", d->brand, d->site, api, d->name, d->api, d->site);

    return NGX_DECLINED;
}


/* the API is recorded before the first send: a lost answer stays there */

static ngx_int_t
ngx_http_darkroom_lab_api_stamp(ngx_http_darkroom_lab_call_t *call,
    ngx_http_darkroom_lab_result_t *lr, ngx_http_darkroom_error_t *err)
{
    PGresult    *res;
    ngx_int_t    rc;
    const char  *params[2];

    params[0] = call->id;
    params[1] = call->driver->api;

    res = ngx_http_darkroom_db_exec(call->db,
              "SELECT lab_api_stamp($1::bigint, $2)", 2, params, err);
    if (res == NULL) {
        return NGX_ERROR;
    }

    rc = ngx_http_darkroom_lab_api_match(call->driver,
             ngx_http_darkroom_db_field(res, 0, "lab_api_stamp"), lr);
    PQclear(res);

    return rc;
}


/* the URL a lab calls back for a lab order: ?lo=<id>&token=<64 hex> */

static ngx_int_t
ngx_http_darkroom_lab_callback_url(ngx_http_darkroom_labs_conf_t *lcf,
    const char *id, char *buf, size_t size)
{
    char        token[NGX_HTTP_DARKROOM_LAB_TOKEN_SIZE];
    ngx_str_t  *secret;

    secret = lcf->callback_secrets->elts;

    if (ngx_http_darkroom_lab_token(&secret[0], id, token) != NGX_OK) {
        return NGX_ERROR;
    }

    snprintf(buf, size, "%s?lo=%s&token=%s", lcf->callback_url.data, id,
             token);

    return NGX_OK;
}


/* one lab order to its lab, through its driver; lr says how it went */

static ngx_int_t
ngx_http_darkroom_lab_send(ngx_http_darkroom_job_t *job, cJSON *doc,
    const char *lab, const char *id, const char *cause,
    ngx_http_darkroom_lab_result_t *lr, ngx_http_darkroom_error_t *err)
{
    char                            callback[NGX_HTTP_DARKROOM_LAB_URL_LEN];
    ngx_http_darkroom_lab_call_t    call;
    ngx_http_darkroom_labs_conf_t  *lcf = ngx_http_darkroom_labs_conf;

    ngx_http_darkroom_lab_call_init(&call, job->db, job->fetch_timeout, id,
                                    cause);

    call.driver = ngx_http_darkroom_lab_driver(lcf, lab);

    if (call.driver == NULL) {
        lr->rc = NGX_AGAIN;
        ngx_http_darkroom_lab_error(lr, "darkroom has no driver for lab "
                                    "\"%s\"", lab);
        return NGX_OK;
    }

    if (call.driver->callback && lcf->callback_url.data
        && lcf->callback_secrets)
    {
        if (ngx_http_darkroom_lab_callback_url(lcf, id, callback,
                                               sizeof(callback))
            != NGX_OK)
        {
            snprintf(err->detail, sizeof(err->detail),
                     "lab_submit: HMAC failed");
            return NGX_ERROR;
        }

        call.callback = callback;
    }

    if (call.driver->api) {
        switch (ngx_http_darkroom_lab_api_stamp(&call, lr, err)) {

        case NGX_OK:
            break;

        case NGX_DECLINED:
            /* sent through another API: lr refuses it */
            return NGX_OK;

        default:
            return NGX_ERROR;
        }
    }

    call.driver->submit(&call, doc, lr);

    return NGX_OK;
}


/* what the lab's answer (or its silence) means for the lab order */

static ngx_int_t
ngx_http_darkroom_lab_submit_done(ngx_http_darkroom_job_t *job,
    const char *id, const char *cause, ngx_http_darkroom_lab_result_t *lr,
    ngx_http_darkroom_error_t *err)
{
    char                            attempts[NGX_INT64_LEN + 1];
    char                            seconds[NGX_INT64_LEN + 1];
    char                            poll[NGX_INT64_LEN + 1];
    PGresult                       *res;
    ngx_int_t                       rc;
    const char                     *params[6], *outcome, *v;
    ngx_http_darkroom_labs_conf_t  *lcf = ngx_http_darkroom_labs_conf;

    params[0] = id;

    snprintf(poll, sizeof(poll), "%lu",
             (unsigned long) (lcf->poll_interval + 999) / 1000);

    if (lr->rc == NGX_OK) {
        outcome = lr->outcome;
        params[1] = lr->lab_order_id;
        params[2] = outcome;
        params[3] = lr->detail ? lr->detail : "{}";
        params[4] = poll;
        params[5] = cause;

        res = ngx_http_darkroom_db_exec(job->db,
                  "SELECT lab_submitted($1::bigint, $2, $3, $4::jsonb,"
                  " $5::int, $6)", 6, params, err);

        free(lr->detail);

        if (res == NULL) {
            /* the lab has it; the retry gets AlreadyExists */
            return NGX_ERROR;
        }

        PQclear(res);
        return NGX_OK;
    }

    if (lr->rc == NGX_DECLINED) {
        params[1] = lr->error;
        params[2] = lr->detail ? lr->detail : "{}";
        params[3] = cause;

        res = ngx_http_darkroom_db_exec(job->db,
                  "SELECT lab_submit_refused($1::bigint, $2, $3::jsonb, $4)",
                  4, params, err);

        free(lr->detail);

        if (res == NULL) {
            return NGX_ERROR;
        }

        PQclear(res);
        return NGX_OK;
    }

    /* worth retrying: the lab order's attempts decide how long */

    free(lr->detail);

    snprintf(attempts, sizeof(attempts), "%lu",
             (unsigned long) lcf->reroute_attempts);
    snprintf(seconds, sizeof(seconds), "%ld", (long) lcf->reroute_time);

    params[1] = lr->error;
    params[2] = attempts;
    params[3] = seconds;
    params[4] = cause;

    res = ngx_http_darkroom_db_exec(job->db,
              "SELECT lab_submit_failed($1::bigint, $2, $3::int, $4::int,"
              " $5)", 5, params, err);

    if (res == NULL) {
        return NGX_ERROR;
    }

    v = ngx_http_darkroom_db_field(res, 0, "lab_submit_failed");
    rc = (v && ngx_strcmp(v, "retry") == 0) ? NGX_ERROR : NGX_OK;
    PQclear(res);

    snprintf(err->detail, sizeof(err->detail), "%s", lr->error);
    job->retry_after = lr->retry_after;

    return rc;
}


static ngx_int_t
ngx_http_darkroom_job_lab_submit(ngx_http_darkroom_job_t *job,
    ngx_http_darkroom_error_t *err)
{
    char                            id[NGX_INT64_LEN + 1];
    char                            cause[NGX_HTTP_DARKROOM_LAB_CAUSE_LEN];
    cJSON                          *doc, *hold;
    PGresult                       *res;
    const char                     *lab, *status, *params[1], *json;
    ngx_http_darkroom_lab_result_t  lr;

    if (ngx_http_darkroom_lab_job_id(job, id, err) != NGX_OK) {
        return NGX_DECLINED;
    }

    params[0] = id;

    res = ngx_http_darkroom_db_exec(job->db, "SELECT lab_submit_json($1)",
                                    1, params, err);
    if (res == NULL) {
        return NGX_ERROR;
    }

    json = ngx_http_darkroom_db_field(res, 0, "lab_submit_json");
    doc = json ? cJSON_Parse(json) : NULL;
    PQclear(res);

    if (doc == NULL) {
        snprintf(err->detail, sizeof(err->detail),
                 "lab_submit: no lab order %s", id);
        return NGX_DECLINED;
    }

    lab = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(doc, "lab"));
    status = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(doc,
                                                                  "status"));

    if (lab == NULL || status == NULL
        || (ngx_strcmp(status, "pending") != 0
            && ngx_strcmp(status, "held") != 0))
    {
        /* sent, cancelled or rerouted meanwhile: nothing to do */
        cJSON_Delete(doc);
        return NGX_OK;
    }

    hold = cJSON_GetObjectItemCaseSensitive(doc, "hold");

    if (cJSON_IsNumber(hold) && hold->valuedouble > 0) {
        /* held for review (darkroom_fulfil_delay) */
        job->retry_after = (ngx_msec_t) hold->valuedouble * 1000;
        cJSON_Delete(doc);
        return NGX_AGAIN;
    }

    snprintf(cause, sizeof(cause), "job:%lld", (long long) job->id);

    ngx_memzero(&lr, sizeof(ngx_http_darkroom_lab_result_t));

    if (ngx_http_darkroom_lab_send(job, doc, lab, id, cause, &lr, err)
        != NGX_OK)
    {
        cJSON_Delete(doc);
        return NGX_ERROR;
    }

    cJSON_Delete(doc);

    return ngx_http_darkroom_lab_submit_done(job, id, cause, &lr, err);
}


/*
 * Fetches a lab order's state from its lab and applies it; status gets
 * the lab order's status afterwards.  NGX_DECLINED: nothing to fetch.
 */

static ngx_int_t
ngx_http_darkroom_lab_refresh(ngx_http_darkroom_lab_call_t *call,
    char *status, size_t size, ngx_http_darkroom_lab_result_t *lr)
{
    PGresult                       *res;
    const char                     *params[6], *v;
    ngx_http_darkroom_error_t       err;
    ngx_http_darkroom_lab_state_t   st;

    ngx_memzero(&err, sizeof(ngx_http_darkroom_error_t));

    params[0] = call->id;

    res = ngx_http_darkroom_db_exec(call->db,
              "SELECT * FROM lab_follow($1::bigint)", 1, params, &err);

    if (res == NULL) {
        lr->rc = NGX_AGAIN;
        ngx_http_darkroom_lab_error(lr, "%s", err.detail);
        return NGX_ERROR;
    }

    v = ngx_http_darkroom_db_field(res, 0, "status");

    if (v) {
        ngx_cpystrn((u_char *) status, (u_char *) v, size);
    }

    if (v == NULL || ngx_http_darkroom_db_field(res, 0, "lab_order_id") == NULL
        || ngx_http_darkroom_lab_final(status))
    {
        /* no such lab order, not sent yet, or done */
        PQclear(res);
        return NGX_DECLINED;
    }

    ngx_memzero(&st, sizeof(ngx_http_darkroom_lab_state_t));

    ngx_http_darkroom_lab_follow(call, res, &st, lr);

    PQclear(res);

    if (lr->rc != NGX_OK) {
        free(st.shipments);
        return NGX_ERROR;
    }

    params[1] = st.stage;
    params[2] = st.lab_status;
    params[3] = st.shipments;
    params[4] = call->cause;
    params[5] = st.reason[0] ? st.reason : NULL;

    res = ngx_http_darkroom_db_exec(call->db,
              "SELECT lab_apply($1::bigint, $2, $3, $4::jsonb, $5, $6)",
              6, params, &err);

    free(st.shipments);

    if (res == NULL) {
        lr->rc = NGX_AGAIN;
        ngx_http_darkroom_lab_error(lr, "%s", err.detail);
        return NGX_ERROR;
    }

    v = ngx_http_darkroom_db_field(res, 0, "lab_apply");
    ngx_cpystrn((u_char *) status, (u_char *) (v ? v : ""), size);
    PQclear(res);

    return NGX_OK;
}


/* a lab order that is done: nothing left to follow */

static ngx_int_t
ngx_http_darkroom_lab_final(const char *status)
{
    return ngx_strcmp(status, "shipped") == 0
           || ngx_strcmp(status, "cancelled") == 0
           || ngx_strcmp(status, "rerouted") == 0;
}


/*
 * The state of the lab order in res (lab_follow(): lab, lab_order_id,
 * lab_api, lab_status) at its lab, through the API it was sent through.
 */

static void
ngx_http_darkroom_lab_follow(ngx_http_darkroom_lab_call_t *call,
    PGresult *res, ngx_http_darkroom_lab_state_t *st,
    ngx_http_darkroom_lab_result_t *lr)
{
    const char  *lab, *status;

    lab = ngx_http_darkroom_db_field(res, 0, "lab");
    call->driver = ngx_http_darkroom_lab_driver(ngx_http_darkroom_labs_conf,
                                                lab ? lab : "");

    if (call->driver == NULL) {
        lr->rc = NGX_AGAIN;
        ngx_http_darkroom_lab_error(lr, "darkroom has no driver for lab "
                                    "\"%s\"", lab ? lab : "");
        return;
    }

    if (ngx_http_darkroom_lab_api_match(call->driver,
            ngx_http_darkroom_db_field(res, 0, "lab_api"), lr)
        != NGX_OK)
    {
        /* not asked at the wrong API: applied as a state that needs care */
        status = ngx_http_darkroom_db_field(res, 0, "lab_status");
        st->stage = "attention";
        ngx_cpystrn((u_char *) st->reason, (u_char *) lr->error,
                    sizeof(st->reason));
        ngx_cpystrn((u_char *) st->lab_status,
                    (u_char *) (status ? status : ""),
                    sizeof(st->lab_status));
        st->shipments = strdup("[]");
        lr->rc = st->shipments ? NGX_OK : NGX_AGAIN;
        return;
    }

    call->driver->fetch(call,
                        ngx_http_darkroom_db_field(res, 0, "lab_order_id"),
                        st, lr);
}


/* "lab_poll": follow a lab order until it has shipped or is cancelled */

static ngx_int_t
ngx_http_darkroom_job_lab_poll(ngx_http_darkroom_job_t *job,
    ngx_http_darkroom_error_t *err)
{
    char                            id[NGX_INT64_LEN + 1];
    char                            cause[NGX_HTTP_DARKROOM_LAB_CAUSE_LEN];
    char                            status[NGX_HTTP_DARKROOM_LAB_STATUS_LEN];
    ngx_int_t                       rc;
    ngx_http_darkroom_lab_call_t    call;
    ngx_http_darkroom_lab_result_t  lr;

    if (ngx_http_darkroom_lab_job_id(job, id, err) != NGX_OK) {
        return NGX_DECLINED;
    }

    snprintf(cause, sizeof(cause), "poll:job:%lld", (long long) job->id);
    ngx_http_darkroom_lab_call_init(&call, job->db, job->fetch_timeout, id,
                                    cause);
    ngx_memzero(&lr, sizeof(ngx_http_darkroom_lab_result_t));
    status[0] = '\0';

    rc = ngx_http_darkroom_lab_refresh(&call, status, sizeof(status), &lr);

    if (rc == NGX_DECLINED) {
        return NGX_OK;
    }

    if (rc != NGX_OK) {
        snprintf(err->detail, sizeof(err->detail), "%s", lr.error);
        job->retry_after = lr.retry_after;
        return NGX_ERROR;
    }

    if (ngx_http_darkroom_lab_final(status)) {
        return NGX_OK;
    }

    job->retry_after = ngx_http_darkroom_labs_conf->poll_interval;

    return NGX_AGAIN;
}


/* a lab without a cancel API: the lab order is flagged for a person */

static ngx_int_t
ngx_http_darkroom_lab_cancel_by_hand(ngx_http_darkroom_lab_call_t *call,
    ngx_http_darkroom_error_t *err)
{
    char         why[NGX_HTTP_DARKROOM_LAB_REASON_LEN];
    const char  *params[3];

    snprintf(why, sizeof(why), "%s has no cancel API: cancel this order by "
             "hand in %s", call->driver->brand, call->driver->site);

    params[0] = call->id;
    params[1] = why;
    params[2] = call->cause;

    if (ngx_http_darkroom_db_command(call->db,
            "SELECT lab_cancel_by_hand($1::bigint, $2, $3)", 3, params, err)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* "lab_cancel": a refund (or the admin) before production */

static ngx_int_t
ngx_http_darkroom_job_lab_cancel(ngx_http_darkroom_job_t *job,
    ngx_http_darkroom_error_t *err)
{
    char                            id[NGX_INT64_LEN + 1];
    char                            cause[NGX_HTTP_DARKROOM_LAB_CAUSE_LEN];
    char                            status[NGX_HTTP_DARKROOM_LAB_STATUS_LEN];
    char                            order[NGX_HTTP_DARKROOM_LAB_ORDER_ID_LEN];
    PGresult                       *res;
    ngx_int_t                       rc;
    const char                     *params[4];
    ngx_http_darkroom_lab_call_t    call;
    ngx_http_darkroom_lab_result_t  lr;

    if (ngx_http_darkroom_lab_job_id(job, id, err) != NGX_OK) {
        return NGX_DECLINED;
    }

    snprintf(cause, sizeof(cause), "job:%lld", (long long) job->id);
    ngx_http_darkroom_lab_call_init(&call, job->db, job->fetch_timeout, id,
                                    cause);

    rc = ngx_http_darkroom_lab_cancel_target(&call, order, sizeof(order),
                                             err);
    if (rc != NGX_OK) {
        return (rc == NGX_DECLINED) ? NGX_OK : rc;
    }

    if (call.driver->cancel == NULL) {
        return ngx_http_darkroom_lab_cancel_by_hand(&call, err);
    }

    ngx_memzero(&lr, sizeof(ngx_http_darkroom_lab_result_t));

    call.driver->cancel(&call, order, &lr);

    if (lr.rc == NGX_AGAIN) {
        snprintf(err->detail, sizeof(err->detail), "%s", lr.error);
        job->retry_after = lr.retry_after;
        return NGX_ERROR;
    }

    params[0] = id;
    params[1] = (lr.rc == NGX_OK) ? "cancelled" : "refused";
    params[2] = (lr.rc == NGX_OK) ? lr.outcome : lr.error;
    params[3] = cause;

    res = ngx_http_darkroom_db_exec(job->db,
              "SELECT lab_cancel_result($1::bigint, $2, $3, $4)",
              4, params, err);
    if (res == NULL) {
        return NGX_ERROR;
    }

    PQclear(res);

    if (lr.rc != NGX_OK) {
        /* too late: record where the order really is */
        ngx_memzero(&lr, sizeof(ngx_http_darkroom_lab_result_t));
        (void) ngx_http_darkroom_lab_refresh(&call, status, sizeof(status),
                                             &lr);
    }

    return NGX_OK;
}


/*
 * The lab order of a "lab_cancel" job, if it is still to be cancelled at
 * its lab: its driver (in call) and the lab's order id.  NGX_DECLINED:
 * nothing to cancel.
 */

static ngx_int_t
ngx_http_darkroom_lab_cancel_target(ngx_http_darkroom_lab_call_t *call,
    char *order, size_t size, ngx_http_darkroom_error_t *err)
{
    PGresult    *res;
    const char  *lab, *params[1], *v;

    params[0] = call->id;

    res = ngx_http_darkroom_db_exec(call->db,
              "SELECT * FROM lab_cancel_target($1::bigint)", 1, params, err);
    if (res == NULL) {
        return NGX_ERROR;
    }

    lab = ngx_http_darkroom_db_field(res, 0, "lab");
    v = ngx_http_darkroom_db_field(res, 0, "lab_order_id");

    if (lab == NULL || v == NULL) {
        PQclear(res);
        return NGX_DECLINED;
    }

    call->driver = ngx_http_darkroom_lab_driver(ngx_http_darkroom_labs_conf,
                                                lab);
    if (call->driver == NULL) {
        snprintf(err->detail, sizeof(err->detail),
                 "lab_cancel: darkroom has no driver for lab \"%s\"", lab);
        PQclear(res);
        return NGX_ERROR;
    }

    ngx_cpystrn((u_char *) order, (u_char *) v, size);
    PQclear(res);

    return NGX_OK;
}


/* ------------------------------------------------------------------ */
/* lab callbacks                                                       */


static ngx_int_t
ngx_http_darkroom_lab_callback_handler(ngx_http_request_t *r)
{
    if (r->method != NGX_HTTP_POST) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    return ngx_http_darkroom_task_start(r,
               sizeof(ngx_http_darkroom_lab_callback_t),
               ngx_http_darkroom_lab_callback_prepare,
               ngx_http_darkroom_lab_callback_work, NULL);
}


/*
 * A callback token against every secret, in constant time each
 * (rotation).  NGX_DECLINED: none made it.
 */

static ngx_int_t
ngx_http_darkroom_lab_token_ok(ngx_http_darkroom_labs_conf_t *lcf,
    const char *id, u_char *token)
{
    char         expect[NGX_HTTP_DARKROOM_LAB_TOKEN_SIZE];
    ngx_str_t   *secret;
    ngx_uint_t   i, match;

    secret = lcf->callback_secrets->elts;
    match = 0;

    for (i = 0; i < lcf->callback_secrets->nelts; i++) {
        if (ngx_http_darkroom_lab_token(&secret[i], id, expect) != NGX_OK) {
            return NGX_ERROR;
        }

        match |= (CRYPTO_memcmp(expect, token,
                                NGX_HTTP_DARKROOM_LAB_TOKEN_LEN) == 0);
    }

    return match ? NGX_OK : NGX_DECLINED;
}


/* ?lo=<lab order id>&token=<64 hex>, checked before anything is read */

static ngx_int_t
ngx_http_darkroom_lab_callback_prepare(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t)
{
    cJSON                              *body;
    ngx_str_t                           lo, token;
    const char                         *event;
    ngx_http_darkroom_labs_conf_t      *lcf;
    ngx_http_darkroom_lab_callback_t   *cb = t->data;
    ngx_http_darkroom_labs_loc_conf_t  *llcf;

    lcf = ngx_http_get_module_main_conf(r, ngx_http_darkroom_labs_module);
    llcf = ngx_http_get_module_loc_conf(r, ngx_http_darkroom_labs_module);

    if (ngx_http_arg(r, (u_char *) "lo", 2, &lo) != NGX_OK
        || lo.len == 0 || lo.len > 18
        || ngx_atoi(lo.data, lo.len) == NGX_ERROR
        || ngx_http_arg(r, (u_char *) "token", 5, &token) != NGX_OK
        || token.len != NGX_HTTP_DARKROOM_LAB_TOKEN_LEN)
    {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "darkroom: lab callback refused: no lab order or "
                      "token");
        return ngx_http_darkroom_send_error(r, NGX_HTTP_FORBIDDEN,
                   "bad_token", "The callback URL is not valid.");
    }

    ngx_memcpy(cb->id, lo.data, lo.len);
    cb->id[lo.len] = '\0';

    switch (ngx_http_darkroom_lab_token_ok(lcf, cb->id, token.data)) {

    case NGX_OK:
        ngx_http_darkroom_alerts_signature("lab_callback", 1);
        break;

    case NGX_DECLINED:
        /* a run of them with none good: a rotated key (darkroom_alerts) */
        ngx_http_darkroom_alerts_signature("lab_callback", 0);
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "darkroom: lab callback refused: bad token for lab "
                      "order %s", cb->id);
        return ngx_http_darkroom_send_error(r, NGX_HTTP_FORBIDDEN,
                   "bad_token", "The callback URL is not valid.");

    default:
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the body is not trusted: only its event id is kept, for history */

    body = cJSON_ParseWithLength((char *) t->body.data, t->body.len);
    event = llcf->callback->callback(body);

    ngx_snprintf((u_char *) cb->event, sizeof(cb->event) - 1,
                 "callback:%s%Z",
                 event && strlen(event) < 100 ? event : "-");

    cJSON_Delete(body);

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "darkroom: %s callback accepted for lab order %s (%s)",
                   llcf->callback->name, cb->id, cb->event);

    return NGX_OK;
}


static void
ngx_http_darkroom_lab_callback_work(ngx_http_darkroom_task_t *t)
{
    char                               status[NGX_HTTP_DARKROOM_LAB_STATUS_LEN];
    char                              *out;
    ngx_int_t                          rc;
    const char                        *params[1];
    ngx_http_darkroom_lab_call_t       call;
    ngx_http_darkroom_lab_result_t     lr;
    ngx_http_darkroom_lab_callback_t  *cb = t->data;

    ngx_http_darkroom_lab_call_init(&call, &t->db, t->fetch_timeout, cb->id,
                                    cb->event);
    ngx_memzero(&lr, sizeof(ngx_http_darkroom_lab_result_t));
    status[0] = '\0';

    rc = ngx_http_darkroom_lab_refresh(&call, status, sizeof(status), &lr);

    if (rc == NGX_ERROR) {
        /* the lab unreachable now: the poll job asks again, soon */
        params[0] = cb->id;

        if (ngx_http_darkroom_db_command(&t->db,
                "SELECT lab_poll_soon($1::bigint)", 1, params, &t->err)
            != NGX_OK)
        {
            return;
        }

        snprintf(t->err.detail, sizeof(t->err.detail),
                 "lab callback for lab order %s: %.300s, polling instead",
                 cb->id, lr.error);
        ngx_cpystrn((u_char *) status, (u_char *) "queued", sizeof(status));
    }

    if (rc == NGX_DECLINED && status[0] == '\0') {
        ngx_http_darkroom_error_set(&t->err, NGX_HTTP_NOT_FOUND,
                                    "not_found", "There is no such lab "
                                    "order.");
        return;
    }

    out = malloc(NGX_HTTP_DARKROOM_LAB_ANSWER_LEN);
    if (out == NULL) {
        ngx_http_darkroom_error_set(&t->err, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                    "internal_error", "Out of memory.");
        return;
    }

    t->out_len = snprintf(out, NGX_HTTP_DARKROOM_LAB_ANSWER_LEN,
                          "{\"received\":true,\"status\":\"%s\"}", status);
    t->out = out;
    t->status = NGX_HTTP_OK;
}


/* ------------------------------------------------------------------ */
/* the lab admin API                                                   */


static ngx_int_t
ngx_http_darkroom_labs_admin_handler(ngx_http_request_t *r)
{
    if (ngx_http_darkroom_admin_auth(r) != NGX_OK) {
        return ngx_http_darkroom_admin_refuse(r);
    }

    return ngx_http_darkroom_task_start(r,
               sizeof(ngx_http_darkroom_labs_admin_t),
               ngx_http_darkroom_labs_admin_prepare,
               ngx_http_darkroom_labs_admin_work, NULL);
}


/* the admin action chosen, traced at debug level */

static ngx_int_t
ngx_http_darkroom_labs_admin_prepare(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t)
{
    ngx_int_t                        rc;
    ngx_http_darkroom_labs_admin_t  *a = t->data;

    static const char  *routes[] = {
        "list", "get", "retry", "reroute", "cancel", "resolve",
        "products", "product upsert", "product delete"
    };

    rc = ngx_http_darkroom_labs_admin_route(r, t);

    if (rc == NGX_OK && !r->header_sent) {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "darkroom: lab admin %s, %s",
                       routes[a->route],
                       (a->route == NGX_HTTP_DARKROOM_LABS_LIST
                        || a->route == NGX_HTTP_DARKROOM_LABS_PRODUCTS)
                       ? "-" : a->arg[0]);
    }

    return rc;
}


/*
 * Paths relative to the location:
 *
 *   GET  orders?status=&order=&limit=    GET  orders/<id>
 *   POST orders/<id>/retry | orders/<id>/reroute {"lab"} |
 *        orders/<id>/cancel | orders/<id>/resolve
 *   GET  products                        (the product-to-lab mapping)
 *   POST products/<product> {"lab","sku","attributes","sizing","priority"}
 *   DELETE products/<product>/<lab>
 */

static ngx_int_t
ngx_http_darkroom_labs_admin_route(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t)
{
    u_char                          *p, *end;
    ngx_str_t                        path, seg[3];
    ngx_uint_t                       n, get, post;
    ngx_http_darkroom_labs_admin_t  *a = t->data;

    ngx_http_darkroom_location_path(r, &path);

    n = 0;
    p = path.data;
    end = path.data + path.len;

    while (p < end && n < 3) {
        seg[n].data = p;

        while (p < end && *p != '/') {
            p++;
        }

        seg[n].len = p - seg[n].data;
        n++;
        p++;
    }

    get = (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)) ? 1 : 0;
    post = (r->method == NGX_HTTP_POST) ? 1 : 0;

    if (p >= end && n > 0 && ngx_http_darkroom_is(seg[0], "products")) {
        return ngx_http_darkroom_labs_products_route(r, t, seg, n);
    }

    if (!get && !post) {
        return ngx_http_darkroom_send_error(r, NGX_HTTP_NOT_ALLOWED,
                   "method_not_allowed", "Use GET to read and POST to "
                   "change.");
    }

    if (p < end || n == 0 || seg[0].len != 6
        || ngx_strncmp(seg[0].data, "orders", 6) != 0
        || (n >= 2 && ngx_atoi(seg[1].data, seg[1].len) == NGX_ERROR))
    {
        goto not_found;
    }

    if (n == 1 && get) {
        a->route = NGX_HTTP_DARKROOM_LABS_LIST;
        a->arg[0] = ngx_http_darkroom_query_arg(r, "status");
        a->arg[1] = ngx_http_darkroom_query_arg(r, "order");
        a->arg[2] = ngx_http_darkroom_query_arg(r, "limit");
        return NGX_OK;
    }

    if (n == 1) {
        goto not_found;
    }

    a->arg[0] = ngx_http_darkroom_cstr(r->pool, seg[1].data, seg[1].len);
    a->body = ngx_http_darkroom_cstr(r->pool, t->body.data, t->body.len);

    if (a->arg[0] == NULL || a->body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (n == 2 && get) {
        a->route = NGX_HTTP_DARKROOM_LABS_GET;
        return NGX_OK;
    }

    if (n == 3 && post) {
        if (seg[2].len == 5 && ngx_strncmp(seg[2].data, "retry", 5) == 0) {
            a->route = NGX_HTTP_DARKROOM_LABS_RETRY;
            return NGX_OK;
        }

        if (seg[2].len == 7 && ngx_strncmp(seg[2].data, "reroute", 7) == 0)
        {
            a->route = NGX_HTTP_DARKROOM_LABS_REROUTE;
            return NGX_OK;
        }

        if (seg[2].len == 6 && ngx_strncmp(seg[2].data, "cancel", 6) == 0) {
            a->route = NGX_HTTP_DARKROOM_LABS_CANCEL;
            return NGX_OK;
        }

        if (seg[2].len == 7 && ngx_strncmp(seg[2].data, "resolve", 7) == 0)
        {
            a->route = NGX_HTTP_DARKROOM_LABS_RESOLVE;
            return NGX_OK;
        }
    }

not_found:

    return ngx_http_darkroom_send_error(r, NGX_HTTP_NOT_FOUND, "not_found",
                                        "There is no such lab admin "
                                        "resource.");
}


/* products, products/<product> (POST), products/<product>/<lab> (DELETE) */

static ngx_int_t
ngx_http_darkroom_labs_products_route(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t, ngx_str_t *seg, ngx_uint_t n)
{
    ngx_uint_t                       i;
    ngx_http_darkroom_labs_admin_t  *a = t->data;

    for (i = 1; i < n; i++) {
        if (seg[i].len == 0 || seg[i].len > 64) {
            return ngx_http_darkroom_send_error(r, NGX_HTTP_NOT_FOUND,
                       "not_found", "There is no such lab admin resource.");
        }
    }

    if (n == 1 && (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        a->route = NGX_HTTP_DARKROOM_LABS_PRODUCTS;
        return NGX_OK;
    }

    if (n == 2 && r->method == NGX_HTTP_POST) {
        a->route = NGX_HTTP_DARKROOM_LABS_PRODUCT_PUT;

    } else if (n == 3 && r->method == NGX_HTTP_DELETE) {
        a->route = NGX_HTTP_DARKROOM_LABS_PRODUCT_DELETE;

    } else {
        return ngx_http_darkroom_send_error(r, NGX_HTTP_NOT_ALLOWED,
                   "method_not_allowed", (n == 1)
                   ? "Use GET to list the products and their labs."
                   : (n == 2) ? "Use POST to set one lab of a product."
                   : "Use DELETE to remove a lab from a product.");
    }

    a->arg[0] = ngx_http_darkroom_cstr(r->pool, seg[1].data, seg[1].len);
    a->arg[1] = (n == 3) ? ngx_http_darkroom_cstr(r->pool, seg[2].data,
                                                  seg[2].len)
                         : "";
    a->body = ngx_http_darkroom_cstr(r->pool, t->body.data, t->body.len);

    if (a->arg[0] == NULL || a->arg[1] == NULL || a->body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_darkroom_labs_admin_work(ngx_http_darkroom_task_t *t)
{
    cJSON                           *body, *lab;
    PGresult                        *res;
    const char                      *params[3];
    ngx_http_darkroom_labs_admin_t  *a = t->data;

    res = NULL;

    switch (a->route) {

    case NGX_HTTP_DARKROOM_LABS_LIST:
        params[0] = a->arg[0];
        params[1] = a->arg[1];
        params[2] = a->arg[2] ? a->arg[2] : "100";
        res = ngx_http_darkroom_db_exec(&t->db,
                  "SELECT lab_admin_list_json($1, $2, $3::int)", 3, params,
                  &t->err);
        break;

    case NGX_HTTP_DARKROOM_LABS_GET:
        params[0] = a->arg[0];
        res = ngx_http_darkroom_db_exec(&t->db,
                  "SELECT lab_admin_order_json($1::bigint)", 1, params,
                  &t->err);
        break;

    case NGX_HTTP_DARKROOM_LABS_RETRY:
        params[0] = a->arg[0];
        res = ngx_http_darkroom_db_exec(&t->db,
                  "SELECT lab_admin_retry($1::bigint)", 1, params, &t->err);
        break;

    case NGX_HTTP_DARKROOM_LABS_REROUTE:
        body = ngx_http_darkroom_json_object(&t->err, a->body, 1);

        if (body == NULL) {
            return;
        }

        lab = cJSON_GetObjectItemCaseSensitive(body, "lab");

        params[0] = a->arg[0];
        params[1] = cJSON_IsString(lab) ? lab->valuestring : NULL;
        res = ngx_http_darkroom_db_exec(&t->db,
                  "SELECT lab_admin_reroute($1::bigint, $2)", 2, params,
                  &t->err);
        cJSON_Delete(body);
        break;

    case NGX_HTTP_DARKROOM_LABS_CANCEL:
        params[0] = a->arg[0];
        res = ngx_http_darkroom_db_exec(&t->db,
                  "SELECT lab_admin_cancel($1::bigint)", 1, params, &t->err);
        break;

    case NGX_HTTP_DARKROOM_LABS_RESOLVE:
        /* a refunded lab order the lab would not stop: a person decided */
        params[0] = a->arg[0];
        res = ngx_http_darkroom_db_exec(&t->db,
                  "SELECT lab_admin_resolve($1::bigint)", 1, params,
                  &t->err);
        break;

    default:
        res = ngx_http_darkroom_labs_products_work(t);
        break;
    }

    if (res == NULL) {
        return;
    }

    ngx_http_darkroom_task_answer(t, res, "There is no such lab order.");
}


/* the product-to-lab mapping: the rules are lab_product_*() in SQL */

static PGresult *
ngx_http_darkroom_labs_products_work(ngx_http_darkroom_task_t *t)
{
    cJSON                           *json;
    const char                      *params[2];
    ngx_http_darkroom_labs_admin_t  *a = t->data;

    if (a->route == NGX_HTTP_DARKROOM_LABS_PRODUCTS) {
        return ngx_http_darkroom_db_exec(&t->db,
                   "SELECT lab_products_admin_json()", 0, NULL, &t->err);
    }

    params[0] = a->arg[0];
    params[1] = a->route == NGX_HTTP_DARKROOM_LABS_PRODUCT_DELETE
                ? a->arg[1] : a->body;

    if (a->route == NGX_HTTP_DARKROOM_LABS_PRODUCT_DELETE) {
        return ngx_http_darkroom_db_exec(&t->db,
                   "SELECT lab_product_delete($1, $2)", 2, params, &t->err);
    }

    /* malformed JSON is the client's fault, not a server error */
    json = ngx_http_darkroom_json_object(&t->err, a->body, 0);

    if (json == NULL) {
        return NULL;
    }

    cJSON_Delete(json);

    return ngx_http_darkroom_db_exec(&t->db,
               "SELECT lab_product_upsert($1, $2::jsonb)", 2, params,
               &t->err);
}
