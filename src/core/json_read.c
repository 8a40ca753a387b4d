/* The JSON reader: one pass over the text, one token at a time, the grammar checked as it
 * goes (RFC 8259, no extensions). A problem is reported at the first byte that cannot be
 * read, with what was found there. See json.h. */
#include "core/json.h"

#include <locale.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum state {
    WANT_VALUE,     /* the text's value, a member's value, or an element after ',' */
    WANT_FIRST,     /* after '[': an element or ']' */
    WANT_KEY_FIRST, /* after '{': a key or '}' */
    WANT_KEY,       /* after ',' in an object */
    WANT_COLON,     /* after a key */
    AFTER_VALUE,    /* ',' or the container's closer; at depth 0, the end of the text */
    FAILED,
};

void ms_json_reader_init(struct ms_json_reader *r, const char *text, size_t len, int max_depth)
{
    memset(r, 0, sizeof *r);
    r->text = text;
    r->len = len;
    r->max_depth = max_depth > 0 && max_depth <= MS_JSON_MAX_DEPTH ? max_depth : MS_JSON_MAX_DEPTH;
    r->state = WANT_VALUE;
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        r->pos = 3; /* a UTF-8 byte order mark, which RFC 8259 lets a reader ignore */
}

void ms_json_reader_free(struct ms_json_reader *r)
{
    ms_json_buf_free(&r->buf);
}

static enum ms_json_token fail(struct ms_json_reader *r, size_t at, const char *problem)
{
    r->error_at = at;
    r->problem = problem;
    r->state = FAILED;
    return MS_JSON_ERROR;
}

/* The byte at `at` cannot start what the grammar wants there. */
static enum ms_json_token unexpected(struct ms_json_reader *r, size_t at)
{
    if (at >= r->len)
        return fail(r, r->len, "unexpected end of input");
    unsigned char c = (unsigned char)r->text[at];
    if (c == 0)
        return fail(r, at, "unexpected NUL byte");
    if (c < 0x20)
        return fail(r, at, "unexpected control character");
    if (c < 0x7f)
        snprintf(r->what, sizeof r->what, "unexpected character '%c'", c);
    else
        snprintf(r->what, sizeof r->what, "unexpected byte 0x%02X", c);
    return fail(r, at, r->what);
}

static void skip_space(struct ms_json_reader *r)
{
    const char *t = r->text;
    size_t i = r->pos, n = r->len;
    while (i < n && (t[i] == ' ' || t[i] == '\n' || t[i] == '\r' || t[i] == '\t'))
        i++;
    r->pos = i;
}

static int hex4(const char *p, unsigned *v)
{
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        unsigned d = c >= '0' && c <= '9'   ? (unsigned)(c - '0')
                     : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                     : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
                                            : 16;
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

/* One escape at t[i] == '\\' into r->buf; returns the index after it, or 0 with the error set. */
static size_t unescape(struct ms_json_reader *r, size_t i)
{
    const char *t = r->text;
    size_t n = r->len;
    char out;
    if (i + 1 >= n) {
        fail(r, n, "unexpected end of input");
        return 0;
    }
    switch (t[i + 1]) {
    /* clang-format off */ /* one escape a line */
    case '"': out = '"'; break;
    case '\\': out = '\\'; break;
    case '/': out = '/'; break;
    case 'b': out = '\b'; break;
    case 'f': out = '\f'; break;
    case 'n': out = '\n'; break;
    case 'r': out = '\r'; break;
    case 't': out = '\t'; break;
    /* clang-format on */
    case 'u': {
        unsigned cp, lo;
        if (i + 6 > n || !hex4(t + i + 2, &cp) || (cp >= 0xDC00 && cp < 0xE000)) {
            fail(r, i, "invalid \\u escape");
            return 0;
        }
        size_t next = i + 6;
        if (cp >= 0xD800 && cp < 0xDC00) { /* a UTF-16 pair: the low half must follow */
            if (next + 6 > n || t[next] != '\\' || t[next + 1] != 'u' || !hex4(t + next + 2, &lo) ||
                lo < 0xDC00 || lo >= 0xE000) {
                fail(r, i, "invalid \\u escape");
                return 0;
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            next += 6;
        }
        if (add_utf8(&r->buf, cp)) {
            fail(r, i, "out of memory");
            return 0;
        }
        return next;
    }
    default:
        fail(r, i, "invalid escape");
        return 0;
    }
    if (ms_json_buf_addc(&r->buf, out)) {
        fail(r, i, "out of memory");
        return 0;
    }
    return i + 2;
}

/* The string literal at r->pos (a '"'): sets str and str_len. Text without escapes is handed
 * out in place; escapes are decoded into r->buf. */
static int read_string(struct ms_json_reader *r)
{
    const unsigned char *t = (const unsigned char *)r->text;
    size_t n = r->len, i = r->pos + 1, run = i;
    int escaped = 0;
    r->buf.len = 0;
    for (;;) {
        while (i < n && t[i] >= 0x20 && t[i] != '"' && t[i] != '\\')
            i++;
        if (i >= n)
            return fail(r, n, "unexpected end of input"), 0;
        if (t[i] == '"')
            break;
        if (t[i] != '\\')
            return fail(r, i, t[i] ? "control character in string" : "unexpected NUL byte"), 0;
        escaped = 1;
        if (!r->skipping && ms_json_buf_add(&r->buf, r->text + run, i - run))
            return fail(r, i, "out of memory"), 0;
        i = unescape(r, i);
        if (!i)
            return 0;
        run = i;
        if (r->skipping)
            r->buf.len = 0; /* checked, not kept */
    }
    if (escaped) {
        if (ms_json_buf_add(&r->buf, r->text + run, i - run))
            return fail(r, i, "out of memory"), 0;
        r->str = r->buf.data ? r->buf.data : "";
        r->str_len = r->buf.len;
    } else {
        r->str = r->text + r->pos + 1;
        r->str_len = i - r->pos - 1;
    }
    r->pos = i + 1;
    return 1;
}

int ms_json_token_integer(const char *tok, size_t n, long long *v)
{
    size_t i = n && tok[0] == '-' ? 1 : 0;
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

static size_t digits(const char *t, size_t i, size_t n)
{
    while (i < n && t[i] >= '0' && t[i] <= '9')
        i++;
    return i;
}

/* -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? at r->pos. What follows the token must not
 * continue it ("012", "1.", "1e"), so the problem is named at the token's start. */
static enum ms_json_token read_number(struct ms_json_reader *r)
{
    const char *t = r->text;
    size_t n = r->len, b = r->pos, i = b, d;
    int integral = 1;
    if (t[i] == '-')
        i++;
    if (i < n && t[i] == '0')
        i++;
    else if ((d = digits(t, i, n)) > i)
        i = d;
    else
        return fail(r, b, "invalid number");
    if (i < n && t[i] == '.') {
        integral = 0;
        if ((d = digits(t, i + 1, n)) == i + 1)
            return fail(r, b, "invalid number");
        i = d;
    }
    if (i < n && (t[i] == 'e' || t[i] == 'E')) {
        integral = 0;
        i++;
        if (i < n && (t[i] == '+' || t[i] == '-'))
            i++;
        if ((d = digits(t, i, n)) == i)
            return fail(r, b, "invalid number");
        i = d;
    }
    if (i < n && (t[i] == '.' || t[i] == 'e' || t[i] == 'E' || t[i] == '+' || t[i] == '-' ||
                  (t[i] >= '0' && t[i] <= '9')))
        return fail(r, b, "invalid number");
    r->pos = i;
    if (integral && ms_json_token_integer(t + b, i - b, &r->integer))
        return MS_JSON_INTEGER;
    /* strtod wants a NUL after the token, and reads the locale's decimal point */
    char tmp[64], *s = tmp;
    if (i - b >= sizeof tmp) {
        r->buf.len = 0;
        if (ms_json_buf_add(&r->buf, t + b, i - b) || ms_json_buf_addc(&r->buf, 0))
            return fail(r, b, "out of memory");
        s = r->buf.data;
    } else {
        memcpy(tmp, t + b, i - b);
        tmp[i - b] = 0;
    }
    char *end;
    r->number = strtod(s, &end);
    if (*end == '.') {
        *end = *localeconv()->decimal_point;
        r->number = strtod(s, NULL);
    }
    return MS_JSON_NUMBER;
}

static enum ms_json_token literal(struct ms_json_reader *r, const char *word, size_t n,
                                  enum ms_json_token tok)
{
    if (r->len - r->pos < n || memcmp(r->text + r->pos, word, n) != 0)
        return unexpected(r, r->pos);
    r->pos += n;
    return tok;
}

static enum ms_json_token read_value(struct ms_json_reader *r)
{
    if (r->pos >= r->len)
        return unexpected(r, r->pos);
    char c = r->text[r->pos];
    r->state = AFTER_VALUE;
    switch (c) {
    case '[':
    case '{':
        if (r->depth >= r->max_depth)
            return fail(r, r->pos, "nesting too deep");
        r->open[r->depth++] = c;
        r->pos++;
        r->state = c == '[' ? WANT_FIRST : WANT_KEY_FIRST;
        return c == '[' ? MS_JSON_ARRAY : MS_JSON_OBJECT;
    case '"':
        return read_string(r) ? MS_JSON_STRING : MS_JSON_ERROR;
    case 't':
        return literal(r, "true", 4, MS_JSON_TRUE);
    case 'f':
        return literal(r, "false", 5, MS_JSON_FALSE);
    case 'n':
        return literal(r, "null", 4, MS_JSON_NULL);
    default:
        if (c == '-' || (c >= '0' && c <= '9'))
            return read_number(r);
        return unexpected(r, r->pos);
    }
}

static enum ms_json_token close_container(struct ms_json_reader *r)
{
    char open = r->open[--r->depth];
    r->pos++;
    r->state = AFTER_VALUE;
    return open == '[' ? MS_JSON_ARRAY_END : MS_JSON_OBJECT_END;
}

enum ms_json_token ms_json_read(struct ms_json_reader *r)
{
    for (;;) {
        if (r->state == FAILED)
            return MS_JSON_ERROR;
        skip_space(r);
        char c = r->pos < r->len ? r->text[r->pos] : 0;
        int at_end = r->pos >= r->len;
        switch (r->state) {
        case AFTER_VALUE:
            if (r->depth == 0)
                return at_end ? MS_JSON_END : unexpected(r, r->pos);
            if (!at_end && c == ',') {
                r->pos++;
                r->state = r->open[r->depth - 1] == '{' ? WANT_KEY : WANT_VALUE;
                continue;
            }
            if (!at_end && c == (r->open[r->depth - 1] == '[' ? ']' : '}'))
                return close_container(r);
            return unexpected(r, r->pos);
        case WANT_COLON:
            if (at_end || c != ':')
                return unexpected(r, r->pos);
            r->pos++;
            r->state = WANT_VALUE;
            continue;
        case WANT_KEY_FIRST:
            if (!at_end && c == '}')
                return close_container(r);
            /* fall through */
        case WANT_KEY:
            if (at_end || c != '"')
                return unexpected(r, r->pos);
            r->state = WANT_COLON;
            return read_string(r) ? MS_JSON_KEY : MS_JSON_ERROR;
        case WANT_FIRST:
            if (!at_end && c == ']')
                return close_container(r);
            /* fall through */
        default:
            return read_value(r);
        }
    }
}

enum ms_json_token ms_json_skip_rest(struct ms_json_reader *r, enum ms_json_token first)
{
    int depth = first == MS_JSON_ARRAY || first == MS_JSON_OBJECT;
    enum ms_json_token tok = first;
    r->skipping = 1;
    while (depth > 0 && tok != MS_JSON_ERROR) {
        tok = ms_json_read(r);
        depth += (tok == MS_JSON_ARRAY || tok == MS_JSON_OBJECT) -
                 (tok == MS_JSON_ARRAY_END || tok == MS_JSON_OBJECT_END);
    }
    r->skipping = 0;
    return tok;
}

enum ms_json_token ms_json_skip_value(struct ms_json_reader *r)
{
    r->skipping = 1;
    enum ms_json_token first = ms_json_read(r);
    return ms_json_skip_rest(r, first);
}
