
/*
 * darkroom: the shop module, its configuration and directive table.
 *
 * The catalogue, checkout with Stripe, the Stripe webhook, order status
 * and the admin API.  Core gives the database, the tasks and the jobs; the
 * shop registers its job kind, checkout_reconcile, with core's jobs.
 */


#include "ngx_http_darkroom_shop.h"


static void *ngx_http_darkroom_shop_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_darkroom_shop_init_main_conf(ngx_conf_t *cf,
    void *conf);
static ngx_int_t ngx_http_darkroom_shop_postconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_darkroom_shop_init_process(ngx_cycle_t *cycle);
static char *ngx_http_darkroom_shop_sec_range(ngx_conf_t *cf, void *post,
    void *data);
static char *ngx_http_darkroom_shop_currency(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_darkroom_shop_countries(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);


/* Stripe accepts a Checkout Session expiry between 30 minutes and 24 h */

static ngx_conf_num_bounds_t  ngx_http_darkroom_shop_expires_range = {
    ngx_http_darkroom_shop_sec_range, 1800, 86400
};

static ngx_conf_num_bounds_t  ngx_http_darkroom_shop_tolerance_range = {
    ngx_http_darkroom_shop_sec_range, 1, 86400
};

static ngx_conf_num_bounds_t  ngx_http_darkroom_shop_reconcile_range = {
    ngx_http_darkroom_shop_sec_range, 60, 86400 * 7
};

/*
 * the events of one group commit (darkroom_stripe_batch), the batches of a
 * worker in flight at once (darkroom_stripe_batches)
 */

static ngx_conf_num_bounds_t  ngx_http_darkroom_shop_batch_range = {
    ngx_conf_check_num_bounds, 1, 1024
};


static ngx_command_t  ngx_http_darkroom_shop_commands[] = {

    { ngx_string("darkroom_currency"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_darkroom_shop_currency,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_darkroom_shop_conf_t, currency),
      NULL },

    { ngx_string("darkroom_stripe_api"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_darkroom_base_url,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_darkroom_shop_conf_t, stripe_api),
      NULL },

    { ngx_string("darkroom_stripe_key_file"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_darkroom_secret_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_darkroom_shop_conf_t, stripe_keys),
      NULL },

    { ngx_string("darkroom_stripe_webhook_secret_file"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_darkroom_secret_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_darkroom_shop_conf_t, stripe_webhook_secrets),
      NULL },

    { ngx_string("darkroom_stripe_tolerance"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_darkroom_shop_conf_t, stripe_tolerance),
      &ngx_http_darkroom_shop_tolerance_range },

    { ngx_string("darkroom_stripe_batch"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_darkroom_shop_conf_t, stripe_batch),
      &ngx_http_darkroom_shop_batch_range },

    { ngx_string("darkroom_stripe_batch_wait"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_darkroom_shop_conf_t, stripe_batch_wait),
      NULL },

    { ngx_string("darkroom_stripe_batches"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_darkroom_shop_conf_t, stripe_batches),
      &ngx_http_darkroom_shop_batch_range },

    { ngx_string("darkroom_checkout_success_url"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_darkroom_url,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_darkroom_shop_conf_t, success_url),
      NULL },

    { ngx_string("darkroom_checkout_cancel_url"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_darkroom_url,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_darkroom_shop_conf_t, cancel_url),
      NULL },

    { ngx_string("darkroom_order_status_url"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_darkroom_shop_conf_t, status_url),
      NULL },

    { ngx_string("darkroom_checkout_expires"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_darkroom_shop_conf_t, checkout_expires),
      &ngx_http_darkroom_shop_expires_range },

    { ngx_string("darkroom_checkout_reconcile"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_darkroom_shop_conf_t, checkout_reconcile),
      &ngx_http_darkroom_shop_reconcile_range },

    { ngx_string("darkroom_shipping_countries"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_darkroom_shop_countries,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("darkroom_catalogue"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_darkroom_catalogue,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("darkroom_checkout"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_darkroom_checkout,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("darkroom_cart_quote"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_darkroom_cart_quote,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("darkroom_stripe_webhook"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_darkroom_stripe_webhook,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("darkroom_order_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_darkroom_order_status,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("darkroom_admin"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_darkroom_admin,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_darkroom_shop_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_darkroom_shop_postconfiguration, /* postconfiguration */

    ngx_http_darkroom_shop_create_main_conf, /* create main configuration */
    ngx_http_darkroom_shop_init_main_conf, /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_darkroom_shop_module = {
    NGX_MODULE_V1,
    &ngx_http_darkroom_shop_module_ctx,    /* module context */
    ngx_http_darkroom_shop_commands,       /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_darkroom_shop_init_process,   /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


ngx_http_darkroom_shop_conf_t  *ngx_http_darkroom_shop_conf;


static void *
ngx_http_darkroom_shop_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_darkroom_shop_conf_t  *scf;

    scf = ngx_pcalloc(cf->pool, sizeof(ngx_http_darkroom_shop_conf_t));
    if (scf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     scf->currency = { 0, NULL };
     *     scf->stripe_api = { 0, NULL };
     *     scf->success_url = { 0, NULL };
     *     scf->cancel_url = { 0, NULL };
     *     scf->status_url = { 0, NULL };
     *     scf->use_checkout = { NULL, 0 };
     *     scf->use_quote = { NULL, 0 };
     *     scf->use_webhook = { NULL, 0 };
     *     scf->use_admin = { NULL, 0 };
     */

    scf->stripe_keys = NGX_CONF_UNSET_PTR;
    scf->stripe_webhook_secrets = NGX_CONF_UNSET_PTR;
    scf->stripe_tolerance = NGX_CONF_UNSET;
    scf->stripe_batch = NGX_CONF_UNSET;
    scf->stripe_batch_wait = NGX_CONF_UNSET_MSEC;
    scf->stripe_batches = NGX_CONF_UNSET;
    scf->checkout_expires = NGX_CONF_UNSET;
    scf->checkout_reconcile = NGX_CONF_UNSET;
    scf->shipping_countries = NGX_CONF_UNSET_PTR;

    return scf;
}


static char *
ngx_http_darkroom_shop_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_darkroom_shop_conf_t *scf = conf;

    ngx_http_darkroom_main_conf_t  *dmcf;

    if (scf->currency.data == NULL) {
        ngx_str_set(&scf->currency, "GBP");
    }

    if (scf->stripe_api.data == NULL) {
        ngx_str_set(&scf->stripe_api, "https://api.stripe.com");
    }

    if (scf->status_url.data == NULL) {
        ngx_str_set(&scf->status_url, "/api/orders/{ORDER_TOKEN}");
    }

    ngx_conf_init_ptr_value(scf->stripe_keys, NULL);
    ngx_conf_init_ptr_value(scf->stripe_webhook_secrets, NULL);
    ngx_conf_init_value(scf->stripe_tolerance, 300);
    ngx_conf_init_value(scf->stripe_batch, 64);
    ngx_conf_init_msec_value(scf->stripe_batch_wait, 2);
    ngx_conf_init_value(scf->stripe_batches, 2);
    ngx_conf_init_value(scf->checkout_expires, 3600);
    ngx_conf_init_value(scf->checkout_reconcile, 900);
    ngx_conf_init_ptr_value(scf->shipping_countries, NULL);

    /* the admin token file is core's: every admin location uses it */

    dmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_darkroom_module);
    dmcf->shop_currency = scf->currency;

    if (ngx_http_darkroom_require(cf, &scf->use_checkout,
                                  "darkroom_checkout", scf->stripe_keys,
                                  "darkroom_stripe_key_file")
        != NGX_CONF_OK
        || ngx_http_darkroom_require(cf, &scf->use_checkout,
                                     "darkroom_checkout",
                                     scf->success_url.data,
                                     "darkroom_checkout_success_url")
        != NGX_CONF_OK
        || ngx_http_darkroom_require(cf, &scf->use_checkout,
                                     "darkroom_checkout",
                                     scf->cancel_url.data,
                                     "darkroom_checkout_cancel_url")
        != NGX_CONF_OK
        || ngx_http_darkroom_require(cf, &scf->use_checkout,
                                     "darkroom_checkout", dmcf->order_keys,
                                     "darkroom_order_keys")
        != NGX_CONF_OK
        || ngx_http_darkroom_require(cf, &scf->use_webhook,
                                     "darkroom_stripe_webhook",
                                     scf->stripe_webhook_secrets,
                                     "darkroom_stripe_webhook_secret_file")
        != NGX_CONF_OK
        || ngx_http_darkroom_require(cf, &scf->use_admin, "darkroom_admin",
                                     dmcf->admin_tokens,
                                     "darkroom_admin_token_file")
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_darkroom_shop_postconfiguration(ngx_conf_t *cf)
{
    /* galleries sell through the shop's checkout (no darkroom_checkout:
     * it answers 404 as the core's default) */

    ngx_http_darkroom_gallery_sale = ngx_http_darkroom_checkout_gallery;

    /* a booking's deposit is checked out and refunded by the shop */
    ngx_http_darkroom_order_checkout = ngx_http_darkroom_order_checkout_stripe;

    if (ngx_http_darkroom_job_register(cf, "stripe_refund",
                                       ngx_http_darkroom_job_stripe_refund)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_darkroom_job_register(cf, "checkout_reconcile",
                                    ngx_http_darkroom_job_checkout_reconcile);
}


static ngx_int_t
ngx_http_darkroom_shop_init_process(ngx_cycle_t *cycle)
{
    ngx_http_darkroom_shop_conf = ngx_http_cycle_get_module_main_conf(cycle,
                                      ngx_http_darkroom_shop_module);

    return NGX_OK;
}


static char *
ngx_http_darkroom_shop_sec_range(ngx_conf_t *cf, void *post, void *data)
{
    ngx_conf_num_bounds_t *bounds = post;
    time_t                *sec = data;

    if (*sec < bounds->low || *sec > bounds->high) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "value must be between %is and %is",
                           bounds->low, bounds->high);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_darkroom_shop_currency(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_darkroom_shop_conf_t *scf = conf;

    ngx_str_t  *value;

    if (scf->currency.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len != 3
        || value[1].data[0] < 'A' || value[1].data[0] > 'Z'
        || value[1].data[1] < 'A' || value[1].data[1] > 'Z'
        || value[1].data[2] < 'A' || value[1].data[2] > 'Z')
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid currency \"%V\", it must be an ISO 4217 "
                           "code in capitals such as GBP", &value[1]);
        return NGX_CONF_ERROR;
    }

    scf->currency = value[1];

    return NGX_CONF_OK;
}


static char *
ngx_http_darkroom_shop_countries(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_darkroom_shop_conf_t *scf = conf;

    ngx_str_t   *value, *c;
    ngx_uint_t   i;

    if (scf->shipping_countries != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    scf->shipping_countries = ngx_array_create(cf->pool, cf->args->nelts,
                                               sizeof(ngx_str_t));
    if (scf->shipping_countries == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        if (value[i].len != 2
            || value[i].data[0] < 'A' || value[i].data[0] > 'Z'
            || value[i].data[1] < 'A' || value[i].data[1] > 'Z')
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid country \"%V\", it must be an "
                               "ISO 3166-1 alpha-2 code such as GB",
                               &value[i]);
            return NGX_CONF_ERROR;
        }

        c = ngx_array_push(scf->shipping_countries);
        if (c == NULL) {
            return NGX_CONF_ERROR;
        }

        *c = value[i];
    }

    /* shipping zones (the admin API's zones) name the countries now */
    ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                       "\"darkroom_shipping_countries\" is deprecated: "
                       "it is used only while no shipping zone is set up");

    return NGX_CONF_OK;
}
