/* The malformed-input corpus (tests/fuzz/yaml, tests/fuzz/json) through both loaders: the C
 * YAML composer, then moonship.yaml and moonship.json in a Lua state. Files named ok_* must
 * load, bad_* must fail with a positioned message; nothing may raise, crash or leak (the suite
 * also runs this under ASan/UBSan). What loads is dumped/encoded and read back. */
#include <dirent.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdlib.h>

#include "core/yaml.h"
#include "lua/modules.h"
#include "test.h"

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    for (size_t got; buf && (got = fread(buf + n, 1, cap - n, f)) > 0;) {
        n += got;
        if (n == cap) {
            char *p = realloc(buf, cap *= 2);
            if (!p)
                free(buf);
            buf = p;
        }
    }
    fclose(f);
    *len = n;
    return buf;
}

/* Runs per file, with the globals yaml, json, path, text, want_ok (bool), kind. Returns
 * nothing on success, or raises with what went wrong. */
static const char driver[] =
    "local function same_json(v)\n"
    "  local ok, a = pcall(json.encode, v, {sort_keys = true})\n"
    "  if not ok then\n"
    "    assert(a:find('NaN or infinity', 1, true), a)\n"
    "    return\n"
    "  end\n"
    "  local back = assert(json.decode(a))\n"
    "  local b = json.encode(back, {sort_keys = true})\n"
    "  assert(a == b, 'json round trip changed: ' .. path)\n"
    "end\n"
    "if kind == 'yaml' then\n"
    "  local docs, err = yaml.load(text, {filename = path})\n"
    "  if want_ok then\n"
    "    assert(docs, err)\n"
    "    local out = yaml.dump_all(docs)\n"
    "    local again, err2 = yaml.load(out)\n"
    "    assert(again, (err2 or '') .. ' after dumping ' .. path)\n"
    "    assert(#again == #docs, 'document count changed: ' .. path)\n"
    "    for _, d in ipairs(docs) do same_json(d) end\n"
    "  else\n"
    "    assert(docs == nil, 'loaded: ' .. path)\n"
    "    assert(err:sub(1, #path + 1) == path .. ':', err)\n"
    "    assert(err:match(':%d+:%d+: .'), err)\n"
    "  end\n"
    "else\n"
    "  local v, err = json.decode(text)\n"
    "  if want_ok then\n"
    "    assert(v ~= nil, err)\n"
    "    same_json(v)\n"
    "    assert(yaml.load(yaml.dump(v), {max_depth = 1000}), 'yaml dump of ' .. path)\n"
    "  else\n"
    "    assert(v == nil, 'decoded: ' .. path)\n"
    "    assert(err:match('^json: %d+:%d+/%d+: .'), err)\n"
    "  end\n"
    "end\n";

static void run_dir(lua_State *L, const char *root, const char *kind, int *files)
{
    char dir[1024], path[2048];
    snprintf(dir, sizeof dir, "%s/tests/fuzz/%s", root, kind);
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    if (!d) {
        fprintf(stderr, "cannot open %s\n", dir);
        return;
    }
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        size_t len = 0;
        char *text = read_all(path, &len);
        CHECK(text != NULL);
        if (!text)
            continue;
        int want_ok = strncmp(e->d_name, "ok_", 3) == 0;
        CHECK(want_ok || strncmp(e->d_name, "bad_", 4) == 0);

        if (strcmp(kind, "yaml") == 0) {
            struct ms_yaml_stream *s = NULL;
            struct ms_yaml_opts opts = {.filename = e->d_name};
            int rc = ms_yaml_parse(text, len, &opts, &s);
            CHECK(rc == 0 || rc == MS_YAML_EPARSE);
            if ((rc == 0) != want_ok)
                fprintf(stderr, "%s: C parser says %s\n", path, s && s->error ? s->error : "ok");
            CHECK((rc == 0) == want_ok);
            ms_yaml_stream_free(s);
        }

        lua_pushlstring(L, path, strlen(path));
        lua_setglobal(L, "path");
        lua_pushlstring(L, text, len);
        lua_setglobal(L, "text");
        lua_pushboolean(L, want_ok);
        lua_setglobal(L, "want_ok");
        lua_pushstring(L, kind);
        lua_setglobal(L, "kind");
        free(text);
        int ok = luaL_loadbuffer(L, driver, sizeof driver - 1, "=driver") == LUA_OK &&
                 lua_pcall(L, 0, 0, 0) == LUA_OK;
        if (!ok) {
            fprintf(stderr, "%s: %s\n", path, lua_tostring(L, -1));
            lua_pop(L, 1);
        }
        CHECK(ok);
        lua_gc(L, LUA_GCCOLLECT);
        ++*files;
    }
    closedir(d);
}

static void test_corpus(void)
{
    const char *root = getenv("MOONSHIP_SOURCE_DIR");
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    luaL_requiref(L, "moonship.core.yaml", luaopen_moonship_core_yaml, 1);
    lua_setglobal(L, "yaml");
    luaL_requiref(L, "moonship.core.json", luaopen_moonship_core_json, 1);
    lua_setglobal(L, "json");
    int files = 0;
    run_dir(L, root ? root : ".", "yaml", &files);
    run_dir(L, root ? root : ".", "json", &files);
    printf("%d corpus files\n", files);
    CHECK(files >= 90);
    lua_close(L);
}

int main(void)
{
    RUN(test_corpus);
    return TEST_SUMMARY();
}
