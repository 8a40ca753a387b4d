/* moonship.core.codec: gzip and base64 of Lua strings (bytes both ways), for the run records
 * kept in Secrets (run/history.lua) and the client's basic auth.
 *   codec.gzip(data [, level]) -> bytes                 level 0-9 (default zlib's, 6); never yields
 *   codec.gunzip(data [, max_bytes]) -> bytes | nil, "gunzip: <why>", "parse"
 *                                                       max_bytes default 64 MiB (a bomb guard)
 *   codec.base64_encode(data) -> text
 *   codec.base64_decode(text) -> bytes | nil, "base64: not valid base64", "parse"
 * Misuse (a non-string, a level out of range) raises; out of memory raises. */
#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>

#include "core/codec.h"
#include "lua/modules.h"

#define OWNED_MT "moonship.codec.Owned"
#define DEFAULT_MAX_BYTES (64 << 20)

/* A malloc'd result, boxed before the C call fills it: if pushing it as a string raises (out
 * of memory), __gc still frees it. */
struct owned {
    char *p; /* owns; NULL once freed */
};

static int owned_gc(lua_State *L)
{
    struct owned *o = luaL_checkudata(L, 1, OWNED_MT);
    free(o->p);
    o->p = NULL;
    return 0;
}

static struct owned *new_owned(lua_State *L)
{
    struct owned *o = lua_newuserdatauv(L, sizeof *o, 0);
    o->p = NULL; /* born empty: __gc is always safe */
    luaL_setmetatable(L, OWNED_MT);
    return o;
}

/* Pushes the box's bytes as a string and frees them (the box stays below, empty). */
static void push_owned(lua_State *L, struct owned *o, size_t len)
{
    lua_pushlstring(L, o->p, len);
    free(o->p);
    o->p = NULL;
}

/* codec.gzip(data [, level]) -> bytes. Raises on misuse or out of memory. */
static int l_codec_gzip(lua_State *L)
{
    size_t len;
    const char *data = luaL_checklstring(L, 1, &len);
    lua_Integer level = luaL_optinteger(L, 2, -1);
    luaL_argcheck(L, level >= -1 && level <= 9, 2, "level must be 0-9");
    struct owned *o = new_owned(L);
    size_t outlen;
    if (ms_gzip(data, len, (int)level, &o->p, &outlen) < 0)
        return luaL_error(L, "gzip: out of memory");
    push_owned(L, o, outlen);
    return 1;
}

/* codec.gunzip(data [, max_bytes]) -> bytes | nil, message, "parse". */
static int l_codec_gunzip(lua_State *L)
{
    size_t len;
    const char *data = luaL_checklstring(L, 1, &len);
    lua_Integer max = luaL_optinteger(L, 2, DEFAULT_MAX_BYTES);
    luaL_argcheck(L, max >= 0, 2, "max_bytes must not be negative");
    struct owned *o = new_owned(L);
    size_t outlen;
    const char *msg = NULL;
    int rc = ms_gunzip(data, len, (size_t)max, &o->p, &outlen, &msg);
    if (rc == MS_CODEC_ENOMEM)
        return luaL_error(L, "gunzip: out of memory");
    if (rc == MS_CODEC_TOOBIG)
        return ms_fail(L, "parse", "gunzip: the data would decompress to more than %I bytes", max);
    if (rc < 0)
        return ms_fail(L, "parse", "gunzip: %s", msg);
    push_owned(L, o, outlen);
    return 1;
}

/* codec.base64_encode(data) -> text. Raises on misuse or out of memory. */
static int l_codec_base64_encode(lua_State *L)
{
    size_t len;
    const char *data = luaL_checklstring(L, 1, &len);
    struct owned *o = new_owned(L);
    o->p = ms_base64_encode(data, len);
    if (o->p == NULL)
        return luaL_error(L, "base64: out of memory");
    push_owned(L, o, (len + 2) / 3 * 4);
    return 1;
}

/* codec.base64_decode(text) -> bytes | nil, message, "parse". */
static int l_codec_base64_decode(lua_State *L)
{
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    struct owned *o = new_owned(L);
    size_t outlen;
    int rc = ms_base64_decode(text, len, &o->p, &outlen);
    if (rc == MS_CODEC_ENOMEM)
        return luaL_error(L, "base64: out of memory");
    if (rc < 0)
        return ms_fail(L, "parse", "base64: not valid base64");
    push_owned(L, o, outlen);
    return 1;
}

static const luaL_Reg funcs[] = {
    {"gzip", l_codec_gzip},
    {"gunzip", l_codec_gunzip},
    {"base64_encode", l_codec_base64_encode},
    {"base64_decode", l_codec_base64_decode},
    {NULL, NULL},
};

int luaopen_moonship_core_codec(lua_State *L)
{
    if (luaL_newmetatable(L, OWNED_MT)) {
        lua_pushcfunction(L, owned_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    luaL_newlib(L, funcs);
    return 1;
}
