/* src/core/codec.c: gzip round trips (empty, text, binary, incompressible, larger than zlib's
 * pieces of output), every kind of damaged input giving an error and never a crash, the output
 * limit, and base64 both ways. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/codec.h"
#include "test.h"

static void round_trip(const char *data, size_t len)
{
    char *z = NULL, *back = NULL;
    size_t zlen = 0, blen = 0;
    const char *msg = NULL;
    CHECK_INT(ms_gzip(data, len, -1, &z, &zlen), 0);
    CHECK(zlen >= 18); /* a gzip member: 10 bytes of header, 8 of trailer */
    CHECK((unsigned char)z[0] == 0x1f && (unsigned char)z[1] == 0x8b);
    CHECK_INT(ms_gunzip(z, zlen, SIZE_MAX, &back, &blen, &msg), 0);
    CHECK_INT(blen, len);
    CHECK(back && memcmp(back, data, len) == 0 && back[blen] == '\0');
    free(z);
    free(back);
}

static void test_round_trips(void)
{
    round_trip("", 0);
    round_trip("a", 1);
    const char *text = "{\"run\":\"20260101-120000-abcdef\",\"steps\":[]}";
    round_trip(text, strlen(text));
    char bin[256];
    for (int i = 0; i < 256; i++)
        bin[i] = (char)i;
    round_trip(bin, sizeof bin);
    /* 1 MiB of pseudo-random bytes (incompressible) and 4 MiB of repetition (compresses
     * to a few KiB: the output buffer grows many times) */
    size_t n = 1 << 20;
    char *big = malloc(n);
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        big[i] = (char)x;
    }
    round_trip(big, n);
    free(big);
    n = 4 << 20;
    big = malloc(n);
    for (size_t i = 0; i < n; i++)
        big[i] = "moonship "[i % 9];
    round_trip(big, n);
    free(big);
}

static void test_deterministic(void)
{
    char *a, *b;
    size_t alen, blen;
    CHECK_INT(ms_gzip("same", 4, 9, &a, &alen), 0);
    CHECK_INT(ms_gzip("same", 4, 9, &b, &blen), 0);
    CHECK(alen == blen && memcmp(a, b, alen) == 0);
    free(a);
    free(b);
}

static int gunzip_fails(const char *data, size_t len, size_t max, const char *want_msg)
{
    char *out = (char *)1;
    size_t outlen = 0;
    const char *msg = NULL;
    int rc = ms_gunzip(data, len, max, &out, &outlen, &msg);
    CHECK(rc < 0);
    CHECK(out == (char *)1); /* untouched on failure */
    if (want_msg)
        CHECK_STR(msg, want_msg);
    else
        CHECK(msg != NULL);
    return rc;
}

static void test_damaged(void)
{
    char *z;
    size_t zlen;
    const char *text = "the objects of run 20260101-120000-abcdef, rendered";
    CHECK_INT(ms_gzip(text, strlen(text), -1, &z, &zlen), 0);
    /* nothing at all, and every prefix of a good member: cut short */
    CHECK_INT(gunzip_fails("", 0, SIZE_MAX, "unexpected end of the gzip data"), MS_CODEC_CORRUPT);
    for (size_t cut = 1; cut < zlen; cut++)
        CHECK_INT(gunzip_fails(z, cut, SIZE_MAX, NULL), MS_CODEC_CORRUPT);
    /* not gzip */
    CHECK_INT(gunzip_fails("{\"run\": 1}", 10, SIZE_MAX, "incorrect header check"),
              MS_CODEC_CORRUPT);
    /* a flipped bit in the data, then in the CRC of the trailer */
    char *bad = malloc(zlen);
    memcpy(bad, z, zlen);
    bad[zlen - 8] ^= 1;
    CHECK_INT(gunzip_fails(bad, zlen, SIZE_MAX, "incorrect data check"), MS_CODEC_CORRUPT);
    /* every single byte of the member changed in turn: an error or (a header field zlib
     * ignores) the same text, never a crash */
    for (size_t i = 0; i < zlen; i++) {
        memcpy(bad, z, zlen);
        bad[i] = (char)~bad[i];
        char *out = NULL;
        size_t outlen;
        const char *msg = NULL;
        if (ms_gunzip(bad, zlen, SIZE_MAX, &out, &outlen, &msg) == 0) {
            CHECK(outlen == strlen(text) && memcmp(out, text, outlen) == 0);
            free(out);
        } else {
            CHECK(msg != NULL);
        }
    }
    free(bad);
    /* bytes after the member */
    char *more = malloc(zlen + 3);
    memcpy(more, z, zlen);
    memcpy(more + zlen, "abc", 3);
    CHECK_INT(gunzip_fails(more, zlen + 3, SIZE_MAX, "bytes after the end of the gzip data"),
              MS_CODEC_CORRUPT);
    free(more);
    /* the limit: exactly the length passes, one byte less does not */
    char *out;
    size_t outlen;
    const char *msg;
    CHECK_INT(ms_gunzip(z, zlen, strlen(text), &out, &outlen, &msg), 0);
    free(out);
    CHECK_INT(
        gunzip_fails(z, zlen, strlen(text) - 1, "the data would decompress to more than the limit"),
        MS_CODEC_TOOBIG);
    free(z);
}

static void test_base64(void)
{
    const char *cases[][2] = {
        {"", ""}, {"a", "YQ=="}, {"ab", "YWI="}, {"abc", "YWJj"}, {"abcd", "YWJjZA=="}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *s = ms_base64_encode(cases[i][0], strlen(cases[i][0]));
        CHECK_STR(s, cases[i][1]);
        free(s);
        char *d;
        size_t dlen;
        CHECK_INT(ms_base64_decode(cases[i][1], strlen(cases[i][1]), &d, &dlen), 0);
        CHECK_INT(dlen, strlen(cases[i][0]));
        CHECK_STR(d, cases[i][0]);
        free(d);
    }
    char *d;
    size_t dlen;
    CHECK_INT(ms_base64_decode("YW\nJj\r\n", 7, &d, &dlen), 0); /* line breaks, as Go reads them */
    CHECK_STR(d, "abc");
    free(d);
    const char *bad[] = {"YQ", "YQ=", "Y===", "YQ==YQ==", "not*base64", "=YQ="};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_INT(ms_base64_decode(bad[i], strlen(bad[i]), &d, &dlen), MS_CODEC_CORRUPT);
}

int main(void)
{
    RUN(test_round_trips);
    RUN(test_deterministic);
    RUN(test_damaged);
    RUN(test_base64);
    return TEST_SUMMARY();
}
