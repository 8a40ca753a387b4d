/* moonship.core.fs: what moonship needs of the file system and Lua's io lacks. Failures are
 * nil, "path: strerror", "io".
 *   fs.mkdir_p(path [, mode]) -> true | nil, message, code   (like mkdir -p, without a shell)
 *   fs.list(dir) -> {name, ...} (sorted, without . and ..) | nil, message, code
 *   fs.mkdtemp(prefix) -> path | nil, message, code   (a new private folder:
 * $TMPDIR/<prefix>XXXXXX) fs.type(path) -> "file" | "directory" | "other" | nil, message, code
 * (links followed) fs.cwd() -> path | nil, message, code   (the current directory, as `pwd` prints
 * it) */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lua/modules.h"

/* The failure of a call about what: nil, "what: strerror(err)", "io". */
static int fail(lua_State *L, const char *what, int err)
{
    return ms_fail(L, "io", "%s: %s", what, strerror(err));
}

static int l_fs_mkdir_p(lua_State *L)
{
    size_t len;
    const char *path = luaL_checklstring(L, 1, &len);
    lua_Integer mode = luaL_optinteger(L, 2, 0777);
    luaL_argcheck(L, len > 0 && strlen(path) == len, 1, "a non-empty path without NUL bytes");
    char *p = malloc(len + 1);
    if (!p)
        return luaL_error(L, "fs.mkdir_p: out of memory");
    memcpy(p, path, len + 1);
    int err = 0;
    /* each parent, then the path itself; one that exists already is fine if it's a directory */
    for (char *s = p + 1;; s++) {
        int last = *s == '\0';
        if (*s != '/' && !last)
            continue;
        *s = '\0';
        struct stat st;
        if (mkdir(p, (mode_t)mode) != 0 &&
            (errno != EEXIST || stat(p, &st) != 0 || !S_ISDIR(st.st_mode))) {
            err = errno == EEXIST ? ENOTDIR : errno;
            break;
        }
        if (last)
            break;
        *s = '/';
    }
    if (err) {
        int n = fail(L, p, err);
        free(p);
        return n;
    }
    free(p);
    lua_pushboolean(L, 1);
    return 1;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* fs.list(dir) -> {name, ...} sorted | nil, "dir: message", "io". Never yields. */
static int l_fs_list(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    DIR *d = opendir(path);
    if (!d) {
        return fail(L, path, errno);
    }
    lua_newtable(L);
    lua_Integer n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        lua_pushstring(L, e->d_name);
        lua_rawseti(L, -2, ++n);
    }
    closedir(d);
    /* sorted in C from the strings the table holds: a listing's order must not depend on the
     * file system */
    const char **names = lua_newuserdatauv(L, (size_t)(n ? n : 1) * sizeof *names, 0);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, -2, i);
        names[i - 1] = lua_tostring(L, -1);
        lua_pop(L, 1); /* still anchored by the table */
    }
    qsort(names, (size_t)n, sizeof *names, compare_names);
    lua_createtable(L, (int)n, 0);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_pushstring(L, names[i - 1]);
        lua_rawseti(L, -2, i);
    }
    return 1;
}

/* fs.mkdtemp(prefix) -> path | nil, message, "io". A new folder only this user can enter, in
 * $TMPDIR (else /tmp), named prefix and six random characters. Never yields. */
static int l_fs_mkdtemp(lua_State *L)
{
    const char *prefix = luaL_checkstring(L, 1);
    const char *dir = getenv("TMPDIR");
    if (dir == NULL || *dir == '\0')
        dir = "/tmp";
    size_t len = strlen(dir) + 1 + strlen(prefix) + sizeof "XXXXXX";
    char *path = lua_newuserdatauv(L, len, 0); /* Lua-owned: freed even if a push raises */
    snprintf(path, len, "%s/%sXXXXXX", dir, prefix);
    if (mkdtemp(path) == NULL) {
        return fail(L, path, errno);
    }
    lua_pushstring(L, path);
    return 1;
}

/* fs.type(path) -> "file" | "directory" | "other" | nil, "path: message", "io". What path names,
 * links followed (stat), so a link to a directory is a directory. Never yields. */
static int l_fs_type(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    struct stat st;
    if (stat(path, &st) != 0) {
        return fail(L, path, errno);
    }
    lua_pushstring(L, S_ISREG(st.st_mode) ? "file" : S_ISDIR(st.st_mode) ? "directory" : "other");
    return 1;
}

/* Whether $PWD names the current directory: an absolute path without "." or ".." parts whose
 * file is the one "." is (POSIX `pwd -L`). A stale $PWD (a parent that changed directory
 * without updating it) is not trusted. */
static int pwd_is_cwd(const char *pwd)
{
    if (pwd == NULL || pwd[0] != '/' || strstr(pwd, "/./") || strstr(pwd, "/../"))
        return 0;
    size_t len = strlen(pwd);
    if ((len >= 2 && strcmp(pwd + len - 2, "/.") == 0) ||
        (len >= 3 && strcmp(pwd + len - 3, "/..") == 0))
        return 0;
    struct stat a, b;
    return stat(pwd, &a) == 0 && stat(".", &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* fs.cwd() -> path | nil, message, "io". The current directory as `pwd` prints it: $PWD when it
 * names the current directory (it keeps the links the user went through), else getcwd's.
 * Never yields. */
static int l_fs_cwd(lua_State *L)
{
    const char *pwd = getenv("PWD");
    if (pwd_is_cwd(pwd)) {
        lua_pushstring(L, pwd);
        return 1;
    }
    char buf[PATH_MAX]; /* Linux's getcwd gives no longer path */
    if (getcwd(buf, sizeof buf) == NULL) {
        return fail(L, "getcwd", errno);
    }
    lua_pushstring(L, buf);
    return 1;
}

static const luaL_Reg funcs[] = {
    {"mkdir_p", l_fs_mkdir_p}, {"mkdtemp", l_fs_mkdtemp}, {"list", l_fs_list},
    {"type", l_fs_type},       {"cwd", l_fs_cwd},         {NULL, NULL},
};

int luaopen_moonship_core_fs(lua_State *L)
{
    luaL_newlib(L, funcs);
    return 1;
}
