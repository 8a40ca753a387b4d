/* A minimal table-friendly test harness for the C unit tests: each test is a function,
 * CHECK records a failure with its position and goes on, main() ends with a summary line. */
#ifndef MS_TEST_H
#define MS_TEST_H

#include <stdio.h>
#include <string.h>

static int ms_test_failures;
static int ms_test_checks;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        ms_test_checks++;                                                                          \
        if (!(cond)) {                                                                             \
            ms_test_failures++;                                                                    \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
        }                                                                                          \
    } while (0)

#define CHECK_STR(got, want)                                                                       \
    do {                                                                                           \
        const char *g_ = (got), *w_ = (want);                                                      \
        ms_test_checks++;                                                                          \
        if (!g_ || !w_ || strcmp(g_, w_) != 0) {                                                   \
            ms_test_failures++;                                                                    \
            fprintf(stderr, "%s:%d: got \"%s\", want \"%s\"\n", __FILE__, __LINE__,                \
                    g_ ? g_ : "(null)", w_ ? w_ : "(null)");                                       \
        }                                                                                          \
    } while (0)

#define CHECK_INT(got, want)                                                                       \
    do {                                                                                           \
        long long g_ = (long long)(got), w_ = (long long)(want);                                   \
        ms_test_checks++;                                                                          \
        if (g_ != w_) {                                                                            \
            ms_test_failures++;                                                                    \
            fprintf(stderr, "%s:%d: got %lld, want %lld (%s)\n", __FILE__, __LINE__, g_, w_,       \
                    #got);                                                                         \
        }                                                                                          \
    } while (0)

#define RUN(test)                                                                                  \
    do {                                                                                           \
        int before_ = ms_test_failures;                                                            \
        test();                                                                                    \
        printf("%s %s\n", ms_test_failures == before_ ? "ok  " : "FAIL", #test);                   \
    } while (0)

#define TEST_SUMMARY()                                                                             \
    (printf("%d checks, %d failed\n", ms_test_checks, ms_test_failures), ms_test_failures ? 1 : 0)

#endif
