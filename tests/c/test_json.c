/* src/core/json.c: number formatting, escaping, unescaping, the token scans and the checks
 * made before cJSON sees a text. */
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
        {3.0, 0, "3"},          {3.0, 1, "3.0"},         {-0.0, 1, "-0.0"},
        {1.5, 0, "1.5"},        {0.1, 0, "0.1"},         {1e20, 1, "1e+20"},
        {1e20, 0, "1e+20"},              {9007199254740992.0, 0, "9007199254740992.0"},
        {1700000000123.0, 0, "1700000000123"},           {5e-324, 0, "4.94065645841247e-324"},
        {1.0 / 3, 0, "0.3333333333333333"},             {NAN, 0, "error"},
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
        {"0", 1, 0},     {"-0", 1, 0},      {"12", 1, 12},   {"9223372036854775807", 1, INT64_MAX},
        {"-9223372036854775808", 1, INT64_MIN}, {"9223372036854775808", 0, 0}, {"1.0", 0, 0},
        {"1e3", 0, 0},   {"-", 0, 0},
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

    static const struct {
        const char *lit, *want;
        size_t want_len;
    } cases[] = {
        {"\"plain\"", "plain", 5},
        {"\"\\n\\t\\\"\\\\\\/\\b\\f\\r\"", "\n\t\"\\/\b\f\r", 8},
        {"\"\\u00e9\\u20AC\"", "é€", 5},
        {"\"\\ud83d\\ude00!\"", "😀!", 5},
        {"\"a\\u0000b\"", "a\0b", 3},
        {"\"\"", "", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        b.len = 0;
        CHECK_INT(ms_json_unescape(&b, cases[i].lit, strlen(cases[i].lit)), 0);
        CHECK_INT(b.len, cases[i].want_len);
        CHECK(b.len == cases[i].want_len && memcmp(b.data, cases[i].want, b.len) == 0);
    }
    ms_json_buf_free(&b);
}

static void test_scans(void)
{
    const char *text = "{\"n-1\": -12, \"s\": \"1e5 \\\" 7\", \"a\": [0.5, 3e2], \"z\": 0}";
    struct ms_json_scan s = {text, strlen(text), 0};
    static const char *const nums[] = {"-12", "0.5", "3e2", "0"};
    size_t start, n, k = 0;
    while (ms_json_next_number(&s, &start, &n)) {
        CHECK(k < 4);
        if (k < 4)
            CHECK(strlen(nums[k]) == n && memcmp(text + start, nums[k], n) == 0);
        k++;
    }
    CHECK_INT(k, 4);
    static const char *const strs[] = {"\"n-1\"", "\"s\"", "\"1e5 \\\" 7\"", "\"a\"", "\"z\""};
    s = (struct ms_json_scan){text, strlen(text), 0};
    k = 0;
    while (ms_json_next_string(&s, &start, &n)) {
        if (k < 5)
            CHECK(strlen(strs[k]) == n && memcmp(text + start, strs[k], n) == 0);
        k++;
    }
    CHECK_INT(k, 5);

    int line, col;
    ms_json_position("ab\ncd\n", 6, 4, &line, &col);
    CHECK_INT(line, 2);
    CHECK_INT(col, 2);
}

static void test_check(void)
{
    static const struct {
        const char *text;
        long off;
        const char *problem;
    } cases[] = {
        {"{\"a\": [1, 2.5e-3, -0]}", -1, NULL},
        {"[\"tab\\tok\"]", -1, NULL},
        {"[01]", 1, "invalid number"},
        {"[1.]", 1, "invalid number"},
        {"[.5]", -1, NULL}, /* not a number token: cJSON rejects the '.' */
        {"[1e]", 1, "invalid number"},
        {"[\"a\tb\"]", 3, "control character in string"},
        {"[1,\x0b 2]", 3, "unexpected control character"},
        {"[[[[", 3, "nesting too deep"},
        {"[\"[[[[[\"]", -1, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *problem = NULL;
        long off = ms_json_check(cases[i].text, strlen(cases[i].text), 3, &problem);
        CHECK_INT(off, cases[i].off);
        if (cases[i].problem)
            CHECK_STR(problem, cases[i].problem);
    }
    const char *problem = NULL;
    CHECK_INT(ms_json_check("[1]\0", 4, 3, &problem), 3);
    CHECK_STR(problem, "unexpected NUL byte");
}

int main(void)
{
    RUN(test_numbers);
    RUN(test_strings);
    RUN(test_scans);
    RUN(test_check);
    return TEST_SUMMARY();
}
