/* Byte encodings: gzip (RFC 1952, through zlib) and standard base64 (RFC 4648). A run record
 * is the gzip of its JSON, and a Secret carries it base64-encoded; kubeconfig's *-data fields
 * are base64 too. */
#ifndef MS_CODEC_H
#define MS_CODEC_H

#include <stddef.h>

enum {
    MS_CODEC_ENOMEM = -1,  /* out of memory */
    MS_CODEC_CORRUPT = -2, /* not valid gzip / base64, or cut short */
    MS_CODEC_TOOBIG = -3,  /* the output would pass the caller's limit */
};

/* Compresses data[0..len) into one gzip member (mtime 0: the same input gives the same bytes) at
 * level 0-9, or -1 for zlib's default. Returns 0 with *out (owns; malloc'd, free it) and
 * *outlen set, or MS_CODEC_ENOMEM. */
int ms_gzip(const void *data, size_t len, int level, char **out, size_t *outlen);

/* Decompresses one gzip member that must fill data[0..len) exactly (bytes after it are an
 * error), producing at most max bytes. Returns 0 with *out (owns; NUL-terminated past
 * *outlen) and *outlen set, or MS_CODEC_CORRUPT / MS_CODEC_TOOBIG / MS_CODEC_ENOMEM with *msg
 * (a static string) saying why. */
int ms_gunzip(const void *data, size_t len, size_t max, char **out, size_t *outlen,
              const char **msg);

/* Standard, padded base64 of data[0..len), NUL-terminated (owns; free it), or NULL when out of
 * memory. */
char *ms_base64_encode(const void *data, size_t len);

/* Decodes standard, padded base64 as Go does (CR and LF are ignored). Returns 0 with *out
 * (owns; NUL-terminated past *outlen) and *outlen set, MS_CODEC_CORRUPT when the text is not
 * valid base64, or MS_CODEC_ENOMEM. */
int ms_base64_decode(const char *text, size_t len, char **out, size_t *outlen);

#endif
