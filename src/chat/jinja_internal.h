/* Jinja engine internals: values, the AST, and the pieces shared by lexer/parser/evaluator.
 * All render-time values live in an arena freed when the render ends; the AST lives in the
 * template's own arena. */
#ifndef QWENC_CHAT_JINJA_INTERNAL_H
#define QWENC_CHAT_JINJA_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/strbuf.h"
#include "chat/jinja.h"

/* ---- values ---- */
typedef enum jv_kind { JV_UNDEF, JV_NONE, JV_BOOL, JV_INT, JV_FLOAT, JV_STR, JV_LIST, JV_DICT, JV_FUNC } jv_kind;

typedef struct jstr { size_t len; char data[]; } jstr;
typedef struct jlist jlist;
typedef struct jdict jdict;
typedef struct jfunc jfunc;

typedef struct jv {
    jv_kind kind;
    bool is_namespace; /* a dict made by namespace(): attribute assignment allowed */
    union {
        bool b;
        int64_t i;
        double f;
        jstr *s;
        jlist *l;
        jdict *d;
        jfunc *fn;
    };
} jv;

struct jlist { size_t len, cap; jv *items; };
struct jdict { size_t len, cap; jstr **keys; jv *vals; };


jv jv_undef(void);
jv jv_none(void);
jv jv_bool(bool b);
jv jv_int(int64_t i);
jv jv_float(double f);
jv jv_str(arena *a, const char *s, size_t n);
jv jv_list(arena *a, size_t cap);
jv jv_dict(arena *a, size_t cap);
void jv_list_push(arena *a, jv list, jv item);
void jv_dict_set(arena *a, jv dict, const char *key, size_t klen, jv val);
/* Returns the value for a key, or JV_UNDEF. */
jv jv_dict_get(jv dict, const char *key, size_t klen);
bool jv_truthy(jv v);
/* Nesting that equality, printing and tojson follow: Python's default recursion limit (a template
 * whose values nest deeper fails there with a RecursionError). Here deeper lists and dicts compare
 * unequal, print as [...] / {...} and fail tojson, so that no input overflows the stack. */
enum { JV_MAX_NESTING = 1000 };
/* Whether v holds lists or dicts nested more than `limit` deep. */
bool jv_nests_deeper(jv v, int limit);
bool jv_equal(jv a, jv b);
/* Python str() of a value (strings as they are, None, True, lists as repr...). */
void jv_to_str(strbuf *b, jv v);
/* Python repr() */
void jv_repr(strbuf *b, jv v);
/* json.dumps options: indent < 0 is none; separators; sort_keys; ensure_ascii (\uXXXX escapes). */
typedef struct json_style {
    int indent;
    const char *item_sep, *key_sep;
    bool sort_keys, ensure_ascii;
} json_style;
/* json.dumps(v, ...) as Python writes it. Returns false when v holds something JSON cannot
 * represent (undefined, functions) or nests too deeply. */
bool jv_to_json(strbuf *b, jv v, const json_style *style, int depth);
jv jv_from_json(arena *a, json_t *j);
const char *jv_type_name(jv v);
size_t utf8_count(const char *s, size_t n); /* code points */

/* ---- AST ---- */
typedef enum node_kind {
    /* statements */
    N_TEXT, N_OUTPUT, N_IF, N_FOR, N_SET, N_SET_ATTR, N_MACRO, N_BREAK, N_CONTINUE, N_BLOCK_SET,
    /* expressions */
    N_LITERAL, N_NAME, N_LIST, N_DICT, N_ATTR, N_ITEM, N_SLICE, N_CALL, N_FILTER, N_TEST, N_NEG, N_POS, N_NOT,
    N_BINOP, N_AND, N_OR, N_COMPARE, N_COND, N_TUPLE
} node_kind;

typedef struct node node;
typedef struct node_list { node **items; size_t len, cap; } node_list;

struct node {
    node_kind kind;
    int line, col;
    const char *name;      /* N_NAME, N_ATTR attr, N_FILTER/N_TEST name, N_SET target, N_MACRO name, N_BINOP op, N_SET_ATTR attr */
    size_t name_len;
    jv value;              /* N_LITERAL, N_TEXT (string) */
    node *a, *b, *c;       /* operands: N_ITEM (obj, key), N_SLICE (obj; start/stop/step in args), N_COND (then, cond, else) ... */
    node_list args;        /* call/filter/test args; list/tuple items; dict keys+values interleaved; compare operands */
    node_list kwarg_values;
    const char **kwarg_names;
    node_list body, else_body; /* blocks; N_IF: body = then, else_body = else (elif nests as an N_IF in else) */
    const char **targets;  /* N_FOR loop variables / N_MACRO parameter names */
    size_t n_targets;
    node_list defaults;    /* N_MACRO parameter defaults (NULL entries for none) */
    const char **ops;      /* N_COMPARE operators */
    bool negated;          /* N_TEST "is not" */
};

struct jinja_template {
    arena mem;
    node_list body;
};

#endif
