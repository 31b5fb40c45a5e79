
/*
 * darkroom: public answers from shared memory (issue 17).
 *
 * An answer that is the same for every visitor (the catalogue, the
 * session types) is built once in a pool thread and kept in a shared
 * memory zone (darkroom_public_cache), so a request copies it under the
 * zone's mutex and answers it on the event loop: no thread, no query.
 *
 * Freshness: every table an answer reads has a statement trigger that
 * bumps the answer's row of public_versions in the transaction of the
 * change (sql/034_public_cache.sql).  Each worker has a timer at the
 * zone's interval; the first worker whose tick finds the last check older
 * than the interval (a time in the zone) posts a thread task that reads
 * the versions.  Back on the event loop it compares them with what the
 * zone holds and, for each answer behind, takes the answer's "building"
 * mark in the zone (one builder at a time; a mark older than the
 * database timeout is taken over) and posts the build: in one REPEATABLE
 * READ transaction the version, then the source's function, so an entry
 * is never older than the version it is published under.  The entries
 * go into the zone under its mutex, replacing the old ones; those of the
 * answer the build did not make are removed.
 *
 * Whatever goes wrong (no entry yet, an entry the zone cannot hold)
 * leaves the handler's query path.  With PostgreSQL down the checks fail
 * and the last entries stay: they are served until a build replaces them.
 */


#include "ngx_http_darkroom.h"


#define NGX_HTTP_DARKROOM_PUBLIC_SOURCES   16
#define NGX_HTTP_DARKROOM_PUBLIC_NAME      32
#define NGX_HTTP_DARKROOM_PUBLIC_KEY       200
#define NGX_HTTP_DARKROOM_PUBLIC_TYPE      64
#define NGX_HTTP_DARKROOM_PUBLIC_ETAG      34   /* "<32 hex>" */
#define NGX_HTTP_DARKROOM_PUBLIC_INTERVAL  250


struct ngx_http_darkroom_public_conf_s {
    ngx_shm_zone_t                     *zone;
    ngx_msec_t                          interval;
    ngx_uint_t                          generation; /* the zone's, ours */
};

/* the state of an entry put on demand (_public_set), not a source's */
#define NGX_HTTP_DARKROOM_PUBLIC_DEMAND    NGX_HTTP_DARKROOM_PUBLIC_SOURCES


/* in the zone: an answer's published version and its builder's mark */

typedef struct {
    char                                name[NGX_HTTP_DARKROOM_PUBLIC_NAME];
    int64_t                             version;   /* -1: none yet */
    uint64_t                            building;  /* monotonic ms, 0 */
    ngx_uint_t                          failing;   /* builds: logged once */
} ngx_http_darkroom_public_state_t;

typedef struct {
    ngx_rbtree_t                        rbtree;
    ngx_rbtree_node_t                   sentinel;
    ngx_uint_t                          generation; /* one per cycle */
    uint64_t                            checked;   /* the last check, ms */
    uint64_t                            checking;  /* one out since, 0 */
    ngx_uint_t                          check_failing; /* logged once */
    size_t                              demand;    /* their bytes */
    ngx_uint_t                          nstates;
    ngx_http_darkroom_public_state_t    states[
                                        NGX_HTTP_DARKROOM_PUBLIC_SOURCES];
} ngx_http_darkroom_public_sh_t;

/* in the zone: one entry, its key and body in the same allocation */

typedef struct {
    ngx_str_node_t                      sn;        /* crc32, the key */
    ngx_uint_t                          state;
    int64_t                             version;
    size_t                              len;       /* the body's */
    size_t                              etag_len;
    u_char                              etag[NGX_HTTP_DARKROOM_PUBLIC_ETAG];
    u_char                              type[NGX_HTTP_DARKROOM_PUBLIC_TYPE];
    u_char                              key[1];    /* then the body */
} ngx_http_darkroom_public_entry_t;


/* made by a build in its thread: plain malloc'd memory */

typedef struct ngx_http_darkroom_public_item_s
    ngx_http_darkroom_public_item_t;

struct ngx_http_darkroom_public_item_s {
    ngx_http_darkroom_public_item_t    *next;
    size_t                              key_len;
    size_t                              len;
    char                                type[NGX_HTTP_DARKROOM_PUBLIC_TYPE];
    u_char                              etag[NGX_HTTP_DARKROOM_PUBLIC_ETAG];
    u_char                              data[1];  /* key, then body */
};


typedef struct {
    ngx_http_darkroom_public_build_t    b;
    ngx_http_darkroom_db_t              db;
    ngx_http_darkroom_error_t           err;
    ngx_http_darkroom_public_source_t  *source;
    ngx_thread_task_t                  *task;
    ngx_uint_t                          state;
    int64_t                             version;   /* what it was built at */
    unsigned                            busy:1;
} ngx_http_darkroom_public_builder_t;

typedef struct {
    ngx_event_t                         timer;
    ngx_thread_task_t                  *task;      /* the version check */
    ngx_http_darkroom_db_t              db;
    ngx_http_darkroom_error_t           err;
    ngx_uint_t                          nseen;
    int64_t                             seen[NGX_HTTP_DARKROOM_PUBLIC_SOURCES];
    ngx_http_darkroom_main_conf_t      *dmcf;
    ngx_slab_pool_t                    *shpool;
    ngx_http_darkroom_public_sh_t      *sh;
    ngx_uint_t                          generation;
    ngx_uint_t                          nbuilders;
    ngx_http_darkroom_public_builder_t *builders;
    unsigned                            busy:1;
} ngx_http_darkroom_public_worker_t;


static ssize_t ngx_http_darkroom_public_zone_arg(ngx_conf_t *cf,
    ngx_str_t *arg, ngx_str_t *name);
static ngx_int_t ngx_http_darkroom_public_init_zone(ngx_shm_zone_t *zone,
    void *data);
static ngx_int_t ngx_http_darkroom_public_state(
    ngx_http_darkroom_public_worker_t *w, const char *name);
static void ngx_http_darkroom_public_tick(ngx_event_t *ev);
static void ngx_http_darkroom_public_check_thread(void *data,
    ngx_log_t *log);
static void ngx_http_darkroom_public_checked(ngx_event_t *ev);
static void ngx_http_darkroom_public_build_post(
    ngx_http_darkroom_public_worker_t *w,
    ngx_http_darkroom_public_builder_t *bd);
static void ngx_http_darkroom_public_build_thread(void *data,
    ngx_log_t *log);
static ngx_int_t ngx_http_darkroom_public_build_tx(
    ngx_http_darkroom_db_t *db, void *data, ngx_http_darkroom_error_t *err);
static void ngx_http_darkroom_public_built(ngx_event_t *ev);
static ngx_uint_t ngx_http_darkroom_public_publish(
    ngx_http_darkroom_public_worker_t *w,
    ngx_http_darkroom_public_builder_t *bd);
static ngx_int_t ngx_http_darkroom_public_store(
    ngx_http_darkroom_public_worker_t *w,
    ngx_http_darkroom_public_builder_t *bd,
    ngx_http_darkroom_public_item_t *it);
static void ngx_http_darkroom_public_free(ngx_http_darkroom_public_build_t *b);
static uint64_t ngx_http_darkroom_public_stale(
    ngx_http_darkroom_public_worker_t *w);


static ngx_http_darkroom_public_worker_t  *ngx_http_darkroom_public_worker;


/* darkroom_public_cache zone=name:size [interval=time] */

char *
ngx_http_darkroom_public_cache(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_darkroom_main_conf_t *dmcf = conf;

    ssize_t                           size;
    ngx_str_t                        *value, name, s;
    ngx_uint_t                        i;
    ngx_msec_t                        interval;
    ngx_http_darkroom_public_conf_t  *pc;

    if (dmcf->public_cache) {
        return "is duplicate";
    }

    value = cf->args->elts;
    size = 0;
    ngx_str_null(&name);
    interval = NGX_HTTP_DARKROOM_PUBLIC_INTERVAL;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "zone=", 5) == 0 && name.data == NULL) {
            size = ngx_http_darkroom_public_zone_arg(cf, &value[i], &name);

            if (size == NGX_ERROR) {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "interval=", 9) == 0) {
            s.data = value[i].data + 9;
            s.len = value[i].len - 9;
            interval = ngx_parse_time(&s, 0);

            if (interval == (ngx_msec_t) NGX_ERROR || interval < 10
                || interval > 60000)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid interval \"%V\", it must be "
                                   "a time from 10ms to 60s", &s);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (name.data == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" must have a \"zone\" parameter",
                           &cmd->name);
        return NGX_CONF_ERROR;
    }

    pc = ngx_pcalloc(cf->pool, sizeof(ngx_http_darkroom_public_conf_t));
    if (pc == NULL) {
        return NGX_CONF_ERROR;
    }

    pc->interval = interval;
    pc->zone = ngx_shared_memory_add(cf, &name, size,
                                     &ngx_http_darkroom_module);
    if (pc->zone == NULL) {
        return NGX_CONF_ERROR;
    }

    if (pc->zone->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "zone \"%V\" is already used", &name);
        return NGX_CONF_ERROR;
    }

    pc->zone->init = ngx_http_darkroom_public_init_zone;
    pc->zone->data = pc;

    dmcf->public_cache = pc;

    return ngx_http_darkroom_needs_db(cf, cmd);
}


/* zone=name:size: the name into *name, returns the size or NGX_ERROR */

static ssize_t
ngx_http_darkroom_public_zone_arg(ngx_conf_t *cf, ngx_str_t *arg,
    ngx_str_t *name)
{
    u_char     *p;
    ssize_t     size;
    ngx_str_t   s;

    name->data = arg->data + 5;
    p = (u_char *) ngx_strchr(name->data, ':');

    if (p == NULL || p == name->data) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone \"%V\", it must be zone=name:size",
                           arg);
        return NGX_ERROR;
    }

    name->len = p - name->data;
    s.data = p + 1;
    s.len = arg->data + arg->len - s.data;
    size = ngx_parse_size(&s);

    if (size == NGX_ERROR || size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone size \"%V\", it must be at least "
                           "%uz bytes", &s, 8 * ngx_pagesize);
        return NGX_ERROR;
    }

    return size;
}


/*
 * Reused on reload (same name and size): the entries stay and are served
 * by the new workers, the versions are forgotten so that each answer is
 * built again with the new configuration.
 */

static ngx_int_t
ngx_http_darkroom_public_init_zone(ngx_shm_zone_t *zone, void *data)
{
    ngx_uint_t                        i;
    ngx_slab_pool_t                  *shpool;
    ngx_http_darkroom_public_sh_t    *sh;
    ngx_http_darkroom_public_conf_t  *pc;

    shpool = (ngx_slab_pool_t *) zone->shm.addr;
    pc = zone->data;

    if (data) {
        sh = shpool->data;

        ngx_shmtx_lock(&shpool->mutex);

        sh->generation++;
        sh->checking = 0;
        pc->generation = sh->generation;

        for (i = 0; i < sh->nstates; i++) {
            sh->states[i].version = -1;
            sh->states[i].building = 0;
        }

        ngx_shmtx_unlock(&shpool->mutex);

        return NGX_OK;
    }

    if (zone->shm.exists) {
        sh = shpool->data;
        pc->generation = sh->generation;
        return NGX_OK;
    }

    sh = ngx_slab_calloc(shpool, sizeof(ngx_http_darkroom_public_sh_t));
    if (sh == NULL) {
        return NGX_ERROR;
    }

    shpool->data = sh;

    /* a full zone is the query path, logged once per build, not by nginx */
    shpool->log_nomem = 0;

    ngx_rbtree_init(&sh->rbtree, &sh->sentinel,
                    ngx_str_rbtree_insert_value);

    return NGX_OK;
}


/* at configuration: an answer the zone may hold (once per source) */

ngx_int_t
ngx_http_darkroom_public_source(ngx_conf_t *cf,
    ngx_http_darkroom_public_source_t *source)
{
    ngx_uint_t                          i;
    ngx_http_darkroom_main_conf_t      *dmcf;
    ngx_http_darkroom_public_source_t **s;

    dmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_darkroom_module);

    s = dmcf->public_sources.elts;

    for (i = 0; i < dmcf->public_sources.nelts; i++) {
        if (s[i] == source) {
            return NGX_OK;
        }
    }

    if (dmcf->public_sources.nelts == NGX_HTTP_DARKROOM_PUBLIC_SOURCES) {
        return NGX_ERROR;
    }

    s = ngx_array_push(&dmcf->public_sources);
    if (s == NULL) {
        return NGX_ERROR;
    }

    *s = source;

    return NGX_OK;
}


/*
 * On the event loop: the entry of key, answered with its ETag (nginx's
 * not-modified filter turns a matching If-None-Match into a 304, the gzip
 * filter weakens the ETag of what it compresses); NGX_DECLINED: none.
 */

ngx_int_t
ngx_http_darkroom_public_send(ngx_http_request_t *r, ngx_str_t *key)
{
    u_char                            *p, *etag, *type;
    size_t                             len, etag_len;
    uint32_t                           hash;
    ngx_slab_pool_t                   *shpool;
    ngx_http_darkroom_public_sh_t     *sh;
    ngx_http_darkroom_main_conf_t     *dmcf;
    ngx_http_darkroom_public_entry_t  *e;

    dmcf = ngx_http_get_module_main_conf(r, ngx_http_darkroom_module);

    if (dmcf->public_cache == NULL) {
        return NGX_DECLINED;
    }

    shpool = (ngx_slab_pool_t *) dmcf->public_cache->zone->shm.addr;
    sh = shpool->data;
    hash = ngx_crc32_short(key->data, key->len);
    p = NULL;

    ngx_shmtx_lock(&shpool->mutex);

    e = (ngx_http_darkroom_public_entry_t *)
            ngx_str_rbtree_lookup(&sh->rbtree, key, hash);

    if (e) {
        p = ngx_pnalloc(r->pool, e->len + e->etag_len
                                 + NGX_HTTP_DARKROOM_PUBLIC_TYPE);
    }

    if (p) {
        etag = p;
        etag_len = e->etag_len;
        len = e->len;
        type = ngx_cpymem(etag, e->etag, etag_len);
        p = ngx_cpystrn(type, e->type, NGX_HTTP_DARKROOM_PUBLIC_TYPE) + 1;
        ngx_memcpy(p, e->key + e->sn.str.len, len);
    }

    ngx_shmtx_unlock(&shpool->mutex);

    if (p == NULL) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "darkroom public: no entry \"%V\"", key);
        return NGX_DECLINED;
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "darkroom public: answered from the zone, ETag %*s",
                   etag_len, etag);

    r->headers_out.etag = ngx_http_darkroom_header_out(r, "ETag", etag,
                                                       etag_len);
    if (r->headers_out.etag == NULL
        || ngx_http_darkroom_header_out(r, "Cache-Control",
                                        (u_char *) "no-cache", 8)
           == NULL)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_darkroom_send_body(r, NGX_HTTP_OK, (char *) type, p,
                                       len);
}


/*
 * Entries put on demand by a feature on the event loop (a gallery's
 * listing), under keys of its own: the sources' builds never touch them,
 * and only the configuration that put one reads it (the zone's generation
 * is kept as its version).  They may take half of the zone; one that does
 * not fit under that removes them all first, so that keys nobody asks for
 * any more do not stay.  The value is opaque: the feature keeps what it
 * needs to tell whether it is still good in it.
 */

ngx_int_t
ngx_http_darkroom_public_get(ngx_http_request_t *r, ngx_str_t *key,
    ngx_str_t *value)
{
    uint32_t                           hash;
    ngx_slab_pool_t                   *shpool;
    ngx_http_darkroom_public_sh_t     *sh;
    ngx_http_darkroom_public_conf_t   *pc;
    ngx_http_darkroom_main_conf_t     *dmcf;
    ngx_http_darkroom_public_entry_t  *e;

    dmcf = ngx_http_get_module_main_conf(r, ngx_http_darkroom_module);
    pc = dmcf->public_cache;

    if (pc == NULL) {
        return NGX_DECLINED;
    }

    shpool = (ngx_slab_pool_t *) pc->zone->shm.addr;
    sh = shpool->data;
    hash = ngx_crc32_short(key->data, key->len);
    value->data = NULL;

    ngx_shmtx_lock(&shpool->mutex);

    e = (ngx_http_darkroom_public_entry_t *)
            ngx_str_rbtree_lookup(&sh->rbtree, key, hash);

    if (e && e->state == NGX_HTTP_DARKROOM_PUBLIC_DEMAND
        && e->version == (int64_t) pc->generation)
    {
        value->data = ngx_pnalloc(r->pool, e->len);

        if (value->data) {
            value->len = e->len;
            ngx_memcpy(value->data, e->key + e->sn.str.len, e->len);
        }
    }

    ngx_shmtx_unlock(&shpool->mutex);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "darkroom public: \"%V\" on demand: %s", key,
                   value->data ? "found" : "none");

    return value->data ? NGX_OK : NGX_DECLINED;
}


ngx_int_t
ngx_http_darkroom_public_set(ngx_http_request_t *r, ngx_str_t *key,
    u_char *value, size_t len)
{
    size_t                             size;
    uint32_t                           hash;
    ngx_slab_pool_t                   *shpool;
    ngx_rbtree_node_t                 *node, *next, *sentinel;
    ngx_http_darkroom_public_sh_t     *sh;
    ngx_http_darkroom_public_conf_t   *pc;
    ngx_http_darkroom_main_conf_t     *dmcf;
    ngx_http_darkroom_public_entry_t  *e;

    dmcf = ngx_http_get_module_main_conf(r, ngx_http_darkroom_module);
    pc = dmcf->public_cache;

    if (pc == NULL || key->len > NGX_HTTP_DARKROOM_PUBLIC_KEY) {
        return NGX_DECLINED;
    }

    shpool = (ngx_slab_pool_t *) pc->zone->shm.addr;
    sh = shpool->data;
    hash = ngx_crc32_short(key->data, key->len);
    size = sizeof(ngx_http_darkroom_public_entry_t) + key->len + len;

    ngx_shmtx_lock(&shpool->mutex);

    e = (ngx_http_darkroom_public_entry_t *)
            ngx_str_rbtree_lookup(&sh->rbtree, key, hash);

    if (e && e->state != NGX_HTTP_DARKROOM_PUBLIC_DEMAND) {
        /* a source's key: not ours to replace */
        ngx_shmtx_unlock(&shpool->mutex);
        return NGX_DECLINED;
    }

    if (e) {
        ngx_rbtree_delete(&sh->rbtree, &e->sn.node);
        sh->demand -= sizeof(ngx_http_darkroom_public_entry_t)
                      + e->sn.str.len + e->len;
        ngx_slab_free_locked(shpool, e);
    }

    if (sh->demand + size > pc->zone->shm.size / 2) {
        sentinel = sh->rbtree.sentinel;
        node = (sh->rbtree.root == sentinel)
               ? NULL : ngx_rbtree_min(sh->rbtree.root, sentinel);

        while (node) {
            next = ngx_rbtree_next(&sh->rbtree, node);
            e = (ngx_http_darkroom_public_entry_t *) node;

            if (e->state == NGX_HTTP_DARKROOM_PUBLIC_DEMAND) {
                ngx_rbtree_delete(&sh->rbtree, node);
                ngx_slab_free_locked(shpool, e);
            }

            node = next;
        }

        sh->demand = 0;
    }

    e = (size <= pc->zone->shm.size / 2)
        ? ngx_slab_alloc_locked(shpool, size) : NULL;

    if (e) {
        e->sn.node.key = hash;
        e->sn.str.data = e->key;
        e->sn.str.len = key->len;
        e->state = NGX_HTTP_DARKROOM_PUBLIC_DEMAND;
        e->version = pc->generation;
        e->len = len;
        e->etag_len = 0;
        e->type[0] = '\0';
        ngx_memcpy(ngx_cpymem(e->key, key->data, key->len), value, len);

        ngx_rbtree_insert(&sh->rbtree, &e->sn.node);
        sh->demand += size;
    }

    ngx_shmtx_unlock(&shpool->mutex);

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "darkroom public: \"%V\" on demand, %uz bytes: %s",
                   key, len, e ? "stored" : "no room");

    return e ? NGX_OK : NGX_DECLINED;
}


/* in a build's thread: one entry (copied), its ETag the body's SHA-256 */

ngx_int_t
ngx_http_darkroom_public_put(ngx_http_darkroom_public_build_t *b,
    const char *key, const char *type, const char *body, size_t len)
{
    char                              hex[NGX_HTTP_DARKROOM_HASH_SIZE];
    size_t                            klen;
    ngx_http_darkroom_public_item_t  *it;

    klen = ngx_strlen(key);

    if (klen == 0 || klen > NGX_HTTP_DARKROOM_PUBLIC_KEY
        || ngx_strlen(type) >= NGX_HTTP_DARKROOM_PUBLIC_TYPE)
    {
        ngx_http_darkroom_error_set(b->err, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                    "internal_error", "A bad cache key.");
        return NGX_ERROR;
    }

    it = malloc(sizeof(ngx_http_darkroom_public_item_t) + klen + len);

    if (it == NULL
        || ngx_http_darkroom_sha256_hex((u_char *) body, len, hex) != NGX_OK)
    {
        free(it);
        ngx_http_darkroom_error_set(b->err, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                    "internal_error", "Out of memory.");
        return NGX_ERROR;
    }

    it->key_len = klen;
    it->len = len;
    ngx_cpystrn((u_char *) it->type, (u_char *) type, sizeof(it->type));

    /* 128 bits of the hash are plenty for an entity tag */
    it->etag[0] = '"';
    ngx_memcpy(it->etag + 1, hex, 32);
    it->etag[33] = '"';

    ngx_memcpy(ngx_cpymem(it->data, key, klen), body, len);

    it->next = b->items;
    b->items = it;

    return NGX_OK;
}


static void
ngx_http_darkroom_public_free(ngx_http_darkroom_public_build_t *b)
{
    ngx_http_darkroom_public_item_t  *it, *next;

    for (it = b->items; it; it = next) {
        next = it->next;
        free(it);
    }

    b->items = NULL;
}


/* in each worker: the check timer and one builder per source */

ngx_int_t
ngx_http_darkroom_public_init_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                           i;
    ngx_slab_pool_t                     *shpool;
    ngx_http_darkroom_main_conf_t       *dmcf;
    ngx_http_darkroom_public_worker_t   *w;
    ngx_http_darkroom_public_source_t  **src;
    ngx_http_darkroom_public_builder_t  *bd;

    dmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_darkroom_module);

    if ((ngx_process != NGX_PROCESS_WORKER
         && ngx_process != NGX_PROCESS_SINGLE)
        || dmcf == NULL || dmcf->public_cache == NULL
        || dmcf->conninfo.data == NULL || dmcf->public_sources.nelts == 0)
    {
        return NGX_OK;
    }

    w = ngx_pcalloc(cycle->pool, sizeof(ngx_http_darkroom_public_worker_t));
    if (w == NULL) {
        return NGX_ERROR;
    }

    shpool = (ngx_slab_pool_t *) dmcf->public_cache->zone->shm.addr;

    w->dmcf = dmcf;
    w->shpool = shpool;
    w->sh = shpool->data;
    w->nbuilders = dmcf->public_sources.nelts;
    w->builders = ngx_pcalloc(cycle->pool, w->nbuilders
                              * sizeof(ngx_http_darkroom_public_builder_t));
    w->task = ngx_thread_task_alloc(cycle->pool, 0);

    if (w->builders == NULL || w->task == NULL) {
        return NGX_ERROR;
    }

    w->task->ctx = w;
    w->task->handler = ngx_http_darkroom_public_check_thread;
    w->task->event.data = w;
    w->task->event.handler = ngx_http_darkroom_public_checked;

    src = dmcf->public_sources.elts;

    ngx_shmtx_lock(&shpool->mutex);

    w->generation = w->sh->generation;

    for (i = 0; i < w->nbuilders; i++) {
        bd = &w->builders[i];
        bd->source = src[i];
        bd->state = ngx_http_darkroom_public_state(w, src[i]->name);
        bd->task = ngx_thread_task_alloc(cycle->pool, 0);

        if (bd->state == (ngx_uint_t) NGX_ERROR || bd->task == NULL) {
            ngx_shmtx_unlock(&shpool->mutex);
            ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                          "darkroom public cache: no room for \"%s\"",
                          src[i]->name);
            return NGX_ERROR;
        }

        bd->task->ctx = bd;
        bd->task->handler = ngx_http_darkroom_public_build_thread;
        bd->task->event.data = bd;
        bd->task->event.handler = ngx_http_darkroom_public_built;
    }

    ngx_shmtx_unlock(&shpool->mutex);

    w->timer.handler = ngx_http_darkroom_public_tick;
    w->timer.data = w;
    w->timer.log = cycle->log;
    w->timer.cancelable = 1;

    ngx_http_darkroom_public_worker = w;

    ngx_add_timer(&w->timer, 1);

    return NGX_OK;
}


/* under the mutex: the index of a source's state, made if new */

static ngx_int_t
ngx_http_darkroom_public_state(ngx_http_darkroom_public_worker_t *w,
    const char *name)
{
    ngx_uint_t                         i;
    ngx_http_darkroom_public_sh_t     *sh;
    ngx_http_darkroom_public_state_t  *st;

    sh = w->sh;

    if (ngx_strlen(name) >= NGX_HTTP_DARKROOM_PUBLIC_NAME) {
        return NGX_ERROR;
    }

    for (i = 0; i < sh->nstates; i++) {
        if (ngx_strcmp(sh->states[i].name, name) == 0) {
            return i;
        }
    }

    if (sh->nstates == NGX_HTTP_DARKROOM_PUBLIC_SOURCES) {
        return NGX_ERROR;
    }

    st = &sh->states[sh->nstates];
    ngx_cpystrn((u_char *) st->name, (u_char *) name, sizeof(st->name));
    st->version = -1;
    st->building = 0;
    st->failing = 0;

    return sh->nstates++;
}


/* how long a check or build may be out before another worker takes over */

static uint64_t
ngx_http_darkroom_public_stale(ngx_http_darkroom_public_worker_t *w)
{
    return 2 * w->dmcf->db_timeout + 1000;
}


static void
ngx_http_darkroom_public_tick(ngx_event_t *ev)
{
    uint64_t                            now;
    ngx_uint_t                          post;
    ngx_http_darkroom_public_sh_t      *sh;
    ngx_http_darkroom_public_worker_t  *w = ev->data;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    ngx_add_timer(ev, w->dmcf->public_cache->interval);

    if (w->busy) {
        return;
    }

    sh = w->sh;
    now = ngx_http_darkroom_monotonic_ms();
    post = 0;

    ngx_shmtx_lock(&w->shpool->mutex);

    if (w->generation == sh->generation
        && now - sh->checked >= w->dmcf->public_cache->interval
        && (sh->checking == 0
            || now - sh->checking > ngx_http_darkroom_public_stale(w)))
    {
        sh->checked = now;
        sh->checking = now;
        post = 1;
    }

    ngx_shmtx_unlock(&w->shpool->mutex);

    if (!post) {
        return;
    }

    w->db.conninfo = (const char *) w->dmcf->conninfo.data;
    w->db.timeout = w->dmcf->db_timeout;
    w->db.deadline = 0;
    ngx_memzero(&w->err, sizeof(ngx_http_darkroom_error_t));

    if (ngx_thread_task_post(w->dmcf->pool, w->task) != NGX_OK) {
        ngx_shmtx_lock(&w->shpool->mutex);
        sh->checking = 0;
        ngx_shmtx_unlock(&w->shpool->mutex);
        return;
    }

    w->busy = 1;
    ngx_http_darkroom_hold(ev->log);

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, ev->log, 0,
                   "darkroom public: version check posted");
}


/* in a thread: the version of each source, -1 for one without a row */

static void
ngx_http_darkroom_public_check_thread(void *data, ngx_log_t *log)
{
    ngx_http_darkroom_public_worker_t  *w = data;

    int                                 row, n, cname, cversion;
    PGresult                           *res;
    ngx_uint_t                          i;

    for (i = 0; i < w->nbuilders; i++) {
        w->seen[i] = -1;
    }

    res = ngx_http_darkroom_db_exec(&w->db,
                                    "SELECT name, version FROM public_versions",
                                    0, NULL, &w->err);
    if (res == NULL) {
        return;
    }

    n = PQntuples(res);
    cname = ngx_http_darkroom_db_col(res, "name");
    cversion = ngx_http_darkroom_db_col(res, "version");

    for (row = 0; cname >= 0 && cversion >= 0 && row < n; row++) {
        for (i = 0; i < w->nbuilders; i++) {
            if (ngx_strcmp(PQgetvalue(res, row, cname),
                           w->builders[i].source->name)
                == 0)
            {
                w->seen[i] = strtoll(PQgetvalue(res, row, cversion), NULL,
                                     10);
            }
        }
    }

    PQclear(res);
}


/*
 * Whether a check or a build starts or stops failing: the flag is in the
 * zone, so that whichever worker sees the change logs it, once.
 */

static ngx_uint_t
ngx_http_darkroom_public_failing(ngx_http_darkroom_public_worker_t *w,
    ngx_uint_t *flag, ngx_uint_t failing)
{
    ngx_uint_t  changed;

    ngx_shmtx_lock(&w->shpool->mutex);
    changed = (*flag != failing);
    *flag = failing;
    ngx_shmtx_unlock(&w->shpool->mutex);

    return changed;
}


static void
ngx_http_darkroom_public_checked(ngx_event_t *ev)
{
    uint64_t                             now;
    ngx_uint_t                           i, current;
    ngx_uint_t                           post[
                                         NGX_HTTP_DARKROOM_PUBLIC_SOURCES];
    ngx_http_darkroom_public_state_t    *st;
    ngx_http_darkroom_public_worker_t   *w = ev->data;
    ngx_http_darkroom_public_builder_t  *bd;

    w->busy = 0;
    ngx_http_darkroom_release();

    if (w->err.status) {
        if (ngx_http_darkroom_public_failing(w, &w->sh->check_failing, 1)) {
            ngx_log_error(NGX_LOG_ERR, w->timer.log, 0,
                          "darkroom public cache: version check failed, "
                          "the last entries are served: %s",
                          w->err.detail[0] ? w->err.detail : w->err.message);
        }

    } else if (ngx_http_darkroom_public_failing(w, &w->sh->check_failing, 0))
    {
        ngx_log_error(NGX_LOG_NOTICE, w->timer.log, 0,
                      "darkroom public cache: version check works again");
    }

    now = ngx_http_darkroom_monotonic_ms();

    ngx_shmtx_lock(&w->shpool->mutex);

    /* after a reload, the new workers check and build */
    current = (w->generation == w->sh->generation);

    if (current) {
        w->sh->checking = 0;
    }

    for (i = 0; i < w->nbuilders; i++) {
        bd = &w->builders[i];
        st = &w->sh->states[bd->state];
        post[i] = 0;

        if (!current || w->err.status || bd->busy || w->seen[i] < 0
            || st->version >= w->seen[i]
            || (st->building
                && now - st->building <= ngx_http_darkroom_public_stale(w)))
        {
            continue;
        }

        st->building = now;
        post[i] = 1;
    }

    ngx_shmtx_unlock(&w->shpool->mutex);

    for (i = 0; i < w->nbuilders; i++) {
        if (post[i]) {
            ngx_http_darkroom_public_build_post(w, &w->builders[i]);
        }
    }
}


static void
ngx_http_darkroom_public_build_post(ngx_http_darkroom_public_worker_t *w,
    ngx_http_darkroom_public_builder_t *bd)
{
    bd->db.conninfo = (const char *) w->dmcf->conninfo.data;
    bd->db.timeout = w->dmcf->db_timeout;
    bd->db.deadline = 0;
    ngx_memzero(&bd->err, sizeof(ngx_http_darkroom_error_t));

    bd->b.db = &bd->db;
    bd->b.err = &bd->err;
    bd->b.conf = w->dmcf;
    bd->b.items = NULL;
    bd->version = -1;

    if (ngx_thread_task_post(w->dmcf->pool, bd->task) != NGX_OK) {
        ngx_shmtx_lock(&w->shpool->mutex);
        w->sh->states[bd->state].building = 0;
        ngx_shmtx_unlock(&w->shpool->mutex);
        return;
    }

    bd->busy = 1;
    ngx_http_darkroom_hold(w->timer.log);

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, w->timer.log, 0,
                   "darkroom public: build of \"%s\" posted",
                   bd->source->name);
}


static void
ngx_http_darkroom_public_build_thread(void *data, ngx_log_t *log)
{
    ngx_http_darkroom_public_builder_t  *bd = data;

    if (ngx_http_darkroom_db_tx(&bd->db, ngx_http_darkroom_public_build_tx,
                                bd, &bd->err)
        != NGX_OK)
    {
        if (bd->err.status == 0) {
            ngx_http_darkroom_error_set(&bd->err,
                                        NGX_HTTP_INTERNAL_SERVER_ERROR,
                                        "internal_error",
                                        "The build failed.");
        }

        ngx_http_darkroom_public_free(&bd->b);
    }
}


/* one snapshot: the version, then what the source makes of the data */

static ngx_int_t
ngx_http_darkroom_public_build_tx(ngx_http_darkroom_db_t *db, void *data,
    ngx_http_darkroom_error_t *err)
{
    ngx_http_darkroom_public_builder_t  *bd = data;

    const char                          *v, *params[1];
    PGresult                            *res;

    if (ngx_http_darkroom_db_command(db, "SET TRANSACTION ISOLATION LEVEL "
                                     "REPEATABLE READ, READ ONLY", 0, NULL,
                                     err)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    params[0] = bd->source->name;

    res = ngx_http_darkroom_db_exec(db, "SELECT version FROM public_versions"
                                    " WHERE name = $1", 1, params, err);
    if (res == NULL) {
        return NGX_ERROR;
    }

    v = ngx_http_darkroom_db_field(res, 0, "version");
    bd->version = v ? strtoll(v, NULL, 10) : -1;
    PQclear(res);

    if (bd->version < 0) {
        ngx_http_darkroom_error_set(err, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                    "internal_error", "No version row.");
        return NGX_ERROR;
    }

    return bd->source->build(&bd->b);
}


static void
ngx_http_darkroom_public_built(ngx_event_t *ev)
{
    ngx_uint_t                           failed;
    ngx_http_darkroom_public_worker_t   *w;
    ngx_http_darkroom_public_builder_t  *bd = ev->data;

    w = ngx_http_darkroom_public_worker;

    bd->busy = 0;
    ngx_http_darkroom_release();

    if (bd->err.status) {
        /* tried again at each check: logged once until it works */
        if (ngx_http_darkroom_public_failing(w,
                &w->sh->states[bd->state].failing, 1))
        {
            ngx_log_error(NGX_LOG_ERR, w->timer.log, 0,
                          "darkroom public cache: build of \"%s\" failed, "
                          "the last entries are served: %s",
                          bd->source->name,
                          bd->err.detail[0] ? bd->err.detail
                                            : bd->err.message);
        }

        ngx_shmtx_lock(&w->shpool->mutex);
        w->sh->states[bd->state].building = 0;
        ngx_shmtx_unlock(&w->shpool->mutex);
        return;
    }

    if (ngx_http_darkroom_public_failing(w,
            &w->sh->states[bd->state].failing, 0))
    {
        ngx_log_error(NGX_LOG_NOTICE, w->timer.log, 0,
                      "darkroom public cache: build of \"%s\" works again",
                      bd->source->name);
    }

    failed = ngx_http_darkroom_public_publish(w, bd);

    ngx_http_darkroom_public_free(&bd->b);

    if (failed) {
        ngx_log_error(NGX_LOG_WARN, w->timer.log, 0,
                      "darkroom public cache: zone \"%V\" cannot hold %ui "
                      "entr%s of \"%s\", answered by queries instead",
                      &w->dmcf->public_cache->zone->shm.name, failed,
                      failed == 1 ? "y" : "ies", bd->source->name);
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, w->timer.log, 0,
                   "darkroom public: \"%s\" published at version %L",
                   bd->source->name, bd->version);
}


/*
 * Under the mutex: the build's entries replace the source's, those it did
 * not make are removed.  Returns how many the zone could not hold.
 */

static ngx_uint_t
ngx_http_darkroom_public_publish(ngx_http_darkroom_public_worker_t *w,
    ngx_http_darkroom_public_builder_t *bd)
{
    ngx_uint_t                         failed;
    ngx_rbtree_node_t                 *node, *next, *sentinel;
    ngx_http_darkroom_public_sh_t     *sh;
    ngx_http_darkroom_public_item_t   *it;
    ngx_http_darkroom_public_entry_t  *e;

    sh = w->sh;
    failed = 0;

    ngx_shmtx_lock(&w->shpool->mutex);

    /* a worker of the configuration before a reload: not its to publish */

    if (w->generation != sh->generation) {
        ngx_shmtx_unlock(&w->shpool->mutex);
        return 0;
    }

    for (it = bd->b.items; it; it = it->next) {
        if (ngx_http_darkroom_public_store(w, bd, it) != NGX_OK) {
            failed++;
        }
    }

    sentinel = sh->rbtree.sentinel;
    node = (sh->rbtree.root == sentinel)
           ? NULL : ngx_rbtree_min(sh->rbtree.root, sentinel);

    while (node) {
        next = ngx_rbtree_next(&sh->rbtree, node);
        e = (ngx_http_darkroom_public_entry_t *) node;

        if (e->state == bd->state && e->version != bd->version) {
            ngx_rbtree_delete(&sh->rbtree, node);
            ngx_slab_free_locked(w->shpool, e);
        }

        node = next;
    }

    sh->states[bd->state].version = bd->version;
    sh->states[bd->state].building = 0;

    ngx_shmtx_unlock(&w->shpool->mutex);

    return failed;
}


/* under the mutex: one entry in, the old one of its key out */

static ngx_int_t
ngx_http_darkroom_public_store(ngx_http_darkroom_public_worker_t *w,
    ngx_http_darkroom_public_builder_t *bd,
    ngx_http_darkroom_public_item_t *it)
{
    uint32_t                           hash;
    ngx_str_t                          key;
    ngx_http_darkroom_public_entry_t  *e, *old;

    key.data = it->data;
    key.len = it->key_len;
    hash = ngx_crc32_short(key.data, key.len);

    old = (ngx_http_darkroom_public_entry_t *)
              ngx_str_rbtree_lookup(&w->sh->rbtree, &key, hash);

    if (old) {
        /* never served once stale, whether the new one fits or not */
        ngx_rbtree_delete(&w->sh->rbtree, &old->sn.node);
        ngx_slab_free_locked(w->shpool, old);
    }

    e = ngx_slab_alloc_locked(w->shpool,
                              sizeof(ngx_http_darkroom_public_entry_t)
                              + it->key_len + it->len);
    if (e == NULL) {
        return NGX_ERROR;
    }

    e->sn.node.key = hash;
    e->sn.str.data = e->key;
    e->sn.str.len = it->key_len;
    e->state = bd->state;
    e->version = bd->version;
    e->len = it->len;
    e->etag_len = NGX_HTTP_DARKROOM_PUBLIC_ETAG;
    ngx_memcpy(e->etag, it->etag, NGX_HTTP_DARKROOM_PUBLIC_ETAG);
    ngx_cpystrn(e->type, (u_char *) it->type, sizeof(e->type));
    ngx_memcpy(e->key, it->data, it->key_len + it->len);

    ngx_rbtree_insert(&w->sh->rbtree, &e->sn.node);

    return NGX_OK;
}
