
/*
 * darkroom: rate limiting with GCRA in shared memory.
 *
 *     darkroom_limit_zone name=<zone> key=<value> rate=<n>r/s|r/m|r/h
 *                         [burst=<n>] size=<size>;
 *     darkroom_limit zone=<zone> [cost=<n>] [dry_run];
 *     darkroom_limit_status <code>;
 *     darkroom_limit_headers on|off;
 *     darkroom_limit_log_level info|notice|warn|error;
 *
 * Each key keeps one theoretical arrival time (see ngx_http_darkroom_gcra.h)
 * in a node of a red-black tree in the zone's slab pool.  Nodes are also on
 * an LRU list; when the zone is full the least recently used keys are
 * evicted, so a request never fails because memory ran out.
 *
 * A node is 48 bytes plus the key: the rbtree node's own fields (32 bytes),
 * then color, length, a 32-bit TAT relative to a zone base time and the LRU
 * links as 32-bit offsets into the zone.  A 16-byte key fits the 64-byte
 * slab class exactly.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_darkroom_gcra.h"
#include "ngx_http_darkroom_metrics.h"


#define NGX_HTTP_DARKROOM_LIMIT_PASSED            1
#define NGX_HTTP_DARKROOM_LIMIT_REJECTED          2
#define NGX_HTTP_DARKROOM_LIMIT_REJECTED_DRY_RUN  3

/* longest tolerance + interval of a zone: TATs stay within 2^30 ms of now */
#define NGX_HTTP_DARKROOM_LIMIT_MAX_AHEAD         (1ULL << 30)

/* the base time moves when "now" gets this far from it */
#define NGX_HTTP_DARKROOM_LIMIT_REBASE            (1ULL << 31)

/* seconds between two "zone is full" log lines of one zone */
#define NGX_HTTP_DARKROOM_LIMIT_LOG_EVERY         10

/* keys evicted at most for one new key before giving up on tracking it */
#define NGX_HTTP_DARKROOM_LIMIT_MAX_EVICT         64

#define NGX_HTTP_DARKROOM_LIMIT_MAX_COST          1000000


/* LRU links: offsets from the start of the zone, not pointers */

typedef struct {
    uint32_t                         prev;
    uint32_t                         next;
} ngx_http_darkroom_limit_link_t;


/* overlays ngx_rbtree_node_t from its "color" field on */

typedef struct {
    u_char                           color;
    u_char                           dummy;
    u_short                          len;
    uint32_t                         tat;      /* ms after sh->base; 0 rested */
    ngx_http_darkroom_limit_link_t   lru;
    u_char                           data[1];
} ngx_http_darkroom_limit_node_t;


typedef struct {
    ngx_rbtree_t                     rbtree;
    ngx_rbtree_node_t                sentinel;
    ngx_http_darkroom_limit_link_t   lru;      /* next: most recent */
    ngx_msec_t                       base;
    ngx_uint_t                       keys;
    ngx_uint_t                       evicted;  /* since the last log line */
    ngx_uint_t                       evicted_total;
    ngx_uint_t                       nomem;    /* keys not tracked */
    time_t                           logged;
} ngx_http_darkroom_limit_sh_t;


typedef struct {
    ngx_http_darkroom_limit_sh_t    *sh;
    ngx_slab_pool_t                 *shpool;
    ngx_http_complex_value_t         key;
    ngx_str_t                        name;
    ngx_str_t                        policy;   /* RateLimit-Policy value */
    ngx_http_darkroom_gcra_t         gcra;
    ngx_uint_t                       rate;     /* requests ... */
    ngx_uint_t                       period;   /* ... per this many seconds */
    ngx_uint_t                       burst;
    size_t                           size;
} ngx_http_darkroom_limit_zone_t;


typedef struct {
    ngx_shm_zone_t                  *shm_zone;
    ngx_uint_t                       cost;
    ngx_uint_t                       dry_run;  /* unsigned  dry_run:1; */
} ngx_http_darkroom_limit_t;


typedef struct {
    ngx_array_t                      limits;
    ngx_uint_t                       status;
    ngx_flag_t                       headers;
    ngx_uint_t                       log_level;
} ngx_http_darkroom_limit_conf_t;


/* per request, kept on r->main and found again after internal redirects */

typedef struct {
    ngx_uint_t                       status;
    ngx_http_darkroom_limit_zone_t  *zone;     /* most restrictive */
    uint64_t                         remaining;
    uint64_t                         reset;    /* ms */
    unsigned                         headers:1;
    unsigned                         sent:1;
} ngx_http_darkroom_limit_ctx_t;


static ngx_int_t ngx_http_darkroom_limit_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_darkroom_limit_key(ngx_http_request_t *r,
    ngx_http_darkroom_limit_zone_t *zone, ngx_str_t *key);
static uint64_t ngx_http_darkroom_limit_over(ngx_http_request_t *r,
    ngx_http_darkroom_limit_conf_t *lcf, ngx_http_darkroom_limit_t *limit,
    ngx_http_darkroom_gcra_result_t *res);
static ngx_inline void ngx_http_darkroom_limit_pick(
    ngx_http_darkroom_limit_ctx_t *best, ngx_http_darkroom_limit_zone_t *zone,
    ngx_http_darkroom_gcra_result_t *res, uint64_t retry);
static ngx_int_t ngx_http_darkroom_limit_answer(ngx_http_request_t *r,
    ngx_http_darkroom_limit_conf_t *lcf, ngx_http_darkroom_limit_ctx_t *best,
    ngx_uint_t dry, uint64_t retry, ngx_uint_t n, uint64_t applied);
static ngx_int_t ngx_http_darkroom_limit_lookup(
    ngx_http_darkroom_limit_zone_t *zone, ngx_uint_t hash, ngx_str_t *key,
    ngx_msec_t now, ngx_uint_t cost, ngx_http_darkroom_gcra_result_t *res,
    ngx_log_t *log);
static void ngx_http_darkroom_limit_expire(
    ngx_http_darkroom_limit_zone_t *zone, ngx_msec_t now);
static ngx_rbtree_node_t *ngx_http_darkroom_limit_alloc(
    ngx_http_darkroom_limit_zone_t *zone, size_t len, ngx_msec_t now,
    ngx_log_t *log);
static void ngx_http_darkroom_limit_log_full(
    ngx_http_darkroom_limit_zone_t *zone, ngx_uint_t full, ngx_uint_t evicted,
    ngx_log_t *log);
static void ngx_http_darkroom_limit_rollback(ngx_http_request_t *r,
    ngx_http_darkroom_limit_t *limits, ngx_uint_t n, uint64_t applied);
static ngx_int_t ngx_http_darkroom_limit_reject(ngx_http_request_t *r,
    ngx_http_darkroom_limit_conf_t *lcf, uint64_t retry);
static ngx_http_darkroom_limit_ctx_t *ngx_http_darkroom_limit_get_ctx(
    ngx_http_request_t *r);
static void ngx_http_darkroom_limit_cleanup(void *data);
static ngx_int_t ngx_http_darkroom_limit_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_darkroom_limit_status_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);

static ngx_rbtree_node_t *ngx_http_darkroom_limit_find(
    ngx_http_darkroom_limit_zone_t *zone, ngx_uint_t hash, ngx_str_t *key);
static void ngx_http_darkroom_limit_free(ngx_http_darkroom_limit_zone_t *zone,
    ngx_http_darkroom_limit_node_t *lr);
static void ngx_http_darkroom_limit_rebase(
    ngx_http_darkroom_limit_zone_t *zone, ngx_msec_t now);
static void ngx_http_darkroom_limit_rbtree_insert_value(
    ngx_rbtree_node_t *temp, ngx_rbtree_node_t *node,
    ngx_rbtree_node_t *sentinel);
static ngx_int_t ngx_http_darkroom_limit_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);

static ngx_int_t ngx_http_darkroom_limit_add_variables(ngx_conf_t *cf);
static ngx_int_t ngx_http_darkroom_limit_init(ngx_conf_t *cf);
static void *ngx_http_darkroom_limit_create_conf(ngx_conf_t *cf);
static char *ngx_http_darkroom_limit_merge_conf(ngx_conf_t *cf, void *parent,
    void *child);
static char *ngx_http_darkroom_limit_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_darkroom_limit_zone_param(ngx_conf_t *cf,
    ngx_http_darkroom_limit_zone_t *zone, ngx_str_t *key, ngx_str_t *value);
static ngx_int_t ngx_http_darkroom_limit_parse_name(ngx_conf_t *cf,
    ngx_str_t *value, ngx_str_t *name);
static ngx_int_t ngx_http_darkroom_limit_parse_size(ngx_conf_t *cf,
    ngx_str_t *value, size_t *size);
static ngx_int_t ngx_http_darkroom_limit_parse_rate(ngx_conf_t *cf,
    ngx_str_t *value, ngx_http_darkroom_limit_zone_t *zone);
static ngx_int_t ngx_http_darkroom_limit_zone_setup(ngx_conf_t *cf,
    ngx_http_darkroom_limit_zone_t *zone, ngx_str_t *key);
static char *ngx_http_darkroom_limit(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_darkroom_limit_add(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_http_darkroom_limit_conf_t *lcf, ngx_http_darkroom_limit_t *limit);


static ngx_conf_enum_t  ngx_http_darkroom_limit_log_levels[] = {
    { ngx_string("info"), NGX_LOG_INFO },
    { ngx_string("notice"), NGX_LOG_NOTICE },
    { ngx_string("warn"), NGX_LOG_WARN },
    { ngx_string("error"), NGX_LOG_ERR },
    { ngx_null_string, 0 }
};


static ngx_conf_num_bounds_t  ngx_http_darkroom_limit_status_bounds = {
    ngx_conf_check_num_bounds, 400, 599
};


static ngx_command_t  ngx_http_darkroom_limit_commands[] = {

    { ngx_string("darkroom_limit_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_darkroom_limit_zone,
      0,
      0,
      NULL },

    { ngx_string("darkroom_limit"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE123,
      ngx_http_darkroom_limit,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("darkroom_limit_status"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_darkroom_limit_conf_t, status),
      &ngx_http_darkroom_limit_status_bounds },

    { ngx_string("darkroom_limit_headers"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_darkroom_limit_conf_t, headers),
      NULL },

    { ngx_string("darkroom_limit_log_level"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_darkroom_limit_conf_t, log_level),
      &ngx_http_darkroom_limit_log_levels },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_darkroom_limit_module_ctx = {
    ngx_http_darkroom_limit_add_variables,  /* preconfiguration */
    ngx_http_darkroom_limit_init,           /* postconfiguration */

    NULL,                                   /* create main configuration */
    NULL,                                   /* init main configuration */

    NULL,                                   /* create server configuration */
    NULL,                                   /* merge server configuration */

    ngx_http_darkroom_limit_create_conf,    /* create location configuration */
    ngx_http_darkroom_limit_merge_conf      /* merge location configuration */
};


ngx_module_t  ngx_http_darkroom_limit_module = {
    NGX_MODULE_V1,
    &ngx_http_darkroom_limit_module_ctx,    /* module context */
    ngx_http_darkroom_limit_commands,       /* module directives */
    NGX_HTTP_MODULE,                        /* module type */
    NULL,                                   /* init master */
    NULL,                                   /* init module */
    NULL,                                   /* init process */
    NULL,                                   /* init thread */
    NULL,                                   /* exit thread */
    NULL,                                   /* exit process */
    NULL,                                   /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;


static ngx_str_t  ngx_http_darkroom_limit_status_names[] = {
    ngx_null_string,
    ngx_string("PASSED"),
    ngx_string("REJECTED"),
    ngx_string("REJECTED_DRY_RUN")
};


#define ngx_http_darkroom_limit_link(zone, off)                               \
    ((ngx_http_darkroom_limit_link_t *) ((u_char *) (zone)->shpool + (off)))

#define ngx_http_darkroom_limit_offset(zone, link)                            \
    ((uint32_t) ((u_char *) (link) - (u_char *) (zone)->shpool))

#define ngx_http_darkroom_limit_node(link)                                    \
    ((ngx_http_darkroom_limit_node_t *)                                       \
         ((u_char *) (link) - offsetof(ngx_http_darkroom_limit_node_t, lru)))


static ngx_inline void
ngx_http_darkroom_limit_lru_remove(ngx_http_darkroom_limit_zone_t *zone,
    ngx_http_darkroom_limit_link_t *link)
{
    ngx_http_darkroom_limit_link(zone, link->prev)->next = link->next;
    ngx_http_darkroom_limit_link(zone, link->next)->prev = link->prev;
}


static ngx_inline void
ngx_http_darkroom_limit_lru_insert(ngx_http_darkroom_limit_zone_t *zone,
    ngx_http_darkroom_limit_link_t *link)
{
    uint32_t                         off;
    ngx_http_darkroom_limit_link_t  *head;

    head = &zone->sh->lru;
    off = ngx_http_darkroom_limit_offset(zone, link);

    link->next = head->next;
    link->prev = ngx_http_darkroom_limit_offset(zone, head);
    ngx_http_darkroom_limit_link(zone, head->next)->prev = off;
    head->next = off;
}


static ngx_inline uint64_t
ngx_http_darkroom_limit_get_tat(ngx_http_darkroom_limit_zone_t *zone,
    ngx_http_darkroom_limit_node_t *lr)
{
    return lr->tat ? (uint64_t) zone->sh->base + lr->tat : 0;
}


static ngx_inline void
ngx_http_darkroom_limit_set_tat(ngx_http_darkroom_limit_zone_t *zone,
    ngx_http_darkroom_limit_node_t *lr, uint64_t tat)
{
    lr->tat = (tat > zone->sh->base) ? (uint32_t) (tat - zone->sh->base) : 0;
}


static ngx_int_t
ngx_http_darkroom_limit_handler(ngx_http_request_t *r)
{
    uint32_t                         hash;
    uint64_t                         retry, applied;
    ngx_int_t                        rc;
    ngx_str_t                        key;
    ngx_uint_t                       n, evaluated, dry;
    ngx_msec_t                       now;
    ngx_http_darkroom_gcra_result_t  res;
    ngx_http_darkroom_limit_t       *limit, *limits;
    ngx_http_darkroom_limit_ctx_t    best;
    ngx_http_darkroom_limit_conf_t  *lcf;
    ngx_http_darkroom_limit_zone_t  *zone;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_darkroom_limit_module);

    if (lcf->limits.nelts == 0) {
        return NGX_DECLINED;
    }

    if (ngx_http_darkroom_limit_get_ctx(r->main) != NULL) {
        return NGX_DECLINED;
    }

    now = ngx_current_msec;
    limits = lcf->limits.elts;

    ngx_memzero(&best, sizeof(ngx_http_darkroom_limit_ctx_t));

    evaluated = 0;
    dry = 0;
    retry = 0;
    applied = 0;

    for (n = 0; n < lcf->limits.nelts; n++) {

        limit = &limits[n];
        zone = limit->shm_zone->data;

        rc = ngx_http_darkroom_limit_key(r, zone, &key);

        if (rc == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (rc == NGX_DECLINED) {
            continue;
        }

        hash = ngx_crc32_short(key.data, key.len);

        ngx_shmtx_lock(&zone->shpool->mutex);

        rc = ngx_http_darkroom_limit_lookup(zone, hash, &key, now,
                                            limit->cost, &res,
                                            r->connection->log);

        ngx_shmtx_unlock(&zone->shpool->mutex);

        evaluated++;
        ngx_http_darkroom_metric_named(limit,
                                       NGX_HTTP_DARKROOM_NAMES_LIMIT_ZONE,
                                       zone->name.data, zone->name.len,
                                       !res.allowed);

        ngx_log_debug5(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "darkroom limit \"%V\": allowed:%d remaining:%uL "
                       "retry:%uL reset:%uL",
                       &zone->name, (int) res.allowed, res.remaining,
                       res.retry, res.reset);

        if (!res.allowed) {
            retry = ngx_http_darkroom_limit_over(r, lcf, limit, &res);
            dry |= limit->dry_run;

        } else if (rc == NGX_OK && n < 64) {
            applied |= (uint64_t) 1 << n;
        }

        ngx_http_darkroom_limit_pick(&best, zone, &res, retry);

        if (retry) {
            break;
        }
    }

    if (evaluated == 0) {
        return NGX_DECLINED;
    }

    return ngx_http_darkroom_limit_answer(r, lcf, &best, dry, retry, n,
                                          applied);
}


/* the key of a zone for this request: NGX_DECLINED when it limits nothing */

static ngx_int_t
ngx_http_darkroom_limit_key(ngx_http_request_t *r,
    ngx_http_darkroom_limit_zone_t *zone, ngx_str_t *key)
{
    if (ngx_http_complex_value(r, &zone->key, key) != NGX_OK) {
        return NGX_ERROR;
    }

    if (key->len == 0) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "darkroom limit \"%V\": empty key, not limited",
                       &zone->name);
        return NGX_DECLINED;
    }

    if (key->len > 65535) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "the value of the \"%V\" key is more than "
                      "65535 bytes, not limited by zone \"%V\"",
                      &zone->key.value, &zone->name);
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* a zone over its limit: logged; the retry in ms, 0 for a dry run */

static uint64_t
ngx_http_darkroom_limit_over(ngx_http_request_t *r,
    ngx_http_darkroom_limit_conf_t *lcf, ngx_http_darkroom_limit_t *limit,
    ngx_http_darkroom_gcra_result_t *res)
{
    ngx_http_darkroom_limit_zone_t  *zone;

    zone = limit->shm_zone->data;

    if (limit->dry_run) {
        ngx_log_error(lcf->log_level, r->connection->log, 0,
                      "limiting requests, dry run, by zone \"%V\", "
                      "retry in %uL ms",
                      &zone->name, res->retry);
        return 0;
    }

    ngx_log_error(lcf->log_level, r->connection->log, 0,
                  "limiting requests by zone \"%V\", retry in %uL ms",
                  &zone->name, res->retry);

    return res->retry ? res->retry : 1;
}


/*
 * The zone the response fields describe: the rejecting one, else the one
 * with the fewest requests left, then the one longest until rested.
 */

static ngx_inline void
ngx_http_darkroom_limit_pick(ngx_http_darkroom_limit_ctx_t *best,
    ngx_http_darkroom_limit_zone_t *zone,
    ngx_http_darkroom_gcra_result_t *res, uint64_t retry)
{
    if (best->zone == NULL
        || retry
        || res->remaining < best->remaining
        || (res->remaining == best->remaining && res->reset > best->reset))
    {
        best->zone = zone;
        best->remaining = res->remaining;
        best->reset = res->reset;
    }
}


/*
 * Keeps the outcome on r->main for the header filter and the variable, then
 * passes the request on, or gives back what the zones before the rejecting
 * one (the first n) took and rejects it.
 */

static ngx_int_t
ngx_http_darkroom_limit_answer(ngx_http_request_t *r,
    ngx_http_darkroom_limit_conf_t *lcf, ngx_http_darkroom_limit_ctx_t *best,
    ngx_uint_t dry, uint64_t retry, ngx_uint_t n, uint64_t applied)
{
    ngx_pool_cleanup_t             *cln;
    ngx_http_darkroom_limit_ctx_t  *ctx;

    cln = ngx_pool_cleanup_add(r->main->pool,
                               sizeof(ngx_http_darkroom_limit_ctx_t));
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx = cln->data;
    *ctx = *best;
    ctx->headers = lcf->headers ? 1 : 0;

    cln->handler = ngx_http_darkroom_limit_cleanup;

    ngx_http_set_ctx(r->main, ctx, ngx_http_darkroom_limit_module);

    if (retry == 0) {
        ctx->status = dry ? NGX_HTTP_DARKROOM_LIMIT_REJECTED_DRY_RUN
                          : NGX_HTTP_DARKROOM_LIMIT_PASSED;

        ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "darkroom limit: %V, most restrictive zone \"%V\" "
                       "remaining:%uL",
                       &ngx_http_darkroom_limit_status_names[ctx->status],
                       &ctx->zone->name, ctx->remaining);

        return NGX_DECLINED;
    }

    ctx->status = NGX_HTTP_DARKROOM_LIMIT_REJECTED;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "darkroom limit: REJECTED by zone \"%V\", retry:%uL, "
                   "zones before it:%ui",
                   &ctx->zone->name, retry, n);

    ngx_http_darkroom_limit_rollback(r, lcf->limits.elts, n, applied);

    return ngx_http_darkroom_limit_reject(r, lcf, retry);
}


static ngx_int_t
ngx_http_darkroom_limit_lookup(ngx_http_darkroom_limit_zone_t *zone,
    ngx_uint_t hash, ngx_str_t *key, ngx_msec_t now, ngx_uint_t cost,
    ngx_http_darkroom_gcra_result_t *res, ngx_log_t *log)
{
    uint64_t                         tat;
    ngx_rbtree_node_t               *node;
    ngx_http_darkroom_limit_sh_t    *sh;
    ngx_http_darkroom_limit_node_t  *lr;

    sh = zone->sh;

    if (now < sh->base) {
        now = sh->base;
    }

    if (now - sh->base >= NGX_HTTP_DARKROOM_LIMIT_REBASE) {
        ngx_http_darkroom_limit_rebase(zone, now);
    }

    node = ngx_http_darkroom_limit_find(zone, hash, key);

    if (node != NULL) {
        lr = (ngx_http_darkroom_limit_node_t *) &node->color;

        ngx_http_darkroom_limit_lru_remove(zone, &lr->lru);
        ngx_http_darkroom_limit_lru_insert(zone, &lr->lru);

        tat = ngx_http_darkroom_limit_get_tat(zone, lr);

        ngx_http_darkroom_gcra_update(&zone->gcra, tat, now, cost, res);

        if (res->allowed) {
            ngx_http_darkroom_limit_set_tat(zone, lr, res->tat);
        }

        return NGX_OK;
    }

    ngx_http_darkroom_gcra_update(&zone->gcra, 0, now, cost, res);

    if (!res->allowed) {
        return NGX_OK;
    }

    ngx_http_darkroom_limit_expire(zone, now);

    node = ngx_http_darkroom_limit_alloc(zone, key->len, now, log);

    if (node == NULL) {
        return NGX_DECLINED;
    }

    node->key = hash;

    lr = (ngx_http_darkroom_limit_node_t *) &node->color;

    lr->len = (u_short) key->len;
    ngx_memcpy(lr->data, key->data, key->len);

    ngx_http_darkroom_limit_set_tat(zone, lr, res->tat);

    ngx_rbtree_insert(&sh->rbtree, node);
    ngx_http_darkroom_limit_lru_insert(zone, &lr->lru);

    sh->keys++;

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, log, 0,
                   "darkroom limit \"%V\": new key, %ui keys",
                   &zone->name, sh->keys);

    return NGX_OK;
}


/* forget up to two rested keys at the old end of the LRU list */

static void
ngx_http_darkroom_limit_expire(ngx_http_darkroom_limit_zone_t *zone,
    ngx_msec_t now)
{
    ngx_uint_t                       i;
    ngx_http_darkroom_limit_sh_t    *sh;
    ngx_http_darkroom_limit_node_t  *lr;
    ngx_http_darkroom_limit_link_t  *link;

    sh = zone->sh;

    for (i = 0; i < 2; i++) {
        if (sh->lru.prev == ngx_http_darkroom_limit_offset(zone, &sh->lru)) {
            return;
        }

        link = ngx_http_darkroom_limit_link(zone, sh->lru.prev);
        lr = ngx_http_darkroom_limit_node(link);

        if (ngx_http_darkroom_limit_get_tat(zone, lr) > now) {
            return;
        }

        ngx_http_darkroom_limit_free(zone, lr);
    }
}


/*
 * A node for a key of len bytes; when the zone is full, the least recently
 * used keys make room, at most NGX_HTTP_DARKROOM_LIMIT_MAX_EVICT of them
 * that are not rested.  NULL: the key is not tracked.
 */

static ngx_rbtree_node_t *
ngx_http_darkroom_limit_alloc(ngx_http_darkroom_limit_zone_t *zone,
    size_t len, ngx_msec_t now, ngx_log_t *log)
{
    size_t                           size;
    ngx_uint_t                       full, evicted;
    ngx_rbtree_node_t               *node;
    ngx_http_darkroom_limit_sh_t    *sh;
    ngx_http_darkroom_limit_node_t  *lr;
    ngx_http_darkroom_limit_link_t  *link;

    sh = zone->sh;

    size = offsetof(ngx_rbtree_node_t, color)
           + offsetof(ngx_http_darkroom_limit_node_t, data)
           + len;

    node = ngx_slab_alloc_locked(zone->shpool, size);

    full = sh->keys;
    evicted = 0;

    while (node == NULL && evicted < NGX_HTTP_DARKROOM_LIMIT_MAX_EVICT) {

        if (sh->lru.prev == ngx_http_darkroom_limit_offset(zone, &sh->lru)) {
            break;
        }

        link = ngx_http_darkroom_limit_link(zone, sh->lru.prev);
        lr = ngx_http_darkroom_limit_node(link);

        if (ngx_http_darkroom_limit_get_tat(zone, lr) > now) {
            evicted++;
        }

        ngx_http_darkroom_limit_free(zone, lr);

        node = ngx_slab_alloc_locked(zone->shpool, size);
    }

    if (evicted) {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, log, 0,
                       "darkroom limit \"%V\": full, evicted %ui keys",
                       &zone->name, evicted);

        ngx_http_darkroom_limit_log_full(zone, full, evicted, log);
    }

    if (node == NULL) {
        sh->nomem++;

        if (ngx_time() - sh->logged >= NGX_HTTP_DARKROOM_LIMIT_LOG_EVERY) {
            sh->logged = ngx_time();

            ngx_log_error(NGX_LOG_ALERT, log, 0,
                          "darkroom_limit_zone \"%V\" could not store a key "
                          "of %uz bytes, %ui requests passed untracked",
                          &zone->name, len, sh->nomem);
        }
    }

    return node;
}


/* counts evictions; logs them at most once every LOG_EVERY seconds */

static void
ngx_http_darkroom_limit_log_full(ngx_http_darkroom_limit_zone_t *zone,
    ngx_uint_t full, ngx_uint_t evicted, ngx_log_t *log)
{
    ngx_http_darkroom_limit_sh_t  *sh;

    sh = zone->sh;

    sh->evicted += evicted;
    sh->evicted_total += evicted;

    if (ngx_time() - sh->logged < NGX_HTTP_DARKROOM_LIMIT_LOG_EVERY) {
        return;
    }

    sh->logged = ngx_time();

    ngx_log_error(NGX_LOG_WARN, log, 0,
                  "darkroom_limit_zone \"%V\" is full at %ui keys "
                  "in %uz bytes, evicted %ui least recently used "
                  "keys (%ui in all)",
                  &zone->name, full, zone->size,
                  sh->evicted, sh->evicted_total);

    sh->evicted = 0;
}


static ngx_rbtree_node_t *
ngx_http_darkroom_limit_find(ngx_http_darkroom_limit_zone_t *zone,
    ngx_uint_t hash, ngx_str_t *key)
{
    ngx_int_t                        rc;
    ngx_rbtree_node_t               *node, *sentinel;
    ngx_http_darkroom_limit_node_t  *lr;

    node = zone->sh->rbtree.root;
    sentinel = zone->sh->rbtree.sentinel;

    while (node != sentinel) {

        if (hash < node->key) {
            node = node->left;
            continue;
        }

        if (hash > node->key) {
            node = node->right;
            continue;
        }

        /* hash == node->key */

        lr = (ngx_http_darkroom_limit_node_t *) &node->color;

        rc = ngx_memn2cmp(key->data, lr->data, key->len, (size_t) lr->len);

        if (rc == 0) {
            return node;
        }

        node = (rc < 0) ? node->left : node->right;
    }

    return NULL;
}


static void
ngx_http_darkroom_limit_free(ngx_http_darkroom_limit_zone_t *zone,
    ngx_http_darkroom_limit_node_t *lr)
{
    ngx_rbtree_node_t  *node;

    ngx_http_darkroom_limit_lru_remove(zone, &lr->lru);

    node = (ngx_rbtree_node_t *)
               ((u_char *) lr - offsetof(ngx_rbtree_node_t, color));

    ngx_rbtree_delete(&zone->sh->rbtree, node);
    ngx_slab_free_locked(zone->shpool, node);

    zone->sh->keys--;
}


/*
 * TATs are 32-bit milliseconds after sh->base; every 2^31 ms (about 24
 * days) the base moves up to "now" and every stored TAT with it.
 */

static void
ngx_http_darkroom_limit_rebase(ngx_http_darkroom_limit_zone_t *zone,
    ngx_msec_t now)
{
    uint32_t                         off, head, delta;
    ngx_http_darkroom_limit_node_t  *lr;
    ngx_http_darkroom_limit_link_t  *link;

    delta = (uint32_t) (now - zone->sh->base);
    head = ngx_http_darkroom_limit_offset(zone, &zone->sh->lru);

    for (off = zone->sh->lru.next; off != head; off = link->next) {
        link = ngx_http_darkroom_limit_link(zone, off);
        lr = ngx_http_darkroom_limit_node(link);

        lr->tat = (lr->tat > delta) ? lr->tat - delta : 0;
    }

    zone->sh->base = now;
}


static void
ngx_http_darkroom_limit_rollback(ngx_http_request_t *r,
    ngx_http_darkroom_limit_t *limits, ngx_uint_t n, uint64_t applied)
{
    uint32_t                         hash;
    uint64_t                         tat;
    ngx_str_t                        key;
    ngx_uint_t                       i;
    ngx_rbtree_node_t               *node;
    ngx_http_darkroom_limit_zone_t  *zone;
    ngx_http_darkroom_limit_node_t  *lr;

    for (i = 0; i < n && i < 64; i++) {

        if (!(applied & ((uint64_t) 1 << i))) {
            continue;
        }

        zone = limits[i].shm_zone->data;

        if (ngx_http_complex_value(r, &zone->key, &key) != NGX_OK) {
            continue;
        }

        hash = ngx_crc32_short(key.data, key.len);

        ngx_shmtx_lock(&zone->shpool->mutex);

        node = ngx_http_darkroom_limit_find(zone, hash, &key);

        if (node != NULL) {
            lr = (ngx_http_darkroom_limit_node_t *) &node->color;

            tat = ngx_http_darkroom_limit_get_tat(zone, lr);
            tat = ngx_http_darkroom_gcra_rollback(&zone->gcra, tat,
                                                  limits[i].cost);

            ngx_http_darkroom_limit_set_tat(zone, lr, tat);

            ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "darkroom limit \"%V\": gave back cost %ui",
                           &zone->name, limits[i].cost);
        }

        ngx_shmtx_unlock(&zone->shpool->mutex);
    }
}


static ngx_int_t
ngx_http_darkroom_limit_reject(ngx_http_request_t *r,
    ngx_http_darkroom_limit_conf_t *lcf, uint64_t retry)
{
    u_char           *p;
    uint64_t          seconds;
    ngx_int_t         rc;
    ngx_buf_t        *b;
    ngx_chain_t       out;
    ngx_table_elt_t  *h;

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    seconds = ngx_http_darkroom_gcra_seconds(retry);

    p = ngx_pnalloc(r->pool, NGX_INT64_LEN + 128);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Retry-After");
    h->value.data = p;
    h->value.len = ngx_sprintf(p, "%uL", seconds) - p;

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p += h->value.len;

    b->pos = p;
    b->last = ngx_sprintf(p, "{\"error\":{\"code\":\"rate_limited\","
                             "\"message\":\"Too many requests, retry in "
                             "%uL second%s.\"}}" CRLF,
                          seconds, seconds == 1 ? "" : "s");
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    r->headers_out.status = lcf->status;
    r->headers_out.content_length_n = b->last - b->pos;

    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        ngx_http_finalize_request(r, rc);
        return NGX_DONE;
    }

    out.buf = b;
    out.next = NULL;

    ngx_http_finalize_request(r, ngx_http_output_filter(r, &out));

    return NGX_DONE;
}


static ngx_http_darkroom_limit_ctx_t *
ngx_http_darkroom_limit_get_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t             *cln;
    ngx_http_darkroom_limit_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_darkroom_limit_module);

    if (ctx != NULL || !r->internal) {
        return ctx;
    }

    /* an internal redirect cleared r->ctx, the pool still has it */

    for (cln = r->pool->cleanup; cln; cln = cln->next) {
        if (cln->handler == ngx_http_darkroom_limit_cleanup) {
            ctx = cln->data;
            ngx_http_set_ctx(r, ctx, ngx_http_darkroom_limit_module);
            return ctx;
        }
    }

    return NULL;
}


static void
ngx_http_darkroom_limit_cleanup(void *data)
{
    /* nothing to free: the handler only marks the request context */
}


static ngx_int_t
ngx_http_darkroom_limit_header_filter(ngx_http_request_t *r)
{
    u_char                          *p;
    ngx_table_elt_t                 *h;
    ngx_http_darkroom_limit_ctx_t   *ctx;
    ngx_http_darkroom_limit_zone_t  *zone;

    if (r != r->main) {
        return ngx_http_next_header_filter(r);
    }

    ctx = ngx_http_darkroom_limit_get_ctx(r);

    if (ctx == NULL || !ctx->headers || ctx->sent || ctx->zone == NULL) {
        return ngx_http_next_header_filter(r);
    }

    ctx->sent = 1;
    zone = ctx->zone;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "RateLimit-Policy");
    h->value = zone->policy;

    p = ngx_pnalloc(r->pool, zone->name.len + 2 * NGX_INT64_LEN + 16);
    if (p == NULL) {
        return NGX_ERROR;
    }

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "RateLimit");
    h->value.data = p;
    h->value.len = ngx_sprintf(p, "\"%V\";r=%uL;t=%uL", &zone->name,
                               ctx->remaining,
                               ngx_http_darkroom_gcra_seconds(ctx->reset))
                   - p;

    return ngx_http_next_header_filter(r);
}


static ngx_int_t
ngx_http_darkroom_limit_status_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_darkroom_limit_ctx_t  *ctx;

    ctx = ngx_http_darkroom_limit_get_ctx(r->main);

    if (ctx == NULL || ctx->status == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->len = ngx_http_darkroom_limit_status_names[ctx->status].len;
    v->data = ngx_http_darkroom_limit_status_names[ctx->status].data;

    return NGX_OK;
}


static void
ngx_http_darkroom_limit_rbtree_insert_value(ngx_rbtree_node_t *temp,
    ngx_rbtree_node_t *node, ngx_rbtree_node_t *sentinel)
{
    ngx_rbtree_node_t               **p;
    ngx_http_darkroom_limit_node_t   *lrn, *lrnt;

    for ( ;; ) {

        if (node->key < temp->key) {

            p = &temp->left;

        } else if (node->key > temp->key) {

            p = &temp->right;

        } else { /* node->key == temp->key */

            lrn = (ngx_http_darkroom_limit_node_t *) &node->color;
            lrnt = (ngx_http_darkroom_limit_node_t *) &temp->color;

            p = (ngx_memn2cmp(lrn->data, lrnt->data, lrn->len, lrnt->len) < 0)
                ? &temp->left : &temp->right;
        }

        if (*p == sentinel) {
            break;
        }

        temp = *p;
    }

    *p = node;
    node->parent = temp;
    node->left = sentinel;
    node->right = sentinel;
    ngx_rbt_red(node);
}


static ngx_int_t
ngx_http_darkroom_limit_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_darkroom_limit_zone_t  *ozone = data;

    uint32_t                         head;
    ngx_http_darkroom_limit_zone_t  *zone;
    ngx_http_darkroom_limit_link_t  *link;

    zone = shm_zone->data;

    if (ozone) {
        zone->sh = ozone->sh;
        zone->shpool = ozone->shpool;

        if (zone->key.value.len == ozone->key.value.len
            && ngx_strncmp(zone->key.value.data, ozone->key.value.data,
                           zone->key.value.len)
               == 0)
        {
            /* same key: keep every TAT; a new rate applies from now on */
            return NGX_OK;
        }

        ngx_log_error(NGX_LOG_NOTICE, shm_zone->shm.log, 0,
                      "darkroom_limit_zone \"%V\" now uses the key \"%V\" "
                      "instead of \"%V\", its keys are forgotten",
                      &zone->name, &zone->key.value, &ozone->key.value);

        ngx_shmtx_lock(&zone->shpool->mutex);

        head = ngx_http_darkroom_limit_offset(zone, &zone->sh->lru);

        while (zone->sh->lru.next != head) {
            link = ngx_http_darkroom_limit_link(zone, zone->sh->lru.next);
            ngx_http_darkroom_limit_free(zone,
                                         ngx_http_darkroom_limit_node(link));
        }

        ngx_shmtx_unlock(&zone->shpool->mutex);

        return NGX_OK;
    }

    zone->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        zone->sh = zone->shpool->data;
        return NGX_OK;
    }

    zone->sh = ngx_slab_calloc(zone->shpool,
                               sizeof(ngx_http_darkroom_limit_sh_t));
    if (zone->sh == NULL) {
        return NGX_ERROR;
    }

    zone->shpool->data = zone->sh;

    ngx_rbtree_init(&zone->sh->rbtree, &zone->sh->sentinel,
                    ngx_http_darkroom_limit_rbtree_insert_value);

    head = ngx_http_darkroom_limit_offset(zone, &zone->sh->lru);
    zone->sh->lru.prev = head;
    zone->sh->lru.next = head;

    zone->sh->base = ngx_current_msec;

    /* a full zone is normal here: eviction handles it, quietly */
    zone->shpool->log_nomem = 0;

    return NGX_OK;
}


static ngx_int_t
ngx_http_darkroom_limit_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var;
    ngx_str_t             name = ngx_string("darkroom_limit_status");

    var = ngx_http_add_variable(cf, &name, NGX_HTTP_VAR_NOCACHEABLE);
    if (var == NULL) {
        return NGX_ERROR;
    }

    var->get_handler = ngx_http_darkroom_limit_status_variable;

    return NGX_OK;
}


static ngx_int_t
ngx_http_darkroom_limit_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PREACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_darkroom_limit_handler;

    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_darkroom_limit_header_filter;

    return NGX_OK;
}


static void *
ngx_http_darkroom_limit_create_conf(ngx_conf_t *cf)
{
    ngx_http_darkroom_limit_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_darkroom_limit_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->limits.elts = NULL;
     */

    conf->status = NGX_CONF_UNSET_UINT;
    conf->headers = NGX_CONF_UNSET;
    conf->log_level = NGX_CONF_UNSET_UINT;

    return conf;
}


static char *
ngx_http_darkroom_limit_merge_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_darkroom_limit_conf_t *prev = parent;
    ngx_http_darkroom_limit_conf_t *conf = child;

    if (conf->limits.elts == NULL) {
        conf->limits = prev->limits;
    }

    ngx_conf_merge_uint_value(conf->status, prev->status,
                              NGX_HTTP_TOO_MANY_REQUESTS);
    ngx_conf_merge_value(conf->headers, prev->headers, 1);
    ngx_conf_merge_uint_value(conf->log_level, prev->log_level, NGX_LOG_ERR);

    return NGX_CONF_OK;
}


static char *
ngx_http_darkroom_limit_zone(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_int_t                        rc;
    ngx_str_t                       *value, key;
    ngx_uint_t                       i;
    ngx_shm_zone_t                  *shm_zone;
    ngx_http_darkroom_limit_zone_t  *zone;

    value = cf->args->elts;

    zone = ngx_pcalloc(cf->pool, sizeof(ngx_http_darkroom_limit_zone_t));
    if (zone == NULL) {
        return NGX_CONF_ERROR;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     zone->name = { 0, NULL };
     *     zone->rate = 0;
     *     zone->burst = 0;
     *     zone->size = 0;
     */

    ngx_str_null(&key);

    for (i = 1; i < cf->args->nelts; i++) {

        rc = ngx_http_darkroom_limit_zone_param(cf, zone, &key, &value[i]);

        if (rc == NGX_DECLINED) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        if (rc != NGX_OK) {
            return NGX_CONF_ERROR;
        }
    }

    if (zone->name.len == 0 || key.len == 0 || zone->rate == 0
        || zone->size == 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" must have \"name\", \"key\", \"rate\" "
                           "and \"size\" parameters", &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (ngx_http_darkroom_limit_zone_setup(cf, zone, &key) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    shm_zone = ngx_shared_memory_add(cf, &zone->name, zone->size,
                                     &ngx_http_darkroom_limit_module);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (shm_zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate zone \"%V\"", &zone->name);
        return NGX_CONF_ERROR;
    }

    shm_zone->init = ngx_http_darkroom_limit_init_zone;
    shm_zone->data = zone;

    return NGX_CONF_OK;
}


/*
 * One "name=value" parameter of darkroom_limit_zone.  NGX_DECLINED: not a
 * valid parameter (the caller says so); NGX_ERROR: the reason is logged.
 */

static ngx_int_t
ngx_http_darkroom_limit_zone_param(ngx_conf_t *cf,
    ngx_http_darkroom_limit_zone_t *zone, ngx_str_t *key, ngx_str_t *value)
{
    ngx_int_t  burst;

    if (ngx_strncmp(value->data, "name=", 5) == 0) {
        return ngx_http_darkroom_limit_parse_name(cf, value, &zone->name);
    }

    if (ngx_strncmp(value->data, "key=", 4) == 0) {

        key->data = value->data + 4;
        key->len = value->len - 4;

        return (key->len == 0) ? NGX_DECLINED : NGX_OK;
    }

    if (ngx_strncmp(value->data, "size=", 5) == 0) {
        return ngx_http_darkroom_limit_parse_size(cf, value, &zone->size);
    }

    if (ngx_strncmp(value->data, "rate=", 5) == 0) {
        return ngx_http_darkroom_limit_parse_rate(cf, value, zone);
    }

    if (ngx_strncmp(value->data, "burst=", 6) == 0) {

        burst = ngx_atoi(value->data + 6, value->len - 6);

        if (burst < 0) {
            return NGX_DECLINED;
        }

        zone->burst = burst;

        return NGX_OK;
    }

    return NGX_DECLINED;
}


static ngx_int_t
ngx_http_darkroom_limit_parse_name(ngx_conf_t *cf, ngx_str_t *value,
    ngx_str_t *name)
{
    u_char  *p;

    name->data = value->data + 5;
    name->len = value->len - 5;

    if (name->len == 0) {
        return NGX_DECLINED;
    }

    for (p = name->data; p < name->data + name->len; p++) {
        if (!(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z')
            && !(*p >= '0' && *p <= '9')
            && *p != '_' && *p != '-' && *p != '.')
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid zone name \"%V\": only "
                               "letters, digits, \"_\", \"-\" and "
                               "\".\" are allowed", name);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_darkroom_limit_parse_size(ngx_conf_t *cf, ngx_str_t *value,
    size_t *size)
{
    ssize_t    n;
    ngx_str_t  s;

    s.data = value->data + 5;
    s.len = value->len - 5;

    n = ngx_parse_size(&s);

    if (n == NGX_ERROR) {
        return NGX_DECLINED;
    }

    if (n < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone size \"%V\" is too small, "
                           "at least %uz bytes", value, 8 * ngx_pagesize);
        return NGX_ERROR;
    }

    if ((uint64_t) n > 0xffffffffULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone size \"%V\" is too large, "
                           "at most 4095m", value);
        return NGX_ERROR;
    }

    *size = n;

    return NGX_OK;
}


/* rate=<n>r/s|r/m|r/h */

static ngx_int_t
ngx_http_darkroom_limit_parse_rate(ngx_conf_t *cf, ngx_str_t *value,
    ngx_http_darkroom_limit_zone_t *zone)
{
    u_char      *p;
    ngx_int_t    rate;
    ngx_uint_t   period;

    if (value->len < 5 + 4) {
        return NGX_DECLINED;
    }

    p = value->data + value->len - 3;

    if (ngx_strncmp(p, "r/s", 3) == 0) {
        period = 1;

    } else if (ngx_strncmp(p, "r/m", 3) == 0) {
        period = 60;

    } else if (ngx_strncmp(p, "r/h", 3) == 0) {
        period = 3600;

    } else {
        return NGX_DECLINED;
    }

    rate = ngx_atoi(value->data + 5, value->len - 5 - 3);

    if (rate <= 0) {
        return NGX_DECLINED;
    }

    if ((uint64_t) rate > (uint64_t) period * 1000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "rate \"%V\" is too high, at most one "
                           "request per millisecond", value);
        return NGX_ERROR;
    }

    zone->rate = rate;
    zone->period = period;

    return NGX_OK;
}


/* a zone with all its parameters: its GCRA, key and RateLimit-Policy */

static ngx_int_t
ngx_http_darkroom_limit_zone_setup(ngx_conf_t *cf,
    ngx_http_darkroom_limit_zone_t *zone, ngx_str_t *key)
{
    uint64_t                          interval;
    ngx_http_compile_complex_value_t  ccv;

    interval = ngx_http_darkroom_gcra_interval(zone->rate,
                                               zone->period * 1000);

    if (((uint64_t) zone->burst + 1) * interval
        > NGX_HTTP_DARKROOM_LIMIT_MAX_AHEAD)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "burst=%ui is too large for rate \"%ui\" per "
                           "%ui s, the burst must drain in at most 12 days",
                           zone->burst, zone->rate, zone->period);
        return NGX_ERROR;
    }

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = key;
    ccv.complex_value = &zone->key;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_darkroom_gcra_init(&zone->gcra, interval, zone->burst);

    zone->policy.data = ngx_pnalloc(cf->pool, zone->name.len
                                              + 2 * NGX_INT_T_LEN + 16);
    if (zone->policy.data == NULL) {
        return NGX_ERROR;
    }

    zone->policy.len = ngx_sprintf(zone->policy.data, "\"%V\";q=%ui;w=%ui",
                                   &zone->name, zone->rate, zone->period)
                       - zone->policy.data;

    return NGX_OK;
}


static char *
ngx_http_darkroom_limit(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_int_t                  cost;
    ngx_str_t                 *value, s;
    ngx_uint_t                 i, dry_run;
    ngx_shm_zone_t            *shm_zone;
    ngx_http_darkroom_limit_t  limit;

    value = cf->args->elts;

    shm_zone = NULL;
    cost = 1;
    dry_run = 0;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "zone=", 5) == 0) {

            s.len = value[i].len - 5;
            s.data = value[i].data + 5;

            shm_zone = ngx_shared_memory_add(cf, &s, 0,
                                             &ngx_http_darkroom_limit_module);
            if (shm_zone == NULL) {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "cost=", 5) == 0) {

            cost = ngx_atoi(value[i].data + 5, value[i].len - 5);

            if (cost <= 0 || cost > NGX_HTTP_DARKROOM_LIMIT_MAX_COST) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid cost \"%V\"", &value[i]);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strcmp(value[i].data, "dry_run") == 0) {
            dry_run = 1;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    limit.shm_zone = shm_zone;
    limit.cost = cost;
    limit.dry_run = dry_run;

    return ngx_http_darkroom_limit_add(cf, cmd, conf, &limit);
}


/* checks a parsed darkroom_limit against its zone and adds it to the level */

static char *
ngx_http_darkroom_limit_add(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_http_darkroom_limit_conf_t *lcf, ngx_http_darkroom_limit_t *limit)
{
    ngx_uint_t                       i;
    ngx_http_darkroom_limit_t       *limits, *l;
    ngx_http_darkroom_limit_zone_t  *zone;

    if (limit->shm_zone == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" must have \"zone\" parameter",
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    zone = limit->shm_zone->data;

    if (zone == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "unknown darkroom_limit_zone \"%V\"",
                           &limit->shm_zone->shm.name);
        return NGX_CONF_ERROR;
    }

    if (limit->cost > zone->burst + 1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "cost=%ui can never pass zone \"%V\" "
                           "with burst=%ui, at most %ui",
                           limit->cost, &zone->name, zone->burst,
                           zone->burst + 1);
        return NGX_CONF_ERROR;
    }

    limits = lcf->limits.elts;

    if (limits == NULL) {
        if (ngx_array_init(&lcf->limits, cf->pool, 1,
                           sizeof(ngx_http_darkroom_limit_t))
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    for (i = 0; i < lcf->limits.nelts; i++) {
        if (limit->shm_zone == limits[i].shm_zone) {
            return "is duplicate";
        }
    }

    l = ngx_array_push(&lcf->limits);
    if (l == NULL) {
        return NGX_CONF_ERROR;
    }

    *l = *limit;

    return NGX_CONF_OK;
}
