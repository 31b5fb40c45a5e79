
/*
 * darkroom: what a client gallery sells, for its listing (GET <slug>):
 * "gallery": {"shop": {"currency", "sheet", "products": [...]}}, or null
 * when the gallery has no price sheet.  The products a photo prints as
 * come with the photos (gallery_photos_listing(): gallery_photo_products()
 * once per pixel size); the print checks are SQL's
 * (sql/functions/prints.sql).
 */


#include "ngx_http_darkroom_gallery_req.h"


ngx_int_t
ngx_http_darkroom_gallery_shop(ngx_http_darkroom_task_t *t,
    ngx_http_darkroom_gallery_req_t *g, cJSON *gallery)
{
    char         id[NGX_INT64_LEN + 1];
    PGresult    *res;
    const char  *params[2];

    snprintf(id, sizeof(id), "%llu", (unsigned long long) g->id);
    params[0] = id;
    params[1] = g->currency;

    res = ngx_http_darkroom_db_exec(&t->db,
                                    "SELECT gallery_shop_json($1, $2)",
                                    2, params, &t->err);
    if (res == NULL) {
        return NGX_ERROR;
    }

    if (PQntuples(res) != 1 || PQnfields(res) != 1) {
        PQclear(res);
        ngx_http_darkroom_error_set(&t->err, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                    "internal_error", "Please retry.");
        return NGX_ERROR;
    }

    if (PQgetisnull(res, 0, 0)) {
        cJSON_AddNullToObject(gallery, "shop");

    } else {
        cJSON_AddRawToObject(gallery, "shop", PQgetvalue(res, 0, 0));
    }

    PQclear(res);

    return NGX_OK;
}


void
ngx_http_darkroom_gallery_photo_prints(cJSON *photo, const char *width,
    const char *height, const char *products)
{
    if (width && height) {
        cJSON_AddRawToObject(photo, "width", width);
        cJSON_AddRawToObject(photo, "height", height);

    } else {
        cJSON_AddNullToObject(photo, "width");
        cJSON_AddNullToObject(photo, "height");
    }

    cJSON_AddRawToObject(photo, "products", products);
}
