
/*
 * darkroom: customer and shop email through Postmark, SendGrid or Resend
 * (ngx_http_darkroom_mail_providers.c: one table entry each).
 *
 * Mail is sent by the "email" job kind only, never on a request: the shop
 * writes a job in the transaction that causes the message (a paid order, a
 * refund, an order needing review) and a pool thread sends it.  For each
 * job the handler
 *
 *   1. renders the message once, from email_context() in SQL and the
 *      template files, and records it in the emails table with a message
 *      key of its own (status "queued"), before any provider is called;
 *   2. sends exactly that row through the configured provider, the key as
 *      Resend's Idempotency-Key (and as metadata for the others);
 *   3. records the outcome: "sent" with the provider's message id, "failed"
 *      with the provider's reason for an answer that will never succeed,
 *      or still "queued" for one worth retrying (network, 429, 5xx),
 *      which the job runner retries with backoff, Retry-After honoured.
 *
 * A job re-run after a crash finds its row and sends the same bytes under
 * the same key, so Resend sends it once; Postmark and SendGrid take no
 * idempotency key, and the window between their answer and step 3 can
 * repeat a message (at least once rather than lost).
 *
 * Templates are files read at send time (edits need no reload) and checked
 * at configuration time (nginx -t finds a broken one).
 */


#include "ngx_http_darkroom.h"
#include "ngx_http_darkroom_mail.h"
#include "ngx_http_darkroom_template.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>


#define NGX_HTTP_DARKROOM_MAIL_TPL_MAX      (256 * 1024)
#define NGX_HTTP_DARKROOM_MAIL_TPL_NAME     40    /* a template's name */
#define NGX_HTTP_DARKROOM_MAIL_TPL_ERR      160   /* a template's error */
#define NGX_HTTP_DARKROOM_MAIL_ADDR_MAX     254
#define NGX_HTTP_DARKROOM_MAIL_SUBJECT_MAX  900


static ngx_int_t ngx_http_darkroom_mail_job(ngx_http_darkroom_job_t *job,
    ngx_http_darkroom_error_t *err);
static const char *ngx_http_darkroom_mail_template(
    ngx_http_darkroom_job_t *job, ngx_http_darkroom_error_t *err);
static PGresult *ngx_http_darkroom_mail_message(
    ngx_http_darkroom_mail_main_conf_t *mcf, ngx_http_darkroom_job_t *job,
    const char *tpl, ngx_http_darkroom_mail_msg_t *msg, ngx_int_t *rc,
    ngx_http_darkroom_error_t *err);
static ngx_int_t ngx_http_darkroom_mail_outcome(
    ngx_http_darkroom_mail_main_conf_t *mcf, ngx_http_darkroom_job_t *job,
    ngx_http_darkroom_mail_msg_t *msg, ngx_http_darkroom_mail_result_t *res,
    ngx_http_darkroom_error_t *err);
static PGresult *ngx_http_darkroom_mail_compose(
    ngx_http_darkroom_mail_main_conf_t *mcf, ngx_http_darkroom_job_t *job,
    const char *tpl, ngx_int_t *rc, ngx_http_darkroom_error_t *err);
static cJSON *ngx_http_darkroom_mail_context(
    ngx_http_darkroom_mail_main_conf_t *mcf, ngx_http_darkroom_job_t *job,
    const char *tpl, ngx_int_t *rc, ngx_http_darkroom_error_t *err);
static ngx_int_t ngx_http_darkroom_mail_order_link(
    ngx_http_darkroom_mail_main_conf_t *mcf, cJSON *data);
static char *ngx_http_darkroom_mail_check_order_url(ngx_conf_t *cf,
    ngx_http_darkroom_mail_main_conf_t *mcf);
static const char *ngx_http_darkroom_mail_shop_address(
    ngx_http_darkroom_mail_main_conf_t *mcf);
static ngx_int_t ngx_http_darkroom_mail_alert(const char *subject,
    const char *text, const char *key, ngx_msec_t timeout, char *reason,
    size_t size);
static const char *ngx_http_darkroom_mail_recipient(
    ngx_http_darkroom_mail_main_conf_t *mcf, cJSON *data, const char **kind);
static ngx_int_t ngx_http_darkroom_mail_render(
    ngx_http_darkroom_mail_main_conf_t *mcf, const char *tpl, cJSON *data,
    char **subject, char **text, char **html, char *reason, size_t size);
static ngx_int_t ngx_http_darkroom_mail_render_text(
    ngx_http_darkroom_mail_main_conf_t *mcf, const char *tpl, cJSON *data,
    char **subject, char **text, char *reason, size_t size);
static void ngx_http_darkroom_mail_subject_line(char *subject);
static char *ngx_http_darkroom_mail_read(const char *dir, const char *name,
    const char *ext, size_t *len, int *missing);
static ngx_int_t ngx_http_darkroom_mail_check_address(ngx_str_t *addr);
static char *ngx_http_darkroom_mail_booking_reminders(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_http_darkroom_mail_booking_reminders_job(
    ngx_http_darkroom_job_t *job, ngx_http_darkroom_error_t *err);
static ngx_int_t ngx_http_darkroom_mail_reminders(
    ngx_http_darkroom_job_t *job, ngx_http_darkroom_error_t *err);

static char *ngx_http_darkroom_mail_from(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_darkroom_mail_from_split(ngx_str_t *value,
    ngx_str_t *name, ngx_str_t *addr);
static char *ngx_http_darkroom_mail_provider(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_darkroom_mail_address(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_darkroom_mail_check_templates(ngx_conf_t *cf,
    ngx_http_darkroom_mail_main_conf_t *mcf);
static void *ngx_http_darkroom_mail_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_darkroom_mail_init_main_conf(ngx_conf_t *cf,
    void *conf);
static ngx_int_t ngx_http_darkroom_mail_postconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_darkroom_mail_init_process(ngx_cycle_t *cycle);


static ngx_conf_num_bounds_t  ngx_http_darkroom_mail_reminder_bounds = {
    ngx_conf_check_num_bounds, 1, 365
};


/* read-only in threads: this worker's configuration */
static ngx_http_darkroom_mail_main_conf_t  *ngx_http_darkroom_mail_conf;


static ngx_command_t  ngx_http_darkroom_mail_commands[] = {

    { ngx_string("darkroom_mail_provider"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_darkroom_mail_provider,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("darkroom_mail_api"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_darkroom_mail_main_conf_t, api),
      NULL },

    { ngx_string("darkroom_mail_token_file"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_darkroom_secret_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_darkroom_mail_main_conf_t, tokens),
      NULL },

    { ngx_string("darkroom_mail_from"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_darkroom_mail_from,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("darkroom_mail_reply_to"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_darkroom_mail_address,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_darkroom_mail_main_conf_t, reply_to),
      NULL },

    { ngx_string("darkroom_mail_alert_to"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_darkroom_mail_address,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_darkroom_mail_main_conf_t, alert_to),
      NULL },

    { ngx_string("darkroom_mail_shop_name"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_darkroom_mail_main_conf_t, shop_name),
      NULL },

    { ngx_string("darkroom_mail_shop_url"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_darkroom_mail_main_conf_t, shop_url),
      NULL },

    { ngx_string("darkroom_mail_templates"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_darkroom_mail_main_conf_t, templates),
      NULL },

    { ngx_string("darkroom_mail_order_url"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_darkroom_mail_main_conf_t, order_url),
      NULL },

    { ngx_string("darkroom_mail_postmark_stream"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_darkroom_mail_main_conf_t, stream),
      NULL },

    { ngx_string("darkroom_mail_gallery_reminder_days"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_darkroom_mail_main_conf_t, reminder_days),
      &ngx_http_darkroom_mail_reminder_bounds },

    { ngx_string("darkroom_mail_booking_reminders"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_darkroom_mail_booking_reminders,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_darkroom_mail_module_ctx = {
    NULL,                                   /* preconfiguration */
    ngx_http_darkroom_mail_postconfiguration, /* postconfiguration */

    ngx_http_darkroom_mail_create_main_conf, /* create main configuration */
    ngx_http_darkroom_mail_init_main_conf,  /* init main configuration */

    NULL,                                   /* create server configuration */
    NULL,                                   /* merge server configuration */

    NULL,                                   /* create location configuration */
    NULL                                    /* merge location configuration */
};


ngx_module_t  ngx_http_darkroom_mail_module = {
    NGX_MODULE_V1,
    &ngx_http_darkroom_mail_module_ctx,     /* module context */
    ngx_http_darkroom_mail_commands,        /* module directives */
    NGX_HTTP_MODULE,                        /* module type */
    NULL,                                   /* init master */
    NULL,                                   /* init module */
    ngx_http_darkroom_mail_init_process,    /* init process */
    NULL,                                   /* init thread */
    NULL,                                   /* exit thread */
    NULL,                                   /* exit process */
    NULL,                                   /* exit master */
    NGX_MODULE_V1_PADDING
};


/* ------------------------------------------------------------------ job */

/*
 * "email": {"template": "receipt", "order_id": 12, ...}.  Runs in a pool
 * thread: libpq, libcurl and malloc only.
 */

static ngx_int_t
ngx_http_darkroom_mail_job(ngx_http_darkroom_job_t *job,
    ngx_http_darkroom_error_t *err)
{
    PGresult                            *row;
    ngx_int_t                            rc;
    const char                          *tpl;
    ngx_http_darkroom_mail_msg_t         msg;
    ngx_http_darkroom_mail_result_t      res;
    ngx_http_darkroom_mail_main_conf_t  *mcf;

    mcf = ngx_http_darkroom_mail_conf;

    if (mcf == NULL || mcf->provider == NULL) {
        snprintf(err->detail, sizeof(err->detail),
                 "email: mail is not configured in this worker");
        return NGX_ERROR;
    }

    tpl = ngx_http_darkroom_mail_template(job, err);
    if (tpl == NULL) {
        return NGX_DECLINED;
    }

    /* 1. the message of this job, rendered and recorded once */

    row = ngx_http_darkroom_mail_message(mcf, job, tpl, &msg, &rc, err);
    if (row == NULL) {
        return rc;
    }

    if (ngx_strcmp(msg.status, "sent") == 0) {
        /* sent, and the job's end was not recorded: nothing more to do */
        PQclear(row);
        return NGX_OK;
    }

    /*
     * 2. send.  A "failed" row seen here belongs to a dead job an admin
     * asked to retry: it is sent again, under the same key.
     */

    ngx_memzero(&res, sizeof(ngx_http_darkroom_mail_result_t));

    ngx_http_darkroom_mail_send(mcf, job, &msg, &res);

    /* 3. the outcome, on the message row and for the job runner */

    rc = ngx_http_darkroom_mail_outcome(mcf, job, &msg, &res, err);

    PQclear(row);

    return rc;
}


/* the payload's template name: [a-z][a-z0-9_]*, not too long */

static const char *
ngx_http_darkroom_mail_template(ngx_http_darkroom_job_t *job,
    ngx_http_darkroom_error_t *err)
{
    cJSON       *tpl;
    const char  *p;

    tpl = cJSON_GetObjectItemCaseSensitive(job->payload, "template");

    if (!cJSON_IsString(tpl) || tpl->valuestring[0] < 'a'
        || tpl->valuestring[0] > 'z'
        || strlen(tpl->valuestring) > NGX_HTTP_DARKROOM_MAIL_TPL_NAME)
    {
        snprintf(err->detail, sizeof(err->detail),
                 "email: payload needs a \"template\" name");
        return NULL;
    }

    for (p = tpl->valuestring; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')
              || *p == '_'))
        {
            snprintf(err->detail, sizeof(err->detail),
                     "email: bad template name in payload");
            return NULL;
        }
    }

    return tpl->valuestring;
}


/*
 * The job's message: its row, composed and recorded on the job's first
 * run, and msg pointing into it.  NULL with *rc the job's outcome.
 */

static PGresult *
ngx_http_darkroom_mail_message(ngx_http_darkroom_mail_main_conf_t *mcf,
    ngx_http_darkroom_job_t *job, const char *tpl,
    ngx_http_darkroom_mail_msg_t *msg, ngx_int_t *rc,
    ngx_http_darkroom_error_t *err)
{
    char         id[NGX_INT64_LEN + 1];
    PGresult    *row;
    const char  *params[1];

    snprintf(id, sizeof(id), "%lld", (long long) job->id);
    params[0] = id;

    row = ngx_http_darkroom_db_exec(job->db,
              "SELECT * FROM email_of_job($1::bigint)", 1, params, err);
    if (row == NULL) {
        *rc = NGX_ERROR;
        return NULL;
    }

    if (PQntuples(row) == 0) {
        PQclear(row);

        row = ngx_http_darkroom_mail_compose(mcf, job, tpl, rc, err);
        if (row == NULL) {
            return NULL;
        }
    }

    msg->id = ngx_http_darkroom_db_field(row, 0, "id");
    msg->status = ngx_http_darkroom_db_field(row, 0, "status");
    msg->key = ngx_http_darkroom_db_field(row, 0, "message_key");
    msg->to = ngx_http_darkroom_db_field(row, 0, "recipient");
    msg->subject = ngx_http_darkroom_db_field(row, 0, "subject");
    msg->text = ngx_http_darkroom_db_field(row, 0, "body_text");
    msg->html = ngx_http_darkroom_db_field(row, 0, "body_html");
    msg->tpl = ngx_http_darkroom_db_field(row, 0, "template");
    msg->attachments = ngx_http_darkroom_db_field(row, 0, "attachments");

    if (msg->id == NULL || msg->status == NULL || msg->key == NULL
        || msg->to == NULL || msg->subject == NULL || msg->text == NULL
        || msg->tpl == NULL)
    {
        PQclear(row);
        *rc = NGX_ERROR;
        snprintf(err->detail, sizeof(err->detail),
                 "email %s: its row lacks a column", tpl);
        return NULL;
    }

    return row;
}


/* records what a provider call came to; returns the job's outcome */

static ngx_int_t
ngx_http_darkroom_mail_outcome(ngx_http_darkroom_mail_main_conf_t *mcf,
    ngx_http_darkroom_job_t *job, ngx_http_darkroom_mail_msg_t *msg,
    ngx_http_darkroom_mail_result_t *res, ngx_http_darkroom_error_t *err)
{
    ngx_int_t    rc;
    const char  *params[5], *status;

    if (res->outcome == NGX_HTTP_DARKROOM_MAIL_RETRY
        && job->attempts >= job->max_attempts)
    {
        /* the job runner gives up after this attempt */
        res->outcome = NGX_HTTP_DARKROOM_MAIL_FAILED;
    }

    switch (res->outcome) {

    case NGX_HTTP_DARKROOM_MAIL_SENT:
        status = "sent";
        rc = NGX_OK;
        break;

    case NGX_HTTP_DARKROOM_MAIL_FAILED:
        status = "failed";
        rc = NGX_DECLINED;
        break;

    default: /* NGX_HTTP_DARKROOM_MAIL_RETRY */
        status = "queued";
        rc = NGX_ERROR;
        job->retry_after = res->retry_after;
        break;
    }

    params[0] = msg->id;
    params[1] = status;
    params[2] = res->message_id[0] ? res->message_id : NULL;
    params[3] = (res->outcome == NGX_HTTP_DARKROOM_MAIL_SENT) ? NULL
                                                              : res->reason;
    params[4] = mcf->provider->name;

    if (ngx_http_darkroom_db_command(job->db,
            "SELECT email_outcome($1::bigint, $2, $3, $4, $5)",
            5, params, err)
        != NGX_OK)
    {
        if (res->outcome == NGX_HTTP_DARKROOM_MAIL_SENT) {
            /* a re-run resends under the same key */
            snprintf(err->detail, sizeof(err->detail),
                     "email %s sent, not recorded: %.300s", msg->id,
                     err->message);
        }

        return NGX_ERROR;
    }

    if (rc != NGX_OK) {
        snprintf(err->detail, sizeof(err->detail), "email %s (%s): %.300s",
                 msg->id, msg->tpl, res->reason);
    }

    return rc;
}


/*
 * Renders the job's message and records it; returns its row, or NULL with
 * *rc the job's outcome.
 */

static PGresult *
ngx_http_darkroom_mail_compose(ngx_http_darkroom_mail_main_conf_t *mcf,
    ngx_http_darkroom_job_t *job, const char *tpl, ngx_int_t *rc,
    ngx_http_darkroom_error_t *err)
{
    char         job_id[NGX_INT64_LEN + 1], order_id[NGX_INT64_LEN + 1];
    char         reason[NGX_HTTP_DARKROOM_MAIL_REASON_LEN];
    char        *subject, *text, *html, *att;
    cJSON       *data, *oid;
    PGresult    *res;
    const char  *params[10], *rcpt, *kind;

    data = ngx_http_darkroom_mail_context(mcf, job, tpl, rc, err);
    if (data == NULL) {
        return NULL;
    }

    rcpt = ngx_http_darkroom_mail_recipient(mcf, data, &kind);

    if (rcpt == NULL || rcpt[0] == '\0') {
        cJSON_Delete(data);
        *rc = NGX_DECLINED;
        snprintf(err->detail, sizeof(err->detail),
                 "email %s: no recipient", tpl);
        return NULL;
    }

    subject = NULL;
    text = NULL;
    html = NULL;

    *rc = ngx_http_darkroom_mail_render(mcf, tpl, data, &subject, &text,
                                        &html, reason, sizeof(reason));
    if (*rc != NGX_OK) {
        cJSON_Delete(data);
        free(subject);
        free(text);
        snprintf(err->detail, sizeof(err->detail), "email %s: %.300s", tpl,
                 reason);
        return NULL;
    }

    oid = cJSON_GetObjectItemCaseSensitive(
              cJSON_GetObjectItemCaseSensitive(data, "order"), "id");

    if (cJSON_IsNumber(oid)) {
        snprintf(order_id, sizeof(order_id), "%.0f", oid->valuedouble);
    }

    snprintf(job_id, sizeof(job_id), "%lld", (long long) job->id);

    params[0] = job_id;
    params[1] = tpl;
    params[2] = kind;
    params[3] = rcpt;
    params[4] = cJSON_IsNumber(oid) ? order_id : NULL;
    params[5] = mcf->provider->name;
    params[6] = subject;
    params[7] = text;
    params[8] = html;

    /* the invite of a booking's email, say: recorded with the message */

    att = cJSON_PrintUnformatted(
              cJSON_GetObjectItemCaseSensitive(data, "attachments"));
    params[9] = att;

    /* the job holds its lease: no other run records it meanwhile */

    res = ngx_http_darkroom_db_exec(job->db,
              "SELECT * FROM email_record($1::bigint, $2, $3, $4,"
              " $5::bigint, $6, $7, $8, $9, $10::jsonb)",
              10, params, err);

    cJSON_Delete(data);
    free(subject);
    free(text);
    free(html);
    free(att);

    if (res == NULL) {
        *rc = NGX_ERROR;
        return NULL;
    }

    if (PQntuples(res) != 1) {
        PQclear(res);
        *rc = NGX_ERROR;
        snprintf(err->detail, sizeof(err->detail),
                 "email %s: not recorded", tpl);
        return NULL;
    }

    return res;
}


/*
 * What a template sees: email_context() of the job's payload, and the shop
 * as configured.  NULL with *rc the job's outcome.
 */

static cJSON *
ngx_http_darkroom_mail_context(ngx_http_darkroom_mail_main_conf_t *mcf,
    ngx_http_darkroom_job_t *job, const char *tpl, ngx_int_t *rc,
    ngx_http_darkroom_error_t *err)
{
    char         *payload;
    cJSON        *data, *shop;
    PGresult     *res;
    const char   *params[2], *context;

    payload = cJSON_PrintUnformatted(job->payload);
    if (payload == NULL) {
        *rc = NGX_ERROR;
        snprintf(err->detail, sizeof(err->detail), "email: out of memory");
        return NULL;
    }

    params[0] = tpl;
    params[1] = payload;

    res = ngx_http_darkroom_db_exec(job->db,
              "SELECT email_context($1, $2::jsonb) AS context",
              2, params, err);

    free(payload);

    if (res == NULL) {
        *rc = NGX_ERROR;
        return NULL;
    }

    context = ngx_http_darkroom_db_field(res, 0, "context");

    if (PQntuples(res) != 1 || context == NULL) {
        PQclear(res);
        *rc = NGX_DECLINED;
        snprintf(err->detail, sizeof(err->detail),
                 "email %s: the order or gallery it is about is gone", tpl);
        return NULL;
    }

    data = cJSON_Parse(context);
    PQclear(res);

    if (data == NULL) {
        *rc = NGX_ERROR;
        snprintf(err->detail, sizeof(err->detail),
                 "email %s: email_context() is not JSON", tpl);
        return NULL;
    }

    shop = cJSON_AddObjectToObject(data, "shop");

    if (shop == NULL
        || !cJSON_AddStringToObject(shop, "name",
               mcf->shop_name.len ? (char *) mcf->shop_name.data
                                  : (char *) mcf->from_name.data)
        || !cJSON_AddStringToObject(shop, "url", (char *) mcf->shop_url.data)
        || !cJSON_AddStringToObject(shop, "email",
               mcf->reply_to.len ? (char *) mcf->reply_to.data
                                 : (char *) mcf->from_email.data))
    {
        cJSON_Delete(data);
        *rc = NGX_ERROR;
        snprintf(err->detail, sizeof(err->detail), "email: out of memory");
        return NULL;
    }

    /* the order page link; a delivery email's links, signed by core */

    if (ngx_http_darkroom_mail_order_link(mcf, data) != NGX_OK
        || ngx_http_darkroom_download_sign_json(job->conf,
               cJSON_GetObjectItemCaseSensitive(data, "downloads"))
           != NGX_OK)
    {
        cJSON_Delete(data);
        *rc = NGX_ERROR;
        snprintf(err->detail, sizeof(err->detail), "email: out of memory");
        return NULL;
    }

    return data;
}


/*
 * The order page link, order.url: darkroom_mail_order_url with the order's
 * status token, derived again from the seed and key id email_context()
 * gives (ngx_http_darkroom_order_token), and its ref.  No link when none is
 * configured, the order has no seed (made before sql/021) or its key has
 * left darkroom_order_keys: the templates then quote the order's ref.  The
 * seed never reaches a template.  NGX_ERROR: out of memory.
 */

static ngx_int_t
ngx_http_darkroom_mail_order_link(ngx_http_darkroom_mail_main_conf_t *mcf,
    cJSON *data)
{
    char        *url, *seed;
    cJSON       *order, *v;
    u_char       token[NGX_HTTP_DARKROOM_TOKEN_SIZE];
    ngx_int_t    rc;
    const char  *ref, *kid;

    order = cJSON_GetObjectItemCaseSensitive(data, "order");
    if (!cJSON_IsObject(order)) {
        return NGX_OK;
    }

    v = cJSON_DetachItemFromObjectCaseSensitive(order, "token_seed");
    seed = cJSON_IsString(v) ? v->valuestring : NULL;
    kid = ngx_http_darkroom_json_str(order, "token_kid");
    ref = ngx_http_darkroom_json_str(order, "ref");

    token[0] = '\0';
    rc = NGX_OK;

    if (mcf->order_url.len && ref
        && (!mcf->order_url_token
            || ngx_http_darkroom_order_token(mcf->order_keys, kid, seed,
                                             token, NULL)
               == NGX_OK))
    {
        url = ngx_http_darkroom_order_url(&mcf->order_url, (char *) token,
                                          ref);

        if (url == NULL || !cJSON_AddStringToObject(order, "url", url)) {
            rc = NGX_ERROR;
        }

        free(url);
    }

    cJSON_Delete(v);
    cJSON_DeleteItemFromObjectCaseSensitive(order, "token_kid");
    ngx_memzero(token, sizeof(token));

    return rc;
}


/*
 * Who a message goes to: the shop's own messages (kind "shop") to the
 * alert address, the reply-to or the sender; the others to the customer
 * email_context() names.  *kind is "shop" or "customer".
 */

static const char *
ngx_http_darkroom_mail_recipient(ngx_http_darkroom_mail_main_conf_t *mcf,
    cJSON *data, const char **kind)
{
    const char  *k;

    k = ngx_http_darkroom_json_str(data, "kind");

    if (k && ngx_strcmp(k, "shop") == 0) {
        *kind = "shop";

        return ngx_http_darkroom_mail_shop_address(mcf);
    }

    *kind = "customer";

    return ngx_http_darkroom_json_str(data, "to");
}


/* the shop's own address: the alert address, the reply-to or the sender */

static const char *
ngx_http_darkroom_mail_shop_address(ngx_http_darkroom_mail_main_conf_t *mcf)
{
    return mcf->alert_to.len ? (char *) mcf->alert_to.data
           : mcf->reply_to.len ? (char *) mcf->reply_to.data
           : (char *) mcf->from_email.data;
}


/*
 * ngx_http_darkroom_alert_mail (core's hook, darkroom_alerts), in a pool
 * thread: an alert that cannot wait for a job row (PostgreSQL is down)
 * sent at once to the shop's address, "[shop name] subject", text only,
 * under key.  Recorded nowhere: there is no database to record it in.
 */

static ngx_int_t
ngx_http_darkroom_mail_alert(const char *subject, const char *text,
    const char *key, ngx_msec_t timeout, char *reason, size_t size)
{
    char                                 line[256];
    ngx_http_darkroom_job_t              job;
    ngx_http_darkroom_mail_msg_t         msg;
    ngx_http_darkroom_mail_result_t      res;
    ngx_http_darkroom_mail_main_conf_t  *mcf;

    mcf = ngx_http_darkroom_mail_conf;

    if (mcf == NULL || mcf->provider == NULL) {
        snprintf(reason, size, "mail is not configured in this worker");
        return NGX_ERROR;
    }

    snprintf(line, sizeof(line), "[%s] %s",
             mcf->shop_name.len ? (char *) mcf->shop_name.data : "darkroom",
             subject);

    ngx_memzero(&msg, sizeof(ngx_http_darkroom_mail_msg_t));
    msg.id = "";
    msg.status = "queued";
    msg.key = key;
    msg.to = ngx_http_darkroom_mail_shop_address(mcf);
    msg.subject = line;
    msg.text = text;
    msg.tpl = "shop_alert";

    /* the provider call reads the job's fetch timeout only */
    ngx_memzero(&job, sizeof(ngx_http_darkroom_job_t));
    job.fetch_timeout = timeout;

    ngx_memzero(&res, sizeof(ngx_http_darkroom_mail_result_t));

    ngx_http_darkroom_mail_send(mcf, &job, &msg, &res);

    if (res.outcome != NGX_HTTP_DARKROOM_MAIL_SENT) {
        snprintf(reason, size, "%s", res.reason);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * <dir>/<template>.txt is "Subject: ..." on its first line, then the plain
 * text body after one empty line; <dir>/<template>.html, if present, the
 * HTML body.  Placeholders in HTML are escaped, in text and subject not.
 */

static ngx_int_t
ngx_http_darkroom_mail_render(ngx_http_darkroom_mail_main_conf_t *mcf,
    const char *tpl, cJSON *data, char **subject, char **text, char **html,
    char *reason, size_t size)
{
    int      missing;
    char    *src, err[NGX_HTTP_DARKROOM_MAIL_TPL_ERR];
    size_t   len, n;

    if (ngx_http_darkroom_mail_render_text(mcf, tpl, data, subject, text,
                                           reason, size)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    src = ngx_http_darkroom_mail_read((char *) mcf->templates.data, tpl,
                                      "html", &len, &missing);
    if (src == NULL) {
        if (missing) {
            return NGX_OK;
        }

        snprintf(reason, size, "template %s.html cannot be read", tpl);
        return NGX_ERROR;
    }

    if (ngx_http_darkroom_tpl_render(src, len, data, 1, html, &n, err,
                                     sizeof(err))
        != NGX_HTTP_DARKROOM_TPL_OK)
    {
        free(src);
        snprintf(reason, size, "template %s.html: %s", tpl, err);
        return NGX_ERROR;
    }

    free(src);

    return NGX_OK;
}


/* <template>.txt: the subject line and the plain text body */

static ngx_int_t
ngx_http_darkroom_mail_render_text(ngx_http_darkroom_mail_main_conf_t *mcf,
    const char *tpl, cJSON *data, char **subject, char **text, char *reason,
    size_t size)
{
    int      missing;
    char    *src, *nl, *body, *s, err[NGX_HTTP_DARKROOM_MAIL_TPL_ERR];
    size_t   len, n;

    src = ngx_http_darkroom_mail_read((char *) mcf->templates.data, tpl,
                                      "txt", &len, &missing);
    if (src == NULL) {
        snprintf(reason, size, "template %s/%s.txt %s",
                 mcf->templates.data, tpl,
                 missing ? "does not exist" : "cannot be read");
        return NGX_ERROR;
    }

    nl = memchr(src, '\n', len);

    if (len < 9 || ngx_strncmp(src, "Subject:", 8) != 0 || nl == NULL) {
        free(src);
        snprintf(reason, size, "template %s.txt does not start with a "
                 "\"Subject:\" line", tpl);
        return NGX_ERROR;
    }

    *nl = '\0';
    body = nl + 1;

    if (*body == '\r') {
        body++;
    }

    if (*body == '\n') {
        body++;
    }

    s = src + 8;

    if (ngx_http_darkroom_tpl_render(s, strlen(s), data, 0, subject, &n,
                                     err, sizeof(err))
        != NGX_HTTP_DARKROOM_TPL_OK
        || ngx_http_darkroom_tpl_render(body, src + len - body, data, 0,
                                        text, &n, err, sizeof(err))
           != NGX_HTTP_DARKROOM_TPL_OK)
    {
        free(src);
        free(*subject);
        *subject = NULL;
        snprintf(reason, size, "template %s.txt: %s", tpl, err);
        return NGX_ERROR;
    }

    free(src);

    ngx_http_darkroom_mail_subject_line(*subject);

    return NGX_OK;
}


/* a subject in place: one line, no control characters, trimmed */

static void
ngx_http_darkroom_mail_subject_line(char *subject)
{
    char    *s;
    size_t   n;

    for (s = subject; *s; s++) {
        if ((u_char) *s < 0x20 || *s == 0x7f) {
            *s = ' ';
        }
    }

    s = subject;

    while (*s == ' ') {
        s++;
    }

    n = strlen(s);

    while (n && s[n - 1] == ' ') {
        n--;
    }

    memmove(subject, s, n);
    subject[ngx_min(n, NGX_HTTP_DARKROOM_MAIL_SUBJECT_MAX)] = '\0';
}


/* a template file, malloc'd and NUL-terminated; plain POSIX I/O */

static char *
ngx_http_darkroom_mail_read(const char *dir, const char *name,
    const char *ext, size_t *len, int *missing)
{
    int          fd;
    char         path[NGX_MAX_PATH], *buf;
    size_t       got;
    ssize_t      n;
    struct stat  st;

    *missing = 0;

    if ((size_t) snprintf(path, sizeof(path), "%s/%s.%s", dir, name, ext)
        >= sizeof(path))
    {
        return NULL;
    }

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        *missing = (errno == ENOENT);
        return NULL;
    }

    if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)
        || st.st_size > NGX_HTTP_DARKROOM_MAIL_TPL_MAX)
    {
        close(fd);
        return NULL;
    }

    buf = malloc(st.st_size + 1);
    if (buf == NULL) {
        close(fd);
        return NULL;
    }

    got = 0;

    while (got < (size_t) st.st_size) {
        n = read(fd, buf + got, st.st_size - got);

        if (n == -1 && errno == EINTR) {
            continue;
        }

        if (n <= 0) {
            break;
        }

        got += n;
    }

    close(fd);

    buf[got] = '\0';
    *len = got;

    return buf;
}


/* ------------------------------------------------------- configuration */

static char *
ngx_http_darkroom_mail_provider(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_darkroom_mail_main_conf_t  *mcf = conf;

    u_char                             *p, *last;
    u_char                              names[NGX_MAX_ERROR_STR];
    ngx_str_t                          *value;
    ngx_http_darkroom_mail_provider_t  *pv;

    if (mcf->provider != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    mcf->provider = ngx_http_darkroom_mail_provider_find(&value[1]);

    if (mcf->provider) {
        mcf->file = cf->conf_file->file.name.data;
        mcf->line = cf->conf_file->line;
        return NGX_CONF_OK;
    }

    /* "postmark, sendgrid or resend" */

    p = names;
    last = names + sizeof(names);

    for (pv = ngx_http_darkroom_mail_providers; pv->name; pv++) {
        p = ngx_slprintf(p, last, "%s%s",
                         pv == ngx_http_darkroom_mail_providers ? ""
                         : pv[1].name ? ", " : " or ",
                         pv->name);
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "unknown mail provider \"%V\": use %*s",
                       &value[1], (size_t) (p - names), names);

    return NGX_CONF_ERROR;
}


/* "Name <addr@example.com>" or "addr@example.com" */

static char *
ngx_http_darkroom_mail_from(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_darkroom_mail_main_conf_t  *mcf = conf;

    u_char     *p;
    ngx_str_t  *value, name, addr;

    if (mcf->from.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_http_darkroom_mail_from_split(&value[1], &name, &addr)
        != NGX_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid sender \"%V\": use \"Name <address>\" "
                           "or \"address\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    mcf->from_name.data = ngx_pnalloc(cf->pool, name.len + 1);
    mcf->from_email.data = ngx_pnalloc(cf->pool, addr.len + 1);
    mcf->from.data = ngx_pnalloc(cf->pool, name.len + addr.len + 6);

    if (mcf->from_name.data == NULL || mcf->from_email.data == NULL
        || mcf->from.data == NULL)
    {
        return NGX_CONF_ERROR;
    }

    *ngx_cpymem(mcf->from_name.data, name.data, name.len) = '\0';
    mcf->from_name.len = name.len;
    *ngx_cpymem(mcf->from_email.data, addr.data, addr.len) = '\0';
    mcf->from_email.len = addr.len;

    /* quoted when the name has anything but words and spaces */

    for (p = name.data; p < name.data + name.len; p++) {
        if (ngx_strchr(",;:()[]@.", *p)) {
            break;
        }
    }

    if (name.len == 0) {
        p = ngx_cpymem(mcf->from.data, addr.data, addr.len);

    } else {
        p = ngx_sprintf(mcf->from.data,
                        (p < name.data + name.len) ? "\"%V\" <%V>" : "%V <%V>",
                        &name, &addr);
    }

    *p = '\0';
    mcf->from.len = p - mcf->from.data;

    return NGX_CONF_OK;
}


/* a sender's display name (maybe empty, unquoted) and address, checked */

static ngx_int_t
ngx_http_darkroom_mail_from_split(ngx_str_t *value, ngx_str_t *name,
    ngx_str_t *addr)
{
    u_char  *lt, *gt, *p, *end;

    p = value->data;
    end = p + value->len;

    lt = ngx_strlchr(p, end, '<');

    if (lt) {
        gt = ngx_strlchr(lt, end, '>');

        if (gt == NULL || gt + 1 != end) {
            return NGX_ERROR;
        }

        name->data = p;
        name->len = lt - p;

        while (name->len && name->data[name->len - 1] == ' ') {
            name->len--;
        }

        if (name->len >= 2 && name->data[0] == '"'
            && name->data[name->len - 1] == '"')
        {
            name->data++;
            name->len -= 2;
        }

        addr->data = lt + 1;
        addr->len = gt - lt - 1;

    } else {
        ngx_str_set(name, "");      /* not NULL: it is copied */
        *addr = *value;
    }

    for (p = name->data; p < name->data + name->len; p++) {
        if (*p < 0x20 || *p == 0x7f || *p == '"' || *p == '\\' || *p == '<'
            || *p == '>')
        {
            return NGX_ERROR;
        }
    }

    return ngx_http_darkroom_mail_check_address(addr);
}



static char *
ngx_http_darkroom_mail_address(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    char  *p = conf;

    ngx_str_t  *field, *value;

    field = (ngx_str_t *) (p + cmd->offset);

    if (field->data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_http_darkroom_mail_check_address(&value[1]) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid email address \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    *field = value[1];

    return NGX_CONF_OK;
}


/* local@domain, printable, no spaces or brackets: the provider checks more */

static ngx_int_t
ngx_http_darkroom_mail_check_address(ngx_str_t *addr)
{
    u_char      *p, *at;
    ngx_uint_t   n;

    if (addr->len < 3 || addr->len > NGX_HTTP_DARKROOM_MAIL_ADDR_MAX) {
        return NGX_ERROR;
    }

    at = NULL;
    n = 0;

    for (p = addr->data; p < addr->data + addr->len; p++) {
        if (*p <= 0x20 || *p >= 0x7f || ngx_strchr("<>()[]\\,;:\"", *p)) {
            return NGX_ERROR;
        }

        if (*p == '@') {
            at = p;
            n++;
        }
    }

    if (n != 1 || at == addr->data || at == addr->data + addr->len - 1) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void *
ngx_http_darkroom_mail_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_darkroom_mail_main_conf_t  *mcf;

    mcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_darkroom_mail_main_conf_t));
    if (mcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     mcf->api = { 0, NULL };
     *     mcf->from = { 0, NULL };
     *     mcf->reply_to = { 0, NULL };
     *     mcf->shop_name = { 0, NULL };
     *     mcf->shop_url = { 0, NULL };
     *     mcf->alert_to = { 0, NULL };
     *     mcf->templates = { 0, NULL };
     *     mcf->stream = { 0, NULL };
     */

    mcf->provider = NGX_CONF_UNSET_PTR;
    mcf->tokens = NGX_CONF_UNSET_PTR;
    mcf->reminder_days = NGX_CONF_UNSET_UINT;

    return mcf;
}


static char *
ngx_http_darkroom_mail_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_darkroom_mail_main_conf_t  *mcf = conf;

    u_char  *p;

    ngx_conf_init_ptr_value(mcf->tokens, NULL);
    ngx_conf_init_uint_value(mcf->reminder_days, 3);

    if (mcf->booking_reminders.data == NULL) {
        ngx_str_set(&mcf->booking_reminders, "{172800,7200}");
    }

    if (mcf->provider == NGX_CONF_UNSET_PTR) {
        /* no mail: the email jobs wait for a configuration that sends */
        mcf->provider = NULL;

        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, cf->log, 0,
                       "darkroom mail: no provider, no mail sent");

        return NGX_CONF_OK;
    }

    if (mcf->tokens == NULL || mcf->from.data == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"darkroom_mail_provider\" in %s:%ui needs "
                      "\"darkroom_mail_token_file\" and "
                      "\"darkroom_mail_from\"", mcf->file, mcf->line);
        return NGX_CONF_ERROR;
    }

    if (mcf->api.data == NULL) {
        mcf->api.data = (u_char *) mcf->provider->api;
        mcf->api.len = ngx_strlen(mcf->api.data);
    }

    if (ngx_strncmp(mcf->api.data, "http://", 7) != 0
        && ngx_strncmp(mcf->api.data, "https://", 8) != 0)
    {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"darkroom_mail_api\" must be an http(s) URL, not "
                      "\"%V\"", &mcf->api);
        return NGX_CONF_ERROR;
    }

    while (mcf->api.len && mcf->api.data[mcf->api.len - 1] == '/') {
        mcf->api.data[--mcf->api.len] = '\0';
    }

    if (mcf->stream.data == NULL) {
        ngx_str_set(&mcf->stream, "outbound");
    }

    if (mcf->shop_url.data == NULL) {
        ngx_str_set(&mcf->shop_url, "");

    } else if (mcf->shop_url.len
               && mcf->shop_url.data[mcf->shop_url.len - 1] != '/')
    {
        /* templates append paths such as "g/<slug>" to it */

        p = ngx_pnalloc(cf->pool, mcf->shop_url.len + 2);
        if (p == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memcpy(p, mcf->shop_url.data, mcf->shop_url.len);
        p[mcf->shop_url.len++] = '/';
        p[mcf->shop_url.len] = '\0';
        mcf->shop_url.data = p;
    }

    if (ngx_http_darkroom_mail_check_order_url(cf, mcf) != NGX_CONF_OK) {
        return NGX_CONF_ERROR;
    }

    if (mcf->templates.data == NULL) {
        ngx_str_set(&mcf->templates, "mail");
    }

    /* relative to the configuration's directory, like "include" */

    if (ngx_conf_full_name(cf->cycle, &mcf->templates, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    while (mcf->templates.len > 1
           && mcf->templates.data[mcf->templates.len - 1] == '/')
    {
        mcf->templates.len--;
    }

    mcf->templates.data[mcf->templates.len] = '\0';

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, cf->log, 0,
                   "darkroom mail: provider \"%s\" at %V, templates in %V",
                   mcf->provider->name, &mcf->api, &mcf->templates);

    return ngx_http_darkroom_mail_check_templates(cf, mcf);
}


/*
 * darkroom_mail_order_url: an http(s) URL; with {ORDER_TOKEN} it needs the
 * keys the tokens are derived with.  Without it emails carry no link.
 */

static char *
ngx_http_darkroom_mail_check_order_url(ngx_conf_t *cf,
    ngx_http_darkroom_mail_main_conf_t *mcf)
{
    ngx_http_darkroom_main_conf_t  *dmcf;

    dmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_darkroom_module);

    mcf->order_keys = dmcf->order_keys;

    if (mcf->order_url.data == NULL) {
        ngx_str_set(&mcf->order_url, "");
        return NGX_CONF_OK;
    }

    if (ngx_strncmp(mcf->order_url.data, "http://", 7) != 0
        && ngx_strncmp(mcf->order_url.data, "https://", 8) != 0)
    {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"darkroom_mail_order_url\" must be an http(s) URL, "
                      "not \"%V\"", &mcf->order_url);
        return NGX_CONF_ERROR;
    }

    mcf->order_url_token = (ngx_strstrn(mcf->order_url.data,
                                        "{ORDER_TOKEN}",
                                        sizeof("{ORDER_TOKEN}") - 2)
                            != NULL);

    if (mcf->order_url_token && mcf->order_keys == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"darkroom_mail_order_url\" with {ORDER_TOKEN} "
                      "requires \"darkroom_order_keys\"");
        return NGX_CONF_ERROR;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, cf->log, 0,
                   "darkroom mail: order links to %V", &mcf->order_url);

    return NGX_CONF_OK;
}


/*
 * Every template present is parsed now, so "nginx -t" reports a broken
 * one; the shop's current messages must exist.  They are read again at
 * send time, so an edit is live without a reload.
 */

static char *
ngx_http_darkroom_mail_check_templates(ngx_conf_t *cf,
    ngx_http_darkroom_mail_main_conf_t *mcf)
{
    int          missing;
    char        *src, *out, err[NGX_HTTP_DARKROOM_MAIL_TPL_ERR];
    size_t       len, n;
    cJSON       *empty;
    ngx_uint_t   i, j, rc;
    const char  *name;

    /* the messages the shop sends today must exist, the others may */

    static struct {
        const char  *name;
        ngx_uint_t   required;
    }  all[] = {
        { "receipt", 1 }, { "refunded", 1 }, { "shop_alert", 1 },
        { "shipped", 0 }, { "gallery_delivered", 0 },
        { "gallery_reminder", 0 }, { "delivery", 0 },
        { "payment_failed", 0 }, { "checkout_expired", 0 },
        { "in_production", 0 }, { "selection_submitted", 0 },
        { "password_reset", 0 }, { "gallery_shared", 0 },
        { "booking_confirmed", 0 }, { "booking_rescheduled", 0 },
        { "booking_cancelled", 0 }, { "booking_reminder", 0 },
        { "booking_balance_due", 0 }, { "booking_balance_paid", 0 },
        { NULL, 0 }
    };

    static const char  *exts[] = { "txt", "html" };

    empty = cJSON_CreateObject();
    if (empty == NULL) {
        return NGX_CONF_ERROR;
    }

    rc = NGX_OK;

    for (i = 0; all[i].name && rc == NGX_OK; i++) {
        name = all[i].name;

        for (j = 0; j < 2; j++) {
            src = ngx_http_darkroom_mail_read((char *) mcf->templates.data,
                                              name, exts[j], &len, &missing);
            if (src == NULL) {
                if (missing && (j == 1 || !all[i].required)) {
                    continue;
                }

                ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                              "mail template \"%s/%s.%s\" %s",
                              mcf->templates.data, name, exts[j],
                              missing ? "does not exist"
                                      : "cannot be read");
                rc = NGX_ERROR;
                break;
            }

            if (j == 0 && ngx_strncmp(src, "Subject:", 8) != 0) {
                ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                              "mail template \"%s/%s.txt\" must start with "
                              "a \"Subject:\" line",
                              mcf->templates.data, name);
                free(src);
                rc = NGX_ERROR;
                break;
            }

            if (ngx_http_darkroom_tpl_render(src, len, empty, j, &out, &n,
                                             err, sizeof(err))
                != NGX_HTTP_DARKROOM_TPL_OK)
            {
                ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                              "mail template \"%s/%s.%s\": %s",
                              mcf->templates.data, name, exts[j], err);
                free(src);
                rc = NGX_ERROR;
                break;
            }

            free(out);
            free(src);
        }
    }

    cJSON_Delete(empty);

    return (rc == NGX_OK) ? NGX_CONF_OK : NGX_CONF_ERROR;
}


static ngx_int_t
ngx_http_darkroom_mail_postconfiguration(ngx_conf_t *cf)
{
    ngx_http_darkroom_mail_main_conf_t  *mcf;

    mcf = ngx_http_conf_get_module_main_conf(cf,
                                             ngx_http_darkroom_mail_module);

    if (mcf->provider == NULL) {
        return NGX_OK;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, cf->log, 0,
                   "darkroom mail: \"email\" jobs sent through %s",
                   mcf->provider->name);

    /* an alert without the database: PostgreSQL unreachable */
    ngx_http_darkroom_alert_mail = ngx_http_darkroom_mail_alert;

    if (ngx_http_darkroom_job_register(cf, "email",
                                       ngx_http_darkroom_mail_job)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (mcf->booking_reminders.len
        && ngx_http_darkroom_job_register_recurring(cf, "booking_reminders",
               ngx_http_darkroom_mail_booking_reminders_job)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_darkroom_job_register_recurring(cf, "gallery_reminders",
                                          ngx_http_darkroom_mail_reminders);
}


/*
 * "gallery_reminders": a recurring job (one row, seeded by the migration)
 * that enqueues the reminder of every delivered gallery closing within
 * darkroom_mail_gallery_reminder_days, once per gallery and expiry date,
 * then comes back in an hour.
 */

static ngx_int_t
ngx_http_darkroom_mail_reminders(ngx_http_darkroom_job_t *job,
    ngx_http_darkroom_error_t *err)
{
    char        days[NGX_INT_T_LEN + 1];
    const char *params[1];

    snprintf(days, sizeof(days), "%lu",
             (unsigned long) ngx_http_darkroom_mail_conf->reminder_days);
    params[0] = days;

    if (ngx_http_darkroom_db_command(job->db,
            "SELECT gallery_reminders_enqueue($1::int)", 1, params, err)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    job->retry_after = 3600 * 1000;

    return NGX_AGAIN;
}


/*
 * darkroom_mail_booking_reminders 48h 2h | off: up to 4 times before a
 * booking's start, kept as an SQL array of seconds, nearest last.
 */

static char *
ngx_http_darkroom_mail_booking_reminders(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_darkroom_mail_main_conf_t  *mcf = conf;

    u_char      *p;
    time_t       sec, last;
    ngx_str_t   *value;
    ngx_uint_t   i;

    if (mcf->booking_reminders.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts == 2 && ngx_strcmp(value[1].data, "off") == 0) {
        ngx_str_set(&mcf->booking_reminders, "");
        return NGX_CONF_OK;
    }

    if (cf->args->nelts > 5) {
        return "takes at most 4 times";
    }

    p = ngx_pnalloc(cf->pool, 4 * (NGX_TIME_T_LEN + 1) + 3);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    mcf->booking_reminders.data = p;
    *p++ = '{';
    last = 0;

    for (i = 1; i < cf->args->nelts; i++) {
        sec = ngx_parse_time(&value[i], 1);

        /* a minute to 30 days, each nearer the start than the one before */
        if (sec == (time_t) NGX_ERROR || sec < 60 || sec > 30 * 86400
            || (last && sec >= last))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid time \"%V\": from 1m to 30d, "
                               "each shorter than the one before",
                               &value[i]);
            return NGX_CONF_ERROR;
        }

        p = ngx_sprintf(p, "%s%T", (i > 1) ? "," : "", sec);
        last = sec;
    }

    *p++ = '}';
    *p = '\0';
    mcf->booking_reminders.len = p - mcf->booking_reminders.data;

    return NGX_CONF_OK;
}


/*
 * "booking_reminders": a recurring job that queues the booking_reminder
 * emails due (booking_reminders_enqueue() in SQL: once per booking,
 * SEQUENCE and offset, never for a booking not confirmed) and the
 * booking_balance_due links due (bookings_balance_due_enqueue(): once per
 * booking, its type's balance_due_hours before the start), then comes
 * back in 10 minutes.
 */

static ngx_int_t
ngx_http_darkroom_mail_booking_reminders_job(ngx_http_darkroom_job_t *job,
    ngx_http_darkroom_error_t *err)
{
    const char  *params[1];

    params[0] = (char *) ngx_http_darkroom_mail_conf->booking_reminders.data;

    if (ngx_http_darkroom_db_command(job->db,
            "SELECT booking_reminders_enqueue($1::int[]),"
            " bookings_balance_due_enqueue()", 1, params, err)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    job->retry_after = 600 * 1000;

    return NGX_AGAIN;
}


static ngx_int_t
ngx_http_darkroom_mail_init_process(ngx_cycle_t *cycle)
{
    ngx_http_darkroom_mail_main_conf_t  *mcf;

    mcf = ngx_http_cycle_get_module_main_conf(cycle,
                                              ngx_http_darkroom_mail_module);
    ngx_http_darkroom_mail_conf = mcf;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, cycle->log, 0,
                   "darkroom mail: worker sends through %s",
                   (mcf && mcf->provider) ? mcf->provider->name : "nothing");

    return NGX_OK;
}
