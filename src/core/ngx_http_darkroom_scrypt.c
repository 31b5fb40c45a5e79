
/*
 * darkroom: password hashes (gallery passwords and PINs, console accounts).
 *
 *   scrypt$<log2 N>$<r>$<p>$<salt>$<key>      (salt and key base64url)
 *
 * Hashed and verified in pool threads (the gallery admin and client APIs,
 * the console's logins and accounts), so nothing here touches a pool or a
 * log.
 */


#include "ngx_http_darkroom.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>


#define NGX_HTTP_DARKROOM_SCRYPT_LOG_N       14
#define NGX_HTTP_DARKROOM_SCRYPT_R           8
#define NGX_HTTP_DARKROOM_SCRYPT_P           1
#define NGX_HTTP_DARKROOM_SCRYPT_SALT        16
#define NGX_HTTP_DARKROOM_SCRYPT_KEY         32
#define NGX_HTTP_DARKROOM_SCRYPT_MAXMEM      (64 * 1024 * 1024)

/* room a hash is written in, at the least (it takes 81 bytes) */
#define NGX_HTTP_DARKROOM_SCRYPT_OUT         128

/* the most a stored salt or key may decode to */
#define NGX_HTTP_DARKROOM_SCRYPT_FIELD_MAX   64


ngx_int_t
ngx_http_darkroom_scrypt_hash(const u_char *pw, size_t len,
    u_char *out, size_t size)
{
    u_char     *p;
    ngx_str_t   src, dst;
    u_char      salt[NGX_HTTP_DARKROOM_SCRYPT_SALT];
    u_char      key[NGX_HTTP_DARKROOM_SCRYPT_KEY];

    if (size < NGX_HTTP_DARKROOM_SCRYPT_OUT) {
        return NGX_ERROR;
    }

    if (RAND_bytes(salt, sizeof(salt)) != 1) {
        return NGX_ERROR;
    }

    if (EVP_PBE_scrypt((const char *) pw, len, salt, sizeof(salt),
                       (uint64_t) 1 << NGX_HTTP_DARKROOM_SCRYPT_LOG_N,
                       NGX_HTTP_DARKROOM_SCRYPT_R, NGX_HTTP_DARKROOM_SCRYPT_P,
                       NGX_HTTP_DARKROOM_SCRYPT_MAXMEM, key, sizeof(key))
        != 1)
    {
        return NGX_ERROR;
    }

    p = ngx_sprintf(out, "scrypt$%d$%d$%d$", NGX_HTTP_DARKROOM_SCRYPT_LOG_N,
                    NGX_HTTP_DARKROOM_SCRYPT_R, NGX_HTTP_DARKROOM_SCRYPT_P);

    src.data = salt;
    src.len = sizeof(salt);
    dst.data = p;
    ngx_encode_base64url(&dst, &src);
    p += dst.len;
    *p++ = '$';

    src.data = key;
    src.len = sizeof(key);
    dst.data = p;
    ngx_encode_base64url(&dst, &src);
    p += dst.len;
    *p = '\0';

    ngx_explicit_memzero(key, sizeof(key));

    return NGX_OK;
}


/* 1: the password matches, 0: it does not, NGX_ERROR: a bad hash */

ngx_int_t
ngx_http_darkroom_scrypt_verify(const u_char *pw, size_t len,
    const u_char *stored)
{
    u_char      *f[6], *end;
    ngx_int_t    logn, r, p, match;
    ngx_str_t    src, salt, want;
    ngx_uint_t   i;
    u_char       sbuf[NGX_HTTP_DARKROOM_SCRYPT_FIELD_MAX],
                 wbuf[NGX_HTTP_DARKROOM_SCRYPT_FIELD_MAX],
                 key[NGX_HTTP_DARKROOM_SCRYPT_FIELD_MAX];

    end = (u_char *) stored + ngx_strlen(stored);
    f[0] = (u_char *) stored;

    for (i = 1; i < 6; i++) {
        f[i] = ngx_strlchr(f[i - 1], end, '$');
        if (f[i] == NULL) {
            return NGX_ERROR;
        }

        f[i]++;
    }

    if (f[1] - f[0] != 7 || ngx_strncmp(f[0], "scrypt$", 7) != 0) {
        return NGX_ERROR;
    }

    logn = ngx_atoi(f[1], f[2] - f[1] - 1);
    r = ngx_atoi(f[2], f[3] - f[2] - 1);
    p = ngx_atoi(f[3], f[4] - f[3] - 1);

    if (logn < 10 || logn > 20 || r < 1 || r > 32 || p < 1 || p > 16) {
        return NGX_ERROR;
    }

    src.data = f[4];
    src.len = f[5] - f[4] - 1;

    if (src.len == 0 || ngx_base64_decoded_length(src.len) > sizeof(sbuf)) {
        return NGX_ERROR;
    }

    salt.data = sbuf;
    if (ngx_decode_base64url(&salt, &src) != NGX_OK) {
        return NGX_ERROR;
    }

    src.data = f[5];
    src.len = end - f[5];

    if (src.len == 0 || ngx_base64_decoded_length(src.len) > sizeof(wbuf)) {
        return NGX_ERROR;
    }

    want.data = wbuf;
    if (ngx_decode_base64url(&want, &src) != NGX_OK || want.len < 16) {
        return NGX_ERROR;
    }

    if (EVP_PBE_scrypt((const char *) pw, len, salt.data, salt.len,
                       (uint64_t) 1 << logn, r, p,
                       NGX_HTTP_DARKROOM_SCRYPT_MAXMEM * 4, key, want.len)
        != 1)
    {
        return NGX_ERROR;
    }

    match = (CRYPTO_memcmp(key, want.data, want.len) == 0);

    ngx_explicit_memzero(key, sizeof(key));

    return match;
}
