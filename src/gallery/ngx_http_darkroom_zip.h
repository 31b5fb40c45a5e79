
/*
 * darkroom: streaming ZIP archives, the pure part.
 *
 * Nothing here knows about nginx: the ZIP handler of galleries plans an
 * archive from the sizes and CRC-32s kept in the database, so its exact
 * length is known before the first byte, then sends the headers written
 * here between the files' own bytes (sendfile).  Entries are stored, not
 * compressed; names are UTF-8 (general purpose flag bit 11); ZIP64 records
 * are written where an entry, an offset or the entry count needs them
 * (APPNOTE.TXT 6.3.x, sections 4.3.9, 4.3.14, 4.4.x, 4.5.3).
 */


#ifndef _NGX_HTTP_DARKROOM_ZIP_H_INCLUDED_
#define _NGX_HTTP_DARKROOM_ZIP_H_INCLUDED_


#include <stddef.h>
#include <stdint.h>
#include <time.h>


#define NGX_HTTP_DARKROOM_ZIP_NAME_MAX    1024     /* bytes, per entry */
#define NGX_HTTP_DARKROOM_ZIP_LOCAL_MAX   (30 + 20 \
                                           + NGX_HTTP_DARKROOM_ZIP_NAME_MAX)
#define NGX_HTTP_DARKROOM_ZIP_CENTRAL_MAX (46 + 28 \
                                           + NGX_HTTP_DARKROOM_ZIP_NAME_MAX)
#define NGX_HTTP_DARKROOM_ZIP_END_MAX     (56 + 20 + 22)

/* a safe name: at most 200 UTF-16 units (Windows allows 255 per name) */
#define NGX_HTTP_DARKROOM_ZIP_SAFE_UNITS  200
#define NGX_HTTP_DARKROOM_ZIP_SAFE_MAX    (3 * NGX_HTTP_DARKROOM_ZIP_SAFE_UNITS\
                                           + 1)


typedef struct {
    const unsigned char          *name;       /* UTF-8, not NUL-terminated */
    size_t                        name_len;
    uint64_t                      size;       /* stored: also the data size */
    uint32_t                      crc32;
    uint16_t                      dos_time;
    uint16_t                      dos_date;
    uint64_t                      offset;     /* of the local header: plan */
} ngx_http_darkroom_zip_entry_t;


typedef struct {
    uint64_t                      entries;
    uint64_t                      cd_offset;  /* central directory */
    uint64_t                      cd_size;
    uint64_t                      size;       /* the whole archive */
    unsigned                      zip64:1;    /* ZIP64 end records */
} ngx_http_darkroom_zip_t;


/*
 * Sets every entry's offset and the archive's layout.  Returns 0, or -1 if
 * a name is empty or longer than NGX_HTTP_DARKROOM_ZIP_NAME_MAX.
 */
int ngx_http_darkroom_zip_plan(ngx_http_darkroom_zip_entry_t *e, size_t n,
    ngx_http_darkroom_zip_t *zip);

/* the local file header (with its ZIP64 extra field when needed) */
size_t ngx_http_darkroom_zip_local_len(const ngx_http_darkroom_zip_entry_t *e);
size_t ngx_http_darkroom_zip_local(const ngx_http_darkroom_zip_entry_t *e,
    unsigned char *buf);

/* the central directory header of an entry */
size_t ngx_http_darkroom_zip_central_len(
    const ngx_http_darkroom_zip_entry_t *e);
size_t ngx_http_darkroom_zip_central(const ngx_http_darkroom_zip_entry_t *e,
    unsigned char *buf);

/* the ZIP64 end record and locator when needed, then the end record */
size_t ngx_http_darkroom_zip_end_len(const ngx_http_darkroom_zip_t *zip);
size_t ngx_http_darkroom_zip_end(const ngx_http_darkroom_zip_t *zip,
    unsigned char *buf);

/* MS-DOS date and time of a unix time, in UTC; 1980-01-01 at the least */
void ngx_http_darkroom_zip_dos_time(time_t t, uint16_t *dos_time,
    uint16_t *dos_date);

/*
 * The safe form of an entry name, one that Windows, macOS and Linux can all
 * create as a file in the folder extracted to (Microsoft's "Naming Files,
 * Paths, and Namespaces"):
 *   - every character Windows refuses, < > : " / \ | ? * and the controls
 *     0x00-0x1f and 0x7f, becomes "_", and so does every byte that is not
 *     part of valid UTF-8 (the names are flagged UTF-8);
 *   - leading dots are dropped (no hidden files, no ".."), trailing dots
 *     and spaces too (Windows drops them itself, making two names one);
 *   - a reserved device name (CON, PRN, AUX, NUL, COM0-9, LPT0-9, COM and
 *     LPT with superscript 1-3, CONIN$, CONOUT$), alone or before a dot,
 *     in any case and with trailing spaces, gets a "_" in front;
 *   - a name longer than NGX_HTTP_DARKROOM_ZIP_SAFE_UNITS UTF-16 units is
 *     cut at a character boundary, keeping an extension of up to 16 bytes;
 *   - an empty name becomes "file".
 * out has room for min(len, NGX_HTTP_DARKROOM_ZIP_SAFE_MAX) + 5 bytes;
 * returns the length written, from 1 to NGX_HTTP_DARKROOM_ZIP_SAFE_MAX.
 * Applying it to its own result changes nothing.
 */
size_t ngx_http_darkroom_zip_safe_name(const unsigned char *name, size_t len,
    unsigned char *out);

/*
 * Makes the entries' names safe (above) and unique: a name already used
 * (ASCII case-insensitively, as Windows and macOS compare) gets " (2)",
 * " (3)" ... before its extension.  The new names live in one malloc'd
 * block returned (free it after the entries); NULL on no memory.
 */
unsigned char *ngx_http_darkroom_zip_unique(
    ngx_http_darkroom_zip_entry_t *e, size_t n);

/* CRC-32 (ISO 3309, as zip and zlib), to be continued from crc */
uint32_t ngx_http_darkroom_zip_crc32(uint32_t crc, const unsigned char *p,
    size_t len);


#endif /* _NGX_HTTP_DARKROOM_ZIP_H_INCLUDED_ */
