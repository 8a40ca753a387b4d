/* The watch-stream framer: values split anywhere across feeds, several per feed, strings with
 * braces and escapes, errors. */
#include <stdlib.h>

#include "core/watch.h"
#include "test.h"

struct seen {
    char texts[16][256];
    int n;
};

static int record(void *ud, const char *json, size_t len)
{
    struct seen *s = ud;
    if (s->n < 16 && len < 256) {
        memcpy(s->texts[s->n], json, len);
        s->texts[s->n][len] = 0;
    }
    s->n++;
    return 0;
}

static const char STREAM[] = "{\"type\":\"ADDED\",\"object\":{\"a\":\"}{\\\"\"}}\n"
                             "{\"type\":\"MODIFIED\",\"object\":{\"b\":[1,{\"c\":\"]\"}]}}\n"
                             "  [1,2]\r\n{}";

/* Every way of cutting the stream into two feeds gives the same three-plus-one values. */
static void test_split_anywhere(void)
{
    size_t len = sizeof STREAM - 1;
    for (size_t cut = 0; cut <= len; cut++) {
        struct ms_watch_decoder *d = ms_watch_decoder_new(0);
        struct seen s = {0};
        CHECK_INT(ms_watch_feed(d, STREAM, cut, record, &s), 0);
        CHECK_INT(ms_watch_feed(d, STREAM + cut, len - cut, record, &s), 0);
        CHECK_INT(s.n, 4);
        CHECK_STR(s.texts[0], "{\"type\":\"ADDED\",\"object\":{\"a\":\"}{\\\"\"}}");
        CHECK_STR(s.texts[1], "{\"type\":\"MODIFIED\",\"object\":{\"b\":[1,{\"c\":\"]\"}]}}");
        CHECK_STR(s.texts[2], "[1,2]");
        CHECK_STR(s.texts[3], "{}");
        CHECK_INT(ms_watch_pending(d), 0);
        ms_watch_decoder_free(d);
    }
}

static void test_byte_by_byte(void)
{
    struct ms_watch_decoder *d = ms_watch_decoder_new(0);
    struct seen s = {0};
    for (size_t i = 0; i < sizeof STREAM - 1; i++)
        CHECK_INT(ms_watch_feed(d, STREAM + i, 1, record, &s), 0);
    CHECK_INT(s.n, 4);
    CHECK_STR(s.texts[1], "{\"type\":\"MODIFIED\",\"object\":{\"b\":[1,{\"c\":\"]\"}]}}");
    ms_watch_decoder_free(d);
}

static void test_errors(void)
{
    struct seen s = {0};
    struct ms_watch_decoder *d = ms_watch_decoder_new(0);
    CHECK_INT(ms_watch_feed(d, "{} x", 4, record, &s), MS_WATCH_ESYNTAX);
    CHECK_INT(s.n, 1);
    CHECK_INT(ms_watch_feed(d, "{}", 2, record, &s), MS_WATCH_ESYNTAX); /* stays failed */
    ms_watch_decoder_free(d);

    d = ms_watch_decoder_new(8);
    CHECK_INT(ms_watch_feed(d, "{\"abc\":", 7, record, &s), 0);
    CHECK_INT(ms_watch_pending(d), 7);
    CHECK_INT(ms_watch_feed(d, "\"defgh\"}", 8, record, &s), MS_WATCH_ETOOBIG);
    ms_watch_decoder_free(d);
    ms_watch_decoder_free(NULL);
}

static int stop_after_first(void *ud, const char *json, size_t len)
{
    (*(int *)ud)++;
    return 42;
}

static void test_callback_stops(void)
{
    struct ms_watch_decoder *d = ms_watch_decoder_new(0);
    int n = 0;
    CHECK_INT(ms_watch_feed(d, "{}{}", 4, stop_after_first, &n), 42);
    CHECK_INT(n, 1);
    ms_watch_decoder_free(d);
}

int main(void)
{
    RUN(test_split_anywhere);
    RUN(test_byte_by_byte);
    RUN(test_errors);
    RUN(test_callback_stops);
    return TEST_SUMMARY();
}
