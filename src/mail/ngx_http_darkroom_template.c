
/*
 * darkroom: mail templates, the pure part (see the header for the syntax).
 *
 * One pass over the source: literal text is copied, tags are resolved
 * against a stack of cJSON contexts.  A section is rendered by calling the
 * block renderer on its body once per item; a skipped section is walked
 * with output off, which both finds its end and checks its syntax.
 */


#include "ngx_http_darkroom_template.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


typedef struct {
    char                *data;
    size_t               len;
    size_t               size;
    int                  failed;       /* NOMEM or TOOBIG */
} ngx_http_darkroom_tpl_buf_t;


typedef struct {
    const char          *src;
    const char          *end;
    int                  html;
    const cJSON         *stack[NGX_HTTP_DARKROOM_TPL_DEPTH + 1];
    int                  depth;
    int                  nest;         /* sections open, skipped or not */
    ngx_http_darkroom_tpl_buf_t  out;
    char                *err;
    size_t               err_len;
} ngx_http_darkroom_tpl_t;


/* a tag, as read from the source */

typedef struct {
    const char          *start;        /* its "{{" */
    const char          *name;
    size_t               nlen;
    const char          *text_end;     /* the text before it ends here */
    const char          *end;          /* after it (and its line) */
    char                 type;         /* '#', '^', '/', '!' or 0 */
    int                  triple;       /* {{{name}}} */
} ngx_http_darkroom_tpl_tag_t;


static int ngx_http_darkroom_tpl_block(ngx_http_darkroom_tpl_t *t,
    const char *p, const char *close, size_t close_len, int emit,
    const char **next);
static int ngx_http_darkroom_tpl_tag(ngx_http_darkroom_tpl_t *t,
    ngx_http_darkroom_tpl_tag_t *tag);
static void ngx_http_darkroom_tpl_standalone(ngx_http_darkroom_tpl_t *t,
    ngx_http_darkroom_tpl_tag_t *tag);
static int ngx_http_darkroom_tpl_section(ngx_http_darkroom_tpl_t *t,
    ngx_http_darkroom_tpl_tag_t *tag, int emit, const char **p);
static const cJSON *ngx_http_darkroom_tpl_lookup(ngx_http_darkroom_tpl_t *t,
    const char *name, size_t len);
static int ngx_http_darkroom_tpl_truthy(const cJSON *v);
static void ngx_http_darkroom_tpl_value(ngx_http_darkroom_tpl_t *t,
    const cJSON *v, int escape);
static void ngx_http_darkroom_tpl_put(ngx_http_darkroom_tpl_buf_t *b,
    const char *s, size_t len);
static void ngx_http_darkroom_tpl_put_escaped(ngx_http_darkroom_tpl_buf_t *b,
    const char *s, size_t len);
static int ngx_http_darkroom_tpl_error(ngx_http_darkroom_tpl_t *t,
    const char *at, const char *what);


int
ngx_http_darkroom_tpl_render(const char *src, size_t len, const cJSON *data,
    int html, char **out, size_t *out_len, char *err, size_t err_len)
{
    int                       rc;
    const char               *next;
    ngx_http_darkroom_tpl_t   t;

    memset(&t, 0, sizeof(ngx_http_darkroom_tpl_t));

    t.src = src;
    t.end = src + len;
    t.html = html;
    t.stack[0] = data;
    t.depth = 1;
    t.err = err;
    t.err_len = err_len;

    if (err && err_len) {
        err[0] = '\0';
    }

    *out = NULL;
    *out_len = 0;

    rc = ngx_http_darkroom_tpl_block(&t, src, NULL, 0, 1, &next);

    if (rc == NGX_HTTP_DARKROOM_TPL_OK && t.out.failed) {
        rc = t.out.failed;
    }

    if (rc == NGX_HTTP_DARKROOM_TPL_OK) {
        ngx_http_darkroom_tpl_put(&t.out, "", 0);   /* room for the NUL */

        if (t.out.failed) {
            rc = t.out.failed;
        }
    }

    if (rc != NGX_HTTP_DARKROOM_TPL_OK) {
        free(t.out.data);

        if (err && err_len && err[0] == '\0') {
            snprintf(err, err_len, "%s",
                     rc == NGX_HTTP_DARKROOM_TPL_TOOBIG
                     ? "rendered text is too large" : "out of memory");
        }

        return rc;
    }

    t.out.data[t.out.len] = '\0';
    *out = t.out.data;
    *out_len = t.out.len;

    return NGX_HTTP_DARKROOM_TPL_OK;
}


/*
 * Renders from p until the closing tag {{/close}} (or the end of the
 * source when close is NULL); *next is set after that tag.
 */

static int
ngx_http_darkroom_tpl_block(ngx_http_darkroom_tpl_t *t, const char *p,
    const char *close, size_t close_len, int emit, const char **next)
{
    int                           rc;
    const char                   *text, *q;
    ngx_http_darkroom_tpl_tag_t   tag;

    text = p;

    for ( ;; ) {
        memset(&tag, 0, sizeof(ngx_http_darkroom_tpl_tag_t));

        for (q = p; q + 1 < t->end; q++) {
            if (q[0] == '{' && q[1] == '{') {
                tag.start = q;
                break;
            }
        }

        if (tag.start == NULL) {
            if (close) {
                return ngx_http_darkroom_tpl_error(t, t->end,
                                                   "unclosed section");
            }

            if (emit) {
                ngx_http_darkroom_tpl_put(&t->out, text, t->end - text);
            }

            *next = t->end;
            return NGX_HTTP_DARKROOM_TPL_OK;
        }

        rc = ngx_http_darkroom_tpl_tag(t, &tag);
        if (rc != NGX_HTTP_DARKROOM_TPL_OK) {
            return rc;
        }

        if (emit) {
            ngx_http_darkroom_tpl_put(&t->out, text, tag.text_end - text);
        }

        p = tag.end;

        switch (tag.type) {

        case '!':
            break;

        case '/':
            if (close == NULL || tag.nlen != close_len
                || memcmp(tag.name, close, tag.nlen) != 0)
            {
                return ngx_http_darkroom_tpl_error(t, tag.start,
                                                   "unexpected closing tag");
            }

            *next = p;
            return NGX_HTTP_DARKROOM_TPL_OK;

        case '#':
        case '^':
            rc = ngx_http_darkroom_tpl_section(t, &tag, emit, &p);
            if (rc != NGX_HTTP_DARKROOM_TPL_OK) {
                return rc;
            }

            break;

        default:
            if (emit) {
                ngx_http_darkroom_tpl_value(t,
                    ngx_http_darkroom_tpl_lookup(t, tag.name, tag.nlen),
                    t->html && !tag.triple);
            }

            break;
        }

        text = p;

        if (t->out.failed) {
            return t->out.failed;
        }
    }
}


/* reads the tag at tag->start: its type, its name, and where it ends */

static int
ngx_http_darkroom_tpl_tag(ngx_http_darkroom_tpl_t *t,
    ngx_http_darkroom_tpl_tag_t *tag)
{
    const char  *q, *end;

    tag->triple = (tag->start + 2 < t->end && tag->start[2] == '{');
    q = tag->start + (tag->triple ? 3 : 2);

    while (q < t->end && (*q == ' ' || *q == '\t')) {
        q++;
    }

    tag->type = (q < t->end && strchr("#^/!", *q) && !tag->triple) ? *q++
                                                                    : 0;

    while (q < t->end && (*q == ' ' || *q == '\t')) {
        q++;
    }

    tag->name = q;

    /* the tag's end */

    for (end = q; end + 1 < t->end; end++) {
        if (end[0] == '}' && end[1] == '}') {
            break;
        }
    }

    if (end + 1 >= t->end) {
        return ngx_http_darkroom_tpl_error(t, tag->start, "unclosed tag");
    }

    tag->nlen = end - tag->name;

    while (tag->nlen && (tag->name[tag->nlen - 1] == ' '
                         || tag->name[tag->nlen - 1] == '\t'))
    {
        tag->nlen--;
    }

    end += 2;

    if (tag->triple) {
        if (end >= t->end || *end != '}') {
            return ngx_http_darkroom_tpl_error(t, tag->start,
                                               "\"{{{\" closed by \"}}\"");
        }

        end++;
    }

    if (tag->type != '!') {
        if (tag->nlen == 0) {
            return ngx_http_darkroom_tpl_error(t, tag->start, "empty tag");
        }

        for (q = tag->name; q < tag->name + tag->nlen; q++) {
            if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z')
                  || (*q >= '0' && *q <= '9') || *q == '_' || *q == '.'
                  || *q == '-'))
            {
                return ngx_http_darkroom_tpl_error(t, tag->start,
                                                   "bad name in tag");
            }
        }
    }

    tag->text_end = tag->start;
    tag->end = end;

    if (tag->type) {
        ngx_http_darkroom_tpl_standalone(t, tag);
    }

    return NGX_HTTP_DARKROOM_TPL_OK;
}


/* a block tag alone on its line takes the whole line */

static void
ngx_http_darkroom_tpl_standalone(ngx_http_darkroom_tpl_t *t,
    ngx_http_darkroom_tpl_tag_t *tag)
{
    const char  *ls, *q;

    ls = tag->start;

    while (ls > t->src && (ls[-1] == ' ' || ls[-1] == '\t')) {
        ls--;
    }

    q = tag->end;

    while (q < t->end && (*q == ' ' || *q == '\t' || *q == '\r')) {
        q++;
    }

    if ((ls == t->src || ls[-1] == '\n') && (q == t->end || *q == '\n')) {
        tag->text_end = ls;
        tag->end = (q < t->end) ? q + 1 : q;
    }
}


/*
 * A section {{#name}} or {{^name}} whose body starts at *p: rendered for
 * each item, once, or walked with output off; *p is set after its close.
 */

static int
ngx_http_darkroom_tpl_section(ngx_http_darkroom_tpl_t *t,
    ngx_http_darkroom_tpl_tag_t *tag, int emit, const char **p)
{
    int           rc;
    const char   *body_next;
    const cJSON  *v, *item;

    if (t->nest == NGX_HTTP_DARKROOM_TPL_DEPTH) {
        return ngx_http_darkroom_tpl_error(t, tag->start,
                                           "sections nested too deeply");
    }

    v = emit ? ngx_http_darkroom_tpl_lookup(t, tag->name, tag->nlen) : NULL;
    t->nest++;

    if (tag->type == '^' || !emit || !ngx_http_darkroom_tpl_truthy(v)) {
        rc = ngx_http_darkroom_tpl_block(t, *p, tag->name, tag->nlen,
                 emit && tag->type == '^' && !ngx_http_darkroom_tpl_truthy(v),
                 &body_next);
        if (rc != NGX_HTTP_DARKROOM_TPL_OK) {
            return rc;
        }

    } else if (cJSON_IsArray(v)) {
        body_next = NULL;

        cJSON_ArrayForEach(item, v) {
            t->stack[t->depth++] = item;
            rc = ngx_http_darkroom_tpl_block(t, *p, tag->name, tag->nlen, 1,
                                             &body_next);
            t->depth--;

            if (rc != NGX_HTTP_DARKROOM_TPL_OK) {
                return rc;
            }
        }

    } else {
        t->stack[t->depth++] = v;
        rc = ngx_http_darkroom_tpl_block(t, *p, tag->name, tag->nlen, 1,
                                         &body_next);
        t->depth--;

        if (rc != NGX_HTTP_DARKROOM_TPL_OK) {
            return rc;
        }
    }

    t->nest--;
    *p = body_next;

    return NGX_HTTP_DARKROOM_TPL_OK;
}


static const cJSON *
ngx_http_darkroom_tpl_lookup(ngx_http_darkroom_tpl_t *t, const char *name,
    size_t len)
{
    int           i;
    char          key[128];
    size_t        n;
    const char   *dot, *end;
    const cJSON  *v;

    if (len == 1 && name[0] == '.') {
        return t->stack[t->depth - 1];
    }

    end = name + len;
    dot = memchr(name, '.', len);
    n = (dot ? dot : end) - name;

    if (n == 0 || n >= sizeof(key)) {
        return NULL;
    }

    memcpy(key, name, n);
    key[n] = '\0';

    v = NULL;

    for (i = t->depth - 1; i >= 0; i--) {
        if (cJSON_IsObject(t->stack[i])) {
            v = cJSON_GetObjectItemCaseSensitive(t->stack[i], key);
            if (v) {
                break;
            }
        }
    }

    while (v && dot) {
        name = dot + 1;
        dot = memchr(name, '.', end - name);
        n = (dot ? dot : end) - name;

        if (n == 0 || n >= sizeof(key) || !cJSON_IsObject(v)) {
            return NULL;
        }

        memcpy(key, name, n);
        key[n] = '\0';

        v = cJSON_GetObjectItemCaseSensitive(v, key);
    }

    return v;
}


static int
ngx_http_darkroom_tpl_truthy(const cJSON *v)
{
    if (v == NULL || cJSON_IsNull(v) || cJSON_IsFalse(v)) {
        return 0;
    }

    if (cJSON_IsString(v)) {
        return v->valuestring && v->valuestring[0];
    }

    if (cJSON_IsNumber(v)) {
        return v->valuedouble != 0;
    }

    if (cJSON_IsArray(v)) {
        return cJSON_GetArraySize(v) > 0;
    }

    return 1;
}


static void
ngx_http_darkroom_tpl_value(ngx_http_darkroom_tpl_t *t, const cJSON *v,
    int escape)
{
    char        num[64];
    const char *s;

    if (v == NULL || cJSON_IsNull(v)) {
        return;
    }

    if (cJSON_IsString(v)) {
        s = v->valuestring ? v->valuestring : "";

    } else if (cJSON_IsNumber(v)) {
        /* range first: converting a double out of range is undefined */
        if (v->valuedouble < 9e15 && v->valuedouble > -9e15
            && v->valuedouble == (double) (long long) v->valuedouble)
        {
            snprintf(num, sizeof(num), "%lld", (long long) v->valuedouble);

        } else {
            snprintf(num, sizeof(num), "%g", v->valuedouble);
        }

        s = num;

    } else if (cJSON_IsBool(v)) {
        s = cJSON_IsTrue(v) ? "true" : "false";

    } else {
        /* objects and lists have no text of their own */
        return;
    }

    if (escape) {
        ngx_http_darkroom_tpl_put_escaped(&t->out, s, strlen(s));

    } else {
        ngx_http_darkroom_tpl_put(&t->out, s, strlen(s));
    }
}


static void
ngx_http_darkroom_tpl_put(ngx_http_darkroom_tpl_buf_t *b, const char *s,
    size_t len)
{
    char    *p;
    size_t   want;

    if (b->failed) {
        return;
    }

    if (b->len + len + 1 > NGX_HTTP_DARKROOM_TPL_MAX) {
        b->failed = NGX_HTTP_DARKROOM_TPL_TOOBIG;
        return;
    }

    if (b->len + len + 1 > b->size) {
        want = b->size ? b->size * 2 : 1024;

        while (want < b->len + len + 1) {
            want *= 2;
        }

        p = realloc(b->data, want);
        if (p == NULL) {
            b->failed = NGX_HTTP_DARKROOM_TPL_NOMEM;
            return;
        }

        b->data = p;
        b->size = want;
    }

    memcpy(b->data + b->len, s, len);
    b->len += len;
}


static void
ngx_http_darkroom_tpl_put_escaped(ngx_http_darkroom_tpl_buf_t *b,
    const char *s, size_t len)
{
    char    buf[512];
    size_t  n, chunk;

    while (len) {
        /* each byte becomes at most 6 */
        chunk = len < sizeof(buf) / 6 ? len : sizeof(buf) / 6;
        n = ngx_http_darkroom_tpl_escape(buf, s, chunk);
        ngx_http_darkroom_tpl_put(b, buf, n);
        s += chunk;
        len -= chunk;
    }
}


size_t
ngx_http_darkroom_tpl_escape(char *dst, const char *s, size_t len)
{
    char        *p;
    size_t       i;
    const char  *rep;

    p = dst;

    for (i = 0; i < len; i++) {
        switch (s[i]) {
        case '&':  rep = "&amp;"; break;
        case '<':  rep = "&lt;"; break;
        case '>':  rep = "&gt;"; break;
        case '"':  rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        default:   rep = NULL; break;
        }

        if (rep) {
            while (*rep) {
                *p++ = *rep++;
            }

        } else {
            *p++ = s[i];
        }
    }

    return p - dst;
}


static int
ngx_http_darkroom_tpl_error(ngx_http_darkroom_tpl_t *t, const char *at,
    const char *what)
{
    size_t       line;
    const char  *p;

    line = 1;

    for (p = t->src; p < at && p < t->end; p++) {
        if (*p == '\n') {
            line++;
        }
    }

    if (t->err && t->err_len) {
        snprintf(t->err, t->err_len, "%s on line %zu", what, line);
    }

    return NGX_HTTP_DARKROOM_TPL_SYNTAX;
}
