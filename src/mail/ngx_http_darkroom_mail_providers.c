
/*
 * darkroom: the mail providers, one table entry each (see the header).
 *
 * ngx_http_darkroom_mail_send() is what they share: the URL, the headers,
 * the call, and what an answer's status means; each provider writes its
 * own request body and reads its own answers.  Everything here but the
 * lookup runs in pool threads: libcurl, cJSON and malloc only.
 */


#include "ngx_http_darkroom.h"
#include "ngx_http_darkroom_mail.h"


#define NGX_HTTP_DARKROOM_MAIL_URL_LEN      1024
#define NGX_HTTP_DARKROOM_MAIL_HEADER_LEN   600   /* a token or a key */


/* where a provider wants an attachment's parts, in its JSON */

typedef struct {
    const char                  *list;          /* the array's member */
    const char                  *filename;
    const char                  *type;
    const char                  *content;       /* base64 */
    const char                  *disposition;   /* NULL: not given */
} ngx_http_darkroom_mail_attach_shape_t;


static ngx_int_t ngx_http_darkroom_mail_attach(cJSON *json,
    ngx_http_darkroom_mail_msg_t *msg,
    const ngx_http_darkroom_mail_attach_shape_t *shape);
static cJSON *ngx_http_darkroom_mail_attach_one(cJSON *a,
    const ngx_http_darkroom_mail_attach_shape_t *shape);

static void ngx_http_darkroom_mail_answer(
    ngx_http_darkroom_mail_main_conf_t *mcf,
    ngx_http_darkroom_fetch_resp_t *resp,
    ngx_http_darkroom_mail_result_t *res);

static cJSON *ngx_http_darkroom_mail_postmark_request(
    ngx_http_darkroom_mail_main_conf_t *mcf,
    ngx_http_darkroom_mail_msg_t *msg);
static void ngx_http_darkroom_mail_postmark_accepted(
    ngx_http_darkroom_fetch_resp_t *resp, cJSON *json,
    ngx_http_darkroom_mail_result_t *res);
static void ngx_http_darkroom_mail_postmark_refused(cJSON *json,
    ngx_http_darkroom_mail_refusal_t *rf);

static cJSON *ngx_http_darkroom_mail_sendgrid_request(
    ngx_http_darkroom_mail_main_conf_t *mcf,
    ngx_http_darkroom_mail_msg_t *msg);
static void ngx_http_darkroom_mail_sendgrid_accepted(
    ngx_http_darkroom_fetch_resp_t *resp, cJSON *json,
    ngx_http_darkroom_mail_result_t *res);
static void ngx_http_darkroom_mail_sendgrid_refused(cJSON *json,
    ngx_http_darkroom_mail_refusal_t *rf);

static cJSON *ngx_http_darkroom_mail_resend_request(
    ngx_http_darkroom_mail_main_conf_t *mcf,
    ngx_http_darkroom_mail_msg_t *msg);
static void ngx_http_darkroom_mail_resend_accepted(
    ngx_http_darkroom_fetch_resp_t *resp, cJSON *json,
    ngx_http_darkroom_mail_result_t *res);
static void ngx_http_darkroom_mail_resend_refused(cJSON *json,
    ngx_http_darkroom_mail_refusal_t *rf);


/*
 * Postmark: "Attachments": [{"Name", "Content", "ContentType"}]; SendGrid:
 * "attachments": [{"content", "type", "filename", "disposition"}]; Resend:
 * "attachments": [{"content", "filename", "content_type"}]; the content
 * base64 in all three.
 */

static const ngx_http_darkroom_mail_attach_shape_t
    ngx_http_darkroom_mail_postmark_attach =
    { "Attachments", "Name", "ContentType", "Content", NULL };

static const ngx_http_darkroom_mail_attach_shape_t
    ngx_http_darkroom_mail_sendgrid_attach =
    { "attachments", "filename", "type", "content", "attachment" };

static const ngx_http_darkroom_mail_attach_shape_t
    ngx_http_darkroom_mail_resend_attach =
    { "attachments", "filename", "content_type", "content", NULL };


ngx_http_darkroom_mail_provider_t  ngx_http_darkroom_mail_providers[] = {

    { "postmark",
      "https://api.postmarkapp.com",
      "/email",
      "X-Postmark-Server-Token: ",
      0,
      ngx_http_darkroom_mail_postmark_request,
      ngx_http_darkroom_mail_postmark_accepted,
      ngx_http_darkroom_mail_postmark_refused },

    { "sendgrid",
      "https://api.sendgrid.com",
      "/v3/mail/send",
      "Authorization: Bearer ",
      0,
      ngx_http_darkroom_mail_sendgrid_request,
      ngx_http_darkroom_mail_sendgrid_accepted,
      ngx_http_darkroom_mail_sendgrid_refused },

    { "resend",
      "https://api.resend.com",
      "/emails",
      "Authorization: Bearer ",
      1,
      ngx_http_darkroom_mail_resend_request,
      ngx_http_darkroom_mail_resend_accepted,
      ngx_http_darkroom_mail_resend_refused },

    { NULL, NULL, NULL, NULL, 0, NULL, NULL, NULL }
};


ngx_http_darkroom_mail_provider_t *
ngx_http_darkroom_mail_provider_find(ngx_str_t *name)
{
    ngx_http_darkroom_mail_provider_t  *p;

    for (p = ngx_http_darkroom_mail_providers; p->name; p++) {
        if (ngx_strlen(p->name) == name->len
            && ngx_strncmp(name->data, p->name, name->len) == 0)
        {
            return p;
        }
    }

    return NULL;
}


/* ------------------------------------------------------------- sending */

void
ngx_http_darkroom_mail_send(ngx_http_darkroom_mail_main_conf_t *mcf,
    ngx_http_darkroom_job_t *job, ngx_http_darkroom_mail_msg_t *msg,
    ngx_http_darkroom_mail_result_t *res)
{
    char                             url[NGX_HTTP_DARKROOM_MAIL_URL_LEN];
    char                             auth[NGX_HTTP_DARKROOM_MAIL_HEADER_LEN];
    char                             idem[NGX_HTTP_DARKROOM_MAIL_HEADER_LEN];
    char                            *body;
    cJSON                           *json;
    ngx_int_t                        rc;
    ngx_str_t                       *token;
    const char                      *headers[5];
    ngx_http_darkroom_error_t        err;
    ngx_http_darkroom_fetch_req_t    req;
    ngx_http_darkroom_fetch_resp_t   resp;
    ngx_http_darkroom_mail_provider_t  *pv;

    pv = mcf->provider;
    token = mcf->tokens->elts;

    snprintf(url, sizeof(url), "%s%s", mcf->api.data, pv->path);
    snprintf(auth, sizeof(auth), "%s%.*s", pv->auth,
             (int) token[0].len, token[0].data);
    snprintf(idem, sizeof(idem), "Idempotency-Key: %s", msg->key);

    headers[0] = auth;
    headers[1] = "Content-Type: application/json";
    headers[2] = "Accept: application/json";
    headers[3] = pv->idempotency_key ? idem : NULL;
    headers[4] = NULL;

    json = pv->request(mcf, msg);
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
        ngx_http_darkroom_metric_named(mail,
                                       NGX_HTTP_DARKROOM_NAMES_MAIL_PROVIDER,
                                       pv->name, ngx_strlen(pv->name), 1);
        snprintf(res->reason, sizeof(res->reason), "%s unreachable: %.300s",
                 pv->name, err.detail);
        ngx_http_darkroom_fetch_free(&resp);
        return;
    }

    ngx_http_darkroom_mail_answer(mcf, &resp, res);
    ngx_http_darkroom_metric_named(mail, NGX_HTTP_DARKROOM_NAMES_MAIL_PROVIDER,
        pv->name, ngx_strlen(pv->name),
        res->outcome != NGX_HTTP_DARKROOM_MAIL_SENT);

    ngx_http_darkroom_fetch_free(&resp);
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
    char                              retry[NGX_HTTP_DARKROOM_MAIL_CODE_LEN];
    long                              st;
    cJSON                            *json;
    ngx_http_darkroom_mail_refusal_t  rf;

    st = resp->status;

    json = (resp->body && resp->body_len)
           ? cJSON_ParseWithLength(resp->body, resp->body_len) : NULL;

    if (st >= 200 && st < 300) {
        res->outcome = NGX_HTTP_DARKROOM_MAIL_SENT;
        mcf->provider->accepted(resp, json, res);
        cJSON_Delete(json);
        return;
    }

    /* the provider's reason, in its own shape */

    ngx_memzero(&rf, sizeof(ngx_http_darkroom_mail_refusal_t));

    mcf->provider->refused(json, &rf);

    snprintf(res->reason, sizeof(res->reason), "%s answered %ld%s%s: %.300s",
             mcf->provider->name, st, rf.code[0] ? " " : "", rf.code,
             rf.why ? rf.why : "no reason given");

    if (st == 408 || st == 425 || st == 429 || st >= 500
        || st == 401 || st == 403)
    {
        res->outcome = NGX_HTTP_DARKROOM_MAIL_RETRY;

    } else if (st == 409) {
        res->outcome = rf.reused_key ? NGX_HTTP_DARKROOM_MAIL_FAILED
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


/* --------------------------------------------------------- attachments */

/*
 * The message's attachments, as email_record() stored them, added to the
 * provider's request in its shape.  NGX_ERROR: out of memory or a stored
 * list that is not one (the message is retried, then fails).
 */

static ngx_int_t
ngx_http_darkroom_mail_attach(cJSON *json, ngx_http_darkroom_mail_msg_t *msg,
    const ngx_http_darkroom_mail_attach_shape_t *shape)
{
    cJSON      *list, *a, *arr, *item;
    ngx_int_t   rc;

    if (msg->attachments == NULL || msg->attachments[0] == '\0') {
        return NGX_OK;
    }

    list = cJSON_Parse(msg->attachments);

    if (!cJSON_IsArray(list)) {
        cJSON_Delete(list);
        return NGX_ERROR;
    }

    rc = NGX_OK;

    if (cJSON_GetArraySize(list) > 0) {
        arr = cJSON_AddArrayToObject(json, shape->list);
        if (arr == NULL) {
            rc = NGX_ERROR;
        }

        cJSON_ArrayForEach(a, list) {
            if (rc != NGX_OK) {
                break;
            }

            item = ngx_http_darkroom_mail_attach_one(a, shape);

            if (item == NULL || !cJSON_AddItemToArray(arr, item)) {
                cJSON_Delete(item);
                rc = NGX_ERROR;
            }
        }
    }

    cJSON_Delete(list);

    return rc;
}


static cJSON *
ngx_http_darkroom_mail_attach_one(cJSON *a,
    const ngx_http_darkroom_mail_attach_shape_t *shape)
{
    cJSON       *item;
    ngx_str_t    src, dst;
    const char  *name, *type, *content;

    name = ngx_http_darkroom_json_str(a, "filename");
    type = ngx_http_darkroom_json_str(a, "content_type");
    content = ngx_http_darkroom_json_str(a, "content");

    if (name == NULL || type == NULL || content == NULL) {
        return NULL;
    }

    src.data = (u_char *) content;
    src.len = strlen(content);

    dst.data = malloc(ngx_base64_encoded_length(src.len) + 1);
    if (dst.data == NULL) {
        return NULL;
    }

    ngx_encode_base64(&dst, &src);
    dst.data[dst.len] = '\0';

    item = cJSON_CreateObject();

    if (item == NULL
        || !cJSON_AddStringToObject(item, shape->filename, name)
        || !cJSON_AddStringToObject(item, shape->type, type)
        || !cJSON_AddStringToObject(item, shape->content, (char *) dst.data)
        || (shape->disposition
            && !cJSON_AddStringToObject(item, "disposition",
                                        shape->disposition)))
    {
        cJSON_Delete(item);
        item = NULL;
    }

    free(dst.data);

    return item;
}


/* ------------------------------------------------------------ Postmark */

static cJSON *
ngx_http_darkroom_mail_postmark_request(
    ngx_http_darkroom_mail_main_conf_t *mcf,
    ngx_http_darkroom_mail_msg_t *msg)
{
    cJSON  *json, *o;

    json = cJSON_CreateObject();
    if (json == NULL) {
        return NULL;
    }

    if (cJSON_AddStringToObject(json, "From", (char *) mcf->from.data)
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
        && cJSON_AddStringToObject(o, "darkroom_key", msg->key)
        && ngx_http_darkroom_mail_attach(json, msg,
               &ngx_http_darkroom_mail_postmark_attach) == NGX_OK)
    {
        return json;
    }

    cJSON_Delete(json);
    return NULL;
}


/* a 2xx may still carry {"ErrorCode": 406, "Message": "..."} */

static void
ngx_http_darkroom_mail_postmark_accepted(ngx_http_darkroom_fetch_resp_t *resp,
    cJSON *json, ngx_http_darkroom_mail_result_t *res)
{
    cJSON  *v, *e;

    v = cJSON_GetObjectItemCaseSensitive(json, "ErrorCode");
    e = cJSON_GetObjectItemCaseSensitive(json, "Message");

    if (cJSON_IsNumber(v) && v->valueint != 0) {
        res->outcome = NGX_HTTP_DARKROOM_MAIL_FAILED;
        snprintf(res->reason, sizeof(res->reason),
                 "postmark answered %ld, ErrorCode %d: %s", resp->status,
                 v->valueint, cJSON_IsString(e) ? e->valuestring : "");
        return;
    }

    v = cJSON_GetObjectItemCaseSensitive(json, "MessageID");

    if (cJSON_IsString(v)) {
        snprintf(res->message_id, sizeof(res->message_id), "%s",
                 v->valuestring);
    }
}


/* {"ErrorCode": 300, "Message": "..."} */

static void
ngx_http_darkroom_mail_postmark_refused(cJSON *json,
    ngx_http_darkroom_mail_refusal_t *rf)
{
    cJSON  *code;

    rf->why = ngx_http_darkroom_json_str(json, "Message");
    code = cJSON_GetObjectItemCaseSensitive(json, "ErrorCode");

    if (cJSON_IsNumber(code)) {
        snprintf(rf->code, sizeof(rf->code), "ErrorCode %d", code->valueint);
    }
}


/* ------------------------------------------------------------ SendGrid */

/*
 * custom_args go in the personalization: SendGrid's published schema has
 * an object there, a string at the message level.
 */

static cJSON *
ngx_http_darkroom_mail_sendgrid_request(
    ngx_http_darkroom_mail_main_conf_t *mcf,
    ngx_http_darkroom_mail_msg_t *msg)
{
    cJSON  *json, *o, *a, *p;

    json = cJSON_CreateObject();
    if (json == NULL) {
        return NULL;
    }

    if ((a = cJSON_AddArrayToObject(json, "personalizations"))
        && (p = cJSON_CreateObject())
        && cJSON_AddItemToArray(a, p)
        && (a = cJSON_AddArrayToObject(p, "to"))
        && (o = cJSON_CreateObject())
        && cJSON_AddItemToArray(a, o)
        && cJSON_AddStringToObject(o, "email", msg->to)
        && (o = cJSON_AddObjectToObject(json, "from"))
        && cJSON_AddStringToObject(o, "email", (char *) mcf->from_email.data)
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
        && cJSON_AddStringToObject(o, "darkroom_key", msg->key)
        && ngx_http_darkroom_mail_attach(json, msg,
               &ngx_http_darkroom_mail_sendgrid_attach) == NGX_OK)
    {
        return json;
    }

    cJSON_Delete(json);
    return NULL;
}


/* 202 with no body: the message id is a header */

static void
ngx_http_darkroom_mail_sendgrid_accepted(ngx_http_darkroom_fetch_resp_t *resp,
    cJSON *json, ngx_http_darkroom_mail_result_t *res)
{
    ngx_http_darkroom_fetch_header(resp, "X-Message-Id", res->message_id,
                                   sizeof(res->message_id));
}


/* {"errors": [{"message": "...", "field": "...", "help": ...}]} */

static void
ngx_http_darkroom_mail_sendgrid_refused(cJSON *json,
    ngx_http_darkroom_mail_refusal_t *rf)
{
    cJSON       *e;
    const char  *field;

    e = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(json, "errors"),
                           0);
    rf->why = ngx_http_darkroom_json_str(e, "message");
    field = ngx_http_darkroom_json_str(e, "field");

    if (field) {
        snprintf(rf->code, sizeof(rf->code), "%.24s", field);
    }
}


/* -------------------------------------------------------------- Resend */

static cJSON *
ngx_http_darkroom_mail_resend_request(ngx_http_darkroom_mail_main_conf_t *mcf,
    ngx_http_darkroom_mail_msg_t *msg)
{
    cJSON  *json, *o, *a;

    json = cJSON_CreateObject();
    if (json == NULL) {
        return NULL;
    }

    if (cJSON_AddStringToObject(json, "from", (char *) mcf->from.data)
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
        && cJSON_AddStringToObject(o, "value", msg->tpl)
        && ngx_http_darkroom_mail_attach(json, msg,
               &ngx_http_darkroom_mail_resend_attach) == NGX_OK)
    {
        return json;
    }

    cJSON_Delete(json);
    return NULL;
}


/* {"id": "..."} */

static void
ngx_http_darkroom_mail_resend_accepted(ngx_http_darkroom_fetch_resp_t *resp,
    cJSON *json, ngx_http_darkroom_mail_result_t *res)
{
    const char  *id;

    id = ngx_http_darkroom_json_str(json, "id");

    if (id) {
        snprintf(res->message_id, sizeof(res->message_id), "%s", id);
    }
}


/*
 * {"statusCode": 422, "name": "validation_error", "message": "..."}.  A 409
 * "concurrent_idempotent_requests" passes once the first request is done,
 * a key reused for another body ("invalid_idempotent_request") never will.
 */

static void
ngx_http_darkroom_mail_resend_refused(cJSON *json,
    ngx_http_darkroom_mail_refusal_t *rf)
{
    const char  *name;

    rf->why = ngx_http_darkroom_json_str(json, "message");
    name = ngx_http_darkroom_json_str(json, "name");

    if (name) {
        snprintf(rf->code, sizeof(rf->code), "%.30s", name);
        rf->reused_key = (ngx_strcmp(name, "invalid_idempotent_request")
                          == 0);
    }
}
