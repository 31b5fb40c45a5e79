
/*
 * darkroom: private client galleries, the module.
 *
 * Directives and configuration, and the shared memory zone every worker
 * reads on each signed download: the revocation list (galleries whose links
 * are not all valid any more) and a ring of download records.  A timer in
 * each worker posts one thread task at a time that writes the pending
 * records in one statement and reloads the list; the zone remembers when it
 * was last reloaded, so the workers together query about once per interval,
 * never once per download.  Installs the core's link hooks for the media
 * module.
 *
 * The bottom of the gallery: the HTTP APIs (ngx_http_darkroom_gallery.c,
 * ngx_http_darkroom_gallery_admin.c) use it; it reaches them only through
 * the content handlers its directives install.
 */


#include "ngx_http_darkroom_gallery.h"


#define NGX_HTTP_DARKROOM_GALLERY_PATH_MAX   200
#define NGX_HTTP_DARKROOM_GALLERY_STALE      30000   /* ms: a lost refresh */

/* the galleries whose listing versions are polled, at most (one slot each) */
#define NGX_HTTP_DARKROOM_GALLERY_LISTINGS   1024

/* wrong answers from all addresses that lock a gallery, by default */
#define NGX_HTTP_DARKROOM_GALLERY_LOCK_GALLERY  50


typedef struct {
    uint64_t                           id;
    uint32_t                           generation;
    uint32_t                           revoked;
} ngx_http_darkroom_gallery_rev_t;


/* a gallery whose listing is in darkroom_public_cache: its version */

typedef struct {
    uint64_t                           id;        /* 0: a free slot */
    int64_t                            version;   /* the highest seen */
} ngx_http_darkroom_gallery_lv_t;


typedef struct {
    time_t                             at;
    uint64_t                           gallery;
    uint32_t                           generation;
    uint32_t                           status;
    uint64_t                           visitor;  /* 0: none */
    off_t                              bytes;
    u_char                             client[NGX_SOCKADDR_STRLEN];
    u_char                             path[NGX_HTTP_DARKROOM_GALLERY_PATH_MAX];
    uint16_t                           client_len;
    uint16_t                           path_len;
} ngx_http_darkroom_gallery_rec_t;


typedef struct {
    uint64_t                           refreshed;     /* monotonic ms */
    uint64_t                           refreshing;    /* since, 0: none */
    ngx_uint_t                         loaded;
    ngx_uint_t                         version;
    ngx_uint_t                         nrev;
    ngx_uint_t                         rev_cap;
    ngx_uint_t                         head;          /* ring: oldest */
    ngx_uint_t                         nrec;
    ngx_uint_t                         rec_cap;
    ngx_uint_t                         dropped;
    ngx_http_darkroom_gallery_rev_t   *rev;
    ngx_http_darkroom_gallery_rec_t   *rec;
    ngx_http_darkroom_gallery_lv_t    *lv;   /* NULL: no listing cache */
    ngx_uint_t                         lv_cap;
} ngx_http_darkroom_gallery_sh_t;


typedef struct {
    ngx_http_darkroom_gallery_sh_t    *sh;
    ngx_slab_pool_t                   *shpool;
} ngx_http_darkroom_gallery_zone_t;


/* the per-worker refresher */

typedef struct {
    ngx_event_t                        timer;
    ngx_thread_task_t                 *task;
    ngx_http_darkroom_main_conf_t     *dmcf;
    ngx_http_darkroom_gallery_main_conf_t *gmcf;
    ngx_http_darkroom_gallery_zone_t  *zone;
    ngx_http_darkroom_db_t             db;

    /* records taken from the ring, kept until written */
    ngx_http_darkroom_gallery_rec_t   *rec;
    ngx_uint_t                         nrec;

    /* thread results */
    unsigned                           refresh:1;
    unsigned                           busy:1;
    ngx_uint_t                         written;
    ngx_http_darkroom_gallery_rev_t   *rev;        /* malloc'd */
    ngx_uint_t                         nrev;
    ngx_int_t                          rev_ok;
    ngx_http_darkroom_error_t          err;

    /* the listings held: their ids in, their versions out (in place) */
    ngx_http_darkroom_gallery_lv_t    *lv;
    ngx_uint_t                         nlv;
    ngx_int_t                          lv_ok;
} ngx_http_darkroom_gallery_worker_t;


/* the columns of gallery_revocations() read, by name */

enum {
    NGX_HTTP_DARKROOM_GALLERY_REV_ID = 0,
    NGX_HTTP_DARKROOM_GALLERY_REV_GEN,
    NGX_HTTP_DARKROOM_GALLERY_REV_REVOKED,
    NGX_HTTP_DARKROOM_GALLERY_REV_N
};

static const char  *const ngx_http_darkroom_gallery_rev_cols[] = {
    "id", "generation", "revoked"
};


static ngx_int_t ngx_http_darkroom_gallery_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_http_darkroom_gallery_rev_t *ngx_http_darkroom_gallery_rev_find(
    ngx_http_darkroom_gallery_sh_t *sh, uint64_t id);
static void ngx_http_darkroom_gallery_listing_seen(
    ngx_http_darkroom_gallery_sh_t *sh, ngx_http_darkroom_gallery_lv_t *seen,
    ngx_uint_t n);
static ngx_int_t ngx_http_darkroom_gallery_check(ngx_http_request_t *r,
    ngx_str_t *g);
static void ngx_http_darkroom_gallery_tick(ngx_event_t *ev);
static void ngx_http_darkroom_gallery_thread(void *data, ngx_log_t *log);
static void ngx_http_darkroom_gallery_flush(
    ngx_http_darkroom_gallery_worker_t *w);
static void ngx_http_darkroom_gallery_reload(
    ngx_http_darkroom_gallery_worker_t *w);
static void ngx_http_darkroom_gallery_listings(
    ngx_http_darkroom_gallery_worker_t *w);
static void ngx_http_darkroom_gallery_refreshed(ngx_event_t *ev);
static char *ngx_http_darkroom_gallery_zone(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_darkroom_gallery(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_darkroom_gallery_admin(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_darkroom_gallery_prefix(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_darkroom_gallery_lockout(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_darkroom_gallery_ttl(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static void ngx_http_darkroom_gallery_merge_ttl(ngx_conf_t *cf,
    ngx_http_darkroom_gallery_loc_conf_t *conf,
    ngx_http_darkroom_gallery_loc_conf_t *prev);
static ngx_int_t ngx_http_darkroom_gallery_longest(ngx_conf_t *cf,
    ngx_http_darkroom_gallery_loc_conf_t *conf, const char *name,
    time_t ttl, u_char *file, ngx_uint_t line);
static void *ngx_http_darkroom_gallery_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_darkroom_gallery_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_darkroom_gallery_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);
static ngx_int_t ngx_http_darkroom_gallery_postconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_darkroom_gallery_init_process(ngx_cycle_t *cycle);


static ngx_conf_num_bounds_t  ngx_http_darkroom_gallery_zip_bounds = {
    ngx_conf_check_num_bounds, 1, 1000000
};


static ngx_command_t  ngx_http_darkroom_gallery_commands[] = {

    { ngx_string("darkroom_gallery_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_darkroom_gallery_zone,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("darkroom_gallery"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_darkroom_gallery,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("darkroom_gallery_admin"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_darkroom_gallery_admin,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("darkroom_gallery_media"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_darkroom_gallery_prefix,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_darkroom_gallery_loc_conf_t, media),
      NULL },

    { ngx_string("darkroom_gallery_root"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_darkroom_gallery_prefix,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_darkroom_gallery_loc_conf_t, root),
      NULL },

    { ngx_string("darkroom_gallery_cookie_key_file"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_darkroom_secret_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_darkroom_gallery_loc_conf_t, cookie_keys),
      NULL },

    { ngx_string("darkroom_gallery_proof_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_darkroom_gallery_ttl,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_darkroom_gallery_loc_conf_t, proof_ttl),
      NULL },

    { ngx_string("darkroom_gallery_download_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_darkroom_gallery_ttl,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_darkroom_gallery_loc_conf_t, download_ttl),
      NULL },

    { ngx_string("darkroom_gallery_cookie_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_darkroom_gallery_loc_conf_t, cookie_ttl),
      NULL },

    { ngx_string("darkroom_gallery_cancel_url"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_darkroom_gallery_loc_conf_t, cancel_url),
      NULL },

    { ngx_string("darkroom_gallery_lockout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF
                        |NGX_CONF_TAKE3|NGX_CONF_TAKE4,
      ngx_http_darkroom_gallery_lockout,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("darkroom_gallery_zip_max"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_darkroom_gallery_loc_conf_t, zip_max),
      &ngx_http_darkroom_gallery_zip_bounds },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_darkroom_gallery_module_ctx = {
    NULL,                                   /* preconfiguration */
    ngx_http_darkroom_gallery_postconfiguration, /* postconfiguration */

    ngx_http_darkroom_gallery_create_main_conf, /* create main configuration */
    NULL,                                   /* init main configuration */

    NULL,                                   /* create server configuration */
    NULL,                                   /* merge server configuration */

    ngx_http_darkroom_gallery_create_loc_conf, /* create location config */
    ngx_http_darkroom_gallery_merge_loc_conf /* merge location configuration */
};


ngx_module_t  ngx_http_darkroom_gallery_module = {
    NGX_MODULE_V1,
    &ngx_http_darkroom_gallery_module_ctx,  /* module context */
    ngx_http_darkroom_gallery_commands,     /* module directives */
    NGX_HTTP_MODULE,                        /* module type */
    NULL,                                   /* init master */
    NULL,                                   /* init module */
    ngx_http_darkroom_gallery_init_process, /* init process */
    NULL,                                   /* init thread */
    NULL,                                   /* exit thread */
    NULL,                                   /* exit process */
    NULL,                                   /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_http_darkroom_gallery_worker_t  ngx_http_darkroom_gallery_worker;


/* shared memory */

static ngx_int_t
ngx_http_darkroom_gallery_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_darkroom_gallery_zone_t *ozone = data;

    size_t                             size;
    ngx_http_darkroom_gallery_sh_t    *sh;
    ngx_http_darkroom_gallery_zone_t  *zone;

    zone = shm_zone->data;

    if (ozone) {
        /* a reload with the same size: keep the list and the records */
        zone->sh = ozone->sh;
        zone->shpool = ozone->shpool;
        return NGX_OK;
    }

    zone->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        zone->sh = zone->shpool->data;
        return NGX_OK;
    }

    sh = ngx_slab_alloc(zone->shpool, sizeof(ngx_http_darkroom_gallery_sh_t));
    if (sh == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(sh, sizeof(ngx_http_darkroom_gallery_sh_t));

    zone->sh = sh;
    zone->shpool->data = sh;

    /* a quarter of the zone for download records, the rest for the list */

    size = shm_zone->shm.size;

    sh->rec_cap = (size / 4) / sizeof(ngx_http_darkroom_gallery_rec_t);
    sh->rec = ngx_slab_alloc(zone->shpool,
                             sh->rec_cap
                             * sizeof(ngx_http_darkroom_gallery_rec_t));
    if (sh->rec == NULL) {
        return NGX_ERROR;
    }

    sh->rev_cap = (size / 2) / sizeof(ngx_http_darkroom_gallery_rev_t);
    sh->rev = ngx_slab_alloc(zone->shpool,
                             sh->rev_cap
                             * sizeof(ngx_http_darkroom_gallery_rev_t));
    if (sh->rev == NULL) {
        return NGX_ERROR;
    }

    /* a 32nd for the listings' versions; none in the smallest zones */

    sh->lv_cap = ngx_min(NGX_HTTP_DARKROOM_GALLERY_LISTINGS,
                         (size / 32) / sizeof(ngx_http_darkroom_gallery_lv_t));
    sh->lv = ngx_slab_calloc(zone->shpool,
                             sh->lv_cap
                             * sizeof(ngx_http_darkroom_gallery_lv_t));
    if (sh->lv == NULL) {
        sh->lv_cap = 0;
    }

    ngx_sprintf(zone->shpool->log_ctx, " in darkroom_gallery_zone%Z");

    return NGX_OK;
}


/* under the mutex: gallery id's row of the revocation list, or NULL */

static ngx_http_darkroom_gallery_rev_t *
ngx_http_darkroom_gallery_rev_find(ngx_http_darkroom_gallery_sh_t *sh,
    uint64_t id)
{
    ngx_uint_t                        lo, hi, mid;
    ngx_http_darkroom_gallery_rev_t  *rev;

    lo = 0;
    hi = sh->nrev;
    rev = sh->rev;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;

        if (rev[mid].id < id) {
            lo = mid + 1;

        } else {
            hi = mid;
        }
    }

    return (lo < sh->nrev && rev[lo].id == id) ? &rev[lo] : NULL;
}


/*
 * The listing of gallery id, built at version for generation: may it be
 * served?  Only while the last poll saw that version, the revocation list
 * is loaded, and it neither has the gallery revoked or expired nor rotated
 * past the generation.  Anything else takes the query path, which answers
 * as it always has.
 */

ngx_int_t
ngx_http_darkroom_gallery_listing_fresh(ngx_http_request_t *r, uint64_t id,
    uint32_t generation, int64_t version)
{
    ngx_int_t                               ok;
    ngx_http_darkroom_gallery_sh_t         *sh;
    ngx_http_darkroom_gallery_lv_t         *lv;
    ngx_http_darkroom_gallery_rev_t        *rev;
    ngx_http_darkroom_gallery_zone_t       *zone;
    ngx_http_darkroom_gallery_main_conf_t  *gmcf;

    gmcf = ngx_http_get_module_main_conf(r, ngx_http_darkroom_gallery_module);

    if (gmcf->shm_zone == NULL || id == 0) {
        return 0;
    }

    zone = gmcf->shm_zone->data;
    sh = zone->sh;
    ok = 0;

    ngx_shmtx_lock(&zone->shpool->mutex);

    if (sh->loaded && sh->lv_cap) {
        lv = &sh->lv[id % sh->lv_cap];
        rev = ngx_http_darkroom_gallery_rev_find(sh, id);

        ok = (lv->id == id && lv->version == version
              && (rev == NULL
                  || (!rev->revoked && generation >= rev->generation)));
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);

    return ok;
}


/* a listing of gallery id built at version: its slot (the last one wins) */

void
ngx_http_darkroom_gallery_listing_built(ngx_http_request_t *r, uint64_t id,
    int64_t version)
{
    ngx_http_darkroom_gallery_sh_t         *sh;
    ngx_http_darkroom_gallery_lv_t         *lv;
    ngx_http_darkroom_gallery_zone_t       *zone;
    ngx_http_darkroom_gallery_main_conf_t  *gmcf;

    gmcf = ngx_http_get_module_main_conf(r, ngx_http_darkroom_gallery_module);

    if (gmcf->shm_zone == NULL || id == 0) {
        return;
    }

    zone = gmcf->shm_zone->data;
    sh = zone->sh;

    ngx_shmtx_lock(&zone->shpool->mutex);

    if (sh->lv_cap) {
        lv = &sh->lv[id % sh->lv_cap];

        if (lv->id != id) {
            lv->id = id;
            lv->version = version;

        } else if (version > lv->version) {
            lv->version = version;
        }
    }

    ngx_shmtx_unlock(&zone->shpool->mutex);
}


/*
 * Under the mutex: the versions a poll read.  They only grow, so a slot
 * keeps the highest seen: a build that read an older one than a poll
 * (or a poll older than a build) leaves its entry unserved, never served
 * past a change the other saw.
 */

static void
ngx_http_darkroom_gallery_listing_seen(ngx_http_darkroom_gallery_sh_t *sh,
    ngx_http_darkroom_gallery_lv_t *seen, ngx_uint_t n)
{
    ngx_uint_t                       i;
    ngx_http_darkroom_gallery_lv_t  *lv;

    for (i = 0; i < n && sh->lv_cap; i++) {
        lv = &sh->lv[seen[i].id % sh->lv_cap];

        if (lv->id == seen[i].id && seen[i].version > lv->version) {
            lv->version = seen[i].version;
        }
    }
}


/*
 * The core's link check hook, for the media module's access check of a link
 * carrying g=<id>.<gen>: NGX_OK it stands (or no zone is configured),
 * NGX_DECLINED the gallery is revoked or expired, NGX_ABORT the link's
 * generation was rotated out, NGX_ERROR g is not of that form, NGX_AGAIN
 * the list is not loaded yet.
 */

static ngx_int_t
ngx_http_darkroom_gallery_check(ngx_http_request_t *r, ngx_str_t *g)
{
    u_char                                 *p, *end, *dot;
    uint64_t                                id;
    ngx_int_t                               gen, rc;
    ngx_http_darkroom_gallery_sh_t         *sh;
    ngx_http_darkroom_gallery_rev_t        *rev;
    ngx_http_darkroom_gallery_zone_t       *zone;
    ngx_http_darkroom_gallery_main_conf_t  *gmcf;

    gmcf = ngx_http_get_module_main_conf(r, ngx_http_darkroom_gallery_module);

    if (gmcf->shm_zone == NULL) {
        return NGX_OK;
    }

    /* "<id>.<generation>", or "<id>.<generation>.<visitor>" (proofing) */

    end = g->data + g->len;
    dot = ngx_strlchr(g->data, end, '.');

    if (dot != NULL) {
        p = ngx_strlchr(dot + 1, end, '.');

        if (p != NULL) {
            if (ngx_atoof(p + 1, end - p - 1) <= 0) {
                return NGX_ERROR;
            }

            end = p;
        }
    }

    if (dot == NULL || dot == g->data || dot - g->data > 18
        || end - dot - 1 < 1 || end - dot - 1 > 9)
    {
        return NGX_ERROR;
    }

    id = 0;

    for (p = g->data; p < dot; p++) {
        if (*p < '0' || *p > '9') {
            return NGX_ERROR;
        }

        id = id * 10 + (*p - '0');
    }

    gen = ngx_atoi(dot + 1, end - dot - 1);
    if (gen == NGX_ERROR) {
        return NGX_ERROR;
    }

    zone = gmcf->shm_zone->data;
    sh = zone->sh;

    rc = NGX_OK;

    ngx_shmtx_lock(&zone->shpool->mutex);

    if (!sh->loaded) {
        rc = NGX_AGAIN;
        goto done;
    }

    rev = ngx_http_darkroom_gallery_rev_find(sh, id);

    if (rev) {
        if (rev->revoked) {
            rc = NGX_DECLINED;

        } else if ((uint32_t) gen < rev->generation) {
            rc = NGX_ABORT;
        }
    }

done:

    ngx_shmtx_unlock(&zone->shpool->mutex);

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "darkroom gallery: link of %V checked: %i", g, rc);

    return rc;
}


void
ngx_http_darkroom_gallery_log(ngx_http_request_t *r, ngx_str_t *g,
    ngx_str_t *path, ngx_uint_t status, off_t bytes)
{
    u_char                                 *dot, *vdot;
    ngx_uint_t                              i;
    ngx_http_darkroom_gallery_sh_t         *sh;
    ngx_http_darkroom_gallery_rec_t        *rec;
    ngx_http_darkroom_gallery_zone_t       *zone;
    ngx_http_darkroom_gallery_main_conf_t  *gmcf;

    gmcf = ngx_http_get_module_main_conf(r, ngx_http_darkroom_gallery_module);

    if (gmcf->shm_zone == NULL) {
        return;
    }

    dot = ngx_strlchr(g->data, g->data + g->len, '.');
    if (dot == NULL) {
        return;
    }

    zone = gmcf->shm_zone->data;
    sh = zone->sh;

    ngx_shmtx_lock(&zone->shpool->mutex);

    if (sh->nrec == sh->rec_cap) {
        sh->dropped++;
        ngx_shmtx_unlock(&zone->shpool->mutex);

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "darkroom gallery: download of %V not logged, "
                       "the ring is full", g);
        return;
    }

    i = (sh->head + sh->nrec) % sh->rec_cap;
    sh->nrec++;

    rec = &sh->rec[i];

    rec->at = ngx_time();
    rec->gallery = (uint64_t) ngx_atoof(g->data, dot - g->data);
    vdot = ngx_strlchr(dot + 1, g->data + g->len, '.');
    rec->generation = (uint32_t) ngx_atoi(dot + 1,
                                          (vdot ? vdot : g->data + g->len)
                                          - dot - 1);
    rec->visitor = vdot ? (uint64_t) ngx_atoof(vdot + 1,
                                               g->data + g->len - vdot - 1)
                        : 0;
    rec->status = status;
    rec->bytes = bytes;
    rec->client_len = ngx_min(r->connection->addr_text.len,
                              NGX_SOCKADDR_STRLEN);
    ngx_memcpy(rec->client, r->connection->addr_text.data, rec->client_len);
    rec->path_len = ngx_min(path->len, NGX_HTTP_DARKROOM_GALLERY_PATH_MAX);
    ngx_memcpy(rec->path, path->data, rec->path_len);

    ngx_shmtx_unlock(&zone->shpool->mutex);

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "darkroom gallery: download of %V logged: \"%V\" %ui, "
                   "%O bytes", g, path, status, bytes);
}


/* the per-worker refresher */

static ngx_int_t
ngx_http_darkroom_gallery_init_process(ngx_cycle_t *cycle)
{
    ngx_http_darkroom_main_conf_t          *dmcf;
    ngx_http_darkroom_gallery_worker_t     *w;
    ngx_http_darkroom_gallery_main_conf_t  *gmcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    gmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                           ngx_http_darkroom_gallery_module);
    dmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_darkroom_module);

    if (gmcf == NULL || gmcf->shm_zone == NULL || dmcf->pool == NULL) {
        return NGX_OK;
    }

    w = &ngx_http_darkroom_gallery_worker;
    ngx_memzero(w, sizeof(ngx_http_darkroom_gallery_worker_t));

    w->dmcf = dmcf;
    w->gmcf = gmcf;
    w->zone = gmcf->shm_zone->data;

    w->rec = ngx_palloc(cycle->pool,
                        gmcf->batch * sizeof(ngx_http_darkroom_gallery_rec_t));
    if (w->rec == NULL) {
        return NGX_ERROR;
    }

    w->lv = ngx_palloc(cycle->pool, NGX_HTTP_DARKROOM_GALLERY_LISTINGS
                                    * sizeof(ngx_http_darkroom_gallery_lv_t));
    w->task = ngx_thread_task_alloc(cycle->pool, 0);

    if (w->lv == NULL || w->task == NULL) {
        return NGX_ERROR;
    }

    w->task->ctx = w;
    w->task->handler = ngx_http_darkroom_gallery_thread;
    w->task->event.data = w;
    w->task->event.handler = ngx_http_darkroom_gallery_refreshed;

    w->timer.handler = ngx_http_darkroom_gallery_tick;
    w->timer.data = w;
    w->timer.log = cycle->log;
    w->timer.cancelable = 1;

    ngx_add_timer(&w->timer, 1);

    return NGX_OK;
}


static void
ngx_http_darkroom_gallery_tick(ngx_event_t *ev)
{
    uint64_t                             now;
    ngx_uint_t                           n, i;
    ngx_http_darkroom_gallery_sh_t      *sh;
    ngx_http_darkroom_gallery_worker_t  *w;

    w = ev->data;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    if (w->busy) {
        ngx_add_timer(&w->timer, w->gmcf->interval);
        return;
    }

    sh = w->zone->sh;
    now = ngx_http_darkroom_monotonic_ms();

    ngx_shmtx_lock(&w->zone->shpool->mutex);

    w->refresh = 0;
    w->nlv = 0;

    if ((sh->refreshing == 0
         || now - sh->refreshing > NGX_HTTP_DARKROOM_GALLERY_STALE)
        && (!sh->loaded || now - sh->refreshed >= w->gmcf->interval))
    {
        w->refresh = 1;
        sh->refreshing = now ? now : 1;

        for (i = 0; i < sh->lv_cap; i++) {
            if (sh->lv[i].id) {
                w->lv[w->nlv++] = sh->lv[i];
            }
        }
    }

    /* records: only when the last batch was written */

    if (w->nrec == 0 && sh->nrec) {
        n = ngx_min(sh->nrec, w->gmcf->batch);

        for (i = 0; i < n; i++) {
            w->rec[i] = sh->rec[(sh->head + i) % sh->rec_cap];
        }

        sh->head = (sh->head + n) % sh->rec_cap;
        sh->nrec -= n;
        w->nrec = n;

        if (sh->dropped) {
            ngx_log_error(NGX_LOG_WARN, ev->log, 0,
                          "darkroom gallery: %ui download records dropped, "
                          "darkroom_gallery_zone is full", sh->dropped);
            sh->dropped = 0;
        }
    }

    ngx_shmtx_unlock(&w->zone->shpool->mutex);

    if (!w->refresh && w->nrec == 0) {
        ngx_add_timer(&w->timer, ngx_max(w->gmcf->interval / 4, 50));
        return;
    }

    w->db.conninfo = (const char *) w->dmcf->conninfo.data;
    w->db.timeout = w->dmcf->db_timeout;
    w->db.deadline = now + w->dmcf->db_timeout;
    w->written = 0;
    w->rev = NULL;
    w->nrev = 0;
    w->rev_ok = 0;
    w->lv_ok = 0;
    ngx_memzero(&w->err, sizeof(ngx_http_darkroom_error_t));

    if (ngx_thread_task_post(w->dmcf->pool, w->task) != NGX_OK) {
        if (w->refresh) {
            ngx_shmtx_lock(&w->zone->shpool->mutex);
            sh->refreshing = 0;
            ngx_shmtx_unlock(&w->zone->shpool->mutex);
        }

        ngx_add_timer(&w->timer, w->gmcf->interval);
        return;
    }

    w->busy = 1;
}


/* in a pool thread: no pools, no logs */

static void
ngx_http_darkroom_gallery_thread(void *data, ngx_log_t *log)
{
    ngx_http_darkroom_gallery_worker_t *w = data;

    if (w->nrec) {
        ngx_http_darkroom_gallery_flush(w);
    }

    if (w->refresh) {
        ngx_http_darkroom_gallery_reload(w);
    }

    if (w->refresh && w->nlv) {
        ngx_http_darkroom_gallery_listings(w);
    }
}


/* the records taken from the ring, in one statement */

static void
ngx_http_darkroom_gallery_flush(ngx_http_darkroom_gallery_worker_t *w)
{
    char                             *text, num[NGX_INT64_LEN + 1];
    cJSON                            *arr, *o;
    ngx_uint_t                        i;
    const char                       *params[1];
    ngx_http_darkroom_gallery_rec_t  *rec;

    arr = cJSON_CreateArray();

    for (i = 0; arr && i < w->nrec; i++) {
        rec = &w->rec[i];
        o = cJSON_CreateObject();
        if (o == NULL) {
            break;
        }

        cJSON_AddItemToArray(arr, o);

        snprintf(num, sizeof(num), "%llu",
                 (unsigned long long) rec->gallery);
        cJSON_AddRawToObject(o, "g", num);
        cJSON_AddNumberToObject(o, "gen", rec->generation);
        rec->path[ngx_min(rec->path_len,
                          NGX_HTTP_DARKROOM_GALLERY_PATH_MAX - 1)] = '\0';
        cJSON_AddStringToObject(o, "path", (char *) rec->path);
        rec->client[ngx_min(rec->client_len,
                            NGX_SOCKADDR_STRLEN - 1)] = '\0';
        cJSON_AddStringToObject(o, "client", (char *) rec->client);
        cJSON_AddNumberToObject(o, "status", rec->status);
        cJSON_AddNumberToObject(o, "bytes", (double) rec->bytes);
        cJSON_AddNumberToObject(o, "at", (double) rec->at);

        if (rec->visitor) {
            snprintf(num, sizeof(num), "%llu",
                     (unsigned long long) rec->visitor);
            cJSON_AddRawToObject(o, "v", num);
        }
    }

    text = arr ? cJSON_PrintUnformatted(arr) : NULL;
    cJSON_Delete(arr);

    if (text == NULL) {
        return;
    }

    params[0] = text;

    if (ngx_http_darkroom_db_command(&w->db,
            "SELECT gallery_downloads_log($1::jsonb)", 1, params, &w->err)
        == NGX_OK)
    {
        w->written = w->nrec;
    }

    free(text);
}


/* the revocation list, into w->rev (malloc'd) */

static void
ngx_http_darkroom_gallery_reload(ngx_http_darkroom_gallery_worker_t *w)
{
    PGresult    *res;
    ngx_uint_t   i, n;
    int          col[NGX_HTTP_DARKROOM_GALLERY_REV_N];

    res = ngx_http_darkroom_gallery_query(&w->db,
                        "SELECT id, generation, revoked "
                        "FROM gallery_revocations()", 0, NULL,
                        ngx_http_darkroom_gallery_rev_cols, col,
                        NGX_HTTP_DARKROOM_GALLERY_REV_N, &w->err);
    if (res == NULL) {
        return;
    }

    n = PQntuples(res);

    w->rev = malloc((n ? n : 1) * sizeof(ngx_http_darkroom_gallery_rev_t));

    if (w->rev) {
        for (i = 0; i < n; i++) {
            w->rev[i].id = strtoull(PQgetvalue(res, i,
                                     col[NGX_HTTP_DARKROOM_GALLERY_REV_ID]),
                                    NULL, 10);
            w->rev[i].generation = strtoul(PQgetvalue(res, i,
                                     col[NGX_HTTP_DARKROOM_GALLERY_REV_GEN]),
                                    NULL, 10);
            w->rev[i].revoked = PQgetvalue(res, i,
                                  col[NGX_HTTP_DARKROOM_GALLERY_REV_REVOKED])[0]
                                == 't';
        }

        w->nrev = n;
        w->rev_ok = 1;
    }

    PQclear(res);
}


/* the versions of the listings held, into w->lv in place */

static void
ngx_http_darkroom_gallery_listings(ngx_http_darkroom_gallery_worker_t *w)
{
    int          row, n, col[2];
    char        *ids, *p;
    uint64_t     id;
    PGresult    *res;
    ngx_uint_t   i;
    const char  *params[1];

    static const char  *const cols[] = { "id", "version" };

    ids = malloc(w->nlv * (NGX_INT64_LEN + 1) + 3);
    if (ids == NULL) {
        return;
    }

    p = ids;
    *p++ = '{';

    for (i = 0; i < w->nlv; i++) {
        p += sprintf(p, "%s%llu", i ? "," : "",
                     (unsigned long long) w->lv[i].id);
    }

    *p++ = '}';
    *p = '\0';

    params[0] = ids;

    res = ngx_http_darkroom_gallery_query(&w->db,
              "SELECT id, version FROM gallery_listing_versions($1)", 1,
              params, cols, col, 2, &w->err);
    free(ids);

    if (res == NULL) {
        return;
    }

    n = PQntuples(res);

    for (row = 0; row < n; row++) {
        id = strtoull(PQgetvalue(res, row, col[0]), NULL, 10);

        for (i = 0; i < w->nlv; i++) {
            if (w->lv[i].id == id) {
                w->lv[i].version = strtoll(PQgetvalue(res, row, col[1]),
                                           NULL, 10);
            }
        }
    }

    PQclear(res);

    w->lv_ok = 1;
}


static void
ngx_http_darkroom_gallery_refreshed(ngx_event_t *ev)
{
    ngx_msec_t                           next;
    ngx_http_darkroom_gallery_sh_t      *sh;
    ngx_http_darkroom_gallery_worker_t  *w;

    w = ev->data;
    sh = w->zone->sh;

    w->busy = 0;

    if (w->err.status) {
        ngx_log_error(NGX_LOG_ERR, w->timer.log, 0,
                      "darkroom gallery: refresh failed: %s %s",
                      w->err.message, w->err.detail);
    }

    if (w->written) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, w->timer.log, 0,
                       "darkroom gallery: %ui download records flushed",
                       w->written);
        w->nrec = 0;
    }

    if (w->refresh) {
        ngx_shmtx_lock(&w->zone->shpool->mutex);

        if (w->lv_ok) {
            ngx_http_darkroom_gallery_listing_seen(sh, w->lv, w->nlv);
        }

        if (w->rev_ok && w->nrev <= sh->rev_cap) {
            ngx_memcpy(sh->rev, w->rev,
                       w->nrev * sizeof(ngx_http_darkroom_gallery_rev_t));
            sh->nrev = w->nrev;
            sh->loaded = 1;
            sh->version++;
            sh->refreshed = ngx_http_darkroom_monotonic_ms();
            ngx_http_darkroom_metrics_revocations(w->nrev);
        }

        sh->refreshing = 0;

        ngx_shmtx_unlock(&w->zone->shpool->mutex);

        ngx_log_debug3(NGX_LOG_DEBUG_HTTP, w->timer.log, 0,
                       "darkroom gallery: revocation list %s, "
                       "%ui galleries (room for %ui)",
                       (w->rev_ok && w->nrev <= sh->rev_cap)
                       ? "refreshed" : "not refreshed",
                       w->nrev, sh->rev_cap);

        if (w->rev_ok && w->nrev > sh->rev_cap) {
            ngx_log_error(NGX_LOG_ALERT, w->timer.log, 0,
                          "darkroom gallery: %ui revoked galleries do not "
                          "fit in darkroom_gallery_zone (%ui): the list was "
                          "not updated, make the zone larger",
                          w->nrev, sh->rev_cap);
        }
    }

    if (w->rev) {
        free(w->rev);
        w->rev = NULL;
    }

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    next = (w->err.status || !w->rev_ok) ? w->gmcf->interval
                                          : ngx_max(w->gmcf->interval / 4, 50);

    ngx_add_timer(&w->timer, next);
}


/* configuration */

static char *
ngx_http_darkroom_gallery_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_darkroom_gallery_main_conf_t *gmcf = conf;

    ssize_t                            size;
    ngx_str_t                         *value, s, name;
    ngx_uint_t                         i;
    ngx_http_darkroom_gallery_zone_t  *zone;

    if (gmcf->shm_zone) {
        return "is duplicate";
    }

    value = cf->args->elts;

    size = ngx_parse_size(&value[1]);

    if (size == NGX_ERROR || size < (ssize_t) (8 * ngx_pagesize)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid zone size \"%V\", at least %uz",
                           &value[1], 8 * ngx_pagesize);
        return NGX_CONF_ERROR;
    }

    for (i = 2; i < cf->args->nelts; i++) {
        if (ngx_strncmp(value[i].data, "interval=", 9) == 0) {
            s.data = value[i].data + 9;
            s.len = value[i].len - 9;

            gmcf->interval = ngx_parse_time(&s, 0);
            if (gmcf->interval == (ngx_msec_t) NGX_ERROR
                || gmcf->interval < 100)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid interval \"%V\", at least 100ms",
                                   &s);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    zone = ngx_pcalloc(cf->pool, sizeof(ngx_http_darkroom_gallery_zone_t));
    if (zone == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_str_set(&name, "darkroom_gallery");

    gmcf->shm_zone = ngx_shared_memory_add(cf, &name, size,
                                           &ngx_http_darkroom_gallery_module);
    if (gmcf->shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    gmcf->shm_zone->init = ngx_http_darkroom_gallery_init_zone;
    gmcf->shm_zone->data = zone;

    return ngx_http_darkroom_needs_db(cf, cmd);
}


static char *
ngx_http_darkroom_gallery(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_darkroom_gallery_loc_conf_t *glcf = conf;

    if (ngx_http_darkroom_use(cf, cmd, ngx_http_darkroom_gallery_handler,
                              NULL)
        == NULL)
    {
        return NGX_CONF_ERROR;
    }

    glcf->api = 1;
    glcf->api_file = cf->conf_file->file.name.data;
    glcf->api_line = cf->conf_file->line;

    return NGX_CONF_OK;
}


static char *
ngx_http_darkroom_gallery_admin(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_darkroom_gallery_main_conf_t  *gmcf;

    gmcf = ngx_http_conf_get_module_main_conf(cf,
                                             ngx_http_darkroom_gallery_module);

    if (ngx_http_darkroom_use(cf, cmd,
                              ngx_http_darkroom_gallery_admin_handler,
                              &gmcf->use_admin)
        == NULL)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* a URL prefix or a directory, kept with a trailing "/" */

static char *
ngx_http_darkroom_gallery_prefix(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    char  *p = conf;

    u_char     *d;
    ngx_str_t  *field, *value;

    field = (ngx_str_t *) (p + cmd->offset);

    if (field->data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 0 || value[1].data[0] != '/') {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" must start with \"/\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (value[1].data[value[1].len - 1] == '/') {
        *field = value[1];
        return NGX_CONF_OK;
    }

    d = ngx_pnalloc(cf->pool, value[1].len + 2);
    if (d == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memcpy(d, value[1].data, value[1].len);
    d[value[1].len] = '/';
    d[value[1].len + 1] = '\0';

    field->data = d;
    field->len = value[1].len + 1;

    return NGX_CONF_OK;
}


/*
 * darkroom_gallery_lockout <failures> <window> <lock time>
 *                          [gallery=<failures>];
 */

static char *
ngx_http_darkroom_gallery_lockout(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_darkroom_gallery_loc_conf_t *glcf = conf;

    ngx_int_t   n, gn;
    ngx_str_t  *value;

    if (glcf->lock_max != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    n = ngx_atoi(value[1].data, value[1].len);
    glcf->lock_window = ngx_parse_time(&value[2], 1);
    glcf->lock_time = ngx_parse_time(&value[3], 1);

    if (n < 1 || n > 1000
        || glcf->lock_window == (time_t) NGX_ERROR || glcf->lock_window < 1
        || glcf->lock_time == (time_t) NGX_ERROR || glcf->lock_time < 1)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid lockout, use <failures 1..1000> "
                           "<window> <lock time> [gallery=<failures>]");
        return NGX_CONF_ERROR;
    }

    gn = NGX_HTTP_DARKROOM_GALLERY_LOCK_GALLERY;

    if (cf->args->nelts == 5) {
        gn = NGX_ERROR;

        if (value[4].len > 8
            && ngx_strncmp(value[4].data, "gallery=", 8) == 0)
        {
            gn = ngx_atoi(value[4].data + 8, value[4].len - 8);
        }

        if (gn < 1 || gn > 1000000) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\", use "
                               "gallery=<failures 1..1000000>", &value[4]);
            return NGX_CONF_ERROR;
        }
    }

    glcf->lock_max = n;
    glcf->lock_gallery_max = gn;

    return NGX_CONF_OK;
}


static void *
ngx_http_darkroom_gallery_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_darkroom_gallery_main_conf_t  *gmcf;

    gmcf = ngx_pcalloc(cf->pool,
                       sizeof(ngx_http_darkroom_gallery_main_conf_t));
    if (gmcf == NULL) {
        return NULL;
    }

    gmcf->interval = 2000;
    gmcf->batch = 1000;

    return gmcf;
}


static void *
ngx_http_darkroom_gallery_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_darkroom_gallery_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool,
                       sizeof(ngx_http_darkroom_gallery_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    conf->cookie_keys = NGX_CONF_UNSET_PTR;
    conf->proof_ttl = NGX_CONF_UNSET;
    conf->download_ttl = NGX_CONF_UNSET;
    conf->cookie_ttl = NGX_CONF_UNSET;
    conf->lock_max = NGX_CONF_UNSET_UINT;
    conf->zip_max = NGX_CONF_UNSET_UINT;

    return conf;
}


static char *
ngx_http_darkroom_gallery_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_http_darkroom_gallery_loc_conf_t *prev = parent;
    ngx_http_darkroom_gallery_loc_conf_t *conf = child;

    ngx_conf_merge_str_value(conf->media, prev->media, "");
    ngx_conf_merge_str_value(conf->root, prev->root, "");

    if (conf->root.len
        && ngx_http_darkroom_gallery_purge_root(cf, &conf->root) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }
    ngx_conf_merge_ptr_value(conf->cookie_keys, prev->cookie_keys, NULL);
    ngx_http_darkroom_gallery_merge_ttl(cf, conf, prev);
    ngx_conf_merge_sec_value(conf->cookie_ttl, prev->cookie_ttl, 7 * 86400);
    ngx_conf_merge_uint_value(conf->zip_max, prev->zip_max, 10000);
    ngx_conf_merge_str_value(conf->cancel_url, prev->cancel_url, "");

    if (conf->lock_max == NGX_CONF_UNSET_UINT) {
        if (prev->lock_max == NGX_CONF_UNSET_UINT) {
            conf->lock_max = 5;
            conf->lock_window = 900;
            conf->lock_time = 900;
            conf->lock_gallery_max = NGX_HTTP_DARKROOM_GALLERY_LOCK_GALLERY;

        } else {
            conf->lock_max = prev->lock_max;
            conf->lock_window = prev->lock_window;
            conf->lock_time = prev->lock_time;
            conf->lock_gallery_max = prev->lock_gallery_max;
        }
    }

    if (!conf->api) {
        return NGX_CONF_OK;
    }

    if (ngx_http_darkroom_gallery_longest(cf, conf,
                                          "darkroom_gallery_proof_ttl",
                                          conf->proof_ttl, conf->proof_file,
                                          conf->proof_line)
        != NGX_OK
        || ngx_http_darkroom_gallery_longest(cf, conf,
                                             "darkroom_gallery_download_ttl",
                                             conf->download_ttl,
                                             conf->download_file,
                                             conf->download_line)
           != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (conf->cookie_keys == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"darkroom_gallery\" requires "
                      "\"darkroom_gallery_cookie_key_file\" in %s:%ui",
                      conf->api_file, conf->api_line);
        return NGX_CONF_ERROR;
    }

    if (conf->media.len == 0) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"darkroom_gallery\" requires "
                      "\"darkroom_gallery_media\" in %s:%ui",
                      conf->api_file, conf->api_line);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* a link lifetime, remembered with its file:line for the media check */

static char *
ngx_http_darkroom_gallery_ttl(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_darkroom_gallery_loc_conf_t *glcf = conf;

    char  *rv;

    rv = ngx_conf_set_sec_slot(cf, cmd, conf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    if (cmd->offset == offsetof(ngx_http_darkroom_gallery_loc_conf_t,
                                proof_ttl))
    {
        glcf->proof_file = cf->conf_file->file.name.data;
        glcf->proof_line = cf->conf_file->line;

    } else {
        glcf->download_file = cf->conf_file->file.name.data;
        glcf->download_line = cf->conf_file->line;
    }

    return NGX_CONF_OK;
}


static void
ngx_http_darkroom_gallery_merge_ttl(ngx_conf_t *cf,
    ngx_http_darkroom_gallery_loc_conf_t *conf,
    ngx_http_darkroom_gallery_loc_conf_t *prev)
{
    if (conf->proof_ttl == NGX_CONF_UNSET) {
        conf->proof_file = prev->proof_file;
        conf->proof_line = prev->proof_line;
    }

    if (conf->download_ttl == NGX_CONF_UNSET) {
        conf->download_file = prev->download_file;
        conf->download_line = prev->download_line;
    }

    ngx_conf_merge_sec_value(conf->proof_ttl, prev->proof_ttl, 3600);
    ngx_conf_merge_sec_value(conf->download_ttl, prev->download_ttl, 3600);
}


/*
 * The media module refuses to start when gallery links would outlive what
 * its locations accept: tell it, through the core, how long they live.
 */

static ngx_int_t
ngx_http_darkroom_gallery_longest(ngx_conf_t *cf,
    ngx_http_darkroom_gallery_loc_conf_t *conf, const char *name,
    time_t ttl, u_char *file, ngx_uint_t line)
{
    static const char  refused[] = "its gallery links would be refused "
                                   "at once";

    /* a default applies where darkroom_gallery is */

    return ngx_http_darkroom_link_ttl(cf, name, ttl, refused,
                                      file ? file : conf->api_file,
                                      file ? line : conf->api_line);
}


static ngx_int_t
ngx_http_darkroom_gallery_postconfiguration(ngx_conf_t *cf)
{
    ngx_http_darkroom_main_conf_t          *dmcf;
    ngx_http_darkroom_gallery_main_conf_t  *gmcf;

    gmcf = ngx_http_conf_get_module_main_conf(cf,
                                             ngx_http_darkroom_gallery_module);
    dmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_darkroom_module);

    if (gmcf->use_admin.file && dmcf->admin_tokens == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"darkroom_gallery_admin\" requires "
                      "\"darkroom_admin_token_file\" in %s:%ui",
                      gmcf->use_admin.file, gmcf->use_admin.line);
        return NGX_ERROR;
    }

    /* the media module checks and logs gallery links through the core */

    ngx_http_darkroom_link_check = ngx_http_darkroom_gallery_check;
    ngx_http_darkroom_link_log = ngx_http_darkroom_gallery_log;

    return ngx_http_darkroom_gallery_purge_init(cf);
}
