
/*
 * darkroom: the envelope of a Stripe event, read once.
 *
 * A strict JSON reader over the whole body: it accepts only what
 * PostgreSQL's jsonb stores the same way (valid UTF-8, no \u0000, no lone
 * surrogate) and refuses a key that appears twice in any object, since C
 * and PostgreSQL would read different values of it.  It copies out the
 * top-level id, type, object and api_version, and notes data.object.
 * What it copies out is what the webhook logs, answers and hands to SQL.
 *
 * Plain C with no nginx inside, so t/fuzz fuzzes it on its own.
 */


#include "ngx_http_darkroom_stripe_event.h"
#include "ngx_http_darkroom_utf8.h"

#include <stdlib.h>
#include <string.h>


#define DR_ROLE_TOP    0
#define DR_ROLE_DATA   1
#define DR_ROLE_OTHER  2


typedef struct {
    unsigned char  *data;
    size_t          len;
    size_t          cap;
} dr_buf_t;


typedef struct {
    size_t          off;
    size_t          len;
    const char     *base;
} dr_key_t;


typedef struct {
    const unsigned char                *p;
    const unsigned char                *end;
    int                                 depth;
    int                                 rc;
    ngx_http_darkroom_stripe_event_t   *ev;
} dr_json_t;


static int dr_value(dr_json_t *j, int role);
static int dr_object(dr_json_t *j, int role);


static void
dr_ws(dr_json_t *j)
{
    while (j->p < j->end
           && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n'
               || *j->p == '\r'))
    {
        j->p++;
    }
}


static int
dr_put(dr_buf_t *b, const unsigned char *s, size_t n)
{
    size_t          cap;
    unsigned char  *d;

    if (b == NULL) {
        return 0;
    }

    if (b->len + n > b->cap) {
        cap = b->cap ? b->cap * 2 : 64;

        while (cap < b->len + n) {
            cap *= 2;
        }

        d = realloc(b->data, cap);
        if (d == NULL) {
            return -1;
        }

        b->data = d;
        b->cap = cap;
    }

    memcpy(b->data + b->len, s, n);
    b->len += n;

    return 0;
}


static int
dr_hex4(const unsigned char *p, unsigned *cp)
{
    int  i;

    *cp = 0;

    for (i = 0; i < 4; i++) {
        *cp <<= 4;

        if (p[i] >= '0' && p[i] <= '9') {
            *cp |= p[i] - '0';

        } else if ((p[i] | 0x20) >= 'a' && (p[i] | 0x20) <= 'f') {
            *cp |= (p[i] | 0x20) - 'a' + 10;

        } else {
            return -1;
        }
    }

    return 0;
}


/*
 * \u and four hex digits (and its low surrogate): PostgreSQL refuses
 * \u0000 and lone surrogates
 */

static int
dr_unicode(dr_json_t *j, dr_buf_t *out)
{
    int            n;
    unsigned       cp, lo;
    unsigned char  u[4];

    if (j->end - j->p < 4 || dr_hex4(j->p, &cp) != 0) {
        return -1;
    }

    j->p += 4;

    if (cp == 0 || (cp >= 0xdc00 && cp <= 0xdfff)) {
        return -1;
    }

    if (cp >= 0xd800 && cp <= 0xdbff) {
        if (j->end - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u'
            || dr_hex4(j->p + 2, &lo) != 0
            || lo < 0xdc00 || lo > 0xdfff)
        {
            return -1;
        }

        j->p += 6;
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
    }

    if (cp < 0x80) {
        u[0] = (unsigned char) cp;
        n = 1;

    } else if (cp < 0x800) {
        u[0] = 0xc0 | (cp >> 6);
        u[1] = 0x80 | (cp & 0x3f);
        n = 2;

    } else if (cp < 0x10000) {
        u[0] = 0xe0 | (cp >> 12);
        u[1] = 0x80 | ((cp >> 6) & 0x3f);
        u[2] = 0x80 | (cp & 0x3f);
        n = 3;

    } else {
        u[0] = 0xf0 | (cp >> 18);
        u[1] = 0x80 | ((cp >> 12) & 0x3f);
        u[2] = 0x80 | ((cp >> 6) & 0x3f);
        u[3] = 0x80 | (cp & 0x3f);
        n = 4;
    }

    return dr_put(out, u, n);
}


/* one raw UTF-8 sequence, well formed (RFC 3629), copied to out */

static int
dr_utf8(dr_json_t *j, dr_buf_t *out)
{
    size_t                n;
    const unsigned char  *s = j->p;

    n = ngx_http_darkroom_utf8_decode(s, (size_t) (j->end - s), NULL);

    if (n == 0) {
        return -1;
    }

    j->p += n;

    return dr_put(out, s, n);
}


/* a string, decoded into out when out is not NULL */

static int
dr_string(dr_json_t *j, dr_buf_t *out)
{
    unsigned char         c;
    const unsigned char  *e;

    static const unsigned char  from[] = "\"\\/bfnrt";
    static const unsigned char  to[] = "\"\\/\b\f\n\r\t";

    j->p++;     /* the opening quote */

    while (j->p < j->end) {
        c = *j->p;

        if (c == '"') {
            j->p++;
            return 0;
        }

        if (c < 0x20) {
            return -1;
        }

        if (c >= 0x80) {
            if (dr_utf8(j, out) != 0) {
                return -1;
            }

            continue;
        }

        j->p++;

        if (c != '\\') {
            if (dr_put(out, &c, 1) != 0) {
                return -1;
            }

            continue;
        }

        if (j->p == j->end) {
            return -1;
        }

        c = *j->p++;

        if (c == 'u') {
            if (dr_unicode(j, out) != 0) {
                return -1;
            }

            continue;
        }

        e = memchr(from, c, sizeof(from) - 1);

        if (e == NULL || dr_put(out, &to[e - from], 1) != 0) {
            return -1;
        }
    }

    return -1;
}


static int
dr_digits(dr_json_t *j)
{
    const unsigned char  *start = j->p;

    while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
        j->p++;
    }

    return (j->p > start) ? 0 : -1;
}


static int
dr_number(dr_json_t *j)
{
    if (*j->p == '-') {
        j->p++;
    }

    if (j->p < j->end && *j->p == '0') {
        j->p++;

    } else if (dr_digits(j) != 0) {
        return -1;
    }

    if (j->p < j->end && *j->p == '.') {
        j->p++;

        if (dr_digits(j) != 0) {
            return -1;
        }
    }

    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        j->p++;

        if (j->p < j->end && (*j->p == '+' || *j->p == '-')) {
            j->p++;
        }

        if (dr_digits(j) != 0) {
            return -1;
        }
    }

    return 0;
}


static int
dr_literal(dr_json_t *j, const char *word)
{
    size_t  n = strlen(word);

    if ((size_t) (j->end - j->p) < n || memcmp(j->p, word, n) != 0) {
        return -1;
    }

    j->p += n;

    return 0;
}


static int
dr_array(dr_json_t *j)
{
    j->p++;
    dr_ws(j);

    if (j->p < j->end && *j->p == ']') {
        j->p++;
        return 0;
    }

    for ( ;; ) {
        if (dr_value(j, DR_ROLE_OTHER) != 0) {
            return -1;
        }

        dr_ws(j);

        if (j->p == j->end) {
            return -1;
        }

        if (*j->p++ == ']') {
            return 0;
        }

        if (j->p[-1] != ',') {
            return -1;
        }
    }
}


static int
dr_value(dr_json_t *j, int role)
{
    int  rc;

    dr_ws(j);

    if (j->p == j->end) {
        return -1;
    }

    switch (*j->p) {

    case '{':
    case '[':
        if (++j->depth > NGX_HTTP_DARKROOM_STRIPE_EVENT_MAX_DEPTH) {
            return -1;
        }

        rc = (*j->p == '{') ? dr_object(j, role) : dr_array(j);
        j->depth--;
        return rc;

    case '"':
        return dr_string(j, NULL);

    case 't':
        return dr_literal(j, "true");

    case 'f':
        return dr_literal(j, "false");

    case 'n':
        return dr_literal(j, "null");

    default:
        if (*j->p == '-' || (*j->p >= '0' && *j->p <= '9')) {
            return dr_number(j);
        }

        return -1;
    }
}


/* a top-level string field copied into dst: 1 read, 2 unusable */

static int
dr_field(dr_json_t *j, char *dst, size_t size, int *state)
{
    dr_buf_t  b = { NULL, 0, 0 };

    dr_ws(j);

    if (j->p < j->end && *j->p == '"') {
        if (dr_string(j, &b) != 0) {
            free(b.data);
            return -1;
        }

        /* \u0000 is refused already: the copy holds no NUL */

        if (b.len < size) {
            if (b.len) {
                memcpy(dst, b.data, b.len);
            }

            dst[b.len] = '\0';
            *state = 1;

        } else {
            *state = 2;
        }

        free(b.data);
        return 0;
    }

    if (dr_literal(j, "null") == 0) {
        *state = 0;
        return 0;
    }

    *state = 2;

    return dr_value(j, DR_ROLE_OTHER);
}


/* the value of a member: the envelope's own fields are copied out */

static int
dr_member(dr_json_t *j, int role, const unsigned char *key, size_t len)
{
    ngx_http_darkroom_stripe_event_t  *ev = j->ev;

#define dr_is(name)                                                          \
    (len == sizeof(name) - 1 && memcmp(key, name, len) == 0)

    if (role == DR_ROLE_TOP) {
        if (dr_is("id")) {
            return dr_field(j, ev->id, sizeof(ev->id), &ev->has_id);
        }

        if (dr_is("type")) {
            return dr_field(j, ev->type, sizeof(ev->type), &ev->has_type);
        }

        if (dr_is("object")) {
            return dr_field(j, ev->object, sizeof(ev->object),
                            &ev->has_object);
        }

        if (dr_is("api_version")) {
            return dr_field(j, ev->api_version, sizeof(ev->api_version),
                            &ev->has_api_version);
        }

        if (dr_is("data")) {
            dr_ws(j);
            return dr_value(j, (j->p < j->end && *j->p == '{')
                               ? DR_ROLE_DATA : DR_ROLE_OTHER);
        }
    }

    if (role == DR_ROLE_DATA && dr_is("object")) {
        dr_ws(j);
        ev->has_data_object = (j->p < j->end && *j->p == '{') ? 1 : 2;
    }

#undef dr_is

    return dr_value(j, DR_ROLE_OTHER);
}


static int
dr_key_cmp(const void *a, const void *b)
{
    int              rc;
    size_t           n;
    const dr_key_t  *x = a, *y = b;

    n = x->len < y->len ? x->len : y->len;
    rc = n ? memcmp(x->base + x->off, y->base + y->off, n) : 0;

    if (rc != 0) {
        return rc;
    }

    return (x->len > y->len) - (x->len < y->len);
}


/* sorted, two equal neighbours are a duplicate key */

static int
dr_keys_unique(dr_buf_t *names, dr_buf_t *keys)
{
    size_t     i, n;
    dr_key_t  *k;

    k = (dr_key_t *) keys->data;
    n = keys->len / sizeof(dr_key_t);

    for (i = 0; i < n; i++) {
        k[i].base = (const char *) names->data;
    }

    if (n < 2) {
        return 0;
    }

    qsort(k, n, sizeof(dr_key_t), dr_key_cmp);

    for (i = 1; i < n; i++) {
        if (dr_key_cmp(&k[i - 1], &k[i]) == 0) {
            return -1;
        }
    }

    return 0;
}


static int
dr_members(dr_json_t *j, int role, dr_buf_t *names, dr_buf_t *keys)
{
    dr_key_t  key;

    for ( ;; ) {
        dr_ws(j);

        if (j->p == j->end || *j->p != '"') {
            return -1;
        }

        key.off = names->len;

        if (dr_string(j, names) != 0) {
            return -1;
        }

        key.len = names->len - key.off;
        key.base = NULL;

        if (dr_put(keys, (unsigned char *) &key, sizeof(key)) != 0) {
            return -1;
        }

        dr_ws(j);

        if (j->p == j->end || *j->p++ != ':') {
            return -1;
        }

        if (dr_member(j, role, names->data ? names->data + key.off
                                           : (unsigned char *) "",
                      key.len)
            != 0)
        {
            return -1;
        }

        dr_ws(j);

        if (j->p == j->end) {
            return -1;
        }

        if (*j->p++ == '}') {
            return 0;
        }

        if (j->p[-1] != ',') {
            return -1;
        }
    }
}


static int
dr_object(dr_json_t *j, int role)
{
    int        rc;
    dr_buf_t   names = { NULL, 0, 0 };
    dr_buf_t   keys = { NULL, 0, 0 };

    j->p++;
    dr_ws(j);

    if (j->p < j->end && *j->p == '}') {
        j->p++;
        return 0;
    }

    rc = dr_members(j, role, &names, &keys);

    if (rc == 0 && dr_keys_unique(&names, &keys) != 0) {
        j->rc = NGX_HTTP_DARKROOM_STRIPE_EVENT_DUPLICATE_KEY;
        rc = -1;
    }

    free(names.data);
    free(keys.data);

    return rc;
}


static int
dr_id_ok(const char *id)
{
    size_t  i;

    if (strncmp(id, "evt_", 4) != 0 || id[4] == '\0') {
        return 0;
    }

    for (i = 4; id[i]; i++) {
        if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= 'A' && id[i] <= 'Z')
              || (id[i] >= '0' && id[i] <= '9') || id[i] == '_'))
        {
            return 0;
        }
    }

    return 1;
}


/* event types and API versions: letters, digits, "_", "." and "-" */

static int
dr_word_ok(const char *s)
{
    size_t  i;

    for (i = 0; s[i]; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')
              || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '.'
              || s[i] == '-'))
        {
            return 0;
        }
    }

    return i > 0;
}


int
ngx_http_darkroom_stripe_event_parse(const unsigned char *body,
    size_t len, ngx_http_darkroom_stripe_event_t *ev)
{
    dr_json_t  j;

    memset(ev, 0, sizeof(ngx_http_darkroom_stripe_event_t));

    j.p = body;
    j.end = body + len;
    j.depth = 0;
    j.rc = NGX_HTTP_DARKROOM_STRIPE_EVENT_INVALID_JSON;
    j.ev = ev;

    dr_ws(&j);

    if (j.p == j.end || *j.p != '{') {
        return NGX_HTTP_DARKROOM_STRIPE_EVENT_INVALID_JSON;
    }

    j.depth = 1;

    if (dr_object(&j, DR_ROLE_TOP) != 0) {
        return j.rc;
    }

    dr_ws(&j);

    if (j.p != j.end) {
        return NGX_HTTP_DARKROOM_STRIPE_EVENT_INVALID_JSON;
    }

    if (ev->has_object == 1 && strcmp(ev->object, "v2.core.event") == 0) {
        return NGX_HTTP_DARKROOM_STRIPE_EVENT_THIN;
    }

    if (ev->has_id == 2 || (ev->has_id == 1 && !dr_id_ok(ev->id))) {
        return NGX_HTTP_DARKROOM_STRIPE_EVENT_BAD_ID;
    }

    if (ev->has_id != 1 || ev->has_type != 1 || !dr_word_ok(ev->type)
        || ev->has_data_object != 1 || ev->has_api_version == 2
        || (ev->has_api_version == 1 && !dr_word_ok(ev->api_version)))
    {
        return NGX_HTTP_DARKROOM_STRIPE_EVENT_INVALID;
    }

    return NGX_HTTP_DARKROOM_STRIPE_EVENT_OK;
}
