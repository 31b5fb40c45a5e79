
/*
 * darkroom: the console API (accounts, sessions, API keys, the audit log,
 * the dashboard), for the pages in www/admin/.
 *
 *   ngx_http_darkroom_console_module.c  directives, routes, the answers
 *   ngx_http_darkroom_console.c         the work, in pool threads
 */


#ifndef _NGX_HTTP_DARKROOM_CONSOLE_H_INCLUDED_
#define _NGX_HTTP_DARKROOM_CONSOLE_H_INCLUDED_


#include "ngx_http_darkroom.h"


typedef enum {
    NGX_HTTP_DARKROOM_CONSOLE_NONE = 0,
    NGX_HTTP_DARKROOM_CONSOLE_LOGIN,
    NGX_HTTP_DARKROOM_CONSOLE_RESET,
    NGX_HTTP_DARKROOM_CONSOLE_RESET_CONFIRM,
    NGX_HTTP_DARKROOM_CONSOLE_LOGOUT,            /* the first needing auth */
    NGX_HTTP_DARKROOM_CONSOLE_LOGOUT_ALL,
    NGX_HTTP_DARKROOM_CONSOLE_SESSION,
    NGX_HTTP_DARKROOM_CONSOLE_DASHBOARD,
    NGX_HTTP_DARKROOM_CONSOLE_ACCOUNTS,          /* the first owner only */
    NGX_HTTP_DARKROOM_CONSOLE_ACCOUNT_CREATE,
    NGX_HTTP_DARKROOM_CONSOLE_ACCOUNT_UPDATE,
    NGX_HTTP_DARKROOM_CONSOLE_KEYS,
    NGX_HTTP_DARKROOM_CONSOLE_KEY_CREATE,
    NGX_HTTP_DARKROOM_CONSOLE_KEY_REVOKE,
    NGX_HTTP_DARKROOM_CONSOLE_AUDIT,
    NGX_HTTP_DARKROOM_CONSOLE_AUDIT_CSV
} ngx_http_darkroom_console_route_e;


#define NGX_HTTP_DARKROOM_CONSOLE_PW_MIN   10
#define NGX_HTTP_DARKROOM_CONSOLE_PW_MAX   1024


typedef struct {
    ngx_http_darkroom_console_route_e   route;
    char                               *body;     /* JSON, no password */
    char                               *email;
    char                               *password;
    char                               *token;    /* a reset's */
    char                               *arg[3];
    char                               *ip;

    /* made in the thread */
    u_char                              secret[48];   /* the cookie's */
    char                                hash[65];
    ngx_int_t                           wait;         /* 429: seconds */
    unsigned                            cookie_set:1;
    unsigned                            cookie_clear:1;
    unsigned                            csv:1;
} ngx_http_darkroom_console_t;


extern ngx_module_t  ngx_http_darkroom_console_module;


void ngx_http_darkroom_console_work(ngx_http_darkroom_task_t *t);


#endif /* _NGX_HTTP_DARKROOM_CONSOLE_H_INCLUDED_ */
