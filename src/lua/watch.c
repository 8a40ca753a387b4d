/* require("moonship.core").watch: the watch-stream framer for Lua.
 *   watch.decoder([max_event]) -> decoder
 *   decoder:feed(chunk) -> {json_text, ...} | nil, message, "parse"|"nomem"   (never yields)
 *   decoder:pending() -> bytes held back */
#include <lauxlib.h>
#include <lua.h>

#include "core/watch.h"
#include "lua/modules.h"

#define DECODER_MT "moonship.WatchDecoder"

struct box {
    struct ms_watch_decoder *d; /* owns; NULL once closed */
};

static struct box *check_box(lua_State *L)
{
    struct box *b = luaL_checkudata(L, 1, DECODER_MT);
    if (b->d == NULL)
        luaL_error(L, "watch decoder is closed");
    return b;
}

static int l_watch_decoder(lua_State *L)
{
    lua_Integer max = luaL_optinteger(L, 1, 0);
    luaL_argcheck(L, max >= 0, 1, "must be non-negative");
    struct box *b = lua_newuserdatauv(L, sizeof *b, 0);
    b->d = NULL; /* born closed so __gc is always safe */
    luaL_setmetatable(L, DECODER_MT);
    b->d = ms_watch_decoder_new((size_t)max);
    if (b->d == NULL)
        return luaL_error(L, "watch decoder: out of memory");
    return 1;
}

struct collect {
    lua_State *L;
    int n;
};

static int collect_event(void *ud, const char *json, size_t len)
{
    struct collect *c = ud;
    lua_pushlstring(c->L, json, len);
    lua_rawseti(c->L, -2, ++c->n);
    return 0;
}

static int l_decoder_feed(lua_State *L)
{
    struct box *b = check_box(L);
    size_t len;
    const char *chunk = luaL_checklstring(L, 2, &len);
    lua_newtable(L);
    struct collect c = {L, 0};
    int rc = ms_watch_feed(b->d, chunk, len, collect_event, &c);
    if (rc == MS_WATCH_ENOMEM)
        return ms_fail(L, "nomem", "watch stream: out of memory");
    if (rc < 0)
        return ms_fail(L, "parse", "%s",
                       rc == MS_WATCH_ETOOBIG ? "watch stream: event too large"
                                              : "watch stream: not a stream of JSON objects");
    return 1;
}

static int l_decoder_pending(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)ms_watch_pending(check_box(L)->d));
    return 1;
}

static int l_decoder_gc(lua_State *L)
{
    struct box *b = luaL_checkudata(L, 1, DECODER_MT);
    ms_watch_decoder_free(b->d);
    b->d = NULL;
    return 0;
}

static const luaL_Reg decoder_methods[] = {
    {"feed", l_decoder_feed},
    {"pending", l_decoder_pending},
    {"close", l_decoder_gc},
    {NULL, NULL},
};

static const luaL_Reg decoder_meta[] = {
    {"__gc", l_decoder_gc},
    {"__close", l_decoder_gc},
    {NULL, NULL},
};

static const luaL_Reg funcs[] = {
    {"decoder", l_watch_decoder},
    {NULL, NULL},
};

int luaopen_moonship_core_watch(lua_State *L)
{
    if (luaL_newmetatable(L, DECODER_MT)) {
        luaL_setfuncs(L, decoder_meta, 0);
        luaL_newlib(L, decoder_methods);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    luaL_newlib(L, funcs);
    return 1;
}
