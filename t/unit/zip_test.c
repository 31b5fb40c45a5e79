
/*
 * darkroom: unit test of the pure ZIP writer (ngx_http_darkroom_zip.c).
 * Prints TAP.  Built and run by t/310_zip_unit.t.
 *
 *   zip_test                      the assertions
 *   zip_test write FILE N [BIG CRC]
 *                                 writes an archive of N small entries
 *                                 (names "dup.txt" repeated, made unique),
 *                                 and, with BIG, a first entry of BIG zero
 *                                 bytes (CRC-32 given) written sparse, for
 *                                 unzip and Python's zipfile to check
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>

#include "ngx_http_darkroom_zip.h"


static int  n_test, n_failed;


static void
ok(int cond, const char *name)
{
    n_test++;

    if (!cond) {
        n_failed++;
    }

    printf("%sok %d - %s\n", cond ? "" : "not ", n_test, name);
}


static unsigned
get16(const unsigned char *p)
{
    return p[0] | (p[1] << 8);
}


static uint32_t
get32(const unsigned char *p)
{
    return get16(p) | ((uint32_t) get16(p + 2) << 16);
}


static uint64_t
get64(const unsigned char *p)
{
    return get32(p) | ((uint64_t) get32(p + 4) << 32);
}


static void
entry(ngx_http_darkroom_zip_entry_t *e, const char *name, uint64_t size,
    uint32_t crc)
{
    memset(e, 0, sizeof(*e));
    e->name = (const unsigned char *) name;
    e->name_len = strlen(name);
    e->size = size;
    e->crc32 = crc;
    ngx_http_darkroom_zip_dos_time(1700000000, &e->dos_time, &e->dos_date);
}


static int
name_is(const ngx_http_darkroom_zip_entry_t *e, const char *want)
{
    int  cond;

    cond = (e->name_len == strlen(want)
            && memcmp(e->name, want, e->name_len) == 0);

    if (!cond) {
        printf("#   got \"%.*s\", want \"%s\"\n", (int) e->name_len, e->name,
               want);
    }

    return cond;
}


static int
safe_is(const char *name, const char *want)
{
    size_t         len, len2;
    unsigned char  out[NGX_HTTP_DARKROOM_ZIP_SAFE_MAX + 5];
    unsigned char  again[NGX_HTTP_DARKROOM_ZIP_SAFE_MAX + 5];

    len = ngx_http_darkroom_zip_safe_name((const unsigned char *) name,
                                          strlen(name), out);
    len2 = ngx_http_darkroom_zip_safe_name(out, len, again);

    if (len != strlen(want) || memcmp(out, want, len) != 0
        || len2 != len || memcmp(again, out, len) != 0)
    {
        printf("#   got \"%.*s\", want \"%s\"\n", (int) len, out, want);
        return 0;
    }

    return 1;
}


static int
long_name(void)
{
    size_t         i, len;
    unsigned char  name[1200], out[NGX_HTTP_DARKROOM_ZIP_SAFE_MAX + 5];

    /* 399 x "\xc3\xa9" (2 bytes, 1 unit each) and ".jpeg" */

    for (i = 0; i < 399; i++) {
        name[2 * i] = 0xc3;
        name[2 * i + 1] = 0xa9;
    }

    memcpy(name + 798, ".jpeg", 5);

    len = ngx_http_darkroom_zip_safe_name(name, 803, out);

    return len == 195 * 2 + 5 && memcmp(out + len - 5, ".jpeg", 5) == 0
           && out[0] == 0xc3 && out[len - 6] == 0xa9;
}


/* found by t/fuzz/zip_name.c: the "_" made a cut name 201 units long */

static int
long_device(void)
{
    size_t         i, len;
    unsigned char  name[1200], out[NGX_HTTP_DARKROOM_ZIP_SAFE_MAX + 5];

    memcpy(name, "LPT9 .tx", 8);

    for (i = 0; i < 230; i++) {
        name[8 + 2 * i] = 0xc3;
        name[8 + 2 * i + 1] = 0xa9;
    }

    memcpy(name + 468, ".jpeg", 5);

    len = ngx_http_darkroom_zip_safe_name(name, 473, out);

    /* "_LPT9 .tx" (9 units), 186 x U+00E9, ".jpeg": 200 units */

    return len == 9 + 186 * 2 + 5 && memcmp(out, "_LPT9 .tx", 9) == 0
           && memcmp(out + len - 5, ".jpeg", 5) == 0;
}


static int
write_archive(const char *file, size_t n, uint64_t big, uint32_t crc)
{
    int                             fd;
    size_t                          i, len, first;
    char                           *data;
    unsigned char                  *names, *buf;
    ngx_http_darkroom_zip_t         zip;
    ngx_http_darkroom_zip_entry_t  *e;
    unsigned char                   end[NGX_HTTP_DARKROOM_ZIP_END_MAX];

    first = big ? 1 : 0;

    e = calloc(n + first, sizeof(*e));
    data = malloc(64);
    buf = malloc(NGX_HTTP_DARKROOM_ZIP_CENTRAL_MAX);

    if (e == NULL || data == NULL || buf == NULL) {
        return 1;
    }

    if (big) {
        entry(&e[0], "big/zeros.bin", big, crc);
    }

    for (i = 0; i < n; i++) {
        entry(&e[first + i], (i % 3 == 2) ? "\xc3\xa9t\xc3\xa9.txt"
                                          : "dup.txt", 0, 0);
    }

    names = ngx_http_darkroom_zip_unique(e, n + first);
    if (names == NULL) {
        return 1;
    }

    /* the contents: the entry's own name, so every CRC differs */

    for (i = first; i < n + first; i++) {
        e[i].size = e[i].name_len;
        e[i].crc32 = ngx_http_darkroom_zip_crc32(0, e[i].name,
                                                 e[i].name_len);
    }

    if (ngx_http_darkroom_zip_plan(e, n + first, &zip) != 0) {
        return 1;
    }

    fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd == -1) {
        return 1;
    }

    for (i = 0; i < n + first; i++) {
        len = ngx_http_darkroom_zip_local(&e[i], buf);
        if (pwrite(fd, buf, len, e[i].offset) != (ssize_t) len) {
            return 1;
        }

        if (i >= first) {
            if (pwrite(fd, e[i].name, e[i].name_len, e[i].offset + len)
                != (ssize_t) e[i].name_len)
            {
                return 1;
            }
        }
    }

    if (lseek(fd, zip.cd_offset, SEEK_SET) == -1) {
        return 1;
    }

    for (i = 0; i < n + first; i++) {
        len = ngx_http_darkroom_zip_central(&e[i], buf);
        if (write(fd, buf, len) != (ssize_t) len) {
            return 1;
        }
    }

    len = ngx_http_darkroom_zip_end(&zip, end);
    if (write(fd, end, len) != (ssize_t) len) {
        return 1;
    }

    close(fd);

    printf("%llu %d\n", (unsigned long long) zip.size, zip.zip64);

    free(names);
    free(e);
    free(data);
    free(buf);

    return 0;
}


int
main(int argc, char **argv)
{
    size_t                          len;
    uint16_t                        t, d;
    unsigned char                  *names;
    ngx_http_darkroom_zip_t         zip;
    ngx_http_darkroom_zip_entry_t   e[6];
    unsigned char                   buf[NGX_HTTP_DARKROOM_ZIP_CENTRAL_MAX];

    if (argc >= 4 && strcmp(argv[1], "write") == 0) {
        return write_archive(argv[2], strtoul(argv[3], NULL, 10),
                             argc > 5 ? strtoull(argv[4], NULL, 10) : 0,
                             argc > 5 ? strtoul(argv[5], NULL, 10) : 0);
    }

    ok(ngx_http_darkroom_zip_crc32(0, (const unsigned char *) "123456789", 9)
       == 0xcbf43926, "CRC-32 check value");
    ok(ngx_http_darkroom_zip_crc32(
           ngx_http_darkroom_zip_crc32(0, (const unsigned char *) "1234", 4),
           (const unsigned char *) "56789", 5) == 0xcbf43926,
       "CRC-32 continued");

    ngx_http_darkroom_zip_dos_time(1700000000, &t, &d);   /* 2023-11-14
                                                             22:13:20 */
    ok(d == (((2023 - 1980) << 9) | (11 << 5) | 14), "DOS date");
    ok(t == ((22 << 11) | (13 << 5) | 10), "DOS time");
    ngx_http_darkroom_zip_dos_time(0, &t, &d);
    ok(t == 0 && d == ((1 << 5) | 1), "before 1980: 1980-01-01");

    /* one small entry */

    entry(&e[0], "a.jpg", 5, 0x12345678);
    ok(ngx_http_darkroom_zip_plan(e, 1, &zip) == 0, "plan");
    ok(e[0].offset == 0 && zip.cd_offset == 30 + 5 + 5, "local layout");
    ok(zip.cd_size == 46 + 5 && !zip.zip64, "central layout");
    ok(zip.size == 40 + 51 + 22, "size");

    len = ngx_http_darkroom_zip_local(&e[0], buf);
    ok(len == 35 && get32(buf) == 0x04034b50, "local header signature");
    ok(get16(buf + 4) == 20 && get16(buf + 6) == 0x0800
       && get16(buf + 8) == 0, "version 2.0, UTF-8 flag, stored");
    ok(get32(buf + 14) == 0x12345678 && get32(buf + 18) == 5
       && get32(buf + 22) == 5, "CRC and sizes");
    ok(get16(buf + 26) == 5 && get16(buf + 28) == 0
       && memcmp(buf + 30, "a.jpg", 5) == 0, "name, no extra");

    len = ngx_http_darkroom_zip_central(&e[0], buf);
    ok(len == 51 && get32(buf) == 0x02014b50 && get32(buf + 42) == 0,
       "central header, offset 0");
    ok(get32(buf + 38) == 0x81a40000U, "regular file 0644");

    len = ngx_http_darkroom_zip_end(&zip, buf);
    ok(len == 22 && get32(buf) == 0x06054b50 && get16(buf + 10) == 1
       && get32(buf + 12) == 51 && get32(buf + 16) == 40, "end record");

    /* an entry of 4 GiB and more: ZIP64 everywhere it matters */

    entry(&e[0], "big.tif", 5000000000ULL, 1);
    entry(&e[1], "after.jpg", 10, 2);
    ok(ngx_http_darkroom_zip_plan(e, 2, &zip) == 0, "plan ZIP64");
    ok(ngx_http_darkroom_zip_local_len(&e[0]) == 30 + 7 + 20,
       "ZIP64 local extra");
    ok(e[1].offset == 57 + 5000000000ULL, "offset past 4 GiB");
    len = ngx_http_darkroom_zip_local(&e[0], buf);
    ok(get16(buf + 4) == 45 && get32(buf + 18) == 0xffffffffU
       && get16(buf + 28) == 20 && get16(buf + 37) == 1
       && get64(buf + 41) == 5000000000ULL
       && get64(buf + 49) == 5000000000ULL, "local ZIP64 sizes");
    len = ngx_http_darkroom_zip_central(&e[1], buf);
    ok(len == 46 + 9 + 12 && get32(buf + 42) == 0xffffffffU
       && get16(buf + 30) == 12 && get64(buf + 46 + 9 + 4) == e[1].offset,
       "central ZIP64 offset only");
    ok(get32(buf + 20) == 10, "small entry keeps 32-bit sizes");
    ok(zip.zip64, "archive needs ZIP64 end records");
    len = ngx_http_darkroom_zip_end(&zip, buf);
    ok(len == 98 && get32(buf) == 0x06064b50 && get64(buf + 48)
       == zip.cd_offset && get32(buf + 56) == 0x07064b50
       && get64(buf + 64) == zip.cd_offset + zip.cd_size
       && get32(buf + 76) == 0x06054b50
       && get32(buf + 76 + 16) == 0xffffffffU, "ZIP64 end and locator");

    /* unique and safe names */

    entry(&e[0], "IMG_1.jpg", 1, 0);
    entry(&e[1], "img_1.JPG", 1, 0);
    entry(&e[2], "IMG_1.jpg", 1, 0);
    entry(&e[3], "../etc/passwd", 1, 0);
    entry(&e[4], "", 1, 0);
    entry(&e[5], "IMG_1 (2).jpg", 1, 0);
    names = ngx_http_darkroom_zip_unique(e, 6);
    ok(names != NULL, "unique");
    ok(name_is(&e[0], "IMG_1.jpg"), "first keeps its name");
    ok(name_is(&e[1], "img_1 (2).JPG"), "case-insensitive duplicate");
    ok(name_is(&e[2], "IMG_1 (3).jpg"), "third");
    ok(name_is(&e[3], "_etc_passwd"), "no directories, no leading dots");
    ok(name_is(&e[4], "file"), "empty name");
    ok(name_is(&e[5], "IMG_1 (2) (2).jpg"), "a name already made");
    free(names);

    /* names Windows refuses to create */

    entry(&e[0], "C:evil.exe", 1, 0);
    entry(&e[1], "a<b>c\"d|e?f*g.jpg", 1, 0);
    entry(&e[2], "CON", 1, 0);
    entry(&e[3], "nul.tar.gz", 1, 0);
    entry(&e[4], "photo. . ", 1, 0);
    entry(&e[5], "bad\xff\xfe utf8.jpg", 1, 0);
    names = ngx_http_darkroom_zip_unique(e, 6);
    ok(names != NULL, "unique, Windows");
    ok(name_is(&e[0], "C_evil.exe"), "no drive letter colon");
    ok(name_is(&e[1], "a_b_c_d_e_f_g.jpg"), "none of < > \" | ? *");
    ok(name_is(&e[2], "_CON"), "reserved device name");
    ok(name_is(&e[3], "_nul.tar.gz"), "reserved device name with extensions");
    ok(name_is(&e[4], "photo"), "no trailing dots or spaces");
    ok(name_is(&e[5], "bad__ utf8.jpg"), "bytes that are not UTF-8");
    free(names);

    entry(&e[0], "com1.jpg", 1, 0);
    entry(&e[1], "LPT9", 1, 0);
    entry(&e[2], "COM10.jpg", 1, 0);
    entry(&e[3], "console.jpg", 1, 0);
    entry(&e[4], "AUX .jpg", 1, 0);
    entry(&e[5], "...", 1, 0);
    names = ngx_http_darkroom_zip_unique(e, 6);
    ok(names != NULL, "unique, devices");
    ok(name_is(&e[0], "_com1.jpg"), "COM1, any case");
    ok(name_is(&e[1], "_LPT9"), "LPT9");
    ok(name_is(&e[2], "COM10.jpg"), "COM10 is a name");
    ok(name_is(&e[3], "console.jpg"), "console is a name");
    ok(name_is(&e[4], "_AUX .jpg"), "AUX with a trailing space");
    ok(name_is(&e[5], "file"), "only dots");
    free(names);

    /* the safe form itself */

    ok(safe_is("COM\xc2\xb9.jpg", "_COM\xc2\xb9.jpg"),
       "COM with superscript 1");
    ok(safe_is("lpt\xc2\xb3", "_lpt\xc2\xb3"), "LPT with superscript 3");
    ok(safe_is("COM\xc2\xb4", "COM\xc2\xb4"), "superscript 4 is a name");
    ok(safe_is("conin$.txt", "_conin$.txt"), "CONIN$");
    ok(safe_is("CONOUT$", "_CONOUT$"), "CONOUT$");
    ok(safe_is("a\x7f\x1f\tb", "a___b"), "control characters");
    ok(safe_is("\xc0\xaf.jpg", "__.jpg"), "an overlong \"/\" is not UTF-8");
    ok(safe_is("\xed\xa0\x80", "___"), "a surrogate is not UTF-8");
    ok(safe_is("\xf4\x90\x80\x80", "____"), "past U+10FFFF is not UTF-8");
    ok(safe_is("\xe2\x82", "__"), "a cut character");
    ok(safe_is("\xf0\x9f\x93\xb7 \xc3\xa9t\xc3\xa9.jpg",
               "\xf0\x9f\x93\xb7 \xc3\xa9t\xc3\xa9.jpg"), "UTF-8 is kept");
    ok(safe_is(" x ", " x"), "a leading space is allowed");
    ok(safe_is(".. .", "file"), "dots and spaces only");
    ok(long_name(), "a long name is cut, keeping its extension");
    ok(long_device(), "a long reserved name: \"_\" and still 200 units");

    printf("1..%d\n", n_test);

    return n_failed ? 1 : 0;
}
