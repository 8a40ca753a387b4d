/* libFuzzer target: the watch-stream framing (core/watch.h). The input is cut into chunks at
 * places taken from its first bytes, as HTTP chunking would; every value handed out must be
 * exactly what the same input fed in one piece hands out. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/watch.h"

struct collect {
    char *buf; /* the values, each followed by a 0 byte */
    size_t len, cap;
    size_t n;
};

static int on_event(void *ud, const char *json, size_t len)
{
    struct collect *c = ud;
    if (len == 0)
        __builtin_trap(); /* a value is never empty */
    if (c->len + len + 1 > c->cap) {
        size_t cap = (c->len + len + 1) * 2;
        char *b = realloc(c->buf, cap);
        if (b == NULL)
            return 1;
        c->buf = b;
        c->cap = cap;
    }
    memcpy(c->buf + c->len, json, len);
    c->buf[c->len + len] = 0;
    c->len += len + 1;
    c->n++;
    return 0;
}

static int run(const uint8_t *data, size_t size, const uint8_t *cuts, size_t ncuts, struct collect *c)
{
    struct ms_watch_decoder *d = ms_watch_decoder_new(4096);
    if (d == NULL)
        return -100;
    size_t pos = 0, k = 0;
    int rc = 0;
    while (pos < size && rc == 0) {
        size_t step = ncuts ? (size_t)cuts[k++ % ncuts] + 1 : size - pos;
        if (step > size - pos)
            step = size - pos;
        rc = ms_watch_feed(d, (const char *)data + pos, step, on_event, c);
        pos += step;
        if (rc == 0 && ms_watch_pending(d) > 4096)
            __builtin_trap(); /* more held back than one event may be */
    }
    ms_watch_decoder_free(d);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t ncuts = data[0] % 8;
    if (ncuts + 1 > size)
        return 0;
    const uint8_t *cuts = data + 1;
    data += 1 + ncuts;
    size -= 1 + ncuts;
    struct collect whole = {0}, pieces = {0};
    int rw = run(data, size, NULL, 0, &whole);
    int rp = run(data, size, cuts, ncuts, &pieces);
    /* the same values in the same order, and the same outcome, however the bytes were cut
     * (an error may come at a different feed, but an error it is in both) */
    if (rw == -100 || rp == -100) /* out of memory in the harness */
        goto out;
    if ((rw != 0) != (rp != 0))
        __builtin_trap();
    if (rw == 0 && (whole.n != pieces.n || whole.len != pieces.len ||
                    (whole.len > 0 && memcmp(whole.buf, pieces.buf, whole.len) != 0)))
        __builtin_trap();
out:
    free(whole.buf);
    free(pieces.buf);
    return 0;
}
