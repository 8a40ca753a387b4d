/* src/core/yaml.c: table-driven cases, each a YAML text and either the tree it composes to
 * (rendered compactly) or the exact error message with its position. */
#include <math.h>
#include <stdlib.h>

#include "test.h"
#include "core/yaml.h"

/* Renders a node: ~ null, true/false, 12 int, 1.5f float, "s" string, [..] seq, {k:v} map. */
static void render(const struct ms_yaml_node *n, char *buf, size_t cap, size_t *len)
{
#define OUT(...) (*len += (size_t)snprintf(buf + *len, *len < cap ? cap - *len : 0, __VA_ARGS__))
    switch (n->type) {
    case MS_YAML_NULL:
        OUT("~");
        break;
    case MS_YAML_BOOL:
        OUT("%s", n->v.boolean ? "true" : "false");
        break;
    case MS_YAML_INT:
        OUT("%lld", n->v.integer);
        break;
    case MS_YAML_FLOAT:
        OUT("%gf", n->v.number);
        break;
    case MS_YAML_STR:
        OUT("\"%.*s\"", (int)n->len, n->text);
        break;
    case MS_YAML_SEQ:
        OUT("[");
        for (size_t i = 0; i < n->count; i++) {
            if (i)
                OUT(",");
            render(n->items[i], buf, cap, len);
        }
        OUT("]");
        break;
    case MS_YAML_MAP:
        OUT("{");
        for (size_t i = 0; i < n->count; i++) {
            if (i)
                OUT(",");
            OUT("%.*s:", (int)n->pairs[i].key->len, n->pairs[i].key->text);
            render(n->pairs[i].value, buf, cap, len);
        }
        OUT("}");
        break;
    }
#undef OUT
}

static char *render_stream(const struct ms_yaml_stream *s)
{
    static char buf[4096];
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < s->ndocs; i++) {
        if (i)
            len += (size_t)snprintf(buf + len, sizeof buf - len, " --- ");
        render(s->docs[i], buf, sizeof buf, &len);
    }
    return buf;
}

struct parse_case {
    const char *text;
    const char *want; /* rendered tree, or the error message */
};

static const struct parse_case cases[] = {
    /* scalars: the core schema as Kubernetes users expect it */
    {"a: 1\nb: -12\nc: 0x1F\nd: 0o17\ne: 0644\nf: 09\ng: +7",
     "{a:1,b:-12,c:31,d:15,e:420,f:9,g:7}"},
    {"[1.5, 1e3, -.inf, .Inf, 2., .5]", "[1.5f,1000f,-inff,inff,2f,0.5f]"},
    {"[true, True, TRUE, false, yes, no, on, off, y, n]",
     "[true,true,true,false,\"yes\",\"no\",\"on\",\"off\",\"y\",\"n\"]"},
    {"- null\n- Null\n- NULL\n- ~\n-\n- nil", "[~,~,~,~,~,\"nil\"]"},
    {"a:\nb: ~", "{a:~,b:~}"},
    {"- '1'\n- \"true\"\n- \"null\"\n- |\n  3\n", "[\"1\",\"true\",\"null\",\"3\n\"]"},
    {"[1_000, 1.2.3, 0x, 0xZZ, 12abc, -, .]",
     "[\"1_000\",\"1.2.3\",\"0x\",\"0xZZ\",\"12abc\",\"-\",\".\"]"},
    {"[9223372036854775807, -9223372036854775808, 9223372036854775808]",
     "[9223372036854775807,-9223372036854775808,9.22337e+18f]"},
    {"big: 1700000000123", "{big:1700000000123}"},
    /* explicit tags */
    {"[!!str 123, !!int '42', !!float 1, !!bool 'true', !!null '', ! 12, !Ref 5]",
     "[\"123\",42,1f,true,~,\"12\",5]"},
    {"a: !!int abc", "t.yaml:1:4: invalid !!int value 'abc'"},
    {"a: !!float x", "t.yaml:1:4: invalid !!float value 'x'"},
    {"a: !!bool yes", "t.yaml:1:4: invalid !!bool value 'yes'"},
    {"a: !!map x", "t.yaml:1:4: tag !!map on a scalar"},
    /* documents */
    {"", ""},
    {"---\n", "~"},
    {"a: 1\n---\nb: 2\n...\n---\n- 3\n", "{a:1} --- {b:2} --- [3]"},
    {"--- 1\n--- 'x'\n---\n", "1 --- \"x\" --- ~"},
    /* anchors, aliases, merge keys */
    {"a: &x {k: 1}\nb: *x\nc: [*x, &y 2, *y]", "{a:{k:1},b:{k:1},c:[{k:1},2,2]}"},
    {"a: *nope", "t.yaml:1:4: undefined alias 'nope'"},
    {"a: &x [1, *x]", "t.yaml:1:11: recursive alias 'x' is not supported"},
    {"--- &a 1\n--- *a\n", "t.yaml:2:5: undefined alias 'a'"},
    {"base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  y: 3\n  z: 4", "{base:{x:1,y:2},d:{x:1,y:3,z:4}}"},
    {"a: &a {x: 1, y: 1}\nb: &b {y: 2, z: 2}\nc:\n  <<: [*a, *b]\n  w: 0",
     "{a:{x:1,y:1},b:{y:2,z:2},c:{x:1,y:1,z:2,w:0}}"},
    {"a: &a {x: 1}\nb: {k: 0, <<: *a, x: 9}", "{a:{x:1},b:{k:0,x:9}}"},
    {"b: {<<: {p: 1}, '<<': 2}", "{b:{p:1,<<:2}}"},
    {"a: &a {x: 1}\nb: &b {<<: *a, y: 2}\nc: {<<: *b}", "{a:{x:1},b:{x:1,y:2},c:{x:1,y:2}}"},
    {"a:\n  <<: 3", "t.yaml:2:7: merge key '<<' expects a mapping or a list of mappings"},
    {"a:\n  <<: [{x: 1}, 2]",
     "t.yaml:2:16: merge key '<<' expects a mapping or a list of mappings"},
    {"a: &a {x: 1}\nb: {<<: *a, <<: *a}", "t.yaml:2:13: duplicate key '<<' (first at 2:5)"},
    /* duplicate keys and key shapes */
    {"app: x\nservices:\n  - name: a\n    image: b\n    name: c\n",
     "t.yaml:5:5: duplicate key 'name' (first at 3:5)"},
    {"a: 1\n'a': 2", "t.yaml:2:1: duplicate key 'a' (first at 1:1)"},
    {"{a: 1, b: 2, a: 3}", "t.yaml:1:14: duplicate key 'a' (first at 1:2)"},
    {"? [a]\n: 1", "t.yaml:1:3: mapping keys must be scalars"},
    {"1: a\n~: b\ntrue: c", "{1:\"a\",~:\"b\",true:\"c\"}"},
    /* syntax errors carry libyaml's problem, position and context */
    {"a: b: c", "t.yaml:1:5: mapping values are not allowed in this context"},
    {"a:\n\t- b", "t.yaml:2:1: found character that cannot start any token (while scanning "
                  "for the next token started at 2:1)"},
    {"a: [1, 2", "t.yaml:2:1: did not find expected ',' or ']' (while parsing a flow "
                 "sequence started at 1:4)"},
    {"a: 'open", "t.yaml:1:9: found unexpected end of stream (while scanning a quoted "
                 "scalar started at 1:4)"},
    {"a:\n  b: 1\n c: 2", "t.yaml:3:2: did not find expected key (while parsing a block "
                          "mapping started at 1:1)"},
    {"a: \xff\n", "t.yaml:1:4: invalid leading UTF-8 octet (0xFF)"},
    {"a: &x\n  - *y", "t.yaml:2:5: undefined alias 'y'"},
};

static void test_cases(void)
{
    struct ms_yaml_opts opts = {.filename = "t.yaml"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct ms_yaml_stream *s = NULL;
        int rc = ms_yaml_parse(cases[i].text, strlen(cases[i].text), &opts, &s);
        CHECK(s != NULL);
        if (!s)
            continue;
        const char *got = rc == 0 ? render_stream(s) : s->error;
        if (!got || strcmp(got, cases[i].want) != 0)
            fprintf(stderr, "case %zu: %s\n", i, cases[i].text);
        CHECK_STR(got, cases[i].want);
        ms_yaml_stream_free(s);
    }
}

static void test_positions(void)
{
    const char *text = "# comment\napp: web\nservices:\n  - name: a\n    ports: [80, 443]\n"
                       "  - {name: b}\n";
    struct ms_yaml_stream *s = NULL;
    CHECK_INT(ms_yaml_parse(text, strlen(text), NULL, &s), 0);
    CHECK_INT(s->ndocs, 1);
    const struct ms_yaml_node *root = s->docs[0];
    CHECK_INT(root->line, 2);
    CHECK_INT(root->col, 1);
    CHECK_INT(root->pairs[1].key->line, 3);
    const struct ms_yaml_node *svcs = root->pairs[1].value;
    CHECK_INT(svcs->line, 4);
    CHECK_INT(svcs->col, 3);
    const struct ms_yaml_node *a = svcs->items[0];
    CHECK_INT(a->line, 4);
    CHECK_INT(a->col, 5);
    CHECK_INT(a->pairs[1].key->col, 5);
    CHECK_INT(a->pairs[1].value->items[1]->line, 5);
    CHECK_INT(a->pairs[1].value->items[1]->col, 17);
    CHECK_INT(a->pairs[1].value->style, MS_YAML_FLOW);
    CHECK_INT(svcs->items[1]->col, 5);
    CHECK_INT(svcs->items[1]->pairs[0].key->col, 6);
    ms_yaml_stream_free(s);

    /* Columns count characters, not bytes. */
    text = "ünï: {é: 1, x: *z}";
    CHECK_INT(ms_yaml_parse(text, strlen(text), NULL, &s), MS_YAML_EPARSE);
    CHECK_STR(s->error, "<string>:1:16: undefined alias 'z'");
    CHECK_INT(s->error_line, 1);
    CHECK_INT(s->error_col, 16);
    ms_yaml_stream_free(s);
}

static void test_scalar_details(void)
{
    const char *text = "a: !!str 12\nb: \"x\\0y\"\nc: |\n  line\n";
    struct ms_yaml_stream *s = NULL;
    CHECK_INT(ms_yaml_parse(text, strlen(text), NULL, &s), 0);
    const struct ms_yaml_node *m = s->docs[0];
    CHECK_STR(m->pairs[0].value->tag, "tag:yaml.org,2002:str");
    CHECK_INT(m->pairs[0].value->type, MS_YAML_STR);
    CHECK_INT(m->pairs[1].value->len, 3);
    CHECK_INT(m->pairs[1].value->style, MS_YAML_DOUBLE_QUOTED);
    CHECK(memcmp(m->pairs[1].value->text, "x\0y", 3) == 0);
    CHECK_INT(m->pairs[2].value->style, MS_YAML_LITERAL);
    ms_yaml_stream_free(s);

    double d = 0;
    CHECK_INT(ms_yaml_resolve(".nan", 4, NULL, &d), MS_YAML_FLOAT);
    CHECK(isnan(d));
    CHECK_INT(ms_yaml_resolve("-0", 2, NULL, NULL), MS_YAML_INT);
    CHECK_INT(ms_yaml_resolve("1e", 2, NULL, NULL), MS_YAML_STR);
    CHECK_INT(ms_yaml_resolve("+.inf", 5, NULL, &d), MS_YAML_FLOAT);
    CHECK(isinf(d) && d > 0);
}

/* Billion laughs: nine levels of ten aliases expand to 10^9 nodes; refused, quickly. */
static void test_alias_bomb(void)
{
    char text[2048];
    size_t len = (size_t)snprintf(text, sizeof text, "a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for (char c = 'b'; c <= 'i'; c++)
        len +=
            (size_t)snprintf(text + len, sizeof text - len,
                             "%c: &%c [*%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c]\n", c, c,
                             c - 1, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1);
    struct ms_yaml_stream *s = NULL;
    CHECK_INT(ms_yaml_parse(text, len, NULL, &s), MS_YAML_EPARSE);
    CHECK_STR(s->error,
              "<string>:6:36: document too large: more than 1000000 nodes once aliases are "
              "expanded");
    ms_yaml_stream_free(s);

    struct ms_yaml_opts small = {.max_nodes = 20};
    const char *ok = "a: &a [1, 2, 3]\nb: [*a, *a]";
    CHECK_INT(ms_yaml_parse(ok, strlen(ok), &small, &s), 0);
    CHECK_INT(s->docs[0]->expanded, 16);
    ms_yaml_stream_free(s);
    const char *bad = "a: &a [1, 2, 3]\nb: [*a, *a, *a, *a]";
    CHECK_INT(ms_yaml_parse(bad, strlen(bad), &small, &s), MS_YAML_EPARSE);
    CHECK_STR(s->error, "<string>:2:17: document too large: more than 20 nodes once aliases "
                        "are expanded");
    ms_yaml_stream_free(s);
}

static void test_depth(void)
{
    size_t n = 100000;
    char *text = malloc(2 * n + 1);
    memset(text, '[', n);
    memset(text + n, ']', n);
    text[2 * n] = '\0';
    struct ms_yaml_stream *s = NULL;
    CHECK_INT(ms_yaml_parse(text, 2 * n, NULL, &s), MS_YAML_EPARSE);
    CHECK_STR(s->error, "<string>:1:513: nesting deeper than 512 levels");
    ms_yaml_stream_free(s);
    struct ms_yaml_opts deep = {.max_depth = 3};
    CHECK_INT(ms_yaml_parse("[[[]]]", 6, &deep, &s), 0);
    ms_yaml_stream_free(s);
    CHECK_INT(ms_yaml_parse("[[[[]]]]", 8, &deep, &s), MS_YAML_EPARSE);
    ms_yaml_stream_free(s);
    free(text);
}

int main(void)
{
    RUN(test_cases);
    RUN(test_positions);
    RUN(test_scalar_details);
    RUN(test_alias_bomb);
    RUN(test_depth);
    return TEST_SUMMARY();
}
