/* src/core/json.c and json_read.c: number formatting, escaping, and the reader: its tokens,
 * strings with escapes, exact integers, and where and why it stops on a bad text. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/json.h"
#include "test.h"

static const char *number(double d, int keep_fraction)
{
    static char out[64];
    struct ms_json_buf b = {0};
    int rc = ms_json_add_number(&b, d, keep_fraction);
    snprintf(out, sizeof out, "%.*s", rc ? 5 : (int)b.len, rc ? "error" : b.data);
    ms_json_buf_free(&b);
    return out;
}

static void test_numbers(void)
{
    static const struct {
        double d;
        int keep;
        const char *want;
    } cases[] = {
        {3.0, 0, "3"},
        {3.0, 1, "3.0"},
        {-0.0, 1, "-0.0"},
        {1.5, 0, "1.5"},
        {0.1, 0, "0.1"},
        {1e20, 1, "1e+20"},
        {1e20, 0, "1e+20"},
        {9007199254740992.0, 0, "9007199254740992.0"},
        {1700000000123.0, 0, "1700000000123"},
        {5e-324, 0, "4.94065645841247e-324"},
        {1.0 / 3, 0, "0.3333333333333333"},
        {NAN, 0, "error"},
        {INFINITY, 1, "error"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECK_STR(number(cases[i].d, cases[i].keep), cases[i].want);

    struct ms_json_buf b = {0};
    CHECK_INT(ms_json_add_integer(&b, -9223372036854775807LL - 1), 0);
    CHECK(b.len == 20 && memcmp(b.data, "-9223372036854775808", 20) == 0);
    ms_json_buf_free(&b);
    ms_json_buf_free(NULL);

    static const struct {
        const char *tok;
        int ok;
        long long v;
    } ints[] = {
        {"0", 1, 0},
        {"-0", 1, 0},
        {"12", 1, 12},
        {"9223372036854775807", 1, INT64_MAX},
        {"-9223372036854775808", 1, INT64_MIN},
        {"9223372036854775808", 0, 0},
        {"1.0", 0, 0},
        {"1e3", 0, 0},
        {"-", 0, 0},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        long long v = -1;
        CHECK_INT(ms_json_token_integer(ints[i].tok, strlen(ints[i].tok), &v), ints[i].ok);
        if (ints[i].ok)
            CHECK_INT(v, ints[i].v);
    }
}

static void test_strings(void)
{
    struct ms_json_buf b = {0};
    CHECK_INT(ms_json_add_string(&b, "a\"b\\\n\t\x01\x7f\0é", 11), 0);
    CHECK(b.len == 32);
    CHECK(memcmp(b.data, "\"a\\\"b\\\\\\n\\t\\u0001\\u007f\\u0000é\"", b.len) == 0);
    ms_json_buf_free(&b);
}

/* The one string token of text, decoded. */
static int read_one_string(const char *lit, const char **s, size_t *n, struct ms_json_reader *r)
{
    ms_json_reader_init(r, lit, strlen(lit), 8);
    if (ms_json_read(r) != MS_JSON_STRING)
        return 0;
    *s = r->str;
    *n = r->str_len;
    return 1;
}

static void test_reader_strings(void)
{
    static const struct {
        const char *lit, *want;
        size_t want_len;
    } cases[] = {
        {"\"plain\"", "plain", 5},       {"\"\\n\\t\\\"\\\\\\/\\b\\f\\r\"", "\n\t\"\\/\b\f\r", 8},
        {"\"\\u00e9\\u20AC\"", "é€", 5}, {"\"\\ud83d\\ude00!\"", "😀!", 5},
        {"\"a\\u0000b\"", "a\0b", 3},    {"\"\"", "", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct ms_json_reader r;
        const char *got = NULL;
        size_t n = 0;
        CHECK(read_one_string(cases[i].lit, &got, &n, &r));
        CHECK_INT(n, cases[i].want_len);
        CHECK(got && n == cases[i].want_len && memcmp(got, cases[i].want, n) == 0);
        CHECK_INT(ms_json_read(&r), MS_JSON_END);
        ms_json_reader_free(&r);
    }
}

static void test_reader_tokens(void)
{
    const char *text = " {\"n-1\": -12, \"s\": \"1e5 \\\" 7\", \"a\": [0.5, 3e2, true, null, {}],"
                       " \"big\": 9223372036854775808, \"z\": false} ";
    static const enum ms_json_token want[] = {
        MS_JSON_OBJECT, MS_JSON_KEY,    MS_JSON_INTEGER,    MS_JSON_KEY,        MS_JSON_STRING,
        MS_JSON_KEY,    MS_JSON_ARRAY,  MS_JSON_NUMBER,     MS_JSON_NUMBER,     MS_JSON_TRUE,
        MS_JSON_NULL,   MS_JSON_OBJECT, MS_JSON_OBJECT_END, MS_JSON_ARRAY_END,  MS_JSON_KEY,
        MS_JSON_NUMBER, MS_JSON_KEY,    MS_JSON_FALSE,      MS_JSON_OBJECT_END, MS_JSON_END,
    };
    struct ms_json_reader r;
    ms_json_reader_init(&r, text, strlen(text), 8);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        enum ms_json_token tok = ms_json_read(&r);
        CHECK_INT(tok, want[i]);
        if (i == 2)
            CHECK_INT(r.integer, -12);
        if (i == 4)
            CHECK(r.str_len == 7 && memcmp(r.str, "1e5 \" 7", 7) == 0);
        if (i == 8)
            CHECK(r.number == 300.0);
        if (i == 15)
            CHECK(r.number == 9223372036854775808.0);
    }
    ms_json_reader_free(&r);

    /* skipping a value hands out none of its tokens */
    text = "{\"skip\": [1, {\"x\": [2]}], \"keep\": 3}";
    ms_json_reader_init(&r, text, strlen(text), 8);
    CHECK_INT(ms_json_read(&r), MS_JSON_OBJECT);
    CHECK_INT(ms_json_read(&r), MS_JSON_KEY);
    CHECK_INT(ms_json_skip_value(&r), MS_JSON_ARRAY_END);
    CHECK_INT(ms_json_read(&r), MS_JSON_KEY);
    CHECK(r.str_len == 4 && memcmp(r.str, "keep", 4) == 0);
    CHECK_INT(ms_json_skip_rest(&r, ms_json_read(&r)), MS_JSON_INTEGER);
    CHECK_INT(r.integer, 3);
    CHECK_INT(ms_json_read(&r), MS_JSON_OBJECT_END);
    CHECK_INT(ms_json_read(&r), MS_JSON_END);
    ms_json_reader_free(&r);

    /* a skipped string is checked, not decoded; the next one decodes as usual */
    text = "{\"s\": \"a\\\"b\\u00e9\", \"k\": \"v\\n\", \"bad\": \"\\x\"}";
    ms_json_reader_init(&r, text, strlen(text), 8);
    CHECK_INT(ms_json_read(&r), MS_JSON_OBJECT);
    CHECK_INT(ms_json_read(&r), MS_JSON_KEY);
    CHECK_INT(ms_json_skip_value(&r), MS_JSON_STRING);
    CHECK_INT(ms_json_read(&r), MS_JSON_KEY);
    CHECK_INT(ms_json_read(&r), MS_JSON_STRING);
    CHECK(r.str_len == 2 && memcmp(r.str, "v\n", 2) == 0);
    CHECK_INT(ms_json_read(&r), MS_JSON_KEY);
    CHECK_INT(ms_json_skip_value(&r), MS_JSON_ERROR);
    CHECK_STR(r.problem, "invalid escape");
    ms_json_reader_free(&r);

    int line, col;
    ms_json_position("ab\ncd\n", 6, 4, &line, &col);
    CHECK_INT(line, 2);
    CHECK_INT(col, 2);
}

/* The first problem of each text: where, and what the reader says of it. */
static void test_reader_errors(void)
{
    static const struct {
        const char *text;
        size_t len; /* 0: strlen */
        long off;
        const char *problem;
    } cases[] = {
        {"{\"a\": [1, 2.5e-3, -0]}", 0, -1, NULL},
        {"[\"tab\\tok\"]", 0, -1, NULL},
        {"", 0, 0, "unexpected end of input"},
        {"[1,2", 0, 4, "unexpected end of input"},
        {"[01]", 0, 1, "invalid number"},
        {"[1.]", 0, 1, "invalid number"},
        {"[-]", 0, 1, "invalid number"},
        {"[1e]", 0, 1, "invalid number"},
        {"[1-2]", 0, 1, "invalid number"},
        {"[.5]", 0, 1, "unexpected character '.'"},
        {"{\"a\": tru}", 0, 6, "unexpected character 't'"},
        {"{\"a\" 1}", 0, 5, "unexpected character '1'"},
        {"{\"a\": 1,}", 0, 8, "unexpected character '}'"},
        {"[1,]", 0, 3, "unexpected character ']'"},
        {"[1] x", 0, 4, "unexpected character 'x'"},
        {"[\"a\tb\"]", 0, 3, "control character in string"},
        {"[1,\x0b 2]", 0, 3, "unexpected control character"},
        {"[1 \x7f]", 0, 3, "unexpected byte 0x7F"},
        {"[1]\0", 4, 3, "unexpected NUL byte"},
        {"[\"a\0\"]", 6, 3, "unexpected NUL byte"},
        {"[\"\\x\"]", 0, 2, "invalid escape"},
        {"[\"\\u12\"]", 0, 2, "invalid \\u escape"},
        {"[\"\\ud800\"]", 0, 2, "invalid \\u escape"},
        {"[\"\\udc00\"]", 0, 2, "invalid \\u escape"},
        {"[\"abc", 0, 5, "unexpected end of input"},
        {"[[[[", 0, 3, "nesting too deep"},
        {"[\"[[[[[\"]", 0, -1, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct ms_json_reader r;
        size_t len = cases[i].len ? cases[i].len : strlen(cases[i].text);
        ms_json_reader_init(&r, cases[i].text, len, 3);
        enum ms_json_token tok;
        while ((tok = ms_json_read(&r)) != MS_JSON_END && tok != MS_JSON_ERROR)
            ;
        if (cases[i].off < 0) {
            CHECK_INT(tok, MS_JSON_END);
        } else {
            CHECK_INT(tok, MS_JSON_ERROR);
            CHECK_INT(r.error_at, cases[i].off);
            CHECK_STR(r.problem, cases[i].problem);
            CHECK_INT(ms_json_read(&r), MS_JSON_ERROR); /* and it stays failed */
        }
        ms_json_reader_free(&r);
    }
}

int main(void)
{
    RUN(test_numbers);
    RUN(test_strings);
    RUN(test_reader_strings);
    RUN(test_reader_tokens);
    RUN(test_reader_errors);
    return TEST_SUMMARY();
}
