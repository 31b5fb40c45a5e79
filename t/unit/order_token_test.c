
/*
 * darkroom: the order status token (ngx_http_darkroom_sign_order_token),
 * as a command for t/510_order_token_unit.t: prints the token of each
 * "key seed" pair of arguments on a line, or "error".
 */


#include <stdio.h>
#include <string.h>

#include "ngx_http_darkroom_sign.h"


int
main(int argc, char **argv)
{
    int   i;
    char  token[NGX_HTTP_DARKROOM_ORDER_TOKEN_LEN + 1];

    for (i = 1; i + 1 < argc; i += 2) {
        memset(token, 'x', sizeof(token));

        if (!ngx_http_darkroom_sign_order_token(
                 (const unsigned char *) argv[i], strlen(argv[i]),
                 (const unsigned char *) argv[i + 1], strlen(argv[i + 1]),
                 token))
        {
            printf("error\n");
            continue;
        }

        printf("%s\n", token);
    }

    return 0;
}
