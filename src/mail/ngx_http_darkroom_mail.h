
/*
 * darkroom: what the mail module and its providers share.
 *
 * A provider is one entry of ngx_http_darkroom_mail_providers[]: its name
 * in darkroom_mail_provider, its default base URL, where and how a message
 * is posted, and the functions that write its request and read its
 * answers.  Adding a provider is one entry (and its functions in
 * ngx_http_darkroom_mail_providers.c), plus its name in the CHECK of
 * emails.provider.
 */


#ifndef _NGX_HTTP_DARKROOM_MAIL_H_INCLUDED_
#define _NGX_HTTP_DARKROOM_MAIL_H_INCLUDED_


#include "ngx_http_darkroom.h"


#define NGX_HTTP_DARKROOM_MAIL_ID_LEN       200   /* provider message id */
#define NGX_HTTP_DARKROOM_MAIL_REASON_LEN   400   /* a failure, as stored */
#define NGX_HTTP_DARKROOM_MAIL_CODE_LEN     32    /* a provider's error code */


typedef struct ngx_http_darkroom_mail_provider_s
    ngx_http_darkroom_mail_provider_t;


typedef struct {
    ngx_http_darkroom_mail_provider_t  *provider;  /* NULL: no mail */
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
    ngx_str_t                    order_url;     /* {ORDER_TOKEN} template */
    ngx_http_darkroom_keyring_t *order_keys;    /* core's, or NULL */
    ngx_uint_t                   order_url_token; /* has {ORDER_TOKEN} */
    ngx_str_t                    stream;        /* Postmark message stream */
    ngx_uint_t                   reminder_days;

    /* darkroom_mail_booking_reminders: "{172800,7200}" (seconds before a
     * booking's start, an SQL array), "" when off */
    ngx_str_t                    booking_reminders;

    u_char                      *file;          /* where provider was set */
    ngx_uint_t                   line;
} ngx_http_darkroom_mail_main_conf_t;


/* a message as stored in emails (C strings of one PGresult row) */

typedef struct {
    const char                  *id;
    const char                  *status;
    const char                  *key;
    const char                  *to;
    const char                  *subject;
    const char                  *text;
    const char                  *html;          /* NULL: text only */
    const char                  *tpl;

    /* NULL, or [{"filename", "content_type", "content"}] as JSON text */
    const char                  *attachments;
} ngx_http_darkroom_mail_msg_t;


/* what a provider call came to */

typedef enum {
    NGX_HTTP_DARKROOM_MAIL_SENT = 0,
    NGX_HTTP_DARKROOM_MAIL_RETRY,                 /* worth another try */
    NGX_HTTP_DARKROOM_MAIL_FAILED                 /* will never succeed */
} ngx_http_darkroom_mail_outcome_e;


typedef struct {
    ngx_http_darkroom_mail_outcome_e  outcome;
    char                         message_id[NGX_HTTP_DARKROOM_MAIL_ID_LEN];
    char                         reason[NGX_HTTP_DARKROOM_MAIL_REASON_LEN];
    ngx_msec_t                   retry_after;
} ngx_http_darkroom_mail_result_t;


/* a refusal (an answer other than 2xx) in the provider's own terms */

typedef struct {
    const char                  *why;           /* its message, or NULL */

    /* its error code or the field at fault, or "" */
    char                         code[NGX_HTTP_DARKROOM_MAIL_CODE_LEN];

    /* the idempotency key came with another body: a 409 never passing */
    unsigned                     reused_key:1;
} ngx_http_darkroom_mail_refusal_t;


/*
 * All run in pool threads: cJSON and malloc only.  request: the JSON body
 * for a message, or NULL (out of memory).  accepted: reads a 2xx answer
 * (json may be NULL) into res: the message id, or a failure a provider
 * reports inside a 2xx.  refused: reads the reason of any other answer.
 */

typedef cJSON *(*ngx_http_darkroom_mail_request_pt)(
    ngx_http_darkroom_mail_main_conf_t *mcf,
    ngx_http_darkroom_mail_msg_t *msg);
typedef void (*ngx_http_darkroom_mail_accepted_pt)(
    ngx_http_darkroom_fetch_resp_t *resp, cJSON *json,
    ngx_http_darkroom_mail_result_t *res);
typedef void (*ngx_http_darkroom_mail_refused_pt)(cJSON *json,
    ngx_http_darkroom_mail_refusal_t *rf);


struct ngx_http_darkroom_mail_provider_s {
    const char                          *name;
    const char                          *api;       /* default base URL */
    const char                          *path;      /* POSTed to */
    const char                          *auth;      /* header, token follows */

    /* takes the message key as Idempotency-Key: a resend is sent once */
    ngx_uint_t                           idempotency_key;

    ngx_http_darkroom_mail_request_pt    request;
    ngx_http_darkroom_mail_accepted_pt   accepted;
    ngx_http_darkroom_mail_refused_pt    refused;
};


/* ends with an entry whose name is NULL */
extern ngx_http_darkroom_mail_provider_t  ngx_http_darkroom_mail_providers[];


ngx_http_darkroom_mail_provider_t *ngx_http_darkroom_mail_provider_find(
    ngx_str_t *name);

/* thread side: sends msg through mcf's provider, the outcome in res */
void ngx_http_darkroom_mail_send(ngx_http_darkroom_mail_main_conf_t *mcf,
    ngx_http_darkroom_job_t *job, ngx_http_darkroom_mail_msg_t *msg,
    ngx_http_darkroom_mail_result_t *res);


#endif /* _NGX_HTTP_DARKROOM_MAIL_H_INCLUDED_ */
