/* YAML streams parsed by libyaml into a plain C node tree that remembers where every node came
 * from, so the Lua side can report template errors as file:line:col. No Lua here. */
#ifndef MS_YAML_H
#define MS_YAML_H

#include <stddef.h>

/* Error codes (negative, as everywhere in src/core). */
#define MS_YAML_EPARSE (-1) /* bad input: the stream's error message says where and why */
#define MS_YAML_ENOMEM (-2) /* out of memory: no stream is returned */

/* Defaults of struct ms_yaml_opts when a field is 0. */
#define MS_YAML_MAX_NODES 1000000 /* nodes of the stream once aliases are expanded */
#define MS_YAML_MAX_DEPTH 512     /* nesting of sequences and mappings */

/* The resolved type of a node. Scalars follow the YAML 1.2 core schema as Kubernetes users
 * expect it (see ms_yaml_resolve); aliases are resolved to the node they name. */
enum ms_yaml_type {
    MS_YAML_NULL,
    MS_YAML_BOOL,
    MS_YAML_INT,
    MS_YAML_FLOAT,
    MS_YAML_STR,
    MS_YAML_SEQ,
    MS_YAML_MAP,
};

enum ms_yaml_style {
    MS_YAML_PLAIN,
    MS_YAML_SINGLE_QUOTED,
    MS_YAML_DOUBLE_QUOTED,
    MS_YAML_LITERAL,
    MS_YAML_FOLDED,
    MS_YAML_BLOCK, /* collections */
    MS_YAML_FLOW,
};

struct ms_yaml_node;

struct ms_yaml_pair {
    struct ms_yaml_node *key; /* always a scalar; its text is the key */
    struct ms_yaml_node *value;
};

/* A node of the tree. Nodes are owned by their stream. An alias is the node it names, so one
 * node may be reachable from several parents (the tree is a DAG, never a cycle); merged
 * mappings reuse the pairs' nodes of the mappings they merge. */
struct ms_yaml_node {
    enum ms_yaml_type type;
    enum ms_yaml_style style;
    int line, col;    /* 1-based; col counts characters */
    const char *tag;  /* explicit tag, expanded ("tag:yaml.org,2002:int", "!Ref"), or NULL */
    const char *text; /* scalars: the raw text, NUL-terminated (may also contain NULs) */
    size_t len;
    union {
        int boolean;
        long long integer;
        double number;
    } v;
    size_t count; /* items of a sequence, pairs of a mapping */
    struct ms_yaml_node **items;
    struct ms_yaml_pair *pairs;
    size_t expanded; /* nodes in this subtree, aliases expanded (saturating) */
};

struct ms_yaml_opts {
    const char *filename; /* used in messages; NULL means "<string>" */
    size_t max_nodes;     /* 0: MS_YAML_MAX_NODES */
    int max_depth;        /* 0: MS_YAML_MAX_DEPTH */
};

struct ms_yaml_stream {
    struct ms_yaml_node **docs; /* one root per document; an empty document is a null scalar */
    size_t ndocs;
    char *error; /* "file:line:col: message" when parsing failed, else NULL */
    int error_line, error_col;
    struct arena *arena; /* owns every node and string */
};

/* Parses text[0..len). Returns 0 with *out holding the documents, MS_YAML_EPARSE with *out
 * holding only the error, or MS_YAML_ENOMEM with *out NULL. The caller frees *out. */
int ms_yaml_parse(const char *text, size_t len, const struct ms_yaml_opts *opts,
                  struct ms_yaml_stream **out);

/* Accepts NULL. */
void ms_yaml_stream_free(struct ms_yaml_stream *s);

/* How a plain (unquoted, untagged) scalar reads: null (null, Null, NULL, ~, empty), bool
 * (true/True/TRUE, false/...; yes/no/on/off stay strings), int (decimal, 0x, 0o, and a leading
 * 0 as octal like kubectl: 0644 is 420), float (1.5, 1e3, .inf, -.Inf, .nan), else string.
 * Sets *integer or *number for the numeric types (either may be NULL). The dumper uses it to
 * decide when a string needs quotes to read back as a string. */
enum ms_yaml_type ms_yaml_resolve(const char *text, size_t len, long long *integer, double *number);

#endif
