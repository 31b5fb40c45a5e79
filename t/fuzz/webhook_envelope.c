/* fuzz-sources: src/shop/ngx_http_darkroom_stripe_event.c src/core/ngx_http_darkroom_utf8.c */

/*
 * darkroom: fuzz the Stripe event envelope reader.  Beyond not crashing,
 * an accepted event must carry what the webhook relies on: an id of
 * Stripe's form and a type, NUL-terminated within their buffers.
 */


#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_http_darkroom_stripe_event.h"


static void
check(int ok)
{
    if (!ok) {
        abort();
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                                rc;
    size_t                             i, n;
    ngx_http_darkroom_stripe_event_t   ev;

    rc = ngx_http_darkroom_stripe_event_parse(data, size, &ev);

    check(rc >= NGX_HTTP_DARKROOM_STRIPE_EVENT_OK
          && rc <= NGX_HTTP_DARKROOM_STRIPE_EVENT_BAD_ID);

    if (rc != NGX_HTTP_DARKROOM_STRIPE_EVENT_OK) {
        return 0;
    }

    n = strnlen(ev.id, sizeof(ev.id));
    check(n > 4 && n < sizeof(ev.id));
    check(memcmp(ev.id, "evt_", 4) == 0);

    for (i = 4; i < n; i++) {
        check((ev.id[i] >= 'a' && ev.id[i] <= 'z')
              || (ev.id[i] >= 'A' && ev.id[i] <= 'Z')
              || (ev.id[i] >= '0' && ev.id[i] <= '9') || ev.id[i] == '_');
    }

    n = strnlen(ev.type, sizeof(ev.type));
    check(n > 0 && n < sizeof(ev.type));

    for (i = 0; i < n; i++) {
        check((unsigned char) ev.type[i] > 0x20
              && (unsigned char) ev.type[i] < 0x7f);
    }

    check(strnlen(ev.api_version, sizeof(ev.api_version))
          < sizeof(ev.api_version));
    check(ev.has_data_object == 1);

    return 0;
}
