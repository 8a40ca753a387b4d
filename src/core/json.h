/* Plain-C helpers of moonship.json (and the YAML dumper): a growable output buffer, JSON string
 * escaping, integer-preserving number formatting, and the scans cJSON does not offer. */
#ifndef MS_JSON_H
#define MS_JSON_H

#include <stddef.h>

#define MS_JSON_ENOMEM (-2)
#define MS_JSON_EDOM (-3) /* NaN or infinity: JSON has no spelling for them */
#define MS_JSON_MAX_DEPTH 1000

/* Output text. Zero-initialize; every add returns 0 or MS_JSON_ENOMEM. */
struct ms_json_buf {
    char *data; /* owns; not NUL-terminated */
    size_t len, cap;
};

int ms_json_buf_add(struct ms_json_buf *b, const char *s, size_t n);
int ms_json_buf_addc(struct ms_json_buf *b, char c);
/* Accepts NULL; leaves b empty and reusable. */
void ms_json_buf_free(struct ms_json_buf *b);

/* s[0..n) as a double-quoted JSON string: ", \ and control bytes escaped (\n, \t, \u001f...),
 * other bytes copied as they are (strings are bytes). Also valid YAML double-quoted text. */
int ms_json_add_string(struct ms_json_buf *b, const char *s, size_t n);

int ms_json_add_integer(struct ms_json_buf *b, long long v);

/* The shortest text that reads back as exactly d. An integral d is written as an integer
 * ("3") unless keep_fraction is set ("3.0"): Kubernetes' integer fields reject 3.0.
 * Returns MS_JSON_EDOM for NaN and infinities (nothing written). */
int ms_json_add_number(struct ms_json_buf *b, double d, int keep_fraction);

/* 1-based line and column (in bytes) of a byte offset of text. */
void ms_json_position(const char *text, size_t len, size_t offset, int *line, int *col);

/* Walks the tokens of a valid JSON text in order, which is the order cJSON's tree holds its
 * nodes in (an object member's key before its value): lets the decoder read integers from
 * their own digits and strings with their NULs. Use one scan per token kind. */
struct ms_json_scan {
    const char *text;
    size_t len, pos;
};
/* Returns 1 with the next number token's span, 0 at the end of the text. */
int ms_json_next_number(struct ms_json_scan *s, size_t *start, size_t *n);
/* Returns 1 with the next string literal's span, quotes included; 0 at the end. */
int ms_json_next_string(struct ms_json_scan *s, size_t *start, size_t *n);

/* Appends the bytes a string literal (quotes included) stands for: escapes decoded, \u
 * surrogate pairs joined into UTF-8, \u0000 kept as a NUL byte. */
int ms_json_unescape(struct ms_json_buf *b, const char *lit, size_t n);

/* A number token as an integer: 1 with *v when the token is an integer (no fraction or
 * exponent) that fits an int64, else 0. */
int ms_json_token_integer(const char *tok, size_t n, long long *v);

/* What cJSON lets through but JSON forbids, checked before parsing: NUL and other control
 * bytes (raw inside strings, or as whitespace), and nesting deeper than max_depth (so the
 * message says so). Returns the offset of the first problem with *problem set, or -1. */
long ms_json_check(const char *text, size_t len, int max_depth, const char **problem);

#endif
