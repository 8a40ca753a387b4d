/* What moonship.json and moonship.yaml share: one null sentinel (a NULL lightuserdata, so
 * json.null == yaml.null) and the metatables that mark a table as an array or an object, so
 * {} and [] survive decode/encode and load/dump. */
#ifndef MS_SHAPE_H
#define MS_SHAPE_H

#include <lauxlib.h>
#include <lua.h>

#define MS_ARRAY_MT "moonship.array"
#define MS_OBJECT_MT "moonship.object"

enum ms_shape { MS_SHAPE_NONE, MS_SHAPE_ARRAY, MS_SHAPE_OBJECT };

static inline void ms_push_null(lua_State *L)
{
    lua_pushlightuserdata(L, NULL);
}

static inline int ms_is_null(lua_State *L, int idx)
{
    return lua_type(L, idx) == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == NULL;
}

/* The mark of the table at idx (MS_SHAPE_NONE for other metatables or none). */
static inline enum ms_shape ms_shape_of(lua_State *L, int idx)
{
    enum ms_shape shape = MS_SHAPE_NONE;
    if (!lua_getmetatable(L, idx))
        return shape;
    luaL_getmetatable(L, MS_ARRAY_MT);
    if (lua_rawequal(L, -1, -2))
        shape = MS_SHAPE_ARRAY;
    lua_pop(L, 1);
    luaL_getmetatable(L, MS_OBJECT_MT);
    if (lua_rawequal(L, -1, -2))
        shape = MS_SHAPE_OBJECT;
    lua_pop(L, 2);
    return shape;
}

/* Pushes the metatable that marks a table as an array or an object, made on first use. */
static inline void ms_push_shape_mt(lua_State *L, enum ms_shape shape)
{
    if (luaL_newmetatable(L, shape == MS_SHAPE_ARRAY ? MS_ARRAY_MT : MS_OBJECT_MT)) {
        lua_pushstring(L, shape == MS_SHAPE_ARRAY ? "array" : "object");
        lua_setfield(L, -2, "__jsontype");
    }
}

/* Marks the table at idx (replacing its metatable). */
static inline void ms_set_shape(lua_State *L, int idx, enum ms_shape shape)
{
    idx = lua_absindex(L, idx);
    if (shape == MS_SHAPE_NONE)
        lua_pushnil(L);
    else
        ms_push_shape_mt(L, shape);
    lua_setmetatable(L, idx);
}

#endif
