/* libFuzzer target: the JSON decoder as Lua code calls it (moonship.core.json.decode, with
 * and without a drop path), in a small Lua state made once; a decoded value is encoded again
 * and decoded back, which must succeed and give the same text. Also core/json.h's reader
 * token by token and its other helpers on the raw input. */
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
    "local dropped = json.decode(text, {drop = {'metadata.managedFields', 'a'}})\n"
    "if (v == nil) ~= (dropped == nil) then error({drop = text}) end\n"
    "if not ok or v == nil then return end\n"
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
    struct ms_json_reader r;
    ms_json_reader_init(&r, text, len, 64);
    enum ms_json_token tok;
    int depth = 0;
    while ((tok = ms_json_read(&r)) != MS_JSON_END && tok != MS_JSON_ERROR) {
        if (tok == MS_JSON_STRING || tok == MS_JSON_KEY) {
            int inside = r.str >= text && r.str + r.str_len <= text + len;
            int in_buf = r.buf.data && r.str >= r.buf.data && r.str + r.str_len <= r.buf.data + r.buf.len;
            if (!inside && !in_buf && r.str_len)
                __builtin_trap();
        }
        depth += tok == MS_JSON_ARRAY || tok == MS_JSON_OBJECT;
        depth -= tok == MS_JSON_ARRAY_END || tok == MS_JSON_OBJECT_END;
        if (depth < 0 || depth > 64 || r.pos > len)
            __builtin_trap();
    }
    if ((tok == MS_JSON_END && depth != 0) || (tok == MS_JSON_ERROR && (r.error_at > len || !r.problem)))
        __builtin_trap();
    ms_json_reader_free(&r);
    int line, col;
    ms_json_position(text, len, len, &line, &col);
    if (line < 1 || col < 1)
        __builtin_trap();
    struct ms_json_buf out = {0};
    (void)ms_json_add_string(&out, text, len);
    ms_json_buf_free(&out);
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
