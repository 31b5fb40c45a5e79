/*
 * darkroom: unit tests of the mail template renderer (TAP).
 */

#include "ngx_http_darkroom_template.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static int  n;
static int  failed;


static void
check(const char *name, const char *tpl, const char *json, int html,
    int want_rc, const char *want)
{
    int     rc, ok;
    char   *out, err[200];
    size_t  len;
    cJSON  *data;

    data = cJSON_Parse(json);
    rc = ngx_http_darkroom_tpl_render(tpl, strlen(tpl), data, html, &out,
                                      &len, err, sizeof(err));

    if (want_rc != 0) {
        ok = (rc == want_rc && out == NULL
              && (want == NULL || strstr(err, want) != NULL));
    } else {
        ok = (rc == 0 && out && strcmp(out, want) == 0 && len == strlen(want));
    }

    printf("%sok %d - %s\n", ok ? "" : "not ", ++n, name);

    if (!ok) {
        failed++;
        printf("# rc %d, got \"%s\", err \"%s\", want \"%s\"\n", rc,
               out ? out : "(null)", err, want ? want : "");
    }

    free(out);
    cJSON_Delete(data);
}


int
main(void)
{
    char    big[64];
    size_t  i;

    check("plain text", "Hello", "{}", 1, 0, "Hello");
    check("empty template", "", "{}", 1, 0, "");
    check("variable", "Hi {{name}}!", "{\"name\":\"Ada\"}", 1, 0, "Hi Ada!");
    check("spaces in tag", "Hi {{ name }}!", "{\"name\":\"Ada\"}", 1, 0,
          "Hi Ada!");
    check("missing is empty", "[{{nope}}]", "{}", 1, 0, "[]");
    check("html escaped", "{{t}}", "{\"t\":\"<script>alert('x&y')</script>\"}",
          1, 0, "&lt;script&gt;alert(&#39;x&amp;y&#39;)&lt;/script&gt;");
    check("quote escaped", "<a title=\"{{t}}\">", "{\"t\":\"a\\\"b\"}", 1, 0,
          "<a title=\"a&quot;b\">");
    check("text not escaped", "{{t}}", "{\"t\":\"<b>&\"}", 0, 0, "<b>&");
    check("triple not escaped", "{{{t}}}", "{\"t\":\"<b>\"}", 1, 0, "<b>");
    check("dotted path", "{{order.ref}}", "{\"order\":{\"ref\":\"DR-1\"}}",
          1, 0, "DR-1");
    check("dotted path missing", "[{{order.x.y}}]", "{\"order\":{}}", 1, 0,
          "[]");
    check("numbers", "{{a}} {{b}} {{c}}", "{\"a\":4500,\"b\":-3,\"c\":1.5}",
          1, 0, "4500 -3 1.5");
    /* found by t/fuzz/template: a number beyond long long's range was
     * converted before its range was checked (undefined behaviour) */
    check("huge number", "{{a}} {{b}}",
          "{\"a\":8.88889e+31,\"b\":-1e300}", 1, 0, "8.88889e+31 -1e+300");
    check("bool and null", "{{a}} {{b}} [{{c}}]",
          "{\"a\":true,\"b\":false,\"c\":null}", 1, 0, "true false []");
    check("list section",
          "{{#items}}<li>{{title}} x{{quantity}}</li>{{/items}}",
          "{\"items\":[{\"title\":\"A\",\"quantity\":1},"
          "{\"title\":\"<B>\",\"quantity\":2}]}", 1, 0,
          "<li>A x1</li><li>&lt;B&gt; x2</li>");
    check("outer names inside a section",
          "{{#items}}{{title}} {{currency}};{{/items}}",
          "{\"currency\":\"GBP\",\"items\":[{\"title\":\"A\"}]}", 1, 0,
          "A GBP;");
    check("inner name wins", "{{#o}}{{n}}{{/o}} {{n}}",
          "{\"n\":\"outer\",\"o\":{\"n\":\"inner\"}}", 1, 0, "inner outer");
    check("dot in a list of strings", "{{#l}}[{{.}}]{{/l}}",
          "{\"l\":[\"a\",\"<\"]}", 1, 0, "[a][&lt;]");
    check("object section", "{{#s}}{{name}}{{/s}}",
          "{\"s\":{\"name\":\"Ada\"}}", 1, 0, "Ada");
    check("false section skipped", "a{{#s}}X{{/s}}b", "{\"s\":false}", 1, 0,
          "ab");
    check("missing section skipped", "a{{#s}}X{{/s}}b", "{}", 1, 0, "ab");
    check("empty list skipped", "a{{#s}}X{{/s}}b", "{\"s\":[]}", 1, 0, "ab");
    check("zero and empty string skipped", "{{#z}}X{{/z}}{{#e}}Y{{/e}}",
          "{\"z\":0,\"e\":\"\"}", 1, 0, "");
    check("string section once", "{{#s}}has {{s}}{{/s}}", "{\"s\":\"x\"}",
          1, 0, "has x");
    check("inverted", "{{^s}}none{{/s}}{{^t}}never{{/t}}",
          "{\"s\":[],\"t\":1}", 1, 0, "none");
    check("nested sections",
          "{{#a}}{{#b}}{{v}}{{/b}}|{{/a}}",
          "{\"a\":[{\"b\":[{\"v\":1},{\"v\":2}]},{\"b\":[]}]}", 1, 0,
          "12||");
    check("comment", "a{{! a note }}b", "{}", 1, 0, "ab");
    check("standalone lines vanish",
          "Items:\n{{#items}}\n- {{t}}\n{{/items}}\nEnd\n",
          "{\"items\":[{\"t\":\"a\"},{\"t\":\"b\"}]}", 0, 0,
          "Items:\n- a\n- b\nEnd\n");
    check("indented standalone", "x\n  {{#s}}  \ny\n  {{/s}}\nz",
          "{\"s\":true}", 0, 0, "x\ny\nz");
    check("standalone at end without newline", "x\n{{! c }}", "{}", 0, 0,
          "x\n");
    check("inline section keeps its line", "a {{#s}}b{{/s}} c\n",
          "{\"s\":true}", 0, 0, "a b c\n");
    check("CRLF standalone", "a\r\n{{#s}}\r\nb\r\n{{/s}}\r\n",
          "{\"s\":true}", 0, 0, "a\r\nb\r\n");
    check("lone braces are text", "a { b } {c} }}", "{}", 1, 0,
          "a { b } {c} }}");

    check("unclosed section", "{{#a}}x", "{}", 1, -1, "unclosed section");
    check("unclosed section checked when skipped",
          "{{#a}}{{#b}}{{/a}}", "{}", 1, -1, "unexpected closing tag");
    check("unclosed tag", "x\n{{name", "{}", 1, -1, "unclosed tag on line 2");
    check("wrong closing tag", "{{#a}}{{/b}}", "{\"a\":1}", 1, -1,
          "unexpected closing tag");
    check("stray closing tag", "{{/a}}", "{}", 1, -1,
          "unexpected closing tag");
    check("bad name", "{{a b}}", "{}", 1, -1, "bad name");
    check("empty tag", "{{}}", "{}", 1, -1, "empty tag");
    check("triple closed by two", "{{{a}}", "{}", 1, -1, "closed by");

    /* 17 nested sections are refused, even when skipped */
    {
        char  deep[512];

        deep[0] = '\0';
        for (i = 0; i < 17; i++) {
            strcat(deep, "{{#a}}");
        }
        for (i = 0; i < 17; i++) {
            strcat(deep, "{{/a}}");
        }

        check("nesting limit", deep, "{}", 1, -1, "nested too deeply");
    }

    /* output limit */
    {
        char   *json, *p;
        size_t  len = NGX_HTTP_DARKROOM_TPL_MAX / 8 + 10;

        json = malloc(len * 4 + 32);
        p = json;
        p += sprintf(p, "{\"l\":[");
        for (i = 0; i < len; i++) {
            p += sprintf(p, "%s1", i ? "," : "");
        }
        sprintf(p, "]}");
        snprintf(big, sizeof(big), "{{#l}}12345678{{/l}}");
        check("output limit", big, json, 1, -3, "too large");
        free(json);
    }

    printf("1..%d\n", n);

    return failed ? 1 : 0;
}
