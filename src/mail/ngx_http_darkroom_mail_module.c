
/*
 * darkroom: customer and shop email through Postmark, SendGrid or Resend.
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
#include "ngx_http_darkroom_template.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>


#define NGX_HTTP_DARKROOM_MAIL_POSTMARK   1
#define NGX_HTTP_DARKROOM_MAIL_SENDGRID   2
#define NGX_HTTP_DARKROOM_MAIL_RESEND     3

#define NGX_HTTP_DARKROOM_MAIL_TPL_MAX    (256 * 1024)
#define NGX_HTTP_DARKROOM_MAIL_ADDR_MAX   254


typedef struct {
    ngx_uint_t                   provider;
    ngx_str_t                    api;           /* base URL, no slash */
    ngx_array_t                 *tokens;        /* the first one is used */
    ngx_str_t                    from;          /* "Name <addr>" or addr */
    ngx_str_t                    from_name;
    ngx_str_t                    from_email;
    ngx_str_t                    reply_to;
    ngx_str_t                    shop_name;
    ngx_str_t                    shop_url;
    ngx_str_t                    alert_to;
    ngx_str_t                    templates;     /* full path */
    ngx_str_t                    stream;        /* Postmark message stream */
    ngx_uint_t                   reminder_days;

    u_char                      *file;          /* where provider was set */
    ngx_uint_t                   line;
} ngx_http_darkroom_mail_main_conf_t;


/* a message as stored in emails: columns of one PGresult row */

enum {
    NGX_HTTP_DARKROOM_MAIL_COL_ID = 0,
    NGX_HTTP_DARKROOM_MAIL_COL_STATUS,
    NGX_HTTP_DARKROOM_MAIL_COL_KEY,
    NGX_HTTP_DARKROOM_MAIL_COL_TO,
    NGX_HTTP_DARKROOM_MAIL_COL_SUBJECT,
    NGX_HTTP_DARKROOM_MAIL_COL_TEXT,
    NGX_HTTP_DARKROOM_MAIL_COL_HTML,
    NGX_HTTP_DARKROOM_MAIL_COL_TEMPLATE
};

#define NGX_HTTP_DARKROOM_MAIL_COLUMNS                                       \
    "id, status, message_key, recipient, subject, body_text, body_html,"     \
    " template"


typedef struct {
    const char                  *id;
    const char                  *status;
    const char                  *key;
    const char                  *to;
    const char                  *subject;
    const char                  *text;
    const char                  *html;          /* NULL: text only */
    const char                  *tpl;
} ngx_http_darkroom_mail_msg_t;


/* what a provider call came to */

typedef enum {
    NGX_HTTP_DARKROOM_MAIL_SENT = 0,
    NGX_HTTP_DARKROOM_MAIL_RETRY,                 /* worth another try */
    NGX_HTTP_DARKROOM_MAIL_FAILED                 /* will never succeed */
} ngx_http_darkroom_mail_outcome_e;


typedef struct {
    ngx_http_darkroom_mail_outcome_e  outcome;
    char                         message_id[200];
    char                         reason[400];
    ngx_msec_t                   retry_after;
} ngx_http_darkroom_mail_result_t;


static ngx_int_t ngx_http_darkroom_mail_job(ngx_http_darkroom_job_t *job,
    ngx_http_darkroom_error_t *err);
static PGresult *ngx_http_darkroom_mail_compose(
    ngx_http_darkroom_mail_main_conf_t *mcf, ngx_http_darkroom_job_t *job,
    const char *tpl, ngx_int_t *rc, ngx_http_darkroom_error_t *err);
static ngx_int_t ngx_http_darkroom_mail_render(
    ngx_http_darkroom_mail_main_conf_t *mcf, const char *tpl, cJSON *data,
    char **subject, char **text, char **html, char *reason, size_t size);
static char *ngx_http_darkroom_mail_read(const char *dir, const char *name,
    const char *ext, size_t *len, int *missing);
static void ngx_http_darkroom_mail_send(
    ngx_http_darkroom_mail_main_conf_t *mcf, ngx_http_darkroom_job_t *job,
    ngx_http_darkroom_mail_msg_t *msg, ngx_http_darkroom_mail_result_t *res);
static cJSON *ngx_http_darkroom_mail_request(
    ngx_http_darkroom_mail_main_conf_t *mcf,
    ngx_http_darkroom_mail_msg_t *msg);
static void ngx_http_darkroom_mail_answer(
    ngx_http_darkroom_mail_main_conf_t *mcf,
    ngx_http_darkroom_fetch_resp_t *resp,
    ngx_http_darkroom_mail_result_t *res);
static ngx_int_t ngx_http_darkroom_mail_check_address(ngx_str_t *addr);

static char *ngx_http_darkroom_mail_from(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
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


static const char  *ngx_http_darkroom_mail_providers[] = {
    NULL, "postmark", "sendgrid", "resend"
};

static const char  *ngx_http_darkroom_mail_apis[] = {
    NULL,
    "https://api.postmarkapp.com",
    "https://api.sendgrid.com",
    "https://api.resend.com"
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
    char                              id[NGX_INT64_LEN + 1];
    char                              attempts[NGX_INT_T_LEN + 1];
    cJSON                            *tpl;
    PGresult                         *row;
    ngx_int_t                         rc;
    const char                       *params[5], *p, *status;
    ngx_http_darkroom_mail_msg_t      msg;
    ngx_http_darkroom_mail_result_t   res;
    ngx_http_darkroom_mail_main_conf_t  *mcf;

    mcf = ngx_http_darkroom_mail_conf;

    if (mcf == NULL || mcf->provider == 0) {
        snprintf(err->detail, sizeof(err->detail),
                 "email: mail is not configured in this worker");
        return NGX_ERROR;
    }

    tpl = cJSON_GetObjectItemCaseSensitive(job->payload, "template");

    if (!cJSON_IsString(tpl) || tpl->valuestring[0] < 'a'
        || tpl->valuestring[0] > 'z' || strlen(tpl->valuestring) > 40)
    {
        snprintf(err->detail, sizeof(err->detail),
                 "email: payload needs a \"template\" name");
        return NGX_DECLINED;
    }

    for (p = tpl->valuestring; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')
              || *p == '_'))
        {
            snprintf(err->detail, sizeof(err->detail),
                     "email: bad template name in payload");
            return NGX_DECLINED;
        }
    }

    snprintf(id, sizeof(id), "%lld", (long long) job->id);
    params[0] = id;

    /* 1. the message of this job, rendered and recorded once */

    row = ngx_http_darkroom_db_exec(job->db,
              "SELECT " NGX_HTTP_DARKROOM_MAIL_COLUMNS
              " FROM emails WHERE job_id = $1",
              1, params, err);
    if (row == NULL) {
        return NGX_ERROR;
    }

    if (PQntuples(row) == 0) {
        PQclear(row);

        row = ngx_http_darkroom_mail_compose(mcf, job, tpl->valuestring, &rc,
                                             err);
        if (row == NULL) {
            return rc;
        }
    }

    msg.id = PQgetvalue(row, 0, NGX_HTTP_DARKROOM_MAIL_COL_ID);
    msg.status = PQgetvalue(row, 0, NGX_HTTP_DARKROOM_MAIL_COL_STATUS);
    msg.key = PQgetvalue(row, 0, NGX_HTTP_DARKROOM_MAIL_COL_KEY);
    msg.to = PQgetvalue(row, 0, NGX_HTTP_DARKROOM_MAIL_COL_TO);
    msg.subject = PQgetvalue(row, 0, NGX_HTTP_DARKROOM_MAIL_COL_SUBJECT);
    msg.text = PQgetvalue(row, 0, NGX_HTTP_DARKROOM_MAIL_COL_TEXT);
    msg.html = PQgetisnull(row, 0, NGX_HTTP_DARKROOM_MAIL_COL_HTML)
               ? NULL : PQgetvalue(row, 0, NGX_HTTP_DARKROOM_MAIL_COL_HTML);
    msg.tpl = PQgetvalue(row, 0, NGX_HTTP_DARKROOM_MAIL_COL_TEMPLATE);

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

    if (res.outcome == NGX_HTTP_DARKROOM_MAIL_RETRY
        && job->attempts >= job->max_attempts)
    {
        /* the job runner gives up after this attempt */
        res.outcome = NGX_HTTP_DARKROOM_MAIL_FAILED;
    }

    switch (res.outcome) {

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
        job->retry_after = res.retry_after;
        break;
    }

    snprintf(attempts, sizeof(attempts), "%lu",
             (unsigned long) job->attempts);

    params[0] = msg.id;
    params[1] = status;
    params[2] = res.message_id[0] ? res.message_id : NULL;
    params[3] = res.outcome == NGX_HTTP_DARKROOM_MAIL_SENT ? NULL : res.reason;
    params[4] = ngx_http_darkroom_mail_providers[mcf->provider];

    if (ngx_http_darkroom_db_command(job->db,
            "UPDATE emails SET status = $2,"
            " provider_message_id = coalesce($3, provider_message_id),"
            " error = $4, provider = $5, attempts = attempts + 1,"
            " sent_at = CASE WHEN $2 = 'sent' THEN now() END,"
            " updated_at = now()"
            " WHERE id = $1::bigint",
            5, params, err)
        != NGX_OK)
    {
        PQclear(row);

        if (res.outcome == NGX_HTTP_DARKROOM_MAIL_SENT) {
            /* a re-run resends under the same key */
            snprintf(err->detail, sizeof(err->detail),
                     "email %s sent, not recorded: %.300s", msg.id,
                     err->message);
        }

        return NGX_ERROR;
    }

    if (rc != NGX_OK) {
        snprintf(err->detail, sizeof(err->detail), "email %s (%s): %.300s",
                 msg.id, msg.tpl, res.reason);
    }

    PQclear(row);

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
    char         id[NGX_INT64_LEN + 1], reason[300];
    char        *payload, *subject, *text, *html;
    cJSON       *data, *shop, *to, *kind, *order, *oid;
    PGresult    *res;
    const char  *params[9], *rcpt;

    payload = cJSON_PrintUnformatted(job->payload);
    if (payload == NULL) {
        *rc = NGX_ERROR;
        snprintf(err->detail, sizeof(err->detail), "email: out of memory");
        return NULL;
    }

    params[0] = tpl;
    params[1] = payload;

    res = ngx_http_darkroom_db_exec(job->db,
              "SELECT email_context($1, $2::jsonb)", 2, params, err);

    free(payload);

    if (res == NULL) {
        *rc = NGX_ERROR;
        return NULL;
    }

    if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
        PQclear(res);
        *rc = NGX_DECLINED;
        snprintf(err->detail, sizeof(err->detail),
                 "email %s: the order or gallery it is about is gone", tpl);
        return NULL;
    }

    data = cJSON_Parse(PQgetvalue(res, 0, 0));
    PQclear(res);

    if (data == NULL) {
        *rc = NGX_ERROR;
        snprintf(err->detail, sizeof(err->detail),
                 "email %s: email_context() is not JSON", tpl);
        return NULL;
    }

    /* what the configuration adds: the shop */

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

    kind = cJSON_GetObjectItemCaseSensitive(data, "kind");
    to = cJSON_GetObjectItemCaseSensitive(data, "to");

    if (cJSON_IsString(kind) && ngx_strcmp(kind->valuestring, "shop") == 0) {
        rcpt = mcf->alert_to.len ? (char *) mcf->alert_to.data
               : mcf->reply_to.len ? (char *) mcf->reply_to.data
               : (char *) mcf->from_email.data;

    } else {
        rcpt = cJSON_IsString(to) ? to->valuestring : NULL;
    }

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
        snprintf(err->detail, sizeof(err->detail), "email %s: %.300s", tpl,
                 reason);
        return NULL;
    }

    order = cJSON_GetObjectItemCaseSensitive(data, "order");
    oid = cJSON_GetObjectItemCaseSensitive(order, "id");

    if (cJSON_IsNumber(oid)) {
        snprintf(id, sizeof(id), "%.0f", oid->valuedouble);
    }

    snprintf(reason, sizeof(reason), "%lld", (long long) job->id);

    params[0] = reason;
    params[1] = tpl;
    params[2] = (cJSON_IsString(kind)
                 && ngx_strcmp(kind->valuestring, "shop") == 0)
                ? "shop" : "customer";
    params[3] = rcpt;
    params[4] = cJSON_IsNumber(oid) ? id : NULL;
    params[5] = ngx_http_darkroom_mail_providers[mcf->provider];
    params[6] = subject;
    params[7] = text;
    params[8] = html;

    /* the job holds its lease: no other run inserts for it meanwhile */

    res = ngx_http_darkroom_db_exec(job->db,
              "INSERT INTO emails (job_id, template, kind, recipient,"
              " order_id, provider, subject, body_text, body_html)"
              " VALUES ($1::bigint, $2, $3, $4, $5::bigint, $6, $7, $8, $9)"
              " ON CONFLICT (job_id) DO UPDATE SET updated_at = now()"
              " RETURNING " NGX_HTTP_DARKROOM_MAIL_COLUMNS,
              9, params, err);

    cJSON_Delete(data);
    free(subject);
    free(text);
    free(html);

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
    char    *src, *nl, *body, *s, err[160];
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

    /* one line, no control characters, trimmed */

    for (s = *subject; *s; s++) {
        if ((u_char) *s < 0x20 || *s == 0x7f) {
            *s = ' ';
        }
    }

    s = *subject;

    while (*s == ' ') {
        s++;
    }

    n = strlen(s);

    while (n && s[n - 1] == ' ') {
        n--;
    }

    memmove(*subject, s, n);
    (*subject)[ngx_min(n, 900)] = '\0';

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


/* ------------------------------------------------------------ providers */

static void
ngx_http_darkroom_mail_send(ngx_http_darkroom_mail_main_conf_t *mcf,
    ngx_http_darkroom_job_t *job, ngx_http_darkroom_mail_msg_t *msg,
    ngx_http_darkroom_mail_result_t *res)
{
    char                             url[1024], auth[600], idem[300];
    char                            *body;
    cJSON                           *json;
    ngx_int_t                        rc;
    ngx_str_t                       *token;
    const char                      *headers[6], *path;
    ngx_http_darkroom_error_t        err;
    ngx_http_darkroom_fetch_req_t    req;
    ngx_http_darkroom_fetch_resp_t   resp;

    token = mcf->tokens->elts;

    switch (mcf->provider) {

    case NGX_HTTP_DARKROOM_MAIL_POSTMARK:
        path = "/email";
        snprintf(auth, sizeof(auth), "X-Postmark-Server-Token: %.*s",
                 (int) token[0].len, token[0].data);
        break;

    case NGX_HTTP_DARKROOM_MAIL_SENDGRID:
        path = "/v3/mail/send";
        snprintf(auth, sizeof(auth), "Authorization: Bearer %.*s",
                 (int) token[0].len, token[0].data);
        break;

    default: /* NGX_HTTP_DARKROOM_MAIL_RESEND */
        path = "/emails";
        snprintf(auth, sizeof(auth), "Authorization: Bearer %.*s",
                 (int) token[0].len, token[0].data);
        break;
    }

    snprintf(url, sizeof(url), "%s%s", mcf->api.data, path);
    snprintf(idem, sizeof(idem), "Idempotency-Key: %s", msg->key);

    headers[0] = auth;
    headers[1] = "Content-Type: application/json";
    headers[2] = "Accept: application/json";
    headers[3] = (mcf->provider == NGX_HTTP_DARKROOM_MAIL_RESEND) ? idem
                                                                  : NULL;
    headers[4] = NULL;

    json = ngx_http_darkroom_mail_request(mcf, msg);
    body = json ? cJSON_PrintUnformatted(json) : NULL;
    cJSON_Delete(json);

    if (body == NULL) {
        res->outcome = NGX_HTTP_DARKROOM_MAIL_RETRY;
        snprintf(res->reason, sizeof(res->reason), "out of memory");
        return;
    }

    ngx_memzero(&req, sizeof(ngx_http_darkroom_fetch_req_t));
    req.method = "POST";
    req.url = url;
    req.headers = headers;
    req.body = body;
    req.body_len = strlen(body);
    req.timeout = job->fetch_timeout;

    ngx_memzero(&err, sizeof(ngx_http_darkroom_error_t));

    rc = ngx_http_darkroom_fetch(&req, &resp, &err);

    free(body);

    if (rc != NGX_OK) {
        /* no answer: it may or may not have landed; the key makes a
         * repeat safe where the provider takes one */
        res->outcome = NGX_HTTP_DARKROOM_MAIL_RETRY;
        snprintf(res->reason, sizeof(res->reason), "%s unreachable: %.300s",
                 ngx_http_darkroom_mail_providers[mcf->provider],
                 err.detail);
        ngx_http_darkroom_fetch_free(&resp);
        return;
    }

    ngx_http_darkroom_mail_answer(mcf, &resp, res);

    ngx_http_darkroom_fetch_free(&resp);
}


/* the provider's JSON request for a message */

static cJSON *
ngx_http_darkroom_mail_request(ngx_http_darkroom_mail_main_conf_t *mcf,
    ngx_http_darkroom_mail_msg_t *msg)
{
    cJSON  *json, *o, *a, *p;
    int     ok;

    json = cJSON_CreateObject();
    if (json == NULL) {
        return NULL;
    }

    ok = 1;

    switch (mcf->provider) {

    case NGX_HTTP_DARKROOM_MAIL_POSTMARK:
        ok = cJSON_AddStringToObject(json, "From", (char *) mcf->from.data)
             && cJSON_AddStringToObject(json, "To", msg->to)
             && cJSON_AddStringToObject(json, "Subject", msg->subject)
             && cJSON_AddStringToObject(json, "TextBody", msg->text)
             && (msg->html == NULL
                 || cJSON_AddStringToObject(json, "HtmlBody", msg->html))
             && (mcf->reply_to.len == 0
                 || cJSON_AddStringToObject(json, "ReplyTo",
                                            (char *) mcf->reply_to.data))
             && cJSON_AddStringToObject(json, "Tag", msg->tpl)
             && cJSON_AddStringToObject(json, "MessageStream",
                                        (char *) mcf->stream.data)
             && (o = cJSON_AddObjectToObject(json, "Metadata"))
             && cJSON_AddStringToObject(o, "darkroom_key", msg->key);
        break;

    case NGX_HTTP_DARKROOM_MAIL_SENDGRID:

        /* custom_args go in the personalization: SendGrid's published
         * schema has an object there, a string at the message level */

        ok = (a = cJSON_AddArrayToObject(json, "personalizations"))
             && (p = cJSON_CreateObject())
             && cJSON_AddItemToArray(a, p)
             && (a = cJSON_AddArrayToObject(p, "to"))
             && (o = cJSON_CreateObject())
             && cJSON_AddItemToArray(a, o)
             && cJSON_AddStringToObject(o, "email", msg->to)
             && (o = cJSON_AddObjectToObject(json, "from"))
             && cJSON_AddStringToObject(o, "email",
                                        (char *) mcf->from_email.data)
             && (mcf->from_name.len == 0
                 || cJSON_AddStringToObject(o, "name",
                                            (char *) mcf->from_name.data))
             && (mcf->reply_to.len == 0
                 || ((o = cJSON_AddObjectToObject(json, "reply_to"))
                     && cJSON_AddStringToObject(o, "email",
                                                (char *) mcf->reply_to.data)))
             && cJSON_AddStringToObject(json, "subject", msg->subject)
             && (a = cJSON_AddArrayToObject(json, "content"))
             && (o = cJSON_CreateObject())
             && cJSON_AddItemToArray(a, o)
             && cJSON_AddStringToObject(o, "type", "text/plain")
             && cJSON_AddStringToObject(o, "value", msg->text)
             && (msg->html == NULL
                 || ((o = cJSON_CreateObject())
                     && cJSON_AddItemToArray(a, o)
                     && cJSON_AddStringToObject(o, "type", "text/html")
                     && cJSON_AddStringToObject(o, "value", msg->html)))
             && (a = cJSON_AddArrayToObject(json, "categories"))
             && (o = cJSON_CreateString(msg->tpl))
             && cJSON_AddItemToArray(a, o)
             && (o = cJSON_AddObjectToObject(p, "custom_args"))
             && cJSON_AddStringToObject(o, "darkroom_key", msg->key);
        break;

    default: /* NGX_HTTP_DARKROOM_MAIL_RESEND */
        ok = cJSON_AddStringToObject(json, "from", (char *) mcf->from.data)
             && (a = cJSON_AddArrayToObject(json, "to"))
             && (o = cJSON_CreateString(msg->to))
             && cJSON_AddItemToArray(a, o)
             && cJSON_AddStringToObject(json, "subject", msg->subject)
             && cJSON_AddStringToObject(json, "text", msg->text)
             && (msg->html == NULL
                 || cJSON_AddStringToObject(json, "html", msg->html))
             && (mcf->reply_to.len == 0
                 || cJSON_AddStringToObject(json, "reply_to",
                                            (char *) mcf->reply_to.data))
             && (a = cJSON_AddArrayToObject(json, "tags"))
             && (o = cJSON_CreateObject())
             && cJSON_AddItemToArray(a, o)
             && cJSON_AddStringToObject(o, "name", "template")
             && cJSON_AddStringToObject(o, "value", msg->tpl);
        break;
    }

    if (!ok) {
        cJSON_Delete(json);
        return NULL;
    }

    return json;
}


/*
 * Reads a provider's answer.  Network trouble, 408, 409 (Resend: the same
 * key in flight), 425, 429 and 5xx are worth retrying; 401 and 403 too (a
 * token fixed and nginx reloaded makes them succeed), with backoff.  Any
 * other 4xx will fail the same way again: the message is failed with the
 * provider's own reason.
 */

static void
ngx_http_darkroom_mail_answer(ngx_http_darkroom_mail_main_conf_t *mcf,
    ngx_http_darkroom_fetch_resp_t *resp, ngx_http_darkroom_mail_result_t *res)
{
    char         retry[32];
    long         st;
    cJSON       *json, *v, *e, *name;
    const char  *provider, *why;

    st = resp->status;
    provider = ngx_http_darkroom_mail_providers[mcf->provider];

    json = (resp->body && resp->body_len)
           ? cJSON_ParseWithLength(resp->body, resp->body_len) : NULL;

    if (st >= 200 && st < 300) {
        res->outcome = NGX_HTTP_DARKROOM_MAIL_SENT;

        switch (mcf->provider) {

        case NGX_HTTP_DARKROOM_MAIL_POSTMARK:
            v = cJSON_GetObjectItemCaseSensitive(json, "ErrorCode");
            e = cJSON_GetObjectItemCaseSensitive(json, "Message");

            if (cJSON_IsNumber(v) && v->valueint != 0) {
                res->outcome = NGX_HTTP_DARKROOM_MAIL_FAILED;
                snprintf(res->reason, sizeof(res->reason),
                         "postmark answered %ld, ErrorCode %d: %s", st,
                         v->valueint,
                         cJSON_IsString(e) ? e->valuestring : "");
                break;
            }

            v = cJSON_GetObjectItemCaseSensitive(json, "MessageID");
            break;

        case NGX_HTTP_DARKROOM_MAIL_SENDGRID:
            v = NULL;
            ngx_http_darkroom_fetch_header(resp, "X-Message-Id",
                                           res->message_id,
                                           sizeof(res->message_id));
            break;

        default:
            v = cJSON_GetObjectItemCaseSensitive(json, "id");
            break;
        }

        if (cJSON_IsString(v)) {
            snprintf(res->message_id, sizeof(res->message_id), "%s",
                     v->valuestring);
        }

        cJSON_Delete(json);
        return;
    }

    /* the provider's reason, in its own shape */

    why = NULL;
    name = NULL;

    switch (mcf->provider) {

    case NGX_HTTP_DARKROOM_MAIL_POSTMARK:
        /* {"ErrorCode": 300, "Message": "..."} */
        v = cJSON_GetObjectItemCaseSensitive(json, "Message");
        why = cJSON_IsString(v) ? v->valuestring : NULL;
        name = cJSON_GetObjectItemCaseSensitive(json, "ErrorCode");

        if (cJSON_IsNumber(name)) {
            snprintf(retry, sizeof(retry), "ErrorCode %d", name->valueint);
        }

        break;

    case NGX_HTTP_DARKROOM_MAIL_SENDGRID:
        /* {"errors": [{"message": "...", "field": "...", "help": ...}]} */
        e = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(json,
                                                                "errors"), 0);
        v = cJSON_GetObjectItemCaseSensitive(e, "message");
        why = cJSON_IsString(v) ? v->valuestring : NULL;
        name = cJSON_GetObjectItemCaseSensitive(e, "field");

        if (cJSON_IsString(name)) {
            snprintf(retry, sizeof(retry), "%.24s", name->valuestring);
        }

        break;

    default:
        /* {"statusCode": 422, "name": "validation_error", "message": ".."} */
        v = cJSON_GetObjectItemCaseSensitive(json, "message");
        why = cJSON_IsString(v) ? v->valuestring : NULL;
        name = cJSON_GetObjectItemCaseSensitive(json, "name");

        if (cJSON_IsString(name)) {
            snprintf(retry, sizeof(retry), "%.30s", name->valuestring);
        }

        break;
    }

    snprintf(res->reason, sizeof(res->reason), "%s answered %ld%s%s: %.300s",
             provider, st, (name && (cJSON_IsString(name)
                                     || cJSON_IsNumber(name))) ? " " : "",
             (name && (cJSON_IsString(name) || cJSON_IsNumber(name)))
             ? retry : "",
             why ? why : "no reason given");

    if (st == 408 || st == 425 || st == 429 || st >= 500
        || st == 401 || st == 403)
    {
        res->outcome = NGX_HTTP_DARKROOM_MAIL_RETRY;

    } else if (st == 409) {
        /* Resend: "concurrent_idempotent_requests" passes, a key reused
         * for another body ("invalid_idempotent_request") never will */
        res->outcome = (cJSON_IsString(name)
                        && ngx_strcmp(name->valuestring,
                                      "invalid_idempotent_request") == 0)
                       ? NGX_HTTP_DARKROOM_MAIL_FAILED
                       : NGX_HTTP_DARKROOM_MAIL_RETRY;

    } else {
        res->outcome = NGX_HTTP_DARKROOM_MAIL_FAILED;
    }

    if (ngx_http_darkroom_fetch_header(resp, "Retry-After", retry,
                                       sizeof(retry)))
    {
        /* seconds; an HTTP date reads as 0 and the backoff decides */
        res->retry_after = (ngx_msec_t) ngx_min(strtoul(retry, NULL, 10),
                                                86400) * 1000;
    }

    cJSON_Delete(json);
}


/* ------------------------------------------------------- configuration */

static char *
ngx_http_darkroom_mail_provider(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_darkroom_mail_main_conf_t  *mcf = conf;

    ngx_str_t   *value;
    ngx_uint_t   i;

    if (mcf->provider != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    for (i = 1; i <= NGX_HTTP_DARKROOM_MAIL_RESEND; i++) {
        if (ngx_strcmp(value[1].data, ngx_http_darkroom_mail_providers[i])
            == 0)
        {
            mcf->provider = i;
            mcf->file = cf->conf_file->file.name.data;
            mcf->line = cf->conf_file->line;
            return NGX_CONF_OK;
        }
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "unknown mail provider \"%V\": use postmark, sendgrid "
                       "or resend", &value[1]);

    return NGX_CONF_ERROR;
}


/* "Name <addr@example.com>" or "addr@example.com" */

static char *
ngx_http_darkroom_mail_from(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_darkroom_mail_main_conf_t  *mcf = conf;

    u_char     *lt, *gt, *p, *end;
    ngx_str_t  *value, name, addr;

    if (mcf->from.data) {
        return "is duplicate";
    }

    value = cf->args->elts;
    p = value[1].data;
    end = p + value[1].len;

    lt = ngx_strlchr(p, end, '<');

    if (lt) {
        gt = ngx_strlchr(lt, end, '>');

        if (gt == NULL || gt + 1 != end) {
            goto invalid;
        }

        name.data = p;
        name.len = lt - p;

        while (name.len && name.data[name.len - 1] == ' ') {
            name.len--;
        }

        if (name.len >= 2 && name.data[0] == '"'
            && name.data[name.len - 1] == '"')
        {
            name.data++;
            name.len -= 2;
        }

        addr.data = lt + 1;
        addr.len = gt - lt - 1;

    } else {
        ngx_str_set(&name, "");     /* not NULL: it is copied below */
        addr = value[1];
    }

    for (p = name.data; p < name.data + name.len; p++) {
        if (*p < 0x20 || *p == 0x7f || *p == '"' || *p == '\\' || *p == '<'
            || *p == '>')
        {
            goto invalid;
        }
    }

    if (ngx_http_darkroom_mail_check_address(&addr) != NGX_OK) {
        goto invalid;
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

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid sender \"%V\": use \"Name <address>\" or "
                       "\"address\"", &value[1]);

    return NGX_CONF_ERROR;
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

    mcf->provider = NGX_CONF_UNSET_UINT;
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

    if (mcf->provider == NGX_CONF_UNSET_UINT) {
        /* no mail: the email jobs wait for a configuration that sends */
        mcf->provider = 0;
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
        mcf->api.data =
            (u_char *) ngx_http_darkroom_mail_apis[mcf->provider];
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

    return ngx_http_darkroom_mail_check_templates(cf, mcf);
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
    char        *src, *out, err[160];
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
        { "gallery_reminder", 0 }, { NULL, 0 }
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


static ngx_int_t ngx_http_darkroom_mail_reminders(
    ngx_http_darkroom_job_t *job, ngx_http_darkroom_error_t *err);


static ngx_int_t
ngx_http_darkroom_mail_postconfiguration(ngx_conf_t *cf)
{
    ngx_http_darkroom_mail_main_conf_t  *mcf;

    mcf = ngx_http_conf_get_module_main_conf(cf,
                                             ngx_http_darkroom_mail_module);

    if (mcf->provider == 0) {
        return NGX_OK;
    }

    if (ngx_http_darkroom_job_register(cf, "email",
                                       ngx_http_darkroom_mail_job)
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


static ngx_int_t
ngx_http_darkroom_mail_init_process(ngx_cycle_t *cycle)
{
    ngx_http_darkroom_mail_conf = ngx_http_cycle_get_module_main_conf(cycle,
                                      ngx_http_darkroom_mail_module);
    return NGX_OK;
}
