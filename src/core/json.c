/* Plain-C JSON helpers: output buffer, escaping, numbers, positions. See json.h. */
#include "core/json.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ms_json_buf_reserve(struct ms_json_buf *b, size_t n)
{
    if (n <= b->cap - b->len)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < n) {
        if (cap > SIZE_MAX / 2)
            return MS_JSON_ENOMEM;
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (!p)
        return MS_JSON_ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int ms_json_buf_add(struct ms_json_buf *b, const char *s, size_t n)
{
    if (n > b->cap - b->len && ms_json_buf_reserve(b, n))
        return MS_JSON_ENOMEM;
    if (n)
        memcpy(b->data + b->len, s, n);
    b->len += n;
    return 0;
}

int ms_json_buf_addc(struct ms_json_buf *b, char c)
{
    return ms_json_buf_add(b, &c, 1);
}

void ms_json_buf_free(struct ms_json_buf *b)
{
    if (!b)
        return;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* The bytes a JSON string cannot hold as they are: ", \\, control bytes and DEL. */
/* clang-format off */ /* a table */
static const unsigned char escaped[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    ['"'] = 1, ['\\'] = 1, [0x7f] = 1,
};
/* clang-format on */

int ms_json_add_string(struct ms_json_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    /* room for the common case, no escapes, in one go */
    if (n > SIZE_MAX - 2 || ms_json_buf_reserve(b, n + 2))
        return MS_JSON_ENOMEM;
    b->data[b->len++] = '"';
    size_t run = 0; /* start of the bytes copied as they are */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!escaped[c])
            continue;
        char esc[6] = {'\\', 0};
        size_t elen = 2;
        switch (c) {
        /* clang-format off */ /* one escape a line */
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        /* clang-format on */
        default:
            esc[1] = 'u', esc[2] = '0', esc[3] = '0', esc[4] = hex[c >> 4], esc[5] = hex[c & 15];
            elen = 6;
        }
        if (ms_json_buf_add(b, s + run, i - run) || ms_json_buf_add(b, esc, elen))
            return MS_JSON_ENOMEM;
        run = i + 1;
    }
    if (ms_json_buf_add(b, s + run, n - run) || ms_json_buf_addc(b, '"'))
        return MS_JSON_ENOMEM;
    return 0;
}

int ms_json_add_integer(struct ms_json_buf *b, long long v)
{
    char tmp[24], *p = tmp + sizeof tmp;
    unsigned long long u = v < 0 ? 0 - (unsigned long long)v : (unsigned long long)v;
    do
        *--p = (char)('0' + u % 10);
    while ((u /= 10) != 0);
    if (v < 0)
        *--p = '-';
    return ms_json_buf_add(b, p, (size_t)(tmp + sizeof tmp - p));
}

int ms_json_add_number(struct ms_json_buf *b, double d, int keep_fraction)
{
    char tmp[48];
    if (isnan(d) || isinf(d))
        return MS_JSON_EDOM;
    if (!keep_fraction && d == floor(d) && fabs(d) < 9007199254740992.0) /* 2^53: exact */
        return ms_json_add_integer(b, (long long)d);
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(tmp, sizeof tmp, "%.*g", prec, d);
        if (strtod(tmp, NULL) == d)
            break;
    }
    for (int i = 0; i < n; i++)
        if (tmp[i] == ',') /* a decimal comma from a caller's setlocale */
            tmp[i] = '.';
    if (!strpbrk(tmp, ".eE")) {
        tmp[n++] = '.';
        tmp[n++] = '0';
    }
    return ms_json_buf_add(b, tmp, (size_t)n);
}

void ms_json_position(const char *text, size_t len, size_t offset, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < offset && i < len; i++) {
        if (text[i] == '\n')
            ++*line, *col = 1;
        else
            ++*col;
    }
}
