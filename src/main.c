/* The moonship binary: one Lua state with the C modules preloaded and the lua/ sources
 * embedded (as bytecode), running moonship.cli under lua_pcall with a traceback. */
#include <lauxlib.h>
#include <malloc.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua/modules.h"

struct ms_embedded_lua {
    const char *module, *path, *code; /* code: bytecode, from src/tools/embed_lua.c */
    size_t len;
};
extern const struct ms_embedded_lua ms_embedded_lua[];

/* package.searchers entry: finds a module among the embedded sources. */
static int search_embedded(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    for (const struct ms_embedded_lua *m = ms_embedded_lua; m->module; m++) {
        if (strcmp(m->module, name) != 0)
            continue;
        lua_pushfstring(L, "@%s", m->path);
        if (luaL_loadbufferx(L, m->code, m->len, lua_tostring(L, -1), "b") != LUA_OK)
            return lua_error(L);
        lua_pushstring(L, m->path);
        return 2;
    }
    lua_pushfstring(L, "no embedded module '%s'", name);
    return 1;
}

/* With MOONSHIP_LUA_PATH=DIR the modules load from DIR (development); otherwise the embedded
 * copies come first, so the binary never picks up a stale installed tree. */
static void install_searchers(lua_State *L)
{
    lua_getglobal(L, "package");
    luaL_getsubtable(L, -1, "preload");
    lua_pushcfunction(L, luaopen_moonship_core);
    lua_setfield(L, -2, "moonship.core");
    lua_pop(L, 1);
    const char *dir = getenv("MOONSHIP_LUA_PATH");
    if (dir && *dir) {
        lua_getfield(L, -1, "path");
        lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s", dir, dir, lua_tostring(L, -1));
        lua_setfield(L, -3, "path");
        lua_pop(L, 1);
    } else {
        lua_getfield(L, -1, "searchers");
        int n = (int)lua_rawlen(L, -1);
        for (int i = n; i >= 2; i--) { /* shift to make room at 2, after preload */
            lua_rawgeti(L, -1, i);
            lua_rawseti(L, -2, i + 1);
        }
        lua_pushcfunction(L, search_embedded);
        lua_rawseti(L, -2, 2);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

static int traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL)
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    luaL_traceback(L, L, msg, 1);
    return 1;
}

/* Runs require("moonship.cli").main(argv) and leaves its exit code on the stack. */
static int run_cli(lua_State *L)
{
    int argc = (int)lua_tointeger(L, 1);
    char **argv = lua_touserdata(L, 2);
    luaL_openlibs(L);
    /* Most of a deploy's garbage is short-lived (decoded watch events, request tables): the
     * generational collector, with minor collections at 10% growth and major ones at 50%,
     * keeps the huge benchmark's peak RSS at 55 MB instead of 139 MB (scripts/bench). */
    lua_gc(L, LUA_GCGEN, 10, 50);
    install_searchers(L);
    lua_createtable(L, argc, 1); /* the global arg, as lua.c makes it */
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i);
    }
    lua_setglobal(L, "arg");
    lua_getglobal(L, "require");
    lua_pushliteral(L, "moonship.cli");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "main");
    lua_createtable(L, argc, 0);
    for (int i = 1; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i);
    }
    lua_call(L, 1, 1);
    return 1;
}

/* Lua's memory: realloc and free, except at exit, when each object's memory goes back with
 * the process instead of one free() per object (over 10 ms for a run of a few hundred tasks).
 * lua_close still runs every finalizer (child processes killed, files closed). Sanitizer
 * builds free everything, so that leaks stay visible. */
static int exiting;

static void *allocate(void *ud, void *ptr, size_t osize, size_t nsize)
{
    (void)ud;
    (void)osize;
    if (nsize == 0) {
#ifndef __SANITIZE_ADDRESS__
        if (exiting)
            return NULL;
#endif
        free(ptr);
        return NULL;
    }
    return realloc(ptr, nsize);
}

static int panic(lua_State *L)
{
    const char *msg = lua_tostring(L, -1);
    fprintf(stderr, "moonship: unprotected Lua error: %s\n", msg ? msg : "(not a string)");
    return 0; /* Lua aborts */
}

int main(int argc, char **argv)
{
    /* A deploy frees and takes back memory by the megabyte with every burst of watch events:
     * keeping it (the top of the heap is trimmed only beyond 64 MB and grows 16 MB at a time)
     * spares the kernel round trips and page faults, and without fastbins (tcache still keeps
     * small chunks) no large allocation stops to consolidate thousands of them: the huge
     * benchmark took 10-18% less CPU. */
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    mallopt(M_TOP_PAD, 16 << 20);
    mallopt(M_MXFAST, 0);
    lua_State *L = lua_newstate(allocate, NULL);
    if (L == NULL) {
        fputs("moonship: cannot create a Lua state (out of memory)\n", stderr);
        return 1;
    }
    lua_atpanic(L, panic);
    lua_pushcfunction(L, traceback);
    lua_pushcfunction(L, run_cli);
    lua_pushinteger(L, argc);
    lua_pushlightuserdata(L, argv);
    int status = lua_pcall(L, 2, 1, 1);
    int code = 0;
    if (status != LUA_OK) {
        fprintf(stderr, "moonship: internal error: %s\n", lua_tostring(L, -1));
        code = 70; /* EX_SOFTWARE: a bug of ours, not the user's input */
    } else if (lua_isinteger(L, -1)) {
        code = (int)lua_tointeger(L, -1);
    }
    fflush(stdout);
    exiting = 1;
    lua_close(L);
    return code;
}
