/* fuzz-sources: src/mail/ngx_http_darkroom_template.c */

/*
 * darkroom: fuzz target for mail templates (ngx_http_darkroom_template.c).
 * Templates are the operator's, the data is the customer's (names,
 * addresses, gallery titles): both are fuzzed.
 *
 * Input: <template> [ "\0" <JSON data> ].  Without data, or when it does
 * not parse, a fixed object with nested objects and lists is used.  Each
 * input is rendered as text and as HTML; a result must be OK or one of
 * the documented errors, within NGX_HTTP_DARKROOM_TPL_MAX, NUL-terminated.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngx_http_darkroom_template.h"


static const char  default_data[] =
    "{\"name\":\"Ada <&> \\\"L\\\"\",\"n\":3,\"f\":1.5,\"t\":true,"
    "\"z\":0,\"e\":\"\",\"nil\":null,\"l\":[],"
    "\"items\":[{\"title\":\"a\",\"qty\":1},{\"title\":\"b\",\"qty\":2}],"
    "\"tags\":[\"x\",\"y\",\"z\"],\"o\":{\"a\":{\"b\":{\"c\":\"deep\"}}}}";


static void
check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "template: %s\n", what);
        abort();
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int             rc, html;
    char           *src, *out, err[256];
    size_t          len, out_len;
    cJSON          *json;
    const uint8_t  *nul;

    nul = memchr(data, '\0', size);
    len = nul ? (size_t) (nul - data) : size;

    json = NULL;

    if (nul) {
        json = cJSON_ParseWithLength((const char *) nul + 1,
                                     size - len - 1);
    }

    if (json == NULL) {
        json = cJSON_Parse(default_data);
        check(json != NULL, "default data does not parse");
    }

    /* an exact-size copy, not NUL-terminated, so an overread is caught */

    src = malloc(len ? len : 1);
    check(src != NULL, "no memory");
    memcpy(src, data, len);

    for (html = 0; html < 2; html++) {
        out = NULL;
        out_len = 0;
        err[0] = '\0';

        rc = ngx_http_darkroom_tpl_render(src, len, json, html, &out,
                                          &out_len, err, sizeof(err));

        if (rc == NGX_HTTP_DARKROOM_TPL_OK) {
            check(out != NULL, "OK without output");
            check(out_len <= NGX_HTTP_DARKROOM_TPL_MAX, "output too large");
            check(out[out_len] == '\0', "output not NUL-terminated");
            free(out);

        } else {
            check(rc == NGX_HTTP_DARKROOM_TPL_SYNTAX
                  || rc == NGX_HTTP_DARKROOM_TPL_TOOBIG
                  || rc == NGX_HTTP_DARKROOM_TPL_NOMEM,
                  "unknown result");
            check(memchr(err, '\0', sizeof(err)) != NULL,
                  "error message not NUL-terminated");
        }
    }

    free(src);
    cJSON_Delete(json);

    return 0;
}
