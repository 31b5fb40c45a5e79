
/*
 * darkroom: variables for log_format, so the access log can say what
 * darkroom did with a request:
 *
 *   $darkroom_order         the order reference the request created
 *   $darkroom_stripe_event  the Stripe event id a webhook delivered
 *   $darkroom_result        a short outcome: the code of an error answer,
 *                           or a webhook's (applied, duplicate, ...)
 *
 * Each is a fixed array in the request's task (its module ctx), written
 * on the event loop by ngx_http_darkroom_log_note() once the work is
 * done (never allocated; the order status's work copies its order into
 * the array itself, read only after the task completed); the log phase
 * reads it.  A request that did not set one logs "-" (not found).
 */


#include "ngx_http_darkroom.h"


static ngx_int_t ngx_http_darkroom_var(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


static ngx_http_variable_t  ngx_http_darkroom_vars[] = {

    { ngx_string("darkroom_order"), NULL, ngx_http_darkroom_var,
      NGX_HTTP_DARKROOM_LOG_ORDER, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("darkroom_stripe_event"), NULL, ngx_http_darkroom_var,
      NGX_HTTP_DARKROOM_LOG_EVENT, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("darkroom_result"), NULL, ngx_http_darkroom_var,
      NGX_HTTP_DARKROOM_LOG_RESULT, NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


static ngx_int_t  ngx_http_darkroom_request_id_index = NGX_ERROR;


/* the module's preconfiguration */

ngx_int_t
ngx_http_darkroom_vars_add(ngx_conf_t *cf)
{
    ngx_str_t             name = ngx_string("request_id");
    ngx_http_variable_t  *var, *v;

    ngx_http_darkroom_request_id_index = ngx_http_get_variable_index(cf,
                                                                     &name);
    if (ngx_http_darkroom_request_id_index == NGX_ERROR) {
        return NGX_ERROR;
    }

    for (v = ngx_http_darkroom_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


/*
 * On the event loop, at a task's post: nginx's $request_id into the task
 * (plain memory the thread reads), and whether the request may write.
 */

void
ngx_http_darkroom_request_id_copy(ngx_http_request_t *r,
    ngx_http_darkroom_task_t *t)
{
    ngx_http_variable_value_t  *v;

    t->writes = !(r->method & (NGX_HTTP_GET | NGX_HTTP_HEAD));

    v = ngx_http_get_indexed_variable(r, ngx_http_darkroom_request_id_index);

    if (v == NULL || v->not_found
        || v->len >= NGX_HTTP_DARKROOM_REQUEST_ID_LEN)
    {
        t->request_id[0] = '\0';
        return;
    }

    ngx_memcpy(t->request_id, v->data, v->len);
    t->request_id[v->len] = '\0';

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "darkroom task: request id %s", t->request_id);
}


static char *
ngx_http_darkroom_log_field(ngx_http_darkroom_task_t *t, ngx_uint_t what,
    size_t *size)
{
    switch (what) {

    case NGX_HTTP_DARKROOM_LOG_ORDER:
        *size = sizeof(t->log_order);
        return t->log_order;

    case NGX_HTTP_DARKROOM_LOG_EVENT:
        *size = sizeof(t->log_event);
        return t->log_event;

    default: /* NGX_HTTP_DARKROOM_LOG_RESULT */
        *size = sizeof(t->log_result);
        return t->log_result;
    }
}


/*
 * On the event loop: value (NUL-terminated, cut to the field's size) is
 * what $darkroom_<what> logs.  A result already noted is kept: the first
 * outcome is the one that answered.
 */

void
ngx_http_darkroom_log_note(ngx_http_request_t *r, ngx_uint_t what,
    const char *value)
{
    char                      *field;
    size_t                     size;
    ngx_http_darkroom_task_t  *t;

    if (value == NULL || value[0] == '\0') {
        return;
    }

    t = ngx_http_darkroom_task_of(r->main);
    if (t == NULL) {
        return;
    }

    field = ngx_http_darkroom_log_field(t, what, &size);

    if (what == NGX_HTTP_DARKROOM_LOG_RESULT && field[0]) {
        return;
    }

    ngx_cpystrn((u_char *) field, (u_char *) value, size);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "darkroom log note %ui: \"%s\"", what, field);
}


static ngx_int_t
ngx_http_darkroom_var(ngx_http_request_t *r, ngx_http_variable_value_t *v,
    uintptr_t data)
{
    char                      *field;
    size_t                     size;
    ngx_http_darkroom_task_t  *t;

    t = ngx_http_darkroom_task_peek(r->main);

    if (t == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    field = ngx_http_darkroom_log_field(t, data, &size);

    if (field[0] == '\0') {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = ngx_strlen(field);
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->data = (u_char *) field;

    return NGX_OK;
}
