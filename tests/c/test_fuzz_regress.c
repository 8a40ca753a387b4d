/* The fuzz corpora (tests/fuzz/<target>/: seeds and every crash the fuzzers found) replayed
 * through the libFuzzer targets themselves (tests/fuzz/<target>.c), in the normal build and
 * under ASan/UBSan, so a fixed crash stays fixed without clang or libFuzzer. A target traps
 * on a broken invariant; the sanitizers report the rest. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

#define LLVMFuzzerTestOneInput fuzz_yaml_one
#include "../fuzz/yaml.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_watch_one
#include "../fuzz/watch.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_kubeconfig_one
#include "../fuzz/kubeconfig.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_json_one
#include "../fuzz/json.c"
#undef LLVMFuzzerTestOneInput

static int replay(const char *target, int (*one)(const uint8_t *, size_t))
{
    const char *src = getenv("MOONSHIP_SOURCE_DIR");
    char dir[4096], path[4600];
    snprintf(dir, sizeof dir, "%s/tests/fuzz/%s", src ? src : ".", target);
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    if (!d)
        return 0;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        CHECK(f != NULL);
        if (!f)
            continue;
        static uint8_t buf[1 << 20];
        size_t len = fread(buf, 1, sizeof buf, f);
        fclose(f);
        /* a copy of exactly len bytes, so ASan sees a read past the input */
        uint8_t *copy = malloc(len ? len : 1);
        memcpy(copy, buf, len);
        one(copy, len);
        free(copy);
        n++;
    }
    closedir(d);
    return n;
}

int main(void)
{
    LLVMFuzzerInitialize(NULL, NULL);
    CHECK(replay("yaml", fuzz_yaml_one) > 0);
    CHECK(replay("json", fuzz_json_one) > 0);
    CHECK(replay("watch", fuzz_watch_one) > 0);
    CHECK(replay("kubeconfig", fuzz_kubeconfig_one) > 0);
    lua_close(L);
    return TEST_SUMMARY();
}
