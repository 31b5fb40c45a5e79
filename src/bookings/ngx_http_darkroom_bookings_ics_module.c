
/*
 * darkroom: bookings' calendar feed directive, in a module of its own
 * until the bookings module (ngx_http_darkroom_bookings_module.c) takes
 * its command; the feed is ngx_http_darkroom_bookings_feed.c.
 */


#include "ngx_http_darkroom.h"


char *ngx_http_darkroom_bookings_feed(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


static ngx_command_t  ngx_http_darkroom_bookings_ics_commands[] = {

    { ngx_string("darkroom_bookings_feed"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_darkroom_bookings_feed,
      0,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_darkroom_bookings_ics_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */
    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */
    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */
    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_darkroom_bookings_ics_module = {
    NGX_MODULE_V1,
    &ngx_http_darkroom_bookings_ics_module_ctx, /* module context */
    ngx_http_darkroom_bookings_ics_commands, /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};
