
/*
 * darkroom: GCRA (generic cell rate algorithm) arithmetic.
 *
 * Pure integer code with no nginx or I/O inside, shared by the rate limiter
 * (ngx_http_darkroom_limit_module.c) and the unit test in t/unit/.
 *
 * A key keeps one value, its theoretical arrival time (TAT), in
 * milliseconds.  With emission interval T (period / rate) and tolerance
 * tau (burst * T), a request of cost c arriving at "now" computes
 *
 *     tat' = max(tat, now) + c * T
 *
 * and passes when tat' - now <= tau + T, that is, burst + 1 requests may
 * arrive back to back and then one every T.  A rejected request leaves the
 * TAT unchanged.  A TAT at or before "now" means the key is fully rested,
 * the same as a key never seen (use tat = 0 for that).
 */


#ifndef _NGX_HTTP_DARKROOM_GCRA_H_INCLUDED_
#define _NGX_HTTP_DARKROOM_GCRA_H_INCLUDED_


#include <stdint.h>


typedef struct {
    uint64_t   interval;     /* T, ms per request, >= 1 */
    uint64_t   tolerance;    /* tau = burst * T, ms */
} ngx_http_darkroom_gcra_t;


typedef struct {
    unsigned   allowed:1;
    unsigned   never:1;      /* cost alone exceeds the limit */
    uint64_t   tat;          /* new TAT when allowed, else unchanged */
    uint64_t   remaining;    /* requests of cost 1 that would pass now */
    uint64_t   retry;        /* rejected: ms until this request could pass */
    uint64_t   reset;        /* ms until the key is fully rested */
} ngx_http_darkroom_gcra_result_t;


/* emission interval in ms for "n requests per period_ms", rounded */

static inline uint64_t
ngx_http_darkroom_gcra_interval(uint64_t n, uint64_t period_ms)
{
    uint64_t  t;

    if (n == 0) {
        return 0;
    }

    t = (period_ms + n / 2) / n;

    return t ? t : 1;
}


static inline void
ngx_http_darkroom_gcra_init(ngx_http_darkroom_gcra_t *g, uint64_t interval,
    uint64_t burst)
{
    g->interval = interval;
    g->tolerance = burst * interval;
}


static inline void
ngx_http_darkroom_gcra_update(const ngx_http_darkroom_gcra_t *g, uint64_t tat,
    uint64_t now, uint64_t cost, ngx_http_darkroom_gcra_result_t *res)
{
    uint64_t  base, next, limit, ahead;

    limit = g->tolerance + g->interval;
    base = (tat > now) ? tat : now;
    next = base + cost * g->interval;
    ahead = next - now;

    res->never = (cost * g->interval > limit);

    if (ahead > limit) {
        res->allowed = 0;
        res->tat = tat;
        res->remaining = 0;
        res->retry = ahead - limit;
        res->reset = (tat > now) ? tat - now : 0;
        return;
    }

    res->allowed = 1;
    res->tat = next;
    res->remaining = (limit - ahead) / g->interval;
    res->retry = 0;
    res->reset = ahead;
}


/* state of a key without spending anything: what a cost 0 request sees */

static inline void
ngx_http_darkroom_gcra_peek(const ngx_http_darkroom_gcra_t *g, uint64_t tat,
    uint64_t now, ngx_http_darkroom_gcra_result_t *res)
{
    ngx_http_darkroom_gcra_update(g, tat, now, 0, res);
}


/* undo an allowed update of the given cost (another zone rejected) */

static inline uint64_t
ngx_http_darkroom_gcra_rollback(const ngx_http_darkroom_gcra_t *g,
    uint64_t tat, uint64_t cost)
{
    uint64_t  inc;

    inc = cost * g->interval;

    return (tat > inc) ? tat - inc : 0;
}


/* milliseconds to whole seconds, rounded up */

static inline uint64_t
ngx_http_darkroom_gcra_seconds(uint64_t ms)
{
    return (ms + 999) / 1000;
}


#endif /* _NGX_HTTP_DARKROOM_GCRA_H_INCLUDED_ */
