/* The one rule for options tables (every key must be a known name) and the typed getters. */
#include <lauxlib.h>
#include <math.h>
#include <string.h>

#include "lua/options.h"

void ms_check_options(lua_State *L, int idx, const char *what, const char *const names[])
{
    idx = lua_absindex(L, idx);
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        int known = 0;
        if (lua_type(L, -1) == LUA_TSTRING)
            for (const char *const *n = names; *n && !known; n++)
                known = strcmp(lua_tostring(L, -1), *n) == 0;
        if (!known)
            luaL_error(L, "%s: unknown option '%s'", what, luaL_tolstring(L, -1, NULL));
    }
}

int ms_opt_field(lua_State *L, int idx, const char *key, int type, const char *what)
{
    int t = lua_getfield(L, idx, key);
    if (t != LUA_TNIL && t != type)
        luaL_error(L, "%s: option '%s' must be a %s", what, key, lua_typename(L, type));
    return t != LUA_TNIL;
}

const char *ms_opt_string(lua_State *L, int idx, const char *key, size_t *len, const char *what)
{
    const char *s = NULL;
    if (ms_opt_field(L, idx, key, LUA_TSTRING, what))
        s = lua_tolstring(L, -1, len);
    lua_pop(L, 1); /* the string stays alive in the options table */
    return s;
}

double ms_opt_seconds(lua_State *L, int idx, const char *key, double dflt, const char *what)
{
    double v = dflt;
    if (ms_opt_field(L, idx, key, LUA_TNUMBER, what)) {
        v = lua_tonumber(L, -1);
        if (!(v >= 0) || isinf(v))
            luaL_error(L, "%s: option '%s' must be a non-negative number of seconds", what, key);
    }
    lua_pop(L, 1);
    return v;
}

lua_Integer ms_opt_integer(lua_State *L, int idx, const char *key, lua_Integer min, lua_Integer max,
                           lua_Integer dflt, const char *what)
{
    lua_Integer v = dflt;
    if (lua_getfield(L, idx, key) != LUA_TNIL) {
        int ok;
        v = lua_tointegerx(L, -1, &ok);
        if (!ok || v < min || v > max)
            luaL_error(L, "%s: option '%s' must be an integer in %I..%I", what, key,
                       (LUAI_UACINT)min, (LUAI_UACINT)max);
    }
    lua_pop(L, 1);
    return v;
}
