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
/* Makes room for n more bytes. */
int ms_json_buf_reserve(struct ms_json_buf *b, size_t n);
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

/* ---- reading (json_read.c) ----
 * One pass over a text: the reader checks the grammar as it goes and hands out one token at
 * a time, so a decoder builds its values straight from the text. Strings keep their NULs,
 * integers are read from their own digits (exact int64), depth is capped at max_depth. */
enum ms_json_token {
    MS_JSON_END,   /* the text is done: one value and nothing but whitespace after it */
    MS_JSON_ERROR, /* problem and error_at say what and where */
    MS_JSON_NULL,
    MS_JSON_FALSE,
    MS_JSON_TRUE,
    MS_JSON_INTEGER, /* integer */
    MS_JSON_NUMBER,  /* number: a fraction, an exponent, or beyond int64 */
    MS_JSON_STRING,  /* str, str_len */
    MS_JSON_KEY,     /* str, str_len: an object member's name; its value comes next */
    MS_JSON_ARRAY,
    MS_JSON_ARRAY_END,
    MS_JSON_OBJECT,
    MS_JSON_OBJECT_END,
};

struct ms_json_reader {
    const char *text; /* borrows */
    size_t len, pos;
    int depth, max_depth, state;
    int skipping;                 /* inside ms_json_skip_rest: strings are checked, not decoded */
    char open[MS_JSON_MAX_DEPTH]; /* '[' or '{' per open container */
    /* the token just read */
    const char *str; /* into text, or into buf when the literal had escapes */
    size_t str_len;
    long long integer;
    double number;
    struct ms_json_buf buf; /* owns */
    /* after MS_JSON_ERROR */
    size_t error_at;
    const char *problem;
    char what[32];
};

/* max_depth <= MS_JSON_MAX_DEPTH. ms_json_reader_free releases the buffer. */
void ms_json_reader_init(struct ms_json_reader *r, const char *text, size_t len, int max_depth);
void ms_json_reader_free(struct ms_json_reader *r);
enum ms_json_token ms_json_read(struct ms_json_reader *r);
/* Reads past the rest of the value whose first token was `first` (nothing more for a scalar)
 * without handing out its tokens. Returns the last token read: MS_JSON_ERROR if it was bad. */
enum ms_json_token ms_json_skip_rest(struct ms_json_reader *r, enum ms_json_token first);
/* Reads past the value that comes next (after a KEY, say), its strings checked, not decoded. */
enum ms_json_token ms_json_skip_value(struct ms_json_reader *r);

/* A number token as an integer: 1 with *v when the token is an integer (no fraction or
 * exponent) that fits an int64, else 0. */
int ms_json_token_integer(const char *tok, size_t n, long long *v);

#endif
