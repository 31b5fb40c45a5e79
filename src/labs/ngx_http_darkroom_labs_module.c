
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
 *               (theprintspace has no webhooks; for Prodigi a safety net)
 *   lab_cancel  cancel it at the lab (a refund before production)
 *
 * Prodigi's callbacks reach "darkroom_lab_callback prodigi": the URL
 * carries a per-lab-order token, HMAC-SHA256 of the lab order id under
 * darkroom_lab_callback_secret_file, checked in constant time on the event
 * loop; then the order is fetched from Prodigi rather than trusting the
 * body.  "darkroom_lab_admin" lists lab orders with their history and
 * retries, reroutes or cancels them.
 */


#include "ngx_http_darkroom_labs.h"
#include "ngx_http_darkroom_sign.h"

#include <stdarg.h>
#include <openssl/crypto.h>


#define NGX_HTTP_DARKROOM_LABS_ADMIN_ARGS  3


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
    NGX_HTTP_DARKROOM_LABS_RESOLVE
} ngx_http_darkroom_labs_route_e;


typedef struct {
    ngx_http_darkroom_labs_route_e    route;
    char                             *arg[NGX_HTTP_DARKROOM_LABS_ADMIN_ARGS];
    char                             *body;
} ngx_http_darkroom_labs_admin_t;


static void *ngx_http_darkroom_labs_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_darkroom_labs_init_main_conf(ngx_conf_t *cf,
    void *conf);
static ngx_int_t ngx_http_darkroom_labs_postconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_darkroom_labs_init_process(ngx_cycle_t *cycle);
static char *ngx_http_darkroom_labs_api(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_darkroom_labs_url(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_darkroom_labs_printspace_api(ngx_conf_t *cf,
    ngx_http_darkroom_labs_conf_t *lcf);
static void ngx_http_darkroom_lab_answer(
    ngx_http_darkroom_fetch_resp_t *resp, const char *name,
    const char *method, const char *path, cJSON **out,
    ngx_http_darkroom_lab_result_t *res);
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
static ngx_int_t ngx_http_darkroom_lab_refresh(ngx_http_darkroom_db_t *db,
    ngx_msec_t timeout, const char *id, const char *cause, char *status,
    size_t size, ngx_http_darkroom_lab_result_t *res);
static ngx_int_t ngx_http_darkroom_lab_send(ngx_http_darkroom_job_t *job,
    cJSON *doc, const char *lab, const char *id, const char *cause,
    ngx_http_darkroom_lab_result_t *lr, ngx_http_darkroom_error_t *err);
static ngx_int_t ngx_http_darkroom_lab_submit_done(
    ngx_http_darkroom_job_t *job, const char *id, const char *cause,
    ngx_http_darkroom_lab_result_t *lr, ngx_http_darkroom_error_t *err);
static ngx_int_t ngx_http_darkroom_lab_job_id(ngx_http_darkroom_job_t *job,
    char *id, ngx_http_darkroom_error_t *err);
static const char *ngx_http_darkroom_lab_api_now(void);
static ngx_int_t ngx_http_darkroom_lab_api_match(const char *api,
    ngx_http_darkroom_lab_result_t *lr);
static ngx_int_t ngx_http_darkroom_lab_api_stamp(ngx_http_darkroom_job_t *job,
    const char *id, ngx_http_darkroom_lab_result_t *lr,
    ngx_http_darkroom_error_t *err);
static void ngx_http_darkroom_lab_follow(ngx_msec_t timeout, PGresult *res,
    ngx_http_darkroom_lab_state_t *st, ngx_http_darkroom_lab_result_t *lr);

static ngx_int_t ngx_http_darkroom_lab_callback_handler(
    ngx_http_request_t *r);
static ngx_int_t ngx_http_darkroom_lab_callback_prepare(
    ngx_http_request_t *r, ngx_http_darkroom_task_t *t);
static void ngx_http_darkroom_lab_callback_work(ngx_http_darkroom_task_t *t);

static ngx_int_t ngx_http_darkroom_labs_admin_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_darkroom_labs_admin_prepare(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t);
static void ngx_http_darkroom_labs_admin_work(ngx_http_darkroom_task_t *t);


static ngx_conf_enum_t  ngx_http_darkroom_ps_protocols[] = {
    { ngx_string("escher"), NGX_HTTP_DARKROOM_PS_ESCHER },
    { ngx_string("legacy"), NGX_HTTP_DARKROOM_PS_LEGACY },
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_http_darkroom_labs_commands[] = {

    { ngx_string("darkroom_prodigi_api"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_darkroom_labs_api,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_darkroom_labs_conf_t, prodigi_api),
      NULL },

    { ngx_string("darkroom_prodigi_key_file"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_darkroom_secret_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_darkroom_labs_conf_t, prodigi_keys),
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
      offsetof(ngx_http_darkroom_labs_conf_t, printspace_api),
      NULL },

    { ngx_string("darkroom_printspace_key_file"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_darkroom_secret_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_darkroom_labs_conf_t, printspace_keys),
      NULL },

    { ngx_string("darkroom_printspace_protocol"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_darkroom_labs_conf_t, printspace_protocol),
      &ngx_http_darkroom_ps_protocols },

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

    NULL,                                  /* create location configuration */
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
     *     lcf->prodigi_api = { 0, NULL };
     *     lcf->printspace_api = { 0, NULL };
     *     lcf->asset_url = { 0, NULL };
     *     lcf->callback_url = { 0, NULL };
     *     lcf->use_callback = { NULL, 0 };
     */

    lcf->prodigi_keys = NGX_CONF_UNSET_PTR;
    lcf->printspace_keys = NGX_CONF_UNSET_PTR;
    lcf->printspace_protocol = NGX_CONF_UNSET_UINT;
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

    if (lcf->prodigi_api.data == NULL) {
        ngx_str_set(&lcf->prodigi_api, "https://api.sandbox.prodigi.com");
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

    ngx_conf_init_ptr_value(lcf->prodigi_keys, NULL);
    ngx_conf_init_ptr_value(lcf->printspace_keys, NULL);
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

    if ((lcf->prodigi_keys || lcf->printspace_keys)
        && (lcf->asset_url.data == NULL || lcf->asset_keys == NULL))
    {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "a lab key file needs \"darkroom_lab_asset_url\" and "
                      "\"darkroom_lab_asset_keys\": labs fetch the print "
                      "files through signed URLs");
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
        || ngx_http_darkroom_require(cf, &lcf->use_callback,
                                          "darkroom_lab_callback",
                                          lcf->prodigi_keys,
                                          "darkroom_prodigi_key_file")
        != NGX_CONF_OK
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
                                printspace_api))
    {
        /* checked once the protocol is known: nginx -t names this line */
        lcf->printspace_api_file = cf->conf_file->file.name;
        lcf->printspace_api_line = cf->conf_file->line;
    }

    if (ngx_strcmp(value[1].data, "sandbox") == 0
        || ngx_strcmp(value[1].data, "live") == 0)
    {
        if (cmd->offset == offsetof(ngx_http_darkroom_labs_conf_t,
                                    prodigi_api))
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

    ngx_conf_init_uint_value(lcf->printspace_protocol,
                             NGX_HTTP_DARKROOM_PS_ESCHER);
    api = &lcf->printspace_api;

    if (lcf->printspace_protocol == NGX_HTTP_DARKROOM_PS_LEGACY) {
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

    if (api->data == NULL && lcf->printspace_keys != NGX_CONF_UNSET_PTR
        && lcf->printspace_keys != NULL)
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
    ngx_str_t                      *value;
    ngx_http_darkroom_labs_conf_t  *lcf;

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "prodigi") != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "unknown lab \"%V\": only \"prodigi\" sends "
                           "callbacks (theprintspace is polled)", &value[1]);
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
/* thread side: calls to labs                                          */


void
ngx_http_darkroom_lab_error(ngx_http_darkroom_lab_result_t *res,
    const char *fmt, ...)
{
    va_list  args;

    va_start(args, fmt);
    vsnprintf(res->error, sizeof(res->error), fmt, args);
    va_end(args);
}


/* a lab refused a request: why, and its answer kept (res->detail) */

void
ngx_http_darkroom_lab_refused(ngx_http_darkroom_lab_result_t *res,
    cJSON *answer, const char *fmt, ...)
{
    va_list  args;

    va_start(args, fmt);
    vsnprintf(res->error, sizeof(res->error), fmt, args);
    va_end(args);

    free(res->detail);
    res->detail = answer ? cJSON_PrintUnformatted(answer) : NULL;
}


/*
 * A lab's order id goes into URL paths and the database: only [A-Za-z0-9_-]
 * and shorter than size, never cut (a cut id names another order).
 */

ngx_int_t
ngx_http_darkroom_lab_id_ok(const char *id, size_t size)
{
    size_t  i;

    for (i = 0; id[i]; i++) {
        if (i + 1 >= size
            || !(ngx_http_darkroom_lab_alnum(id[i])
                 || id[i] == '_' || id[i] == '-'))
        {
            return NGX_ERROR;
        }
    }

    return i ? NGX_OK : NGX_ERROR;
}


/* what a lab's answer means: rc, the parsed body, Retry-After */

static void
ngx_http_darkroom_lab_answer(ngx_http_darkroom_fetch_resp_t *resp,
    const char *name, const char *method, const char *path, cJSON **out,
    ngx_http_darkroom_lab_result_t *res)
{
    char  retry[32];

    res->status = resp->status;

    if (resp->body_len) {
        *out = cJSON_ParseWithLength(resp->body, resp->body_len);
    }

    if (resp->status >= 200 && resp->status < 300) {
        res->rc = NGX_OK;

        if (*out == NULL) {
            res->rc = NGX_AGAIN;
            ngx_http_darkroom_lab_error(res, "%s %s %s: answer %ld is not "
                                        "JSON", name, method, path,
                                        resp->status);
        }

    } else if (resp->status >= 500 || resp->status == 408
               || resp->status == 425 || resp->status == 429
               || resp->status == 401 || resp->status == 403)
    {
        res->rc = NGX_AGAIN;
        ngx_http_darkroom_lab_error(res, "%s %s %s answered %ld", name,
                                    method, path, resp->status);

        if (ngx_http_darkroom_fetch_header(resp, "Retry-After", retry,
                                           sizeof(retry)))
        {
            res->retry_after = strtoul(retry, NULL, 10) * 1000;
        }

    } else {
        res->rc = NGX_DECLINED;
        ngx_http_darkroom_lab_error(res, "%s %s %s answered %ld", name,
                                    method, path, resp->status);
    }
}


/*
 * One call to a lab: its auth header, JSON both ways, and what the answer
 * means (see ngx_http_darkroom_lab_result_t).  *out is the parsed answer,
 * also for a refusal, so that its messages can be kept.
 */

ngx_int_t
ngx_http_darkroom_lab_http(ngx_http_darkroom_labs_conf_t *lcf,
    ngx_http_darkroom_lab_e lab, ngx_msec_t timeout, const char *method,
    const char *path, const char *body, cJSON **out,
    ngx_http_darkroom_lab_result_t *res)
{
    char                             url[1024], auth[512], idem[200];
    ngx_str_t                       *key;
    ngx_int_t                        rc;
    ngx_array_t                     *keys;
    const char                      *headers[5], *name;
    ngx_http_darkroom_error_t        err;
    ngx_http_darkroom_fetch_req_t    req;
    ngx_http_darkroom_fetch_resp_t   resp;

    *out = NULL;
    res->status = 0;

    if (lab == NGX_HTTP_DARKROOM_LAB_PRODIGI) {
        name = "prodigi";
        keys = lcf->prodigi_keys;
    } else {
        name = "theprintspace";
        keys = lcf->printspace_keys;
    }

    if (keys == NULL) {
        res->rc = NGX_AGAIN;
        ngx_http_darkroom_lab_error(res, "%s is not configured (no key "
                                    "file)", name);
        return res->rc;
    }

    key = keys->elts;

    if (lab == NGX_HTTP_DARKROOM_LAB_PRODIGI) {
        snprintf(url, sizeof(url), "%s%s", lcf->prodigi_api.data, path);
        snprintf(auth, sizeof(auth), "X-API-Key: %.*s", (int) key[0].len,
                 key[0].data);
    } else {
        snprintf(url, sizeof(url), "%s%s", lcf->printspace_api.data, path);
        snprintf(auth, sizeof(auth), "Authorization: %s %.*s",
                 lcf->printspace_protocol == NGX_HTTP_DARKROOM_PS_LEGACY
                 ? "ApiKey" : "Bearer", (int) key[0].len, key[0].data);
    }

    headers[0] = auth;
    headers[1] = "Content-Type: application/json";
    headers[2] = "Accept: application/json";
    headers[3] = NULL;

    if (res->idempotency_key) {
        snprintf(idem, sizeof(idem), "Idempotency-Key: %s",
                 res->idempotency_key);
        headers[3] = idem;
        headers[4] = NULL;
    }

    ngx_memzero(&req, sizeof(ngx_http_darkroom_fetch_req_t));
    req.method = method;
    req.url = url;
    req.headers = headers;
    req.body = body;
    req.body_len = body ? strlen(body) : 0;
    req.timeout = timeout;

    /* Prodigi: the create carries idempotencyKey, a cancel repeats */
    req.resend_safe = (lab == NGX_HTTP_DARKROOM_LAB_PRODIGI);

    ngx_memzero(&err, sizeof(ngx_http_darkroom_error_t));

    rc = ngx_http_darkroom_fetch(&req, &resp, &err);

    if (rc != NGX_OK) {
        /* no answer: it may have landed; the retry is safe (see above) */
        ngx_http_darkroom_fetch_free(&resp);
        res->rc = NGX_AGAIN;
        ngx_http_darkroom_lab_error(res, "%s %s %s: %s", name, method, path,
                                    err.detail[0] ? err.detail
                                                  : "no answer");
        return res->rc;
    }

    ngx_http_darkroom_lab_answer(&resp, name, method, path, out, res);

    ngx_http_darkroom_fetch_free(&resp);

    return res->rc;
}


/*
 * An order as its lab has it now: GET path, then the lab's reader on the
 * answer (or its member, when the lab wraps the order).
 */

void
ngx_http_darkroom_lab_fetch(ngx_http_darkroom_labs_conf_t *lcf,
    ngx_http_darkroom_lab_e lab, ngx_msec_t timeout, const char *path,
    const char *member, ngx_http_darkroom_lab_read_pt reader,
    ngx_http_darkroom_lab_state_t *st, ngx_http_darkroom_lab_result_t *res)
{
    cJSON  *answer, *order;

    answer = NULL;

    ngx_http_darkroom_lab_http(lcf, lab, timeout, "GET", path, NULL,
                               &answer, res);

    order = member ? cJSON_GetObjectItemCaseSensitive(answer, member)
                   : answer;

    if (res->rc == NGX_OK && reader(order, st) != NGX_OK) {
        res->rc = NGX_AGAIN;
        ngx_http_darkroom_lab_error(res, "%s: GET %s: the answer has no "
                                    "order status",
                                    lab == NGX_HTTP_DARKROOM_LAB_PRODIGI
                                    ? "prodigi" : "theprintspace", path);
    }

    cJSON_Delete(answer);
}


/* a long-lived signed darkroom URL of a print file, NUL-terminated */

ngx_int_t
ngx_http_darkroom_lab_asset_url(ngx_http_darkroom_labs_conf_t *lcf,
    const char *print_path, char *buf, size_t size)
{
    int                             rc;
    char                            exp[NGX_INT64_LEN + 1];
    u_char                          path[2048];
    size_t                          plen, n, len;
    ngx_http_darkroom_key_t        *key;
    ngx_http_darkroom_sign_link_t   link;

    if (lcf->asset_url.data == NULL || lcf->asset_keys == NULL) {
        return NGX_ERROR;
    }

    key = lcf->asset_keys->keys.elts;     /* the first signs */

    plen = lcf->asset_url.len - lcf->asset_origin;
    n = strlen(print_path);

    if (plen + 1 + n >= sizeof(path) || lcf->asset_origin + 1 >= size) {
        return NGX_ERROR;
    }

    ngx_memcpy(path, lcf->asset_url.data + lcf->asset_origin, plen);
    path[plen++] = '/';
    ngx_memcpy(path + plen, print_path, n);
    plen += n;

    snprintf(exp, sizeof(exp), "%lld",
             (long long) (time(NULL) + lcf->asset_ttl));

    ngx_memzero(&link, sizeof(ngx_http_darkroom_sign_link_t));
    link.path.data = path;
    link.path.len = plen;
    link.param[NGX_HTTP_DARKROOM_P_EXP].data = (u_char *) exp;
    link.param[NGX_HTTP_DARKROOM_P_EXP].len = strlen(exp);
    link.param[NGX_HTTP_DARKROOM_P_KID].data = key->kid.data;
    link.param[NGX_HTTP_DARKROOM_P_KID].len = key->kid.len;

    ngx_memcpy(buf, lcf->asset_url.data, lcf->asset_origin);

    len = ngx_http_darkroom_sign_url(&link, key->key.data, key->key.len,
                                     (u_char *) buf + lcf->asset_origin,
                                     size - lcf->asset_origin - 1, &rc);

    if (len == 0 || rc != NGX_HTTP_DARKROOM_SIGN_OK
        || len > size - lcf->asset_origin - 1)
    {
        return NGX_ERROR;
    }

    buf[lcf->asset_origin + len] = '\0';

    return NGX_OK;
}


/* the callback token of a lab order: hex HMAC-SHA256(secret, id) */

ngx_int_t
ngx_http_darkroom_lab_token(ngx_str_t *secret, const char *id, char *hex)
{
    u_char  msg[128], mac[NGX_HTTP_DARKROOM_SIGN_MAC_LEN];
    size_t  len;

    len = snprintf((char *) msg, sizeof(msg), "darkroom-lab-callback\n%s",
                   id);

    if (!ngx_http_darkroom_sign_hmac(secret->data, secret->len, msg, len,
                                     mac))
    {
        return NGX_ERROR;
    }

    ngx_hex_dump((u_char *) hex, mac, sizeof(mac));
    hex[NGX_HTTP_DARKROOM_LAB_TOKEN_LEN] = '\0';

    return NGX_OK;
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
    char                            id[NGX_INT64_LEN + 1], delay[32];
    char                            cause[64];
    PGresult                       *res;
    const char                     *params[3];
    ngx_http_darkroom_labs_conf_t  *lcf = ngx_http_darkroom_labs_conf;

    if (lcf->prodigi_keys == NULL && lcf->printspace_keys == NULL) {
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

/* the creativehub API darkroom_printspace_protocol names */

static const char *
ngx_http_darkroom_lab_api_now(void)
{
    return ngx_http_darkroom_labs_conf->printspace_protocol
           == NGX_HTTP_DARKROOM_PS_LEGACY ? "legacy" : "escher";
}


/*
 * A theprintspace lab order's ids mean something only at the API it was
 * sent through (lab_orders.lab_api): with the other one configured now,
 * neither polling nor sending again can help, a person must decide.
 * NGX_DECLINED: another API, lr says so.
 */

static ngx_int_t
ngx_http_darkroom_lab_api_match(const char *api,
    ngx_http_darkroom_lab_result_t *lr)
{
    const char  *now;

    now = ngx_http_darkroom_lab_api_now();

    if (api == NULL || *api == '\0' || ngx_strcmp(api, now) == 0) {
        return NGX_OK;
    }

    lr->rc = NGX_DECLINED;
    ngx_http_darkroom_lab_error(lr, "theprintspace: this lab order was sent "
        "through creativehub's %s API, but darkroom_printspace_protocol is "
        "now %s: set it back (with that API's key file and URL) until the "
        "order is done, or finish it in creativehub by hand", api, now);

    return NGX_DECLINED;
}


/* the API is recorded before the first send: a lost answer stays there */

static ngx_int_t
ngx_http_darkroom_lab_api_stamp(ngx_http_darkroom_job_t *job, const char *id,
    ngx_http_darkroom_lab_result_t *lr, ngx_http_darkroom_error_t *err)
{
    PGresult    *res;
    ngx_int_t    rc;
    const char  *params[2];

    params[0] = id;
    params[1] = ngx_http_darkroom_lab_api_now();

    res = ngx_http_darkroom_db_exec(job->db,
              "UPDATE lab_orders SET lab_api = coalesce(lab_api, $2)"
              " WHERE id = $1::bigint RETURNING lab_api", 2, params, err);
    if (res == NULL) {
        return NGX_ERROR;
    }

    rc = ngx_http_darkroom_lab_api_match(PQntuples(res)
                                         ? PQgetvalue(res, 0, 0) : NULL,
                                         lr);
    PQclear(res);

    return rc;
}


/* one lab order to its lab, in the lab's API; lr says how it went */

static ngx_int_t
ngx_http_darkroom_lab_send(ngx_http_darkroom_job_t *job, cJSON *doc,
    const char *lab, const char *id, const char *cause,
    ngx_http_darkroom_lab_result_t *lr, ngx_http_darkroom_error_t *err)
{
    char                            callback[1024], token[80];
    ngx_str_t                      *secret;
    ngx_http_darkroom_labs_conf_t  *lcf = ngx_http_darkroom_labs_conf;

    if (ngx_strcmp(lab, "prodigi") == 0) {
        callback[0] = '\0';

        if (lcf->callback_url.data && lcf->callback_secrets) {
            secret = lcf->callback_secrets->elts;

            if (ngx_http_darkroom_lab_token(&secret[0], id, token)
                != NGX_OK)
            {
                snprintf(err->detail, sizeof(err->detail),
                         "lab_submit: HMAC failed");
                return NGX_ERROR;
            }

            snprintf(callback, sizeof(callback), "%s?lo=%s&token=%s",
                     lcf->callback_url.data, id, token);
        }

        ngx_http_darkroom_prodigi_submit(lcf, job->fetch_timeout, doc,
                                         callback[0] ? callback : NULL, lr);

        return NGX_OK;
    }

    switch (ngx_http_darkroom_lab_api_stamp(job, id, lr, err)) {

    case NGX_OK:
        break;

    case NGX_DECLINED:
        /* sent through the other API: lr refuses it */
        return NGX_OK;

    default:
        return NGX_ERROR;
    }

    if (lcf->printspace_protocol == NGX_HTTP_DARKROOM_PS_ESCHER) {
        ngx_http_darkroom_escher_submit(lcf, job->fetch_timeout, doc, lr);

    } else {
        ngx_http_darkroom_printspace_submit(lcf, job->fetch_timeout, doc,
                                            job->db, cause, lr);
    }

    return NGX_OK;
}


/* what the lab's answer (or its silence) means for the lab order */

static ngx_int_t
ngx_http_darkroom_lab_submit_done(ngx_http_darkroom_job_t *job,
    const char *id, const char *cause, ngx_http_darkroom_lab_result_t *lr,
    ngx_http_darkroom_error_t *err)
{
    char                            attempts[32], seconds[32], poll[32];
    PGresult                       *res;
    ngx_int_t                       rc;
    const char                     *params[6], *outcome;
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
                  "SELECT lab_submitted($1::bigint, $2, $3,"
                  " CASE WHEN jsonb_typeof($4::jsonb) = 'object'"
                  " THEN $4::jsonb ELSE jsonb_build_object('issues',"
                  " $4::jsonb) END, $5::int, $6)", 6, params, err);

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
                  "SELECT lab_submit_refused($1::bigint, $2,"
                  " jsonb_build_object('answer', $3::jsonb), $4)",
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

    rc = (ngx_strcmp(PQgetvalue(res, 0, 0), "retry") == 0) ? NGX_ERROR
                                                           : NGX_OK;
    PQclear(res);

    snprintf(err->detail, sizeof(err->detail), "%s", lr->error);
    job->retry_after = lr->retry_after;

    return rc;
}


static ngx_int_t
ngx_http_darkroom_job_lab_submit(ngx_http_darkroom_job_t *job,
    ngx_http_darkroom_error_t *err)
{
    char                            id[NGX_INT64_LEN + 1], cause[64];
    cJSON                          *doc, *hold;
    PGresult                       *res;
    const char                     *lab, *status, *params[1];
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

    doc = PQgetisnull(res, 0, 0) ? NULL
                                 : cJSON_Parse(PQgetvalue(res, 0, 0));
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

    cJSON_AddStringToObject(doc, "id_text", id);
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
ngx_http_darkroom_lab_refresh(ngx_http_darkroom_db_t *db, ngx_msec_t timeout,
    const char *id, const char *cause, char *status, size_t size,
    ngx_http_darkroom_lab_result_t *lr)
{
    PGresult                       *res;
    ngx_int_t                       rc;
    const char                     *params[6];
    ngx_http_darkroom_error_t       err;
    ngx_http_darkroom_lab_state_t   st;

    ngx_memzero(&err, sizeof(ngx_http_darkroom_error_t));

    params[0] = id;

    res = ngx_http_darkroom_db_exec(db,
              "SELECT lab, lab_order_id, status, lab_api, lab_status"
              " FROM lab_orders WHERE id = $1::bigint", 1, params, &err);

    if (res == NULL) {
        lr->rc = NGX_AGAIN;
        ngx_http_darkroom_lab_error(lr, "%s", err.detail);
        return NGX_ERROR;
    }

    if (PQntuples(res) == 0 || PQgetisnull(res, 0, 1)) {
        if (PQntuples(res)) {
            ngx_cpystrn((u_char *) status, (u_char *) PQgetvalue(res, 0, 2),
                        size);
        }

        PQclear(res);
        return NGX_DECLINED;
    }

    ngx_cpystrn((u_char *) status, (u_char *) PQgetvalue(res, 0, 2), size);

    if (ngx_strcmp(status, "shipped") == 0
        || ngx_strcmp(status, "cancelled") == 0
        || ngx_strcmp(status, "rerouted") == 0)
    {
        PQclear(res);
        return NGX_DECLINED;
    }

    ngx_memzero(&st, sizeof(ngx_http_darkroom_lab_state_t));

    ngx_http_darkroom_lab_follow(timeout, res, &st, lr);

    PQclear(res);

    if (lr->rc != NGX_OK) {
        free(st.shipments);
        return NGX_ERROR;
    }

    params[1] = st.stage;
    params[2] = st.lab_status;
    params[3] = st.shipments;
    params[4] = cause;
    params[5] = st.reason[0] ? st.reason : NULL;

    res = ngx_http_darkroom_db_exec(db,
              "SELECT lab_apply($1::bigint, $2, $3, $4::jsonb, $5, $6)",
              6, params, &err);

    free(st.shipments);

    if (res == NULL) {
        lr->rc = NGX_AGAIN;
        ngx_http_darkroom_lab_error(lr, "%s", err.detail);
        return NGX_ERROR;
    }

    ngx_cpystrn((u_char *) status, (u_char *) PQgetvalue(res, 0, 0), size);
    PQclear(res);

    rc = NGX_OK;

    return rc;
}


/*
 * The state of the lab order in res (lab, lab_order_id, status, lab_api,
 * lab_status) at its lab, through the API it was sent through.
 */

static void
ngx_http_darkroom_lab_follow(ngx_msec_t timeout, PGresult *res,
    ngx_http_darkroom_lab_state_t *st, ngx_http_darkroom_lab_result_t *lr)
{
    const char                     *id, *api;
    ngx_http_darkroom_labs_conf_t  *lcf = ngx_http_darkroom_labs_conf;

    id = PQgetvalue(res, 0, 1);
    api = PQgetvalue(res, 0, 3);

    if (ngx_strcmp(PQgetvalue(res, 0, 0), "prodigi") == 0) {
        ngx_http_darkroom_prodigi_fetch(lcf, timeout, id, st, lr);
        return;
    }

    if (ngx_http_darkroom_lab_api_match(api, lr) != NGX_OK) {
        /* not asked at the wrong API: applied as a state that needs care */
        st->stage = "attention";
        ngx_cpystrn((u_char *) st->reason, (u_char *) lr->error,
                    sizeof(st->reason));
        ngx_cpystrn((u_char *) st->lab_status,
                    (u_char *) PQgetvalue(res, 0, 4), sizeof(st->lab_status));
        st->shipments = strdup("[]");
        lr->rc = st->shipments ? NGX_OK : NGX_AGAIN;
        return;
    }

    if (lcf->printspace_protocol == NGX_HTTP_DARKROOM_PS_ESCHER) {
        ngx_http_darkroom_escher_fetch(lcf, timeout, id, st, lr);

    } else {
        ngx_http_darkroom_printspace_fetch(lcf, timeout, id, st, lr);
    }
}


/* "lab_poll": follow a lab order until it has shipped or is cancelled */

static ngx_int_t
ngx_http_darkroom_job_lab_poll(ngx_http_darkroom_job_t *job,
    ngx_http_darkroom_error_t *err)
{
    char                            id[NGX_INT64_LEN + 1], cause[64];
    char                            status[32];
    ngx_int_t                       rc;
    ngx_http_darkroom_lab_result_t  lr;

    if (ngx_http_darkroom_lab_job_id(job, id, err) != NGX_OK) {
        return NGX_DECLINED;
    }

    snprintf(cause, sizeof(cause), "poll:job:%lld", (long long) job->id);
    ngx_memzero(&lr, sizeof(ngx_http_darkroom_lab_result_t));
    status[0] = '\0';

    rc = ngx_http_darkroom_lab_refresh(job->db, job->fetch_timeout, id, cause,
                                       status, sizeof(status), &lr);

    if (rc == NGX_DECLINED) {
        return NGX_OK;
    }

    if (rc != NGX_OK) {
        snprintf(err->detail, sizeof(err->detail), "%s", lr.error);
        job->retry_after = lr.retry_after;
        return NGX_ERROR;
    }

    if (ngx_strcmp(status, "shipped") == 0
        || ngx_strcmp(status, "cancelled") == 0
        || ngx_strcmp(status, "rerouted") == 0)
    {
        return NGX_OK;
    }

    job->retry_after = ngx_http_darkroom_labs_conf->poll_interval;

    return NGX_AGAIN;
}


/* "lab_cancel": a refund (or the admin) before production */

static ngx_int_t
ngx_http_darkroom_job_lab_cancel(ngx_http_darkroom_job_t *job,
    ngx_http_darkroom_error_t *err)
{
    char                            id[NGX_INT64_LEN + 1], cause[64];
    char                            status[32];
    PGresult                       *res;
    const char                     *params[4];
    ngx_http_darkroom_lab_result_t  lr;
    ngx_http_darkroom_labs_conf_t  *lcf = ngx_http_darkroom_labs_conf;

    if (ngx_http_darkroom_lab_job_id(job, id, err) != NGX_OK) {
        return NGX_DECLINED;
    }

    snprintf(cause, sizeof(cause), "job:%lld", (long long) job->id);
    params[0] = id;

    res = ngx_http_darkroom_db_exec(job->db,
              "SELECT lab, lab_order_id FROM lab_orders"
              " WHERE id = $1::bigint AND status = 'cancelling'"
              " AND lab_order_id IS NOT NULL", 1, params, err);

    if (res == NULL) {
        return NGX_ERROR;
    }

    if (PQntuples(res) == 0) {
        PQclear(res);
        return NGX_OK;
    }

    ngx_memzero(&lr, sizeof(ngx_http_darkroom_lab_result_t));

    if (ngx_strcmp(PQgetvalue(res, 0, 0), "printspace") == 0) {
        PQclear(res);

        params[1] = "theprintspace has no cancel API: cancel this order "
                    "by hand in creativehub";
        params[2] = cause;

        res = ngx_http_darkroom_db_exec(job->db,
                  "SELECT lab_cancel_by_hand($1::bigint, $2, $3)", 3, params,
                  err);
        if (res == NULL) {
            return NGX_ERROR;
        }

        PQclear(res);
        return NGX_OK;
    }

    ngx_http_darkroom_prodigi_cancel(lcf, job->fetch_timeout,
                                     PQgetvalue(res, 0, 1), &lr);
    PQclear(res);

    if (lr.rc == NGX_AGAIN) {
        snprintf(err->detail, sizeof(err->detail), "%s", lr.error);
        job->retry_after = lr.retry_after;
        return NGX_ERROR;
    }

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
        (void) ngx_http_darkroom_lab_refresh(job->db, job->fetch_timeout, id,
                                             cause, status, sizeof(status),
                                             &lr);
    }

    return NGX_OK;
}


/* ------------------------------------------------------------------ */
/* the Prodigi callback                                                */


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


/* ?lo=<lab order id>&token=<64 hex>, checked before anything is read */

static ngx_int_t
ngx_http_darkroom_lab_callback_prepare(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t)
{
    char                               expect[80];
    cJSON                             *body, *id;
    ngx_str_t                          lo, token, *secret;
    ngx_uint_t                         i, match;
    ngx_http_darkroom_labs_conf_t     *lcf;
    ngx_http_darkroom_lab_callback_t  *cb = t->data;

    lcf = ngx_http_get_module_main_conf(r, ngx_http_darkroom_labs_module);

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

    /* every secret is tried, in constant time each (rotation) */

    secret = lcf->callback_secrets->elts;
    match = 0;

    for (i = 0; i < lcf->callback_secrets->nelts; i++) {
        if (ngx_http_darkroom_lab_token(&secret[i], cb->id, expect)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        match |= (CRYPTO_memcmp(expect, token.data,
                                NGX_HTTP_DARKROOM_LAB_TOKEN_LEN) == 0);
    }

    if (!match) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "darkroom: lab callback refused: bad token for lab "
                      "order %s", cb->id);
        return ngx_http_darkroom_send_error(r, NGX_HTTP_FORBIDDEN,
                   "bad_token", "The callback URL is not valid.");
    }

    /* the body is not trusted: only its event id is kept, for history */

    body = cJSON_ParseWithLength((char *) t->body.data, t->body.len);
    id = cJSON_GetObjectItemCaseSensitive(body, "id");

    ngx_snprintf((u_char *) cb->event, sizeof(cb->event) - 1,
                 "callback:%s%Z",
                 cJSON_IsString(id) && strlen(id->valuestring) < 100
                 ? id->valuestring : "-");

    cJSON_Delete(body);

    return NGX_OK;
}


static void
ngx_http_darkroom_lab_callback_work(ngx_http_darkroom_task_t *t)
{
    char                               status[32], *out;
    ngx_int_t                          rc;
    const char                        *params[1];
    ngx_http_darkroom_lab_result_t     lr;
    ngx_http_darkroom_lab_callback_t  *cb = t->data;

    ngx_memzero(&lr, sizeof(ngx_http_darkroom_lab_result_t));
    status[0] = '\0';

    rc = ngx_http_darkroom_lab_refresh(&t->db, t->fetch_timeout, cb->id,
                                       cb->event, status, sizeof(status),
                                       &lr);

    if (rc == NGX_ERROR) {
        /* Prodigi unreachable now: the poll job asks again, soon */
        params[0] = cb->id;

        if (ngx_http_darkroom_db_command(&t->db,
                "UPDATE jobs SET run_at = now()"
                " WHERE dedupe_key = 'lab_poll:' || $1 AND done_at IS NULL",
                1, params, &t->err)
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

    out = malloc(128);
    if (out == NULL) {
        ngx_http_darkroom_error_set(&t->err, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                    "internal_error", "Out of memory.");
        return;
    }

    t->out_len = snprintf(out, 128, "{\"received\":true,\"status\":\"%s\"}",
                          status);
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


/*
 * Paths relative to the location:
 *
 *   GET  orders?status=&order=&limit=    GET  orders/<id>
 *   POST orders/<id>/retry | orders/<id>/reroute {"lab"} |
 *        orders/<id>/cancel
 */

static ngx_int_t
ngx_http_darkroom_labs_admin_prepare(ngx_http_request_t *r,
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
                  "SELECT lab_admin_list_json($1, $2,"
                  " least(greatest($3::int, 1), 1000))", 3, params, &t->err);
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
        body = a->body[0] ? cJSON_Parse(a->body) : NULL;

        if (a->body[0] && !cJSON_IsObject(body)) {
            cJSON_Delete(body);
            ngx_http_darkroom_error_set(&t->err, NGX_HTTP_BAD_REQUEST,
                                        "invalid_json",
                                        "The body must be a JSON object.");
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
    }

    if (res == NULL) {
        return;
    }

    ngx_http_darkroom_task_answer(t, res, "There is no such lab order.");
}
