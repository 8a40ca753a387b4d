/* libFuzzer target: the JSON decoder as Lua code calls it (moonship.core.json.decode: the
 * pre-check, cJSON, the integer and string re-reads), in a small Lua state made once; a
 * decoded value is encoded again and decoded back, which must succeed and give the same text.
 * Also the plain-C helpers of core/json.h on the raw input. */
#include <cjson/cJSON.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/json.h"
#include "lua/modules.h"

static lua_State *L;

static const char ROUNDTRIP[] =
    "local json, text = ...\n"
    "local ok, v = pcall(json.decode, text)\n"
    "if not ok then return end\n"
    "local a = json.encode(v, {sort_keys = true})\n"
    "local b = json.encode(json.decode(a), {sort_keys = true})\n"
    "if a ~= b then error({round_trip = a .. ' / ' .. b}) end\n";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    L = luaL_newstate();
    luaL_openlibs(L);
    if (luaL_loadbuffer(L, ROUNDTRIP, sizeof ROUNDTRIP - 1, "=roundtrip") != LUA_OK)
        __builtin_trap();
    luaL_requiref(L, "moonship.core.json", luaopen_moonship_core_json, 0);
    /* stack: roundtrip, json */
    return 0;
}

static void helpers(const char *text, size_t len)
{
    const char *problem = NULL;
    long bad = ms_json_check(text, len, MS_JSON_MAX_DEPTH, &problem);
    if (bad >= 0 && (size_t)bad > len)
        __builtin_trap();
    int line, col;
    ms_json_position(text, len, len, &line, &col);
    if (line < 1 || col < 1)
        __builtin_trap();
    struct ms_json_buf out = {0};
    (void)ms_json_add_string(&out, text, len);
    ms_json_buf_free(&out);
    /* the scans and the token readers, on valid JSON only (their contract, as in the decoder) */
    if (bad >= 0)
        return;
    cJSON *root = cJSON_ParseWithLength(text, len);
    if (root == NULL)
        return;
    cJSON_Delete(root);
    struct ms_json_scan sn = {text, len, 0}, ss = {text, len, 0};
    size_t start, n;
    struct ms_json_buf b = {0};
    for (int i = 0; i < 10000 && ms_json_next_number(&sn, &start, &n); i++) {
        if (start + n > len)
            __builtin_trap();
        long long v;
        (void)ms_json_token_integer(text + start, n, &v);
    }
    for (int i = 0; i < 10000 && ms_json_next_string(&ss, &start, &n); i++) {
        if (start + n > len)
            __builtin_trap();
        b.len = 0;
        (void)ms_json_unescape(&b, text + start, n);
    }
    ms_json_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    helpers((const char *)data, size);
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    lua_pushlstring(L, (const char *)data, size);
    if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
        /* encode may refuse what decode gave for a documented reason (1e999 is infinity:
         * JSON cannot spell it), which raises a string; a changed value raises a table */
        if (lua_istable(L, -1))
            __builtin_trap();
        lua_pop(L, 1);
    }
    lua_settop(L, 2);
    lua_gc(L, LUA_GCSTEP, 0);
    return 0;
}
