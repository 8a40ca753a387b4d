/* Plain-C JSON helpers: output buffer, escaping, numbers, token scans. See json.h. */
#include "core/json.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ms_json_buf_add(struct ms_json_buf *b, const char *s, size_t n)
{
    if (n > b->cap - b->len) {
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
    }
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

int ms_json_add_string(struct ms_json_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    int rc = ms_json_buf_addc(b, '"');
    size_t run = 0; /* bytes copied as they are, flushed in one add */
    for (size_t i = 0; i < n && rc == 0; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[6] = {'\\', 0};
        size_t elen = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        default:
            if (c >= 0x20 && c != 0x7f) {
                run++;
                continue;
            }
            esc[1] = 'u', esc[2] = '0', esc[3] = '0', esc[4] = hex[c >> 4], esc[5] = hex[c & 15];
            elen = 6;
        }
        rc = ms_json_buf_add(b, s + i - run, run);
        run = 0;
        if (rc == 0)
            rc = ms_json_buf_add(b, esc, elen);
    }
    if (rc == 0)
        rc = ms_json_buf_add(b, s + n - run, run);
    return rc ? rc : ms_json_buf_addc(b, '"');
}

int ms_json_add_integer(struct ms_json_buf *b, long long v)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%lld", v);
    return ms_json_buf_add(b, tmp, (size_t)n);
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

/* Index just past the string literal that starts at i (text[i] == '"'). */
static size_t skip_string(const char *text, size_t len, size_t i)
{
    for (i++; i < len; i++) {
        if (text[i] == '\\')
            i++;
        else if (text[i] == '"')
            return i + 1;
    }
    return len;
}

int ms_json_next_number(struct ms_json_scan *s, size_t *start, size_t *n)
{
    while (s->pos < s->len) {
        char c = s->text[s->pos];
        if (c == '"') {
            s->pos = skip_string(s->text, s->len, s->pos);
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            size_t b = s->pos;
            while (s->pos < s->len && strchr("0123456789+-.eE", s->text[s->pos]) &&
                   s->text[s->pos])
                s->pos++;
            *start = b;
            *n = s->pos - b;
            return 1;
        } else {
            s->pos++;
        }
    }
    return 0;
}

int ms_json_next_string(struct ms_json_scan *s, size_t *start, size_t *n)
{
    const char *q = s->pos < s->len ? memchr(s->text + s->pos, '"', s->len - s->pos) : NULL;
    if (!q)
        return 0;
    *start = (size_t)(q - s->text);
    s->pos = skip_string(s->text, s->len, *start);
    *n = s->pos - *start;
    return 1;
}

static int hex4(const char *p, unsigned *v)
{
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        unsigned d = c >= '0' && c <= '9' ? (unsigned)(c - '0')
                     : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                     : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10) : 16;
        if (d == 16)
            return 0;
        *v = *v << 4 | d;
    }
    return 1;
}

static int add_utf8(struct ms_json_buf *b, unsigned cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80)
        u[0] = (char)cp, n = 1;
    else if (cp < 0x800)
        u[0] = (char)(0xC0 | cp >> 6), u[1] = (char)(0x80 | (cp & 0x3F)), n = 2;
    else if (cp < 0x10000)
        u[0] = (char)(0xE0 | cp >> 12), u[1] = (char)(0x80 | (cp >> 6 & 0x3F)),
        u[2] = (char)(0x80 | (cp & 0x3F)), n = 3;
    else
        u[0] = (char)(0xF0 | cp >> 18), u[1] = (char)(0x80 | (cp >> 12 & 0x3F)),
        u[2] = (char)(0x80 | (cp >> 6 & 0x3F)), u[3] = (char)(0x80 | (cp & 0x3F)), n = 4;
    return ms_json_buf_add(b, u, n);
}

int ms_json_unescape(struct ms_json_buf *b, const char *lit, size_t n)
{
    int rc = 0;
    size_t end = n >= 2 ? n - 1 : 0, run = 1; /* skip the quotes */
    for (size_t i = 1; i < end && rc == 0;) {
        if (lit[i] != '\\') {
            i++;
            continue;
        }
        rc = ms_json_buf_add(b, lit + run, i - run);
        if (rc || i + 1 >= end)
            break;
        char c = lit[i + 1], out = 0;
        unsigned cp, lo;
        switch (c) {
        case 'b': out = '\b'; break;
        case 'f': out = '\f'; break;
        case 'n': out = '\n'; break;
        case 'r': out = '\r'; break;
        case 't': out = '\t'; break;
        case 'u':
            if (i + 6 > end || !hex4(lit + i + 2, &cp))
                return MS_JSON_EDOM;
            i += 6;
            if (cp >= 0xD800 && cp < 0xDC00 && i + 6 <= end && lit[i] == '\\' &&
                lit[i + 1] == 'u' && hex4(lit + i + 2, &lo) && lo >= 0xDC00 && lo < 0xE000) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                i += 6;
            }
            rc = add_utf8(b, cp);
            run = i;
            continue;
        default: out = c; /* \" \\ \/ */
        }
        rc = ms_json_buf_addc(b, out);
        i += 2;
        run = i;
    }
    if (rc == 0 && end > run)
        rc = ms_json_buf_add(b, lit + run, end - run);
    return rc;
}

int ms_json_token_integer(const char *tok, size_t n, long long *v)
{
    size_t i = tok[0] == '-' ? 1 : 0;
    unsigned long long limit = i ? (unsigned long long)INT64_MAX + 1 : INT64_MAX, u = 0;
    if (i == n)
        return 0;
    for (; i < n; i++) {
        if (tok[i] < '0' || tok[i] > '9')
            return 0;
        unsigned d = (unsigned)(tok[i] - '0');
        if (u > (limit - d) / 10)
            return 0;
        u = u * 10 + d;
    }
    *v = tok[0] == '-' ? (long long)(0 - u) : (long long)u;
    return 1;
}

/* -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?, which cJSON's strtod would stretch. */
static int valid_number(const char *t, size_t n)
{
    size_t i = 0, d;
    if (i < n && t[i] == '-')
        i++;
    if (i < n && t[i] == '0')
        i++;
    else {
        for (d = 0; i < n && t[i] >= '0' && t[i] <= '9'; i++, d++)
            ;
        if (d == 0)
            return 0;
    }
    if (i < n && t[i] == '.') {
        for (i++, d = 0; i < n && t[i] >= '0' && t[i] <= '9'; i++, d++)
            ;
        if (d == 0)
            return 0;
    }
    if (i < n && (t[i] == 'e' || t[i] == 'E')) {
        i++;
        if (i < n && (t[i] == '+' || t[i] == '-'))
            i++;
        for (d = 0; i < n && t[i] >= '0' && t[i] <= '9'; i++, d++)
            ;
        if (d == 0)
            return 0;
    }
    return i == n;
}

long ms_json_check(const char *text, size_t len, int max_depth, const char **problem)
{
    int depth = 0, in_string = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == 0) {
            *problem = "unexpected NUL byte";
            return (long)i;
        }
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = 0;
            else if (c < 0x20) {
                *problem = "control character in string";
                return (long)i;
            }
            continue;
        }
        if (c < 0x20 && c != '\n' && c != '\r' && c != '\t') {
            *problem = "unexpected control character";
            return (long)i;
        }
        if (c == '"') {
            in_string = 1;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            size_t n = i;
            while (n < len && text[n] && strchr("0123456789+-.eE", text[n]))
                n++;
            if (!valid_number(text + i, n - i)) {
                *problem = "invalid number";
                return (long)i;
            }
            i = n - 1;
        } else if (c == '[' || c == '{') {
            if (++depth > max_depth) {
                *problem = "nesting too deep";
                return (long)i;
            }
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    return -1;
}
