
/*
 * darkroom: the shop, what its files share.
 *
 * ngx_http_darkroom_shop_module.c holds the directives and the shop's
 * configuration; the catalogue and order status (orders.c), checkout
 * (checkout.c), the Stripe client and the checkout_reconcile job
 * (stripe.c), the webhook (webhook.c) and the admin API (admin.c) each
 * live in a file of their own.  The configuration is read-only in threads:
 * a task gets it from its request on the event loop, the job from the
 * pointer set when the worker starts.
 */


#ifndef _NGX_HTTP_DARKROOM_SHOP_H_INCLUDED_
#define _NGX_HTTP_DARKROOM_SHOP_H_INCLUDED_


#include "ngx_http_darkroom.h"


typedef struct {
    ngx_str_t                    currency;          /* default currency */
    ngx_str_t                    stripe_api;        /* base URL */
    ngx_array_t                 *stripe_keys;       /* sk_..., first used */
    ngx_array_t                 *stripe_webhook_secrets;
    time_t                       stripe_tolerance;
    ngx_int_t                    stripe_batch;      /* group commit */
    ngx_msec_t                   stripe_batch_wait;
    ngx_int_t                    stripe_batches;    /* in flight at once */
    ngx_str_t                    success_url;
    ngx_str_t                    cancel_url;
    ngx_str_t                    status_url;
    time_t                       checkout_expires;
    time_t                       checkout_reconcile;
    ngx_array_t                 *shipping_countries; /* ngx_str_t */

    /* where the shop's locations are used, for "nginx -t" errors */
    ngx_http_darkroom_use_t      use_checkout;
    ngx_http_darkroom_use_t      use_quote;
    ngx_http_darkroom_use_t      use_webhook;
    ngx_http_darkroom_use_t      use_admin;
} ngx_http_darkroom_shop_conf_t;


extern ngx_module_t  ngx_http_darkroom_shop_module;

/* the worker's configuration, read-only, for the jobs' threads */
extern ngx_http_darkroom_shop_conf_t  *ngx_http_darkroom_shop_conf;


/* location directives, each in its area's file */
char *ngx_http_darkroom_catalogue(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_darkroom_checkout(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_darkroom_cart_quote(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_darkroom_stripe_webhook(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_darkroom_order_status(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_darkroom_admin(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* checkout: a gallery's quote or checkout (ngx_http_darkroom_gallery_sale) */
ngx_int_t ngx_http_darkroom_checkout_gallery(ngx_http_request_t *r,
    const char *gallery, const char *currency, ngx_str_t *cancel_url,
    ngx_uint_t quote);

/* orders: signs the "downloads" of the answer in t->out (thread side) */
void ngx_http_darkroom_order_downloads(ngx_http_darkroom_task_t *t);

/* a result's first row, by column name: thread side as well */

/* stripe: thread side */
ngx_int_t ngx_http_darkroom_stripe_call(ngx_http_darkroom_shop_conf_t *scf,
    ngx_msec_t timeout, const char *method, const char *path,
    const char *form, const char *idempotency_key, cJSON **out,
    ngx_http_darkroom_error_t *err);
ngx_int_t ngx_http_darkroom_form_add(char **buf, size_t *len, size_t *size,
    const char *name, const char *value);
ngx_int_t ngx_http_darkroom_job_checkout_reconcile(
    ngx_http_darkroom_job_t *job, ngx_http_darkroom_error_t *err);

/* checkout_form: every order's Checkout Session parameters and what a
 * session Stripe did not give does (thread side) */
typedef struct {
    const char                  *order_id;
    const char                  *ref;
    const char                  *email;
    const char                  *expires;          /* epoch seconds */
    const char                  *currency;         /* lower case */
    const char                  *success_url;
    const char                  *cancel_url;
    cJSON                       *lines;            /* [{"title",
                                                      "product_name",
                                                      "unit_amount",
                                                      "quantity"}] */
} ngx_http_darkroom_checkout_form_t;

char *ngx_http_darkroom_checkout_form_make(
    ngx_http_darkroom_checkout_form_t *f, int *n);
void ngx_http_darkroom_checkout_failed(ngx_http_darkroom_task_t *t,
    const char *order_id, ngx_uint_t replay, ngx_uint_t called,
    const char *retry);

/* checkout: Stripe's session for an order, attached (exact amount) */
ngx_int_t ngx_http_darkroom_checkout_attach(ngx_http_darkroom_task_t *t,
    const char *order_id, const char *total, cJSON *session, char **url);

/* order checkout: another area's order (ngx_http_darkroom_order_checkout)
 * and the job "stripe_refund"; thread side */
ngx_int_t ngx_http_darkroom_order_checkout_stripe(ngx_http_darkroom_task_t *t,
    const char *order, const char *token, char **url);
ngx_int_t ngx_http_darkroom_job_stripe_refund(ngx_http_darkroom_job_t *job,
    ngx_http_darkroom_error_t *err);


#endif /* _NGX_HTTP_DARKROOM_SHOP_H_INCLUDED_ */
