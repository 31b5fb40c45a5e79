
/*
 * darkroom: mail templates, the pure part.
 *
 * A small Mustache dialect rendered against cJSON data, with no nginx, no
 * I/O and no global state, so it runs in pool threads and in the unit
 * tests of t/unit/ alike:
 *
 *     {{name}}          the value, HTML-escaped when rendering HTML
 *     {{{name}}}        the value, never escaped
 *     {{a.b.c}}         a path into objects
 *     {{.}}             the current item (in a section over strings)
 *     {{#name}}..{{/name}}  repeated for each item of a list, entered once
 *                       for an object or any other true value, skipped
 *                       for a missing value, null, false, 0, "" or []
 *     {{^name}}..{{/name}}  rendered only when {{#name}} would be skipped
 *     {{! comment }}
 *
 * A name is looked up in the innermost section first, then outwards.
 * Section, inverted, closing and comment tags alone on their line take
 * the line with them, so plain-text templates stay readable.  Strings are
 * written as they are, numbers as integers when whole, true and false as
 * words, null as nothing.
 */


#ifndef _NGX_HTTP_DARKROOM_TEMPLATE_H_INCLUDED_
#define _NGX_HTTP_DARKROOM_TEMPLATE_H_INCLUDED_


#include <stddef.h>

#include <cJSON.h>


#define NGX_HTTP_DARKROOM_TPL_OK        0
#define NGX_HTTP_DARKROOM_TPL_SYNTAX   -1
#define NGX_HTTP_DARKROOM_TPL_NOMEM    -2
#define NGX_HTTP_DARKROOM_TPL_TOOBIG   -3

#define NGX_HTTP_DARKROOM_TPL_DEPTH     16            /* nested sections */
#define NGX_HTTP_DARKROOM_TPL_MAX      (1024 * 1024)  /* output bytes */


/*
 * Renders src[0..len) against data into a malloc'd, NUL-terminated *out
 * (its length in *out_len).  html: escape {{name}} for HTML.  On a syntax
 * error nothing is returned and err (when given) says what and on which
 * line.  Rendering with an empty object checks a template's syntax fully:
 * skipped sections are still parsed.
 */
int ngx_http_darkroom_tpl_render(const char *src, size_t len,
    const cJSON *data, int html, char **out, size_t *out_len, char *err,
    size_t err_len);

/* writes s[0..len) HTML-escaped (& < > " ') to dst, which has room for
 * 6 * len bytes; returns the length written */
size_t ngx_http_darkroom_tpl_escape(char *dst, const char *s, size_t len);


#endif /* _NGX_HTTP_DARKROOM_TEMPLATE_H_INCLUDED_ */
