
/*
 * darkroom: unit test of the GCRA arithmetic
 * (src/limit/ngx_http_darkroom_gcra.h).  Prints TAP; run by
 * t/203_limit_gcra.t.
 */


#include <stdio.h>
#include <inttypes.h>

#include "ngx_http_darkroom_gcra.h"


static int  tests;
static int  failed;


static void
is(uint64_t got, uint64_t want, const char *name)
{
    tests++;

    if (got == want) {
        printf("ok %d - %s\n", tests, name);
        return;
    }

    failed++;
    printf("not ok %d - %s\n#   got %" PRIu64 ", want %" PRIu64 "\n",
           tests, name, got, want);
}


int
main(void)
{
    int                              i, passed;
    uint64_t                         tat, now;
    ngx_http_darkroom_gcra_t         g;
    ngx_http_darkroom_gcra_result_t  res;

    /* rate=10r/s burst=5 */

    is(ngx_http_darkroom_gcra_interval(10, 1000), 100, "10r/s: T = 100 ms");
    is(ngx_http_darkroom_gcra_interval(3, 1000), 333,
       "3r/s: T rounds to 333 ms");
    is(ngx_http_darkroom_gcra_interval(2, 1000), 500, "2r/s: T = 500 ms");
    is(ngx_http_darkroom_gcra_interval(1, 3600000), 3600000, "1r/h: T = 1 h");
    is(ngx_http_darkroom_gcra_interval(1000, 1000), 1, "1000r/s: T = 1 ms");

    ngx_http_darkroom_gcra_init(&g, ngx_http_darkroom_gcra_interval(10, 1000),
                                5);
    is(g.tolerance, 500, "burst=5: tolerance 500 ms");

    now = 1000000;
    tat = 0;
    passed = 0;

    for (i = 0; i < 20; i++) {
        ngx_http_darkroom_gcra_update(&g, tat, now, 1, &res);
        if (res.allowed) {
            passed++;
            tat = res.tat;
        }
    }

    is(passed, 6, "20 back to back: 6 pass");
    is(tat, now + 600, "TAT 600 ms ahead");

    ngx_http_darkroom_gcra_update(&g, tat, now, 1, &res);
    is(res.allowed, 0, "7th rejected");
    is(res.retry, 100, "retry in 100 ms");
    is(ngx_http_darkroom_gcra_seconds(res.retry), 1, "Retry-After 1 s");
    is(res.reset, 600, "reset in 600 ms");
    is(res.tat, tat, "rejection leaves TAT alone");

    ngx_http_darkroom_gcra_update(&g, tat, now + 99, 1, &res);
    is(res.allowed, 0, "rejected 1 ms too early");

    ngx_http_darkroom_gcra_update(&g, tat, now + 100, 1, &res);
    is(res.allowed, 1, "passes after 100 ms");
    is(res.remaining, 0, "no request left");

    ngx_http_darkroom_gcra_update(&g, tat, now + 250, 1, &res);
    is(res.allowed, 1, "passes after 250 ms");
    is(res.remaining, 1, "one more left after 250 ms");

    ngx_http_darkroom_gcra_update(&g, tat, now + 5000, 1, &res);
    is(res.remaining, 5, "rested key: 5 left after one");
    is(res.reset, 100, "rested key: reset 100 ms");

    /* fresh key, first requests */

    ngx_http_darkroom_gcra_update(&g, 0, now, 1, &res);
    is(res.remaining, 5, "first request: r=5");
    ngx_http_darkroom_gcra_update(&g, res.tat, now, 1, &res);
    is(res.remaining, 4, "second request: r=4");
    is(ngx_http_darkroom_gcra_seconds(res.reset), 1, "second request: t=1");

    /* cost */

    ngx_http_darkroom_gcra_update(&g, 0, now, 3, &res);
    is(res.allowed, 1, "cost 3 passes");
    is(res.remaining, 3, "cost 3 leaves 3");
    ngx_http_darkroom_gcra_update(&g, res.tat, now, 3, &res);
    is(res.allowed, 1, "second cost 3 passes");
    is(res.remaining, 0, "and leaves 0");
    tat = res.tat;
    ngx_http_darkroom_gcra_update(&g, tat, now, 3, &res);
    is(res.allowed, 0, "third cost 3 rejected");
    is(res.retry, 300, "retry in 300 ms");
    ngx_http_darkroom_gcra_update(&g, 0, now, 7, &res);
    is(res.never, 1, "cost 7 > burst + 1 can never pass");
    is(res.allowed, 0, "cost 7 rejected");

    /* rollback undoes exactly one update */

    ngx_http_darkroom_gcra_update(&g, 0, now, 2, &res);
    is(ngx_http_darkroom_gcra_rollback(&g, res.tat, 2), now, "rollback");
    is(ngx_http_darkroom_gcra_rollback(&g, 100, 2), 0, "rollback clamps at 0");

    /* peek spends nothing */

    ngx_http_darkroom_gcra_peek(&g, now + 300, now, &res);
    is(res.tat, now + 300, "peek keeps TAT");
    is(res.remaining, 3, "peek: 3 left");

    /* 1r/m burst=2: values to the second */

    ngx_http_darkroom_gcra_init(&g, ngx_http_darkroom_gcra_interval(1, 60000),
                                2);
    tat = 0;
    for (i = 0; i < 3; i++) {
        ngx_http_darkroom_gcra_update(&g, tat, now, 1, &res);
        is(res.allowed, 1, "1r/m burst=2 passes");
        tat = res.tat;
    }
    is(ngx_http_darkroom_gcra_seconds(res.reset), 180, "t=180");
    ngx_http_darkroom_gcra_update(&g, tat, now + 10, 1, &res);
    is(res.allowed, 0, "4th rejected");
    is(ngx_http_darkroom_gcra_seconds(res.retry), 60, "Retry-After 60");

    /* no burst: exactly one per interval */

    ngx_http_darkroom_gcra_init(&g, 1000, 0);
    ngx_http_darkroom_gcra_update(&g, 0, now, 1, &res);
    is(res.allowed, 1, "burst=0 first passes");
    is(res.remaining, 0, "burst=0 r=0");
    tat = res.tat;
    ngx_http_darkroom_gcra_update(&g, tat, now + 999, 1, &res);
    is(res.allowed, 0, "burst=0 second too early");
    is(res.retry, 1, "burst=0 retry in 1 ms");
    ngx_http_darkroom_gcra_update(&g, tat, now + 1000, 1, &res);
    is(res.allowed, 1, "burst=0 passes after T");

    /* a long run at exactly the rate never rejects, faster always does */

    ngx_http_darkroom_gcra_init(&g, 100, 5);
    tat = 0;
    passed = 0;
    for (i = 0; i < 10000; i++) {
        ngx_http_darkroom_gcra_update(&g, tat, now + (uint64_t) i * 100, 1,
                                      &res);
        if (res.allowed) {
            passed++;
            tat = res.tat;
        }
    }
    is(passed, 10000, "steady 10r/s: all pass");

    tat = 0;
    passed = 0;
    for (i = 0; i < 10000; i++) {
        ngx_http_darkroom_gcra_update(&g, tat, now + (uint64_t) i * 50, 1,
                                      &res);
        if (res.allowed) {
            passed++;
            tat = res.tat;
        }
    }
    /* 500 s at 10r/s plus the burst of 6 at the start, less the edge */
    is(passed, 5005, "20r/s offered for 500 s: 5005 pass");

    printf("1..%d\n", tests);

    return failed ? 1 : 0;
}
