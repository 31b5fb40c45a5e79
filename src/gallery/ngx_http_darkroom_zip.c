
/*
 * darkroom: streaming ZIP archives, the pure part (see the header).
 * Little-endian fields, written byte by byte: no alignment assumptions.
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_http_darkroom_zip.h"
#include "ngx_http_darkroom_utf8.h"


#define DR_ZIP_MAX32       0xffffffffULL
#define DR_ZIP_MAX16       0xffff
#define DR_ZIP_FLAGS       0x0800          /* bit 11: names are UTF-8 */
#define DR_ZIP_MADE_BY     0x032d          /* UNIX, version 4.5 */
#define DR_ZIP_ATTR        0x81a40000U     /* a regular file, 0644 */


static unsigned char *dr_put16(unsigned char *p, unsigned v);
static unsigned char *dr_put32(unsigned char *p, uint32_t v);
static unsigned char *dr_put64(unsigned char *p, uint64_t v);
static int dr_zip64_size(const ngx_http_darkroom_zip_entry_t *e);
static unsigned dr_central_extra(const ngx_http_darkroom_zip_entry_t *e);
static uint32_t dr_hash(const unsigned char *p, size_t len);
static int dr_same(const unsigned char *a, size_t alen,
    const unsigned char *b, size_t blen);
static size_t dr_safe_chars(const unsigned char *src, size_t len,
    unsigned char *out, size_t budget);
static int dr_reserved(const unsigned char *p, size_t n);
static size_t dr_safe_cut(const unsigned char *name, size_t len,
    unsigned char *out, size_t budget);
static size_t dr_unique(ngx_http_darkroom_zip_entry_t *e, size_t i,
    unsigned char *s, size_t len, size_t *set, size_t cap);


static unsigned char *
dr_put16(unsigned char *p, unsigned v)
{
    *p++ = (unsigned char) (v & 0xff);
    *p++ = (unsigned char) ((v >> 8) & 0xff);
    return p;
}


static unsigned char *
dr_put32(unsigned char *p, uint32_t v)
{
    p = dr_put16(p, v & 0xffff);
    return dr_put16(p, (v >> 16) & 0xffff);
}


static unsigned char *
dr_put64(unsigned char *p, uint64_t v)
{
    p = dr_put32(p, (uint32_t) (v & 0xffffffffU));
    return dr_put32(p, (uint32_t) (v >> 32));
}


static int
dr_zip64_size(const ngx_http_darkroom_zip_entry_t *e)
{
    return e->size >= DR_ZIP_MAX32;
}


/* the ZIP64 extra field of a central header: 0, or 4 + 8 per value */

static unsigned
dr_central_extra(const ngx_http_darkroom_zip_entry_t *e)
{
    unsigned  n;

    n = 0;

    if (dr_zip64_size(e)) {
        n += 16;                       /* uncompressed and compressed */
    }

    if (e->offset >= DR_ZIP_MAX32) {
        n += 8;
    }

    return n ? 4 + n : 0;
}


int
ngx_http_darkroom_zip_plan(ngx_http_darkroom_zip_entry_t *e, size_t n,
    ngx_http_darkroom_zip_t *zip)
{
    size_t    i;
    uint64_t  off, cd;

    off = 0;

    for (i = 0; i < n; i++) {
        if (e[i].name_len == 0
            || e[i].name_len > NGX_HTTP_DARKROOM_ZIP_NAME_MAX)
        {
            return -1;
        }

        e[i].offset = off;
        off += ngx_http_darkroom_zip_local_len(&e[i]) + e[i].size;
    }

    cd = 0;

    for (i = 0; i < n; i++) {
        cd += ngx_http_darkroom_zip_central_len(&e[i]);
    }

    zip->entries = n;
    zip->cd_offset = off;
    zip->cd_size = cd;
    zip->zip64 = (n >= DR_ZIP_MAX16 || off >= DR_ZIP_MAX32
                  || cd >= DR_ZIP_MAX32);
    zip->size = off + cd + ngx_http_darkroom_zip_end_len(zip);

    return 0;
}


size_t
ngx_http_darkroom_zip_local_len(const ngx_http_darkroom_zip_entry_t *e)
{
    return 30 + e->name_len + (dr_zip64_size(e) ? 20 : 0);
}


size_t
ngx_http_darkroom_zip_local(const ngx_http_darkroom_zip_entry_t *e,
    unsigned char *buf)
{
    int             z64;
    unsigned char  *p;

    z64 = dr_zip64_size(e);

    p = dr_put32(buf, 0x04034b50);
    p = dr_put16(p, z64 ? 45 : 20);
    p = dr_put16(p, DR_ZIP_FLAGS);
    p = dr_put16(p, 0);                                /* stored */
    p = dr_put16(p, e->dos_time);
    p = dr_put16(p, e->dos_date);
    p = dr_put32(p, e->crc32);
    p = dr_put32(p, z64 ? (uint32_t) DR_ZIP_MAX32 : (uint32_t) e->size);
    p = dr_put32(p, z64 ? (uint32_t) DR_ZIP_MAX32 : (uint32_t) e->size);
    p = dr_put16(p, (unsigned) e->name_len);
    p = dr_put16(p, z64 ? 20 : 0);

    memcpy(p, e->name, e->name_len);
    p += e->name_len;

    if (z64) {
        p = dr_put16(p, 0x0001);
        p = dr_put16(p, 16);
        p = dr_put64(p, e->size);
        p = dr_put64(p, e->size);
    }

    return p - buf;
}


size_t
ngx_http_darkroom_zip_central_len(const ngx_http_darkroom_zip_entry_t *e)
{
    return 46 + e->name_len + dr_central_extra(e);
}


size_t
ngx_http_darkroom_zip_central(const ngx_http_darkroom_zip_entry_t *e,
    unsigned char *buf)
{
    int             z64, zoff;
    unsigned        extra;
    unsigned char  *p;

    z64 = dr_zip64_size(e);
    zoff = (e->offset >= DR_ZIP_MAX32);
    extra = dr_central_extra(e);

    p = dr_put32(buf, 0x02014b50);
    p = dr_put16(p, DR_ZIP_MADE_BY);
    p = dr_put16(p, (z64 || zoff) ? 45 : 20);
    p = dr_put16(p, DR_ZIP_FLAGS);
    p = dr_put16(p, 0);
    p = dr_put16(p, e->dos_time);
    p = dr_put16(p, e->dos_date);
    p = dr_put32(p, e->crc32);
    p = dr_put32(p, z64 ? (uint32_t) DR_ZIP_MAX32 : (uint32_t) e->size);
    p = dr_put32(p, z64 ? (uint32_t) DR_ZIP_MAX32 : (uint32_t) e->size);
    p = dr_put16(p, (unsigned) e->name_len);
    p = dr_put16(p, extra);
    p = dr_put16(p, 0);                                /* comment */
    p = dr_put16(p, 0);                                /* disk */
    p = dr_put16(p, 0);                                /* internal attr */
    p = dr_put32(p, DR_ZIP_ATTR);
    p = dr_put32(p, zoff ? (uint32_t) DR_ZIP_MAX32 : (uint32_t) e->offset);

    memcpy(p, e->name, e->name_len);
    p += e->name_len;

    if (extra) {
        p = dr_put16(p, 0x0001);
        p = dr_put16(p, extra - 4);

        if (z64) {
            p = dr_put64(p, e->size);
            p = dr_put64(p, e->size);
        }

        if (zoff) {
            p = dr_put64(p, e->offset);
        }
    }

    return p - buf;
}


size_t
ngx_http_darkroom_zip_end_len(const ngx_http_darkroom_zip_t *zip)
{
    return (zip->zip64 ? 56 + 20 : 0) + 22;
}


size_t
ngx_http_darkroom_zip_end(const ngx_http_darkroom_zip_t *zip,
    unsigned char *buf)
{
    unsigned char  *p;

    p = buf;

    if (zip->zip64) {
        p = dr_put32(p, 0x06064b50);
        p = dr_put64(p, 44);                           /* size that follows */
        p = dr_put16(p, DR_ZIP_MADE_BY);
        p = dr_put16(p, 45);
        p = dr_put32(p, 0);
        p = dr_put32(p, 0);
        p = dr_put64(p, zip->entries);
        p = dr_put64(p, zip->entries);
        p = dr_put64(p, zip->cd_size);
        p = dr_put64(p, zip->cd_offset);

        p = dr_put32(p, 0x07064b50);
        p = dr_put32(p, 0);
        p = dr_put64(p, zip->cd_offset + zip->cd_size);
        p = dr_put32(p, 1);
    }

    p = dr_put32(p, 0x06054b50);
    p = dr_put16(p, 0);
    p = dr_put16(p, 0);
    p = dr_put16(p, zip->entries >= DR_ZIP_MAX16
                    ? DR_ZIP_MAX16 : (unsigned) zip->entries);
    p = dr_put16(p, zip->entries >= DR_ZIP_MAX16
                    ? DR_ZIP_MAX16 : (unsigned) zip->entries);
    p = dr_put32(p, zip->cd_size >= DR_ZIP_MAX32
                    ? (uint32_t) DR_ZIP_MAX32 : (uint32_t) zip->cd_size);
    p = dr_put32(p, zip->cd_offset >= DR_ZIP_MAX32
                    ? (uint32_t) DR_ZIP_MAX32 : (uint32_t) zip->cd_offset);
    p = dr_put16(p, 0);                                /* comment */

    return p - buf;
}


void
ngx_http_darkroom_zip_dos_time(time_t t, uint16_t *dos_time,
    uint16_t *dos_date)
{
    struct tm  tm;

    if (t < 315532800 || gmtime_r(&t, &tm) == NULL) {  /* 1980-01-01 */
        *dos_time = 0;
        *dos_date = (0 << 9) | (1 << 5) | 1;
        return;
    }

    if (tm.tm_year > 2107 - 1900) {
        tm.tm_year = 2107 - 1900;
    }

    *dos_time = (uint16_t) ((tm.tm_hour << 11) | (tm.tm_min << 5)
                            | (tm.tm_sec / 2));
    *dos_date = (uint16_t) (((tm.tm_year - 80) << 9) | ((tm.tm_mon + 1) << 5)
                            | tm.tm_mday);
}


static uint32_t
dr_hash(const unsigned char *p, size_t len)
{
    size_t         i;
    uint32_t       h;
    unsigned char  c;

    h = 2166136261U;

    for (i = 0; i < len; i++) {
        c = p[i];

        if (c >= 'A' && c <= 'Z') {
            c |= 0x20;
        }

        h = (h ^ c) * 16777619U;
    }

    return h;
}


static int
dr_same(const unsigned char *a, size_t alen, const unsigned char *b,
    size_t blen)
{
    size_t         i;
    unsigned char  x, y;

    if (alen != blen) {
        return 0;
    }

    for (i = 0; i < alen; i++) {
        x = a[i];
        y = b[i];

        if (x >= 'A' && x <= 'Z') {
            x |= 0x20;
        }

        if (y >= 'A' && y <= 'Z') {
            y |= 0x20;
        }

        if (x != y) {
            return 0;
        }
    }

    return 1;
}


/*
 * Copies src to out (if not NULL) character by character, each character
 * Windows refuses and each byte outside valid UTF-8 as "_", until budget
 * UTF-16 units are used.  Returns the bytes written, or, with out NULL,
 * the units the whole of src takes.
 */

static size_t
dr_safe_chars(const unsigned char *src, size_t len, unsigned char *out,
    size_t budget)
{
    size_t         i, n, u, w, used;
    unsigned char  c;

    w = 0;
    used = 0;

    for (i = 0; i < len; i += n) {
        n = ngx_http_darkroom_utf8_decode(src + i, len - i, NULL);

        if (n == 0) {
            n = 1;                            /* not UTF-8: one "_" a byte */
        }

        u = (n == 4) ? 2 : 1;                 /* past U+FFFF: a pair */

        if (out == NULL) {
            used += u;
            continue;
        }

        if (used + u > budget) {
            break;
        }

        used += u;

        if (n > 1) {
            memcpy(out + w, src + i, n);
            w += n;
            continue;
        }

        c = src[i];

        out[w++] = (c < 0x20 || c >= 0x7f || strchr("<>:\"/\\|?*", c))
                   ? '_' : c;
    }

    return out ? w : used;
}


/* a device name: the part before the first dot, without trailing spaces */

static int
dr_reserved(const unsigned char *p, size_t n)
{
    size_t          i;
    unsigned char   b[8];
    unsigned char  *dot;

    dot = memchr(p, '.', n);

    if (dot) {
        n = dot - p;
    }

    while (n && p[n - 1] == ' ') {
        n--;
    }

    if (n < 3 || n > 7) {
        return 0;
    }

    for (i = 0; i < n; i++) {
        b[i] = (p[i] >= 'a' && p[i] <= 'z') ? p[i] - 0x20 : p[i];
    }

    if (n == 3) {
        return memcmp(b, "CON", 3) == 0 || memcmp(b, "PRN", 3) == 0
               || memcmp(b, "AUX", 3) == 0 || memcmp(b, "NUL", 3) == 0;
    }

    if (n == 6 || n == 7) {
        return memcmp(b, n == 6 ? "CONIN$" : "CONOUT$", n) == 0;
    }

    if (memcmp(b, "COM", 3) != 0 && memcmp(b, "LPT", 3) != 0) {
        return 0;
    }

    /* COM0 to COM9, and COM with superscript 1, 2 or 3 (U+00B9, B2, B3) */

    return (n == 4 && b[3] >= '0' && b[3] <= '9')
           || (n == 5 && b[3] == 0xc2
               && (b[4] == 0xb9 || b[4] == 0xb2 || b[4] == 0xb3));
}


/* the safe characters of a name in at most budget units, cut and trimmed */

static size_t
dr_safe_cut(const unsigned char *name, size_t len, unsigned char *out,
    size_t budget)
{
    size_t  i, n, ext, eu;

    /* an extension of up to 16 bytes survives cutting a long name */

    ext = 0;

    for (i = len; i > 0; i--) {
        if (name[i - 1] == '.') {
            ext = (len - (i - 1) <= 16) ? len - (i - 1) : 0;
            break;
        }
    }

    eu = dr_safe_chars(name + len - ext, ext, NULL, 0);

    n = dr_safe_chars(name, len - ext, out, budget - eu);
    n += dr_safe_chars(name + len - ext, ext, out + n, eu);

    while (n && (out[n - 1] == '.' || out[n - 1] == ' ')) {
        n--;
    }

    return n;
}


size_t
ngx_http_darkroom_zip_safe_name(const unsigned char *name, size_t len,
    unsigned char *out)
{
    size_t  n;

    while (len && name[0] == '.') {
        name++;
        len--;
    }

    n = dr_safe_cut(name, len, out, NGX_HTTP_DARKROOM_ZIP_SAFE_UNITS);

    if (n == 0) {
        memcpy(out, "file", 4);
        return 4;
    }

    if (!dr_reserved(out, n)) {
        return n;
    }

    /* "_" in front, cutting one unit more if the name is as long as can be */

    if (dr_safe_chars(out, n, NULL, 0) >= NGX_HTTP_DARKROOM_ZIP_SAFE_UNITS) {
        n = dr_safe_cut(name, len, out, NGX_HTTP_DARKROOM_ZIP_SAFE_UNITS - 1);
    }

    memmove(out + 1, out, n);
    out[0] = '_';

    return n + 1;
}


unsigned char *
ngx_http_darkroom_zip_unique(ngx_http_darkroom_zip_entry_t *e, size_t n)
{
    size_t          i, len, total, cap;
    size_t         *set;
    unsigned char  *block, *p;

    total = 0;

    for (i = 0; i < n; i++) {
        total += (e[i].name_len < NGX_HTTP_DARKROOM_ZIP_SAFE_MAX
                  ? e[i].name_len : NGX_HTTP_DARKROOM_ZIP_SAFE_MAX) + 32;
    }

    block = malloc(total ? total : 1);
    if (block == NULL) {
        return NULL;
    }

    for (cap = 16; cap < 2 * n + 16; cap <<= 1) { /* void */ }

    /* entry index + 1; and per name, the next " (k)" to try */

    set = calloc(2 * cap, sizeof(size_t));
    if (set == NULL) {
        free(block);
        return NULL;
    }

    p = block;

    for (i = 0; i < n; i++) {
        len = ngx_http_darkroom_zip_safe_name(e[i].name, e[i].name_len, p);
        len = dr_unique(e, i, p, len, set, cap);

        e[i].name = p;
        e[i].name_len = len;
        p += len;
    }

    free(set);

    return block;
}


/*
 * Makes the safe name s of entry i the first free variant: s, "s (k)"
 * before its extension; returns its length.  set is the hash set of names
 * taken (entry index + 1), set + cap the next k to try per name as given.
 */

static size_t
dr_unique(ngx_http_darkroom_zip_entry_t *e, size_t i, unsigned char *s,
    size_t len, size_t *set, size_t cap)
{
    size_t          j, j0, k, stem, extlen;
    size_t         *next;
    uint32_t        h;
    unsigned char  *dot;
    char            num[32];

    next = set + cap;
    dot = NULL;

    for (j = len; j > 1; j--) {
        if (s[j - 1] == '.') {
            dot = s + j - 1;
            break;
        }
    }

    stem = dot ? (size_t) (dot - s) : len;
    extlen = len - stem;

    j0 = cap;
    k = 1;

    for ( ;; ) {

        if (k > 1) {
            j = (size_t) snprintf(num, sizeof(num), " (%zu)", k);

            /* move the extension right, put " (k)" before it */
            memmove(s + stem + j, s + stem + (len - stem - extlen), extlen);
            memcpy(s + stem, num, j);
            len = stem + j + extlen;
        }

        h = dr_hash(s, len);

        for (j = h & (cap - 1); set[j]; j = (j + 1) & (cap - 1)) {
            if (dr_same(e[set[j] - 1].name, e[set[j] - 1].name_len, s, len)) {
                break;
            }
        }

        if (set[j] == 0) {
            set[j] = i + 1;

            if (j0 != cap) {
                next[j0] = k + 1;
            }

            return len;
        }

        if (k == 1) {
            j0 = j;                     /* the slot of the name as given */
            k = next[j0] ? next[j0] : 2;

        } else {
            k++;
        }
    }
}


uint32_t
ngx_http_darkroom_zip_crc32(uint32_t crc, const unsigned char *p, size_t len)
{
    int       k;
    size_t    i;
    uint32_t  c;

    static uint32_t  table[256];
    static int       ready;

    if (!ready) {
        for (i = 0; i < 256; i++) {
            c = (uint32_t) i;

            for (k = 0; k < 8; k++) {
                c = (c & 1) ? 0xedb88320U ^ (c >> 1) : c >> 1;
            }

            table[i] = c;
        }

        ready = 1;
    }

    crc = ~crc;

    for (i = 0; i < len; i++) {
        crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    }

    return ~crc;
}
