
/*
 * darkroom: the envelope of a Stripe event (plain C, no nginx inside).
 */


#ifndef _NGX_HTTP_DARKROOM_STRIPE_EVENT_H_INCLUDED_
#define _NGX_HTTP_DARKROOM_STRIPE_EVENT_H_INCLUDED_


#include <stddef.h>


/*
 * The Stripe API version darkroom is written for: sent as Stripe-Version on
 * every API call, and the version the webhook endpoint must be configured
 * with (sql/011's stripe_api_version() says the same).
 */
#define NGX_HTTP_DARKROOM_STRIPE_API_VERSION  "2024-06-20"


/* not JSON PostgreSQL can store; a key twice in one object; a thin event
 * ("object": "v2.core.event"); no type or data.object; an id that is not
 * "evt_" [A-Za-z0-9_]+ */

#define NGX_HTTP_DARKROOM_STRIPE_EVENT_OK             0
#define NGX_HTTP_DARKROOM_STRIPE_EVENT_INVALID_JSON   1
#define NGX_HTTP_DARKROOM_STRIPE_EVENT_DUPLICATE_KEY  2
#define NGX_HTTP_DARKROOM_STRIPE_EVENT_THIN           3
#define NGX_HTTP_DARKROOM_STRIPE_EVENT_INVALID        4
#define NGX_HTTP_DARKROOM_STRIPE_EVENT_BAD_ID         5

#define NGX_HTTP_DARKROOM_STRIPE_EVENT_MAX_DEPTH      64


typedef struct {
    char    id[256];
    char    type[128];
    char    object[32];
    char    api_version[64];      /* "" when absent or null */

    /* 0 absent, 1 read, 2 present but unusable */
    int     has_id;
    int     has_type;
    int     has_object;
    int     has_api_version;
    int     has_data_object;
} ngx_http_darkroom_stripe_event_t;


int ngx_http_darkroom_stripe_event_parse(const unsigned char *body,
    size_t len, ngx_http_darkroom_stripe_event_t *ev);


#endif /* _NGX_HTTP_DARKROOM_STRIPE_EVENT_H_INCLUDED_ */
