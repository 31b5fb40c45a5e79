
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
#define DARKROOM_STRIPE_API_VERSION   "2024-06-20"


#define DARKROOM_EVENT_OK             0
#define DARKROOM_EVENT_INVALID_JSON   1   /* not JSON PostgreSQL can store */
#define DARKROOM_EVENT_DUPLICATE_KEY  2   /* a key twice in one object */
#define DARKROOM_EVENT_THIN           3   /* "object": "v2.core.event" */
#define DARKROOM_EVENT_INVALID        4   /* no type or data.object */
#define DARKROOM_EVENT_BAD_ID         5   /* id not "evt_" [A-Za-z0-9_]+ */

#define DARKROOM_EVENT_MAX_DEPTH      64


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
} darkroom_stripe_event_t;


int darkroom_stripe_event_parse(const unsigned char *body, size_t len,
    darkroom_stripe_event_t *ev);


#endif /* _NGX_HTTP_DARKROOM_STRIPE_EVENT_H_INCLUDED_ */
