/* A resumable scanner for a stream of JSON objects/arrays: it tracks nesting depth and string
 * state across feeds, so a value may be split anywhere, and several may share one chunk. */
#include <stdlib.h>
#include <string.h>

#include "core/watch.h"

struct ms_watch_decoder {
    char *buf; /* owns: bytes of the value in progress */
    size_t len, cap;
    size_t max_event;
    int depth; /* 0 between values */
    int in_string, escaped;
    int failed;
};

struct ms_watch_decoder *ms_watch_decoder_new(size_t max_event)
{
    struct ms_watch_decoder *d = calloc(1, sizeof *d);
    if (d)
        d->max_event = max_event ? max_event : MS_WATCH_MAX_EVENT;
    return d;
}

void ms_watch_decoder_free(struct ms_watch_decoder *d)
{
    if (d == NULL)
        return;
    free(d->buf);
    free(d);
}

size_t ms_watch_pending(const struct ms_watch_decoder *d)
{
    return d->len;
}

static int append(struct ms_watch_decoder *d, const char *p, size_t n)
{
    if (n == 0)
        return 0;
    if (d->len + n > d->max_event)
        return MS_WATCH_ETOOBIG;
    if (d->len + n > d->cap) {
        size_t cap = d->cap ? d->cap : 4096;
        while (cap < d->len + n)
            cap *= 2;
        char *b = realloc(d->buf, cap);
        if (b == NULL)
            return MS_WATCH_ENOMEM;
        d->buf = b;
        d->cap = cap;
    }
    memcpy(d->buf + d->len, p, n);
    d->len += n;
    return 0;
}

/* Outside strings, the bytes that change the scanner's state. */
static const unsigned char structural[256] = {
    ['"'] = 1, ['{'] = 1, ['['] = 1, ['}'] = 1, [']'] = 1};

int ms_watch_feed(struct ms_watch_decoder *d, const char *data, size_t len, ms_watch_event_fn fn,
                  void *ud)
{
    if (d->failed)
        return d->failed;
    size_t start = 0; /* first byte of data not yet appended to buf */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)data[i];
        if (d->depth == 0) {
            if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
                start = i + 1;
                continue;
            }
            if (c != '{' && c != '[')
                return d->failed = MS_WATCH_ESYNTAX;
            start = i;
            d->depth = 1;
            continue;
        }
        if (d->in_string) {
            if (d->escaped) {
                d->escaped = 0;
                continue;
            }
            /* most of an event is the text of strings: skip to what ends or escapes one */
            while (i < len && data[i] != '"' && data[i] != '\\')
                i++;
            if (i == len)
                break;
            if (data[i] == '\\')
                d->escaped = 1;
            else
                d->in_string = 0;
            continue;
        }
        while (i < len && !structural[(unsigned char)data[i]])
            i++;
        if (i == len)
            break;
        c = (unsigned char)data[i];
        if (c == '"') {
            d->in_string = 1;
        } else if (c == '{' || c == '[') {
            d->depth++;
        } else if (c == '}' || c == ']') {
            if (--d->depth == 0) {
                const char *text = data + start;
                size_t n = i + 1 - start;
                if (d->len > 0) { /* the value began in an earlier feed */
                    int rc = append(d, text, n);
                    if (rc < 0)
                        return d->failed = rc;
                    text = d->buf;
                    n = d->len;
                } else if (n > d->max_event) { /* whole in this feed: the same limit */
                    return d->failed = MS_WATCH_ETOOBIG;
                }
                d->len = 0;
                start = i + 1;
                int rc = fn(ud, text, n);
                if (rc != 0)
                    return rc;
            }
        }
    }
    if (d->depth > 0) {
        int rc = append(d, data + start, len - start);
        if (rc < 0)
            return d->failed = rc;
    }
    return 0;
}
