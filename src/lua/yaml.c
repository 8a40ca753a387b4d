/* moonship.yaml: YAML streams as plain Lua tables whose positions live in a weak-keyed side
 * table (yaml.where), and block-style YAML output for showing Kubernetes manifests. */
#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/yaml.h"
#include "lua/modules.h"
#include "lua/options.h"
#include "lua/shape.h"

#define WHERE_KEY "moonship.yaml.where" /* registry: table -> position record */
#define STREAM_MT "moonship.yaml.Stream"
#define OUT_MT "moonship.yaml.Output"
#define DUMP_MAX_DEPTH 1000
#define LONG_KEY 200 /* bytes; escaped, still under the 1024 characters of a simple key */

/* A position record is a table: [false] = filename, [true] = the table's own position,
 * [key] = that key's (or index's) position; positions are packed as line << 32 | col. */
static lua_Integer pack(int line, int col)
{
    return ((lua_Integer)line << 32) | (lua_Integer)(unsigned)col;
}

/* Options are optional; when given, unknown keys are an error. */
static void check_options(lua_State *L, int idx, const char *fn, const char *const names[])
{
    if (!lua_isnoneornil(L, idx))
        ms_check_options(L, idx, fn, names);
}

/* ---- load: node tree -> Lua tables ---- */

struct conv {
    int where;    /* stack index of the side table */
    int filename; /* stack index of the filename string */
};

static void push_node(lua_State *L, const struct conv *cv, const struct ms_yaml_node *n);

/* Pushes a new table and its position record (tbl at -2, rec at -1). */
static void new_table(lua_State *L, const struct conv *cv, const struct ms_yaml_node *n, int narr,
                      int nrec)
{
    lua_createtable(L, narr, nrec);
    lua_createtable(L, narr, nrec + 2);
    lua_pushboolean(L, 0);
    lua_pushvalue(L, cv->filename);
    lua_rawset(L, -3);
    lua_pushboolean(L, 1);
    lua_pushinteger(L, pack(n->line, n->col));
    lua_rawset(L, -3);
    /* where[tbl] = rec */
    lua_pushvalue(L, -2);
    lua_pushvalue(L, -2);
    lua_rawset(L, cv->where);
}

static void push_node(lua_State *L, const struct conv *cv, const struct ms_yaml_node *n)
{
    luaL_checkstack(L, 8, "yaml.load: nesting too deep");
    switch (n->type) {
    case MS_YAML_NULL:
        ms_push_null(L);
        return;
    case MS_YAML_BOOL:
        lua_pushboolean(L, n->v.boolean);
        return;
    case MS_YAML_INT:
        lua_pushinteger(L, (lua_Integer)n->v.integer);
        return;
    case MS_YAML_FLOAT:
        lua_pushnumber(L, (lua_Number)n->v.number);
        return;
    case MS_YAML_STR:
        lua_pushlstring(L, n->text, n->len);
        return;
    case MS_YAML_SEQ:
        new_table(L, cv, n, (int)n->count, 0);
        for (size_t i = 0; i < n->count; i++) {
            push_node(L, cv, n->items[i]);
            lua_rawseti(L, -3, (lua_Integer)i + 1);
            lua_pushinteger(L, pack(n->items[i]->line, n->items[i]->col));
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        lua_pop(L, 1);
        ms_set_shape(L, -1, MS_SHAPE_ARRAY);
        return;
    case MS_YAML_MAP:
        new_table(L, cv, n, 0, (int)n->count);
        for (size_t i = 0; i < n->count; i++) {
            const struct ms_yaml_node *k = n->pairs[i].key;
            lua_pushlstring(L, k->text, k->len);
            push_node(L, cv, n->pairs[i].value);
            lua_rawset(L, -4);
            lua_pushlstring(L, k->text, k->len);
            lua_pushinteger(L, pack(k->line, k->col));
            lua_rawset(L, -3);
        }
        lua_pop(L, 1);
        if (n->count == 0)
            ms_set_shape(L, -1, MS_SHAPE_OBJECT);
        return;
    }
}

/* The parsed stream lives in a box whose __gc frees it, so a raise while building tables
 * (out of memory) leaks nothing. */
static int stream_gc(lua_State *L)
{
    struct ms_yaml_stream **box = luaL_checkudata(L, 1, STREAM_MT);
    ms_yaml_stream_free(*box);
    *box = NULL;
    return 0;
}

/* yaml.load(text [, {filename=, max_nodes=, max_depth=}])
 *   -> {doc...} | nil, "file:l:c: msg", "parse"
 * Raises on misuse (bad arguments or options). An empty document is yaml.null. */
static int l_yaml_load(lua_State *L)
{
    static const char *const names[] = {"filename", "max_nodes", "max_depth", NULL};
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    check_options(L, 2, "yaml.load", names);
    struct ms_yaml_opts opts = {0};
    if (!lua_isnoneornil(L, 2)) {
        opts.max_nodes =
            (size_t)ms_opt_integer(L, 2, "max_nodes", 1, LUA_MAXINTEGER, 0, "yaml.load");
        opts.max_depth = (int)ms_opt_integer(L, 2, "max_depth", 1, 10000, 0, "yaml.load");
    }
    if (lua_istable(L, 2)) {
        lua_getfield(L, 2, "filename");
        if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "option 'filename' must be a string");
        lua_replace(L, 2);
    } else {
        lua_settop(L, 1);
        lua_pushnil(L);
    }
    if (lua_isnil(L, 2)) {
        lua_pushliteral(L, "<string>");
        lua_replace(L, 2);
    }
    opts.filename = lua_tostring(L, 2);

    struct ms_yaml_stream **box = lua_newuserdatauv(L, sizeof *box, 0);
    *box = NULL;
    luaL_setmetatable(L, STREAM_MT);
    int rc = ms_yaml_parse(text, len, &opts, box);
    if (rc == MS_YAML_ENOMEM)
        return luaL_error(L, "yaml.load: out of memory");
    if (rc != 0) {
        int n = ms_fail(L, "parse", "%s", (*box)->error);
        ms_yaml_stream_free(*box);
        *box = NULL;
        return n;
    }
    lua_getfield(L, LUA_REGISTRYINDEX, WHERE_KEY);
    struct conv cv = {lua_gettop(L), 2};
    struct ms_yaml_stream *s = *box;
    struct ms_yaml_node top = {.type = MS_YAML_SEQ, .line = 1, .col = 1};
    new_table(L, &cv, &top, (int)s->ndocs, 0);
    for (size_t i = 0; i < s->ndocs; i++) {
        push_node(L, &cv, s->docs[i]);
        lua_rawseti(L, -3, (lua_Integer)i + 1);
        lua_pushinteger(L, pack(s->docs[i]->line, s->docs[i]->col));
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_pop(L, 1);
    ms_set_shape(L, -1, MS_SHAPE_ARRAY);
    ms_yaml_stream_free(s);
    *box = NULL;
    return 1;
}

/* yaml.where(tbl [, key]) -> filename, line, col | nil
 * Where the key (an index for a sequence) was written, or the table itself without a key;
 * nil for tables and keys that did not come from yaml.load. */
static int l_yaml_where(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 2);
    lua_getfield(L, LUA_REGISTRYINDEX, WHERE_KEY);
    lua_pushvalue(L, 1);
    if (lua_rawget(L, -2) != LUA_TTABLE)
        return 0;
    if (lua_isnil(L, 2))
        lua_pushboolean(L, 1);
    else
        lua_pushvalue(L, 2);
    if (lua_rawget(L, -2) != LUA_TNUMBER)
        return 0;
    lua_Integer p = lua_tointeger(L, -1);
    lua_pushboolean(L, 0);
    lua_rawget(L, -3);
    lua_pushinteger(L, p >> 32);
    lua_pushinteger(L, p & 0xffffffff);
    return 3;
}

/* ---- dump: Lua values -> block-style YAML ---- */

struct out {
    struct ms_json_buf b;
    int where;    /* stack index of the side table, for key order */
    int visiting; /* stack index of the set of tables being dumped (cycles) */
};

static int out_gc(lua_State *L)
{
    struct out *o = luaL_checkudata(L, 1, OUT_MT);
    ms_json_buf_free(&o->b);
    return 0;
}

static void put(lua_State *L, struct out *o, const char *s, size_t n)
{
    if (ms_json_buf_add(&o->b, s, n))
        luaL_error(L, "yaml.dump: out of memory");
}

#define PUTS(L, o, lit) put(L, o, lit, sizeof(lit) - 1)

static void put_indent(lua_State *L, struct out *o, int indent)
{
    static const char spaces[] = "                                ";
    while (indent > 0) {
        int n = indent > 32 ? 32 : indent;
        put(L, o, spaces, (size_t)n);
        indent -= n;
    }
}

/* Length of the valid UTF-8 sequence at s[0..n), 0 when invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t len = s[0] < 0x80                    ? 1
                 : s[0] >= 0xC2 && s[0] <= 0xDF ? 2
                 : s[0] >= 0xE0 && s[0] <= 0xEF ? 3
                 : s[0] >= 0xF0 && s[0] <= 0xF4 ? 4
                                                : 0;
    if (len == 0 || len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] >= 0xA0) ||
        (s[0] == 0xF0 && s[1] < 0x90) || (s[0] == 0xF4 && s[1] >= 0x90))
        return 0;
    return len;
}

/* The escape a valid UTF-8 character needs inside YAML text, or NULL: YAML reads NEL, LS
 * and PS as line breaks, and does not allow C1 controls, U+FEFF inside text, U+FFFE/U+FFFF. */
static const char *unicode_escape(const unsigned char *s, size_t len, char buf[8])
{
    static const char hex[] = "0123456789ABCDEF";
    if (len == 2 && s[0] == 0xC2 && s[1] == 0x85)
        return "\\N";
    if (len == 2 && s[0] == 0xC2 && s[1] < 0xA0) {
        buf[0] = '\\', buf[1] = 'x', buf[2] = hex[s[1] >> 4], buf[3] = hex[s[1] & 15];
        buf[4] = '\0';
        return buf;
    }
    if (len == 3 && s[0] == 0xE2 && s[1] == 0x80 && (s[2] == 0xA8 || s[2] == 0xA9))
        return s[2] == 0xA8 ? "\\L" : "\\P";
    if (len == 3 && s[0] == 0xEF && s[1] == 0xBB && s[2] == 0xBF)
        return "\\uFEFF";
    if (len == 3 && s[0] == 0xEF && s[1] == 0xBF && (s[2] == 0xBE || s[2] == 0xBF))
        return s[2] == 0xBE ? "\\uFFFE" : "\\uFFFF";
    return NULL;
}

/* Text YAML holds as it is: valid UTF-8, no control characters but those allowed. */
static int clean_text(const char *s, size_t n, int allow_newline)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        if (u[i] < 0x20 || u[i] == 0x7f) {
            if (!(allow_newline && (u[i] == '\n' || u[i] == '\t')))
                return 0;
            i++;
            continue;
        }
        size_t len = utf8_len(u + i, n - i);
        char buf[8];
        if (len == 0 || unicode_escape(u + i, len, buf))
            return 0;
        i += len;
    }
    return 1;
}

/* Whether s can be written unquoted and read back as the same string. */
static int plain_ok(const char *s, size_t n)
{
    if (n == 0 || ms_yaml_resolve(s, n, NULL, NULL) != MS_YAML_STR || !clean_text(s, n, 0))
        return 0;
    if (strchr("?:,[]{}#&*!|>'\"%@` ", s[0]) || s[n - 1] == ' ' || s[n - 1] == ':')
        return 0;
    if (s[0] == '-' && (n == 1 || s[1] == ' ' || (n >= 3 && memcmp(s, "---", 3) == 0)))
        return 0;
    if ((n >= 3 && memcmp(s, "...", 3) == 0) || (n == 2 && memcmp(s, "<<", 2) == 0))
        return 0; /* a document end marker; a merge key */
    for (size_t i = 0; i + 1 < n; i++)
        if ((s[i] == ':' && s[i + 1] == ' ') || (s[i] == ' ' && s[i + 1] == '#'))
            return 0;
    return 1;
}

/* Multi-line text as a literal block scalar, when it reads back exactly. */
static int literal_ok(const char *s, size_t n)
{
    if (!memchr(s, '\n', n) || !clean_text(s, n, 1))
        return 0;
    int seen_text = 0;
    for (size_t i = 0; i < n;) {
        const char *nl = memchr(s + i, '\n', n - i);
        size_t end = nl ? (size_t)(nl - s) : n, j = i;
        while (j < end && (s[j] == ' ' || s[j] == '\t'))
            j++;
        if (j < end) {
            /* The first text line sets the indentation: it may not start with white space. */
            if (!seen_text && j > i)
                return 0;
            seen_text = 1;
        } else if (end > i) {
            return 0; /* a blank line made of spaces would change meaning */
        }
        i = end + 1;
    }
    return seen_text;
}

static void put_quoted(lua_State *L, struct out *o, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *u = (const unsigned char *)s;
    PUTS(L, o, "\"");
    for (size_t i = 0; i < n;) {
        size_t len = u[i] >= 0x80 ? utf8_len(u + i, n - i) : 1;
        char esc[8];
        if (len == 0) { /* not UTF-8: YAML cannot hold the byte, \xNN is the closest */
            esc[0] = '\\', esc[1] = 'x', esc[2] = hex[u[i] >> 4], esc[3] = hex[u[i] & 15];
            put(L, o, esc, 4);
            i++;
            continue;
        }
        const char *ue = len > 1 ? unicode_escape(u + i, len, esc) : NULL;
        if (ue) {
            put(L, o, ue, strlen(ue));
        } else if (len == 1 && (u[i] < 0x20 || u[i] == 0x7f || u[i] == '"' || u[i] == '\\')) {
            const char *e = u[i] == '"'    ? "\\\""
                            : u[i] == '\\' ? "\\\\"
                            : u[i] == '\n' ? "\\n"
                            : u[i] == '\t' ? "\\t"
                            : u[i] == '\r' ? "\\r"
                            : u[i] == 0    ? "\\0"
                                           : NULL;
            if (e) {
                put(L, o, e, 2);
            } else {
                esc[0] = '\\', esc[1] = 'x', esc[2] = hex[u[i] >> 4], esc[3] = hex[u[i] & 15];
                put(L, o, esc, 4);
            }
        } else {
            put(L, o, s + i, len);
        }
        i += len;
    }
    PUTS(L, o, "\"");
}

/* Writes a string scalar; returns 1 when it ended the line itself (a literal block). */
static int put_string(lua_State *L, struct out *o, const char *s, size_t n, int indent)
{
    if (plain_ok(s, n)) {
        put(L, o, s, n);
        return 0;
    }
    if (!literal_ok(s, n)) {
        put_quoted(L, o, s, n);
        return 0;
    }
    size_t trailing = 0;
    while (trailing < n && s[n - 1 - trailing] == '\n')
        trailing++;
    if (trailing == 0)
        PUTS(L, o, "|-\n");
    else if (trailing == 1)
        PUTS(L, o, "|\n");
    else
        PUTS(L, o, "|+\n");
    size_t body = n - trailing;
    for (size_t i = 0; i < body;) {
        const char *nl = memchr(s + i, '\n', body - i);
        size_t end = nl ? (size_t)(nl - s) : body;
        if (end > i) {
            put_indent(L, o, indent + 2);
            put(L, o, s + i, end - i);
        }
        PUTS(L, o, "\n");
        i = end + 1;
    }
    for (size_t k = 1; k < trailing; k++)
        PUTS(L, o, "\n");
    return 1;
}

/* Writes the non-table value at idx; returns 1 when it ended the line. Raises for values
 * YAML cannot hold. */
static int put_scalar(lua_State *L, struct out *o, int idx, int indent)
{
    char tmp[32];
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        PUTS(L, o, "null");
        return 0;
    case LUA_TBOOLEAN:
        if (lua_toboolean(L, idx))
            PUTS(L, o, "true");
        else
            PUTS(L, o, "false");
        return 0;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx)) {
            int n = snprintf(tmp, sizeof tmp, LUA_INTEGER_FMT, lua_tointeger(L, idx));
            put(L, o, tmp, (size_t)n);
        } else {
            double d = (double)lua_tonumber(L, idx);
            if (isnan(d))
                PUTS(L, o, ".nan");
            else if (isinf(d))
                put(L, o, d < 0 ? "-.inf" : ".inf", d < 0 ? 5 : 4);
            else if (ms_json_add_number(&o->b, d, 1))
                luaL_error(L, "yaml.dump: out of memory");
        }
        return 0;
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        return put_string(L, o, s, n, indent);
    }
    default:
        if (ms_is_null(L, idx)) {
            PUTS(L, o, "null");
            return 0;
        }
        return luaL_error(L, "yaml.dump: cannot dump a %s", luaL_typename(L, idx));
    }
}

struct key {
    const char *s; /* borrows: the string is held by the keys table */
    size_t n;
    lua_Integer i;
    int isint;
    lua_Integer pos; /* where it was loaded from, or LUA_MAXINTEGER */
    int slot;        /* index in the keys table */
};

static int key_cmp(const void *pa, const void *pb)
{
    const struct key *a = pa, *b = pb;
    if (a->pos != b->pos)
        return a->pos < b->pos ? -1 : 1;
    if (a->isint != b->isint)
        return a->isint ? -1 : 1;
    if (a->isint)
        return a->i < b->i ? -1 : a->i > b->i;
    int c = memcmp(a->s, b->s, a->n < b->n ? a->n : b->n);
    return c ? c : (a->n > b->n) - (a->n < b->n);
}

enum kind { EMPTY_MAP, EMPTY_SEQ, MAP, SEQ };

/* What the table at idx dumps as: a sequence when marked so or keyed exactly 1..n. */
static enum kind table_kind(lua_State *L, int idx)
{
    enum ms_shape shape = ms_shape_of(L, idx);
    if (shape == MS_SHAPE_ARRAY)
        return lua_rawlen(L, idx) ? SEQ : EMPTY_SEQ;
    lua_Integer count = 0, max = 0;
    int only_ints = 1;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        count++;
        if (only_ints && lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1) {
            if (lua_tointeger(L, -1) > max)
                max = lua_tointeger(L, -1);
        } else {
            only_ints = 0;
        }
    }
    if (count == 0)
        return EMPTY_MAP;
    return only_ints && max == count && shape != MS_SHAPE_OBJECT ? SEQ : MAP;
}

static void dump_table(lua_State *L, struct out *o, int idx, enum kind kind, int indent,
                       int inline_first, int depth);

/* The value at idx as the content of a mapping entry or of a sequence item. */
static void dump_child(lua_State *L, struct out *o, int idx, int indent, int in_seq, int depth)
{
    if (lua_type(L, idx) == LUA_TTABLE) {
        enum kind kind = table_kind(L, idx);
        if (kind == MAP || kind == SEQ) {
            if (in_seq)
                dump_table(L, o, idx, kind, indent + 2, 1, depth + 1);
            else {
                PUTS(L, o, "\n");
                /* A sequence under a key sits at the key's column, as kubectl writes it. */
                dump_table(L, o, idx, kind, kind == MAP ? indent + 2 : indent, 0, depth + 1);
            }
            return;
        }
        if (!in_seq)
            PUTS(L, o, " ");
        if (kind == EMPTY_SEQ)
            PUTS(L, o, "[]\n");
        else
            PUTS(L, o, "{}\n");
        return;
    }
    if (!in_seq)
        PUTS(L, o, " ");
    if (!put_scalar(L, o, idx, indent))
        PUTS(L, o, "\n");
}

static void dump_table(lua_State *L, struct out *o, int idx, enum kind kind, int indent,
                       int inline_first, int depth)
{
    idx = lua_absindex(L, idx);
    luaL_checkstack(L, 10, "yaml.dump: nesting too deep");
    if (depth > DUMP_MAX_DEPTH)
        luaL_error(L, "yaml.dump: nesting deeper than %d levels", DUMP_MAX_DEPTH);
    lua_pushvalue(L, idx);
    if (lua_rawget(L, o->visiting) != LUA_TNIL)
        luaL_error(L, "yaml.dump: cannot dump a table that contains itself");
    lua_pop(L, 1);
    lua_pushvalue(L, idx);
    lua_pushboolean(L, 1);
    lua_rawset(L, o->visiting);

    if (kind == SEQ) {
        lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
        for (lua_Integer i = 1; i <= n; i++) {
            if (i > 1 || !inline_first)
                put_indent(L, o, indent);
            PUTS(L, o, "- ");
            lua_rawgeti(L, idx, i);
            dump_child(L, o, lua_gettop(L), indent, 1, depth);
            lua_pop(L, 1);
        }
    } else {
        /* Keys in the order they were loaded in, then the others sorted: stable output. */
        lua_newtable(L);
        int keys = lua_gettop(L);
        int n = 0;
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            lua_pop(L, 1);
            if (lua_type(L, -1) != LUA_TSTRING && !lua_isinteger(L, -1))
                luaL_error(L, "yaml.dump: cannot dump a %s key", luaL_typename(L, -1));
            lua_pushvalue(L, -1);
            lua_rawseti(L, keys, ++n);
        }
        struct key *ks = lua_newuserdatauv(L, (size_t)n * sizeof *ks + 1, 0);
        lua_pushvalue(L, idx);
        lua_rawget(L, o->where);
        int rec = lua_gettop(L);
        for (int j = 0; j < n; j++) {
            struct key *k = &ks[j];
            lua_rawgeti(L, keys, j + 1);
            k->slot = j + 1;
            k->isint = lua_isinteger(L, -1);
            k->i = k->isint ? lua_tointeger(L, -1) : 0;
            k->s = k->isint ? NULL : lua_tolstring(L, -1, &k->n);
            k->pos = LUA_MAXINTEGER;
            if (lua_istable(L, rec) && lua_rawget(L, rec) == LUA_TNUMBER)
                k->pos = lua_tointeger(L, -1);
            lua_pop(L, 1);
        }
        qsort(ks, (size_t)n, sizeof *ks, key_cmp);
        for (int j = 0; j < n; j++) {
            if (j > 0 || !inline_first)
                put_indent(L, o, indent);
            lua_rawgeti(L, keys, ks[j].slot);
            /* YAML caps implicit keys at 1024 characters: longer ones take the "? " form. */
            int explicit_key = !ks[j].isint && ks[j].n > LONG_KEY;
            if (explicit_key)
                PUTS(L, o, "? ");
            if (ks[j].isint) {
                put_scalar(L, o, -1, indent);
            } else if (plain_ok(ks[j].s, ks[j].n)) {
                put(L, o, ks[j].s, ks[j].n);
            } else {
                put_quoted(L, o, ks[j].s, ks[j].n);
            }
            if (explicit_key) {
                PUTS(L, o, "\n");
                put_indent(L, o, indent);
            }
            PUTS(L, o, ":");
            lua_rawget(L, idx);
            dump_child(L, o, lua_gettop(L), indent, 0, depth);
            lua_pop(L, 1);
        }
        lua_settop(L, keys - 1);
    }
    lua_pushvalue(L, idx);
    lua_pushnil(L);
    lua_rawset(L, o->visiting);
}

static void dump_document(lua_State *L, struct out *o, int idx)
{
    if (lua_type(L, idx) == LUA_TTABLE) {
        enum kind kind = table_kind(L, idx);
        if (kind == MAP || kind == SEQ)
            dump_table(L, o, idx, kind, 0, 0, 0);
        else if (kind == EMPTY_SEQ)
            PUTS(L, o, "[]\n");
        else
            PUTS(L, o, "{}\n");
    } else if (!put_scalar(L, o, idx, 0)) {
        PUTS(L, o, "\n");
    }
}

/* Sets up the output box, the side table and the visiting set above the arguments. */
static struct out *new_out(lua_State *L)
{
    struct out *o = lua_newuserdatauv(L, sizeof *o, 0);
    memset(o, 0, sizeof *o);
    luaL_setmetatable(L, OUT_MT);
    lua_getfield(L, LUA_REGISTRYINDEX, WHERE_KEY);
    o->where = lua_gettop(L);
    lua_newtable(L);
    o->visiting = lua_gettop(L);
    return o;
}

static int finish_out(lua_State *L, struct out *o)
{
    lua_pushlstring(L, o->b.data ? o->b.data : "", o->b.len);
    ms_json_buf_free(&o->b);
    return 1;
}

/* yaml.dump(value) -> text: one block-style document. Raises for functions, userdata,
 * cycles and keys that are neither strings nor integers. */
static int l_yaml_dump(lua_State *L)
{
    luaL_checkany(L, 1);
    lua_settop(L, 1);
    struct out *o = new_out(L);
    dump_document(L, o, 1);
    return finish_out(L, o);
}

/* yaml.dump_all(docs) -> text: the documents of the list, separated by "---". Raises like
 * yaml.dump. */
static int l_yaml_dump_all(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    struct out *o = new_out(L);
    lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
    for (lua_Integer i = 1; i <= n; i++) {
        if (i > 1)
            PUTS(L, o, "---\n");
        lua_rawgeti(L, 1, i);
        dump_document(L, o, lua_gettop(L));
        lua_pop(L, 1);
    }
    return finish_out(L, o);
}

static const luaL_Reg funcs[] = {
    {"load", l_yaml_load}, {"where", l_yaml_where},
    {"dump", l_yaml_dump}, {"dump_all", l_yaml_dump_all},
    {NULL, NULL},
};

int luaopen_moonship_core_yaml(lua_State *L)
{
    luaL_newmetatable(L, STREAM_MT);
    lua_pushcfunction(L, stream_gc);
    lua_setfield(L, -2, "__gc");
    luaL_newmetatable(L, OUT_MT);
    lua_pushcfunction(L, out_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 2);
    if (lua_getfield(L, LUA_REGISTRYINDEX, WHERE_KEY) != LUA_TTABLE) {
        lua_newtable(L);
        lua_createtable(L, 0, 1);
        lua_pushliteral(L, "k");
        lua_setfield(L, -2, "__mode");
        lua_setmetatable(L, -2);
        lua_setfield(L, LUA_REGISTRYINDEX, WHERE_KEY);
    }
    lua_pop(L, 1);
    luaL_newlib(L, funcs);
    ms_push_null(L);
    lua_setfield(L, -2, "null");
    return 1;
}
