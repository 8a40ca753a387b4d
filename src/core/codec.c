/* gzip through zlib, and base64 (see codec.h). Both work on whole buffers: a run record is at
 * most a Secret's 1 MiB compressed. */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/codec.h"

/* zlib counts in uInt: a buffer larger than that is fed in pieces. */
static uInt piece(size_t n)
{
    return n > UINT_MAX ? UINT_MAX : (uInt)n;
}

/* Hands zlib the next piece of the input once it has used the last one. */
static void feed(z_stream *z, const unsigned char **in, size_t *in_left)
{
    if (z->avail_in == 0 && *in_left > 0) {
        z->next_in = (Bytef *)*in;
        z->avail_in = piece(*in_left);
        *in += z->avail_in;
        *in_left -= z->avail_in;
    }
}

int ms_gzip(const void *data, size_t len, int level, char **out, size_t *outlen)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    /* windowBits 15 + 16: a gzip wrapper (no name, mtime 0) around the deflate stream */
    if (deflateInit2(&z, level < 0 || level > 9 ? Z_DEFAULT_COMPRESSION : level, Z_DEFLATED,
                     15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return MS_CODEC_ENOMEM;
    size_t cap = deflateBound(&z, (uLong)len), used = 0;
    char *buf = malloc(cap);
    if (buf == NULL) {
        deflateEnd(&z);
        return MS_CODEC_ENOMEM;
    }
    const unsigned char *in = data;
    size_t in_left = len;
    for (;;) {
        feed(&z, &in, &in_left);
        if (used == cap) { /* past deflateBound: not expected, but never written past the end */
            char *more = realloc(buf, cap * 2);
            if (more == NULL) {
                free(buf);
                deflateEnd(&z);
                return MS_CODEC_ENOMEM;
            }
            buf = more;
            cap *= 2;
        }
        z.next_out = (Bytef *)buf + used;
        z.avail_out = piece(cap - used);
        int rc = deflate(&z, in_left == 0 ? Z_FINISH : Z_NO_FLUSH);
        used = (size_t)((char *)z.next_out - buf);
        if (rc == Z_STREAM_END)
            break;
        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            free(buf);
            deflateEnd(&z);
            return MS_CODEC_ENOMEM;
        }
    }
    deflateEnd(&z);
    *out = buf;
    *outlen = used;
    return 0;
}

int ms_gunzip(const void *data, size_t len, size_t max, char **out, size_t *outlen,
              const char **msg)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 15 + 16) != Z_OK) { /* gzip only: zlib or raw deflate is corrupt */
        *msg = "out of memory";
        return MS_CODEC_ENOMEM;
    }
    /* one byte past max tells that the output would pass it */
    size_t limit = max == SIZE_MAX ? max - 1 : max + 1;
    size_t cap = len < limit / 4 ? len * 4 + 64 : limit, used = 0;
    if (cap > limit)
        cap = limit;
    char *buf = malloc(cap + 1);
    int rc = 0;
    if (buf == NULL) {
        *msg = "out of memory";
        rc = MS_CODEC_ENOMEM;
        goto fail;
    }
    const unsigned char *in = data;
    size_t in_left = len;
    for (;;) {
        feed(&z, &in, &in_left);
        if (used == cap) {
            if (cap >= limit) {
                *msg = "the data would decompress to more than the limit";
                rc = MS_CODEC_TOOBIG;
                goto fail;
            }
            size_t grown = cap > limit / 2 ? limit : cap * 2;
            char *more = realloc(buf, grown + 1);
            if (more == NULL) {
                *msg = "out of memory";
                rc = MS_CODEC_ENOMEM;
                goto fail;
            }
            buf = more;
            cap = grown;
        }
        z.next_out = (Bytef *)buf + used;
        z.avail_out = piece(cap - used);
        int zr = inflate(&z, Z_NO_FLUSH);
        used = (size_t)((char *)z.next_out - buf);
        if (used > max) {
            *msg = "the data would decompress to more than the limit";
            rc = MS_CODEC_TOOBIG;
            goto fail;
        }
        if (zr == Z_STREAM_END)
            break;
        if (zr == Z_MEM_ERROR) {
            *msg = "out of memory";
            rc = MS_CODEC_ENOMEM;
            goto fail;
        }
        if (zr == Z_DATA_ERROR || zr == Z_NEED_DICT || zr == Z_STREAM_ERROR) {
            *msg = z.msg ? z.msg : "invalid gzip data"; /* zlib's messages are static strings */
            rc = MS_CODEC_CORRUPT;
            goto fail;
        }
        /* Z_OK or Z_BUF_ERROR: with input and room left it goes on; with no input left the
         * stream was cut short */
        if (z.avail_in == 0 && in_left == 0 && z.avail_out > 0) {
            *msg = "unexpected end of the gzip data";
            rc = MS_CODEC_CORRUPT;
            goto fail;
        }
    }
    if (z.avail_in > 0 || in_left > 0) {
        *msg = "bytes after the end of the gzip data";
        rc = MS_CODEC_CORRUPT;
        goto fail;
    }
    inflateEnd(&z);
    buf[used] = '\0';
    *out = buf;
    *outlen = used;
    return 0;
fail:
    free(buf);
    inflateEnd(&z);
    return rc;
}

static const char ABC[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *ms_base64_encode(const void *data, size_t len)
{
    char *out = malloc((len + 2) / 3 * 4 + 1);
    if (out == NULL)
        return NULL;
    const unsigned char *p = data;
    size_t o = 0, i = 0;
    for (; i + 2 < len; i += 3) {
        out[o++] = ABC[p[i] >> 2];
        out[o++] = ABC[(p[i] & 3) << 4 | p[i + 1] >> 4];
        out[o++] = ABC[(p[i + 1] & 15) << 2 | p[i + 2] >> 6];
        out[o++] = ABC[p[i + 2] & 63];
    }
    if (i < len) {
        out[o++] = ABC[p[i] >> 2];
        if (i + 1 < len) {
            out[o++] = ABC[(p[i] & 3) << 4 | p[i + 1] >> 4];
            out[o++] = ABC[(p[i + 1] & 15) << 2];
        } else {
            out[o++] = ABC[(p[i] & 3) << 4];
            out[o++] = '=';
        }
        out[o++] = '=';
    }
    out[o] = '\0';
    return out;
}

static int b64_value(unsigned char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '+')
        return 62;
    if (ch == '/')
        return 63;
    return -1;
}

int ms_base64_decode(const char *s, size_t n, char **out, size_t *outlen)
{
    char *d = malloc(n / 4 * 3 + 4);
    if (d == NULL)
        return MS_CODEC_ENOMEM;
    size_t len = 0;
    int quad[4], q = 0, pad = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '\r' || ch == '\n')
            continue;
        int v;
        if (ch == '=') {
            if (q < 2)
                goto bad;
            pad++;
            v = 0;
        } else {
            if (pad || (v = b64_value(ch)) < 0)
                goto bad;
        }
        quad[q++] = v;
        if (q == 4) {
            d[len++] = (char)(quad[0] << 2 | quad[1] >> 4);
            if (pad < 2)
                d[len++] = (char)((quad[1] & 15) << 4 | quad[2] >> 2);
            if (pad < 1)
                d[len++] = (char)((quad[2] & 3) << 6 | quad[3]);
            q = 0;
            if (pad) { /* padding ends the text */
                for (i++; i < n; i++)
                    if (s[i] != '\r' && s[i] != '\n')
                        goto bad;
                break;
            }
        }
    }
    if (q != 0)
        goto bad;
    d[len] = '\0';
    *out = d;
    *outlen = len;
    return 0;
bad:
    free(d);
    return MS_CODEC_CORRUPT;
}
