#define _GNU_SOURCE /* memmem */
/* Jinja evaluator: executes the AST against a JSON context, with Python/jinja2 semantics for
 * scoping (loops and macros get their own scope; namespace() objects cross it), undefined values,
 * filters, tests and the string/dict methods chat templates call. */
#include "chat/jinja_internal.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <utf8proc.h>

#include "base/error.h"
#include "base/utf8.h"

typedef struct frame {
    struct frame *parent;
    jstr **names;
    jv *vals;
    size_t len, cap;
} frame;

typedef enum { FN_BUILTIN, FN_MACRO, FN_METHOD } fn_kind;
struct jfunc {
    fn_kind kind;
    const char *name; /* builtin or method name */
    const node *macro;
    jv self;          /* the object a method is bound to */
};

typedef struct render {
    arena a;
    strbuf out;
    jmp_buf fail;
    qwen_error **err;
    frame *root;
    jv context;
    int depth;
} render;

typedef enum { FLOW_NORMAL, FLOW_BREAK, FLOW_CONTINUE } flow;

static void __attribute__((noreturn, format(printf, 3, 4))) fail(render *r, const node *at, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (at) qwen_fail(r->err, QWEN_ERR_FORMAT, "template error at line %d, column %d: %s", at->line, at->col, msg);
    else qwen_fail(r->err, QWEN_ERR_FORMAT, "template error: %s", msg);
    longjmp(r->fail, 1);
}

/* What a render may allocate (its values, and its output): far beyond any chat template's needs,
 * a bound on a runaway one's (a string doubled in a loop) before the machine runs out. */
enum { RENDER_MEMORY = 256 << 20 };

static void __attribute__((noreturn)) out_of_memory(render *r, const node *at) {
    fail(r, at, "out of memory: rendering a template may use %d MB at most", RENDER_MEMORY >> 20);
}

/* Fails the render when its memory ran out or passed RENDER_MEMORY (checked between statements:
 * until then a failed allocation yields empty values, see jinja_value.c). */
static void check_memory(render *r, const node *at) {
    if (r->a.failed || r->out.oom) out_of_memory(r, at);
}

static jv str_of(render *r, const char *s, size_t n) { return jv_str(&r->a, s, n); }
static jv cstr(render *r, const char *s) { return jv_str(&r->a, s, strlen(s)); }

/* A buffer for text that a filter or an operator builds, bounded as the render is. */
static strbuf text_buf(void) { return (strbuf){ .limit = RENDER_MEMORY }; }

/* The text built in *b as a string value (b's memory freed); fails the render where b ran out. */
static jv take_text(render *r, const node *at, strbuf *b) {
    bool oom = b->oom;
    jv out = oom ? jv_none() : str_of(r, b->data ? b->data : "", b->len);
    free(b->data);
    b->data = NULL;
    if (oom) out_of_memory(r, at);
    return out;
}

static jv to_string_value(render *r, jv v) {
    if (v.kind == JV_STR) return v;
    strbuf b = text_buf();
    jv_to_str(&b, v);
    return take_text(r, NULL, &b);
}

/* ---- scopes ---- */

static frame *frame_new(render *r, frame *parent) {
    frame *f = arena_alloc(&r->a, sizeof *f);
    if (!f) out_of_memory(r, NULL);
    memset(f, 0, sizeof *f);
    f->parent = parent;
    return f;
}

static void frame_set(render *r, frame *f, const char *name, size_t len, jv v) {
    for (size_t i = 0; i < f->len; i++)
        if (f->names[i]->len == len && !memcmp(f->names[i]->data, name, len)) { f->vals[i] = v; return; }
    if (f->len == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        jstr **names = arena_alloc(&r->a, cap * sizeof *names);
        jv *vals = arena_alloc(&r->a, cap * sizeof *vals);
        if (!names || !vals) out_of_memory(r, NULL);
        if (f->len) { memcpy(names, f->names, f->len * sizeof *names); memcpy(vals, f->vals, f->len * sizeof *vals); }
        f->names = names;
        f->vals = vals;
        f->cap = cap;
    }
    f->names[f->len] = str_of(r, name, len).s;
    f->vals[f->len++] = v;
}

static const char *BUILTINS[] = { "range", "namespace", "raise_exception", "dict", "strftime_now", NULL };

static jv make_func(render *r, fn_kind kind, const char *name, const node *macro, jv self) {
    jfunc *fn = arena_alloc(&r->a, sizeof *fn);
    if (!fn) out_of_memory(r, NULL);
    *fn = (jfunc){ kind, name, macro, self };
    return (jv){ .kind = JV_FUNC, .fn = fn };
}

static jv lookup(render *r, frame *f, const char *name, size_t len) {
    for (; f; f = f->parent)
        for (size_t i = 0; i < f->len; i++)
            if (f->names[i]->len == len && !memcmp(f->names[i]->data, name, len)) return f->vals[i];
    jv v = jv_dict_get(r->context, name, len);
    if (v.kind != JV_UNDEF) return v;
    for (const char **b = BUILTINS; *b; b++)
        if (strlen(*b) == len && !memcmp(*b, name, len)) return make_func(r, FN_BUILTIN, *b, NULL, jv_none());
    return jv_undef();
}

/* ---- helpers ---- */

static const char *describe_node(const node *n, char *buf, size_t cap) {
    if (n->kind == N_NAME || n->kind == N_ATTR) snprintf(buf, cap, "%.*s", (int)n->name_len, n->name);
    else snprintf(buf, cap, "value");
    return buf;
}

static int64_t as_int(render *r, const node *at, jv v) {
    if (v.kind == JV_INT) return v.i;
    if (v.kind == JV_BOOL) return v.b;
    if (v.kind == JV_FLOAT) {
        if (!(v.f >= -9223372036854775808.0 && v.f < 9223372036854775808.0)) fail(r, at, "integer out of range: %g", v.f); /* NaN too */
        return (int64_t)v.f;
    }
    fail(r, at, "expected an integer, got %s", jv_type_name(v));
}

/* Widths of indentation (the indent filter, tojson's indent): what a template could mean, with room */
enum { MAX_INDENT = 1024 };
/* range()'s most items: jinja2's sandbox (transformers renders chat templates in one) refuses more */
enum { MAX_RANGE = 100000 };

static bool is_num(jv v) { return v.kind == JV_INT || v.kind == JV_FLOAT || v.kind == JV_BOOL; }
static double num(jv v) { return v.kind == JV_FLOAT ? v.f : v.kind == JV_INT ? (double)v.i : v.b; }
/* An int or bool's value, exactly (num goes through a double). */
static int64_t int_of(jv v) { return v.kind == JV_INT ? v.i : v.b; }

/* Python's ints would grow past int64 here: an error, never a wrapped or undefined value. */
static void __attribute__((noreturn)) int_overflow(render *r, const node *at, const char *op) {
    fail(r, at, "integer overflow in '%s'", op);
}

/* x ** y for y >= 0 by squaring; false where the result leaves int64 (Python's ints would grow). */
static bool int_pow(int64_t x, int64_t y, int64_t *out) {
    int64_t result = 1;
    while (y > 0) {
        if ((y & 1) && __builtin_mul_overflow(result, x, &result)) return false;
        y >>= 1;
        if (y > 0 && __builtin_mul_overflow(x, x, &x)) return false;
    }
    *out = result;
    return true;
}

/* Code point offsets of a UTF-8 string: returns byte offset of code point `cp_index`. */
static size_t cp_offset(const jstr *s, int64_t cp_index) {
    size_t off = 0;
    for (int64_t k = 0; k < cp_index && off < s->len; k++) {
        off++;
        while (off < s->len && ((unsigned char)s->data[off] & 0xC0) == 0x80) off++;
    }
    return off;
}

static jv list_from_items(render *r, jv v, const node *at) {
    /* iteration order of any iterable as a list */
    if (v.kind == JV_LIST) return v;
    jv l = jv_list(&r->a, 8);
    if (v.kind == JV_UNDEF) return l;
    if (v.kind == JV_DICT) {
        for (size_t i = 0; i < v.d->len; i++) jv_list_push(&r->a, l, (jv){ .kind = JV_STR, .s = v.d->keys[i] });
        return l;
    }
    if (v.kind == JV_STR) {
        for (size_t i = 0; i < v.s->len;) {
            size_t j = i + 1;
            while (j < v.s->len && ((unsigned char)v.s->data[j] & 0xC0) == 0x80) j++;
            jv_list_push(&r->a, l, str_of(r, v.s->data + i, j - i));
            i = j;
        }
        return l;
    }
    fail(r, at, "'%s' object is not iterable", jv_type_name(v));
}

static int64_t length_of(render *r, const node *at, jv v) {
    switch (v.kind) {
    case JV_STR: return (int64_t)utf8_count(v.s->data, v.s->len);
    case JV_LIST: return (int64_t)v.l->len;
    case JV_DICT: return (int64_t)v.d->len;
    case JV_UNDEF: return 0;
    default: fail(r, at, "object of type '%s' has no len()", jv_type_name(v));
    }
}

static bool is_space_cp(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || (c >= 0x1C && c <= 0x1F) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

static bool cp_in(uint32_t c, const jstr *chars) {
    for (size_t i = 0; i < chars->len;) {
        uint32_t d;
        int n = utf8_decode((const unsigned char *)chars->data + i, chars->len - i, &d);
        if (!n) { n = 1; d = (unsigned char)chars->data[i]; }
        if (c == d) return true;
        i += (size_t)n;
    }
    return false;
}

/* Python str.strip/lstrip/rstrip with optional chars (NULL: whitespace). */
static jv strip(render *r, jv s, const jstr *chars, bool left, bool right) {
    const unsigned char *d = (const unsigned char *)s.s->data;
    size_t a = 0, b = s.s->len;
    while (left && a < b) {
        uint32_t c;
        int n = utf8_decode(d + a, b - a, &c);
        if (!n) break;
        if (!(chars ? cp_in(c, chars) : is_space_cp(c))) break;
        a += (size_t)n;
    }
    while (right && b > a) {
        size_t k = b - 1;
        while (k > a && (d[k] & 0xC0) == 0x80) k--;
        uint32_t c;
        if (!utf8_decode(d + k, b - k, &c)) break;
        if (!(chars ? cp_in(c, chars) : is_space_cp(c))) break;
        b = k;
    }
    return str_of(r, s.s->data + a, b - a);
}

static jv case_map(render *r, jv s, int mode /* 0 lower, 1 upper, 2 capitalize, 3 title */) {
    strbuf b = text_buf();
    bool start = true, first = true;
    for (size_t i = 0; i < s.s->len;) {
        uint32_t c;
        int n = utf8_decode((const unsigned char *)s.s->data + i, s.s->len - i, &c);
        if (!n) { n = 1; c = (unsigned char)s.s->data[i]; }
        uint32_t m = c;
        if (mode == 0) m = (uint32_t)utf8proc_tolower((utf8proc_int32_t)c);
        else if (mode == 1) m = (uint32_t)utf8proc_toupper((utf8proc_int32_t)c);
        else if (mode == 2) m = (uint32_t)(first ? utf8proc_toupper((utf8proc_int32_t)c) : utf8proc_tolower((utf8proc_int32_t)c));
        else {
            bool alpha = utf8proc_category((utf8proc_int32_t)c) <= UTF8PROC_CATEGORY_LO && utf8proc_category((utf8proc_int32_t)c) >= UTF8PROC_CATEGORY_LU;
            m = (uint32_t)(start ? utf8proc_toupper((utf8proc_int32_t)c) : utf8proc_tolower((utf8proc_int32_t)c));
            start = !alpha;
        }
        first = false;
        unsigned char tmp[4];
        strbuf_put(&b, (const char *)tmp, (size_t)utf8_encode(m, tmp));
        i += (size_t)n;
    }
    return take_text(r, NULL, &b);
}

static jv str_replace(render *r, jv s, jv old, jv new_, int64_t count) {
    if (old.s->len == 0) return s;
    strbuf b = text_buf();
    size_t i = 0;
    int64_t done = 0;
    while (i < s.s->len) {
        if ((count < 0 || done < count) && i + old.s->len <= s.s->len && !memcmp(s.s->data + i, old.s->data, old.s->len)) {
            strbuf_put(&b, new_.s->data, new_.s->len);
            i += old.s->len;
            done++;
        } else {
            strbuf_put(&b, s.s->data + i, 1);
            i++;
        }
    }
    return take_text(r, NULL, &b);
}

static jv str_split(render *r, jv s, jv sep, int64_t maxsplit) {
    jv l = jv_list(&r->a, 8);
    const char *d = s.s->data;
    size_t n = s.s->len;
    if (sep.kind != JV_STR) { /* runs of whitespace, empties dropped */
        size_t i = 0;
        int64_t splits = 0;
        while (i < n) {
            while (i < n && is_space_cp((unsigned char)d[i])) i++;
            if (i >= n) break;
            size_t j = i;
            if (maxsplit >= 0 && splits >= maxsplit) j = n;
            else while (j < n && !is_space_cp((unsigned char)d[j])) j++;
            jv piece = str_of(r, d + i, j - i);
            if (j == n && maxsplit >= 0 && splits >= maxsplit) piece = strip(r, piece, NULL, false, true);
            jv_list_push(&r->a, l, piece);
            splits++;
            i = j;
        }
        return l;
    }
    if (sep.s->len == 0) return l;
    size_t start = 0;
    int64_t splits = 0;
    for (size_t i = 0; i + sep.s->len <= n;) {
        if ((maxsplit < 0 || splits < maxsplit) && !memcmp(d + i, sep.s->data, sep.s->len)) {
            jv_list_push(&r->a, l, str_of(r, d + start, i - start));
            i += sep.s->len;
            start = i;
            splits++;
        } else {
            i++;
        }
    }
    jv_list_push(&r->a, l, str_of(r, d + start, n - start));
    return l;
}

static bool starts_with(jv s, jv prefix, bool end) {
    if (prefix.kind == JV_LIST) {
        for (size_t i = 0; i < prefix.l->len; i++) if (starts_with(s, prefix.l->items[i], end)) return true;
        return false;
    }
    if (prefix.kind != JV_STR || prefix.s->len > s.s->len) return false;
    return !memcmp(s.s->data + (end ? s.s->len - prefix.s->len : 0), prefix.s->data, prefix.s->len);
}

/* ---- calls ---- */

typedef struct call_args {
    jv pos[16];
    size_t n_pos;
    const char *kw_names[16];
    jv kw[16];
    size_t n_kw;
} call_args;

static jv kwarg(const call_args *a, const char *name, size_t pos_index, jv def) {
    for (size_t i = 0; i < a->n_kw; i++) if (!strcmp(a->kw_names[i], name)) return a->kw[i];
    return pos_index < a->n_pos ? a->pos[pos_index] : def;
}

static jv eval(render *r, frame *f, const node *n);
static flow exec(render *r, frame *f, const node_list *body);

static void eval_args(render *r, frame *f, const node *n, call_args *a, jv first) {
    a->n_pos = 0;
    a->n_kw = 0;
    if (first.kind != JV_UNDEF || n->kind == N_FILTER || n->kind == N_TEST) a->pos[a->n_pos++] = first;
    if (n->args.len + a->n_pos > 16 || n->kwarg_values.len > 16) fail(r, n, "too many arguments");
    for (size_t i = 0; i < n->args.len; i++) a->pos[a->n_pos++] = eval(r, f, n->args.items[i]);
    for (size_t i = 0; i < n->kwarg_values.len; i++) {
        a->kw_names[a->n_kw] = n->kwarg_names[i];
        a->kw[a->n_kw++] = eval(r, f, n->kwarg_values.items[i]);
    }
}

static jv call_macro(render *r, const node *at, const node *m, const call_args *a) {
    if (++r->depth > 200) fail(r, at, "macro recursion too deep");
    frame *mf = frame_new(r, r->root);
    for (size_t i = 0; i < m->n_targets; i++) {
        const char *p = m->targets[i];
        jv v = jv_undef();
        bool given = false;
        for (size_t k = 0; k < a->n_kw; k++) if (!strcmp(a->kw_names[k], p)) { v = a->kw[k]; given = true; }
        if (!given && i < a->n_pos) { v = a->pos[i]; given = true; }
        if (!given && m->defaults.items[i]) v = eval(r, mf, m->defaults.items[i]);
        frame_set(r, mf, p, strlen(p), v);
    }
    size_t mark = r->out.len;
    exec(r, mf, &m->body);
    jv result = str_of(r, r->out.data ? r->out.data + mark : "", r->out.len - mark);
    r->out.len = mark;
    if (r->out.data) r->out.data[mark] = 0;
    r->depth--;
    return result;
}

static jv call_method(render *r, const node *at, jv self, const char *name, const call_args *a) {
    jv arg0 = a->n_pos > 0 ? a->pos[0] : jv_undef();
    if (self.kind == JV_STR) {
        if (!strcmp(name, "startswith") || !strcmp(name, "endswith")) return jv_bool(starts_with(self, arg0, name[0] == 'e'));
        if (!strcmp(name, "strip") || !strcmp(name, "lstrip") || !strcmp(name, "rstrip")) {
            const jstr *chars = arg0.kind == JV_STR ? arg0.s : NULL;
            return strip(r, self, chars, name[0] != 'r', name[0] != 'l');
        }
        if (!strcmp(name, "split")) return str_split(r, self, kwarg(a, "sep", 0, jv_none()), as_int(r, at, kwarg(a, "maxsplit", 1, jv_int(-1))));
        if (!strcmp(name, "replace")) {
            if (a->n_pos < 2 || a->pos[0].kind != JV_STR || a->pos[1].kind != JV_STR) fail(r, at, "replace() needs two strings");
            return str_replace(r, self, a->pos[0], a->pos[1], a->n_pos > 2 ? as_int(r, at, a->pos[2]) : -1);
        }
        if (!strcmp(name, "lower")) return case_map(r, self, 0);
        if (!strcmp(name, "upper")) return case_map(r, self, 1);
        if (!strcmp(name, "capitalize")) return case_map(r, self, 2);
        if (!strcmp(name, "title")) return case_map(r, self, 3);
        if (!strcmp(name, "find") || !strcmp(name, "count")) {
            if (arg0.kind != JV_STR) fail(r, at, "%s() needs a string", name);
            int64_t count = 0;
            for (size_t i = 0; i + arg0.s->len <= self.s->len; i++)
                if (!memcmp(self.s->data + i, arg0.s->data, arg0.s->len)) {
                    if (name[0] == 'f') return jv_int((int64_t)utf8_count(self.s->data, i));
                    count++;
                    if (arg0.s->len) i += arg0.s->len - 1;
                }
            return jv_int(name[0] == 'f' ? -1 : count);
        }
        if (!strcmp(name, "join")) {
            jv items = list_from_items(r, arg0, at);
            strbuf b = text_buf();
            for (size_t i = 0; i < items.l->len; i++) {
                if (i) strbuf_put(&b, self.s->data, self.s->len);
                jv_to_str(&b, items.l->items[i]);
            }
            return take_text(r, at, &b);
        }
    } else if (self.kind == JV_DICT && !self.is_namespace) {
        if (!strcmp(name, "items")) {
            jv l = jv_list(&r->a, self.d->len);
            for (size_t i = 0; i < self.d->len; i++) {
                jv pair = jv_list(&r->a, 2);
                jv_list_push(&r->a, pair, (jv){ .kind = JV_STR, .s = self.d->keys[i] });
                jv_list_push(&r->a, pair, self.d->vals[i]);
                jv_list_push(&r->a, l, pair);
            }
            return l;
        }
        if (!strcmp(name, "keys")) return list_from_items(r, self, at);
        if (!strcmp(name, "values")) {
            jv l = jv_list(&r->a, self.d->len);
            for (size_t i = 0; i < self.d->len; i++) jv_list_push(&r->a, l, self.d->vals[i]);
            return l;
        }
        if (!strcmp(name, "get")) {
            if (arg0.kind != JV_STR) return a->n_pos > 1 ? a->pos[1] : jv_none();
            jv v = jv_dict_get(self, arg0.s->data, arg0.s->len);
            return v.kind != JV_UNDEF ? v : a->n_pos > 1 ? a->pos[1] : jv_none();
        }
    } else if (self.kind == JV_LIST) {
        if (!strcmp(name, "index") || !strcmp(name, "count")) {
            int64_t count = 0;
            for (size_t i = 0; i < self.l->len; i++)
                if (jv_equal(self.l->items[i], arg0)) {
                    if (name[0] == 'i') return jv_int((int64_t)i);
                    count++;
                }
            if (name[0] == 'i') fail(r, at, "value is not in list");
            return jv_int(count);
        }
    }
    fail(r, at, "'%s' object has no method '%s'", jv_type_name(self), name);
}

static const char *STR_METHODS[] = { "startswith", "endswith", "strip", "lstrip", "rstrip", "split", "replace", "lower", "upper",
                                     "capitalize", "title", "find", "count", "join", NULL };
static const char *DICT_METHODS[] = { "items", "keys", "values", "get", NULL };
static const char *LIST_METHODS[] = { "index", "count", NULL };

static const char *find_method(jv self, const char *name, size_t len) {
    const char **set = self.kind == JV_STR ? STR_METHODS : self.kind == JV_DICT && !self.is_namespace ? DICT_METHODS
                     : self.kind == JV_LIST ? LIST_METHODS : NULL;
    for (; set && *set; set++) if (strlen(*set) == len && !memcmp(*set, name, len)) return *set;
    return NULL;
}

static jv call_builtin(render *r, const node *at, const char *name, const call_args *a) {
    if (!strcmp(name, "raise_exception")) {
        strbuf b = { 0 };
        if (a->n_pos) jv_to_str(&b, a->pos[0]);
        qwen_fail(r->err, QWEN_ERR_FORMAT, "template raised an exception at line %d: %s", at->line, b.data ? b.data : "");
        free(b.data);
        longjmp(r->fail, 1);
    }
    if (!strcmp(name, "range")) {
        int64_t start = 0, stop, step = 1;
        if (a->n_pos == 1) stop = as_int(r, at, a->pos[0]);
        else if (a->n_pos >= 2) { start = as_int(r, at, a->pos[0]); stop = as_int(r, at, a->pos[1]); if (a->n_pos > 2) step = as_int(r, at, a->pos[2]); }
        else fail(r, at, "range() needs arguments");
        if (step == 0) fail(r, at, "range() step must not be zero");
        jv l = jv_list(&r->a, 8);
        for (int64_t i = start; step > 0 ? i < stop : i > stop;) {
            if (l.l->len >= MAX_RANGE) fail(r, at, "range() too large: more than %d items", MAX_RANGE);
            jv_list_push(&r->a, l, jv_int(i));
            if (__builtin_add_overflow(i, step, &i)) break; /* past int64: past stop too */
        }
        return l;
    }
    if (!strcmp(name, "namespace") || !strcmp(name, "dict")) {
        jv d = jv_dict(&r->a, 8);
        d.is_namespace = name[0] == 'n';
        if (a->n_pos && a->pos[0].kind == JV_DICT)
            for (size_t i = 0; i < a->pos[0].d->len; i++) jv_dict_set(&r->a, d, a->pos[0].d->keys[i]->data, a->pos[0].d->keys[i]->len, a->pos[0].d->vals[i]);
        for (size_t i = 0; i < a->n_kw; i++) jv_dict_set(&r->a, d, a->kw_names[i], strlen(a->kw_names[i]), a->kw[i]);
        return d;
    }
    if (!strcmp(name, "strftime_now")) {
        char buf[256] = "";
        time_t now = time(NULL);
        struct tm tm;
        localtime_r(&now, &tm);
        if (a->n_pos && a->pos[0].kind == JV_STR) strftime(buf, sizeof buf, a->pos[0].s->data, &tm);
        return cstr(r, buf);
    }
    fail(r, at, "unknown function '%s'", name);
}

static jv call_value(render *r, const node *at, jv fn, const call_args *a) {
    if (fn.kind != JV_FUNC) fail(r, at, "'%s' object is not callable", jv_type_name(fn));
    switch (fn.fn->kind) {
    case FN_MACRO: return call_macro(r, at, fn.fn->macro, a);
    case FN_METHOD: return call_method(r, at, fn.fn->self, fn.fn->name, a);
    case FN_BUILTIN: return call_builtin(r, at, fn.fn->name, a);
    }
    return jv_none();
}

/* ---- filters and tests ---- */

static jv apply_filter(render *r, frame *f, const node *n, const char *name, jv v, const call_args *a);

static jv attr_of(render *r, const node *at, jv obj, const char *name, size_t len) {
    if (obj.kind == JV_DICT) {
        jv v = jv_dict_get(obj, name, len);
        if (v.kind != JV_UNDEF) return v;
    }
    const char *m = find_method(obj, name, len);
    if (m) return make_func(r, FN_METHOD, m, NULL, obj);
    (void)at;
    return jv_undef();
}

static jv apply_filter(render *r, frame *f, const node *n, const char *name, jv v, const call_args *a) {
    (void)f;
    if (!strcmp(name, "safe") || !strcmp(name, "e") || !strcmp(name, "escape")) return v;
    if (!strcmp(name, "tojson")) {
        /* transformers' tojson: json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False) */
        jv indent = kwarg(a, "indent", 2, jv_none());
        jv ascii = kwarg(a, "ensure_ascii", 1, jv_bool(false));
        jv seps = kwarg(a, "separators", 3, jv_none());
        bool flat = indent.kind == JV_NONE || indent.kind == JV_UNDEF;
        int64_t width = flat ? -1 : as_int(r, n, indent);
        if (width > MAX_INDENT) fail(r, n, "tojson indent %lld too large", (long long)width);
        /* a negative indent is Python's: new lines, no spaces (st.indent -1 is None's: one line) */
        json_style st = { flat ? -1 : width < 0 ? 0 : (int)width, NULL, ": ", jv_truthy(kwarg(a, "sort_keys", 4, jv_bool(false))), jv_truthy(ascii) };
        st.item_sep = st.indent >= 0 ? "," : ", ";
        if (seps.kind == JV_LIST && seps.l->len == 2 && seps.l->items[0].kind == JV_STR && seps.l->items[1].kind == JV_STR) {
            st.item_sep = seps.l->items[0].s->data;
            st.key_sep = seps.l->items[1].s->data;
        }
        strbuf b = text_buf();
        if (!jv_to_json(&b, v, &st, 0)) {
            free(b.data);
            if (jv_nests_deeper(v, JV_MAX_NESTING)) fail(r, n, "tojson: lists or dicts nested more than %d deep", JV_MAX_NESTING);
            fail(r, n, "Object of type %s is not JSON serializable", jv_type_name(v));
        }
        return take_text(r, n, &b);
    }
    if (!strcmp(name, "trim")) {
        jv s = to_string_value(r, v);
        jv chars = kwarg(a, "chars", 1, jv_none());
        return strip(r, s, chars.kind == JV_STR ? chars.s : NULL, true, true);
    }
    if (!strcmp(name, "length") || !strcmp(name, "count")) return jv_int(length_of(r, n, v));
    if (!strcmp(name, "string")) return to_string_value(r, v);
    if (!strcmp(name, "upper") || !strcmp(name, "lower") || !strcmp(name, "capitalize") || !strcmp(name, "title"))
        return case_map(r, to_string_value(r, v), name[0] == 'l' ? 0 : name[0] == 'u' ? 1 : name[0] == 'c' ? 2 : 3);
    if (!strcmp(name, "default") || !strcmp(name, "d")) {
        bool boolean = jv_truthy(kwarg(a, "boolean", 2, jv_bool(false)));
        if (v.kind == JV_UNDEF || (boolean && !jv_truthy(v))) return kwarg(a, "default_value", 1, cstr(r, ""));
        return v;
    }
    if (!strcmp(name, "items")) {
        if (v.kind == JV_UNDEF) return jv_list(&r->a, 1);
        if (v.kind != JV_DICT) fail(r, n, "Can only get item pairs from a mapping.");
        call_args none = { 0 };
        return call_method(r, n, v, "items", &none);
    }
    if (!strcmp(name, "join")) {
        jv sep = kwarg(a, "d", 1, cstr(r, ""));
        jv attr = kwarg(a, "attribute", 2, jv_none());
        jv items = list_from_items(r, v, n);
        strbuf b = text_buf();
        for (size_t i = 0; i < items.l->len; i++) {
            if (i && sep.kind == JV_STR) strbuf_put(&b, sep.s->data, sep.s->len);
            jv item = items.l->items[i];
            if (attr.kind == JV_STR) item = attr_of(r, n, item, attr.s->data, attr.s->len);
            jv_to_str(&b, item);
        }
        return take_text(r, n, &b);
    }
    if (!strcmp(name, "first") || !strcmp(name, "last")) {
        jv items = list_from_items(r, v, n);
        if (!items.l->len) return jv_undef();
        return items.l->items[name[0] == 'f' ? 0 : items.l->len - 1];
    }
    if (!strcmp(name, "list")) {
        jv items = list_from_items(r, v, n);
        jv copy = jv_list(&r->a, items.l->len);
        for (size_t i = 0; i < items.l->len; i++) jv_list_push(&r->a, copy, items.l->items[i]);
        return copy;
    }
    if (!strcmp(name, "reverse")) {
        if (v.kind == JV_STR) {
            jv chars = list_from_items(r, v, n);
            strbuf b = text_buf();
            for (size_t i = chars.l->len; i-- > 0;) jv_to_str(&b, chars.l->items[i]);
            return take_text(r, n, &b);
        }
        jv items = list_from_items(r, v, n);
        jv rev = jv_list(&r->a, items.l->len);
        for (size_t i = items.l->len; i-- > 0;) jv_list_push(&r->a, rev, items.l->items[i]);
        return rev;
    }
    if (!strcmp(name, "replace")) {
        jv s = to_string_value(r, v);
        if (a->n_pos < 3 || a->pos[1].kind != JV_STR) fail(r, n, "replace needs two arguments");
        return str_replace(r, s, a->pos[1], to_string_value(r, a->pos[2]), a->n_pos > 3 ? as_int(r, n, a->pos[3]) : -1);
    }
    if (!strcmp(name, "int")) {
        /* jinja2's: int(value), else int(float(value)), else the default; int64 where Python's grows */
        jv dflt = kwarg(a, "default", 1, jv_int(0));
        if (v.kind == JV_INT || v.kind == JV_BOOL) return jv_int(int_of(v));
        if (v.kind == JV_STR) {
            const char *text = v.s->data;
            char *end;
            errno = 0;
            long long i = strtoll(text, &end, 10);
            while (isspace((unsigned char)*end)) end++;
            if (end != text && !*end) {
                if (errno == ERANGE) fail(r, n, "int: '%s' out of range", text);
                return jv_int(i);
            }
            double d = strtod(text, &end);
            while (isspace((unsigned char)*end)) end++;
            if (end == text || *end) return dflt;
            v = jv_float(d);
        }
        if (v.kind != JV_FLOAT || isnan(v.f)) return dflt;
        return jv_int(as_int(r, n, v));
    }
    if (!strcmp(name, "float")) {
        if (v.kind == JV_STR) return jv_float(strtod(v.s->data, NULL));
        return is_num(v) ? jv_float(num(v)) : kwarg(a, "default", 1, jv_float(0));
    }
    if (!strcmp(name, "abs")) {
        if (v.kind == JV_INT) return jv_int(v.i < 0 ? -v.i : v.i);
        if (v.kind == JV_FLOAT) return jv_float(fabs(v.f));
        fail(r, n, "bad operand type for abs(): '%s'", jv_type_name(v));
    }
    if (!strcmp(name, "map") || !strcmp(name, "selectattr") || !strcmp(name, "rejectattr")) {
        jv items = list_from_items(r, v, n);
        jv out = jv_list(&r->a, items.l->len);
        jv attr = name[0] == 'm' ? kwarg(a, "attribute", 99, jv_none()) : kwarg(a, "attr", 1, jv_none());
        for (size_t i = 0; i < items.l->len; i++) {
            jv item = items.l->items[i];
            if (name[0] == 'm') {
                if (attr.kind == JV_STR) jv_list_push(&r->a, out, attr_of(r, n, item, attr.s->data, attr.s->len));
                else if (a->n_pos > 1 && a->pos[1].kind == JV_STR) {
                    call_args sub = { .n_pos = 1 };
                    sub.pos[0] = item;
                    jv_list_push(&r->a, out, apply_filter(r, f, n, a->pos[1].s->data, item, &sub));
                } else fail(r, n, "map needs an attribute or a filter name");
                continue;
            }
            if (attr.kind != JV_STR) fail(r, n, "%s needs an attribute name", name);
            jv val = attr_of(r, n, item, attr.s->data, attr.s->len);
            bool keep;
            if (a->n_pos > 2 && a->pos[2].kind == JV_STR) {
                const char *test = a->pos[2].s->data;
                jv other = a->n_pos > 3 ? a->pos[3] : jv_undef();
                if (!strcmp(test, "equalto") || !strcmp(test, "eq") || !strcmp(test, "==")) keep = jv_equal(val, other);
                else if (!strcmp(test, "ne") || !strcmp(test, "!=")) keep = !jv_equal(val, other);
                else if (!strcmp(test, "defined")) keep = val.kind != JV_UNDEF;
                else if (!strcmp(test, "undefined")) keep = val.kind == JV_UNDEF;
                else if (!strcmp(test, "none")) keep = val.kind == JV_NONE;
                else fail(r, n, "unsupported test '%s' in %s", test, name);
            } else {
                keep = jv_truthy(val);
            }
            if (keep == (name[0] == 's')) jv_list_push(&r->a, out, item);
        }
        return out;
    }
    if (!strcmp(name, "unique")) {
        jv items = list_from_items(r, v, n);
        jv out = jv_list(&r->a, items.l->len);
        for (size_t i = 0; i < items.l->len; i++) {
            bool seen = false;
            for (size_t k = 0; k < out.l->len && !seen; k++) seen = jv_equal(out.l->items[k], items.l->items[i]);
            if (!seen) jv_list_push(&r->a, out, items.l->items[i]);
        }
        return out;
    }
    if (!strcmp(name, "indent")) {
        jv s = to_string_value(r, v);
        int64_t width = as_int(r, n, kwarg(a, "width", 1, jv_int(4)));
        if (width > MAX_INDENT) fail(r, n, "indent width %lld too large", (long long)width);
        bool first = jv_truthy(kwarg(a, "first", 2, jv_bool(false)));
        strbuf b = text_buf();
        size_t spaces = width > 0 ? (size_t)width : 0;
        for (size_t i = 0; i < s.s->len && !b.oom; i++) {
            if (i == 0 && first) strbuf_repeat(&b, ' ', spaces);
            strbuf_put(&b, s.s->data + i, 1);
            if (s.s->data[i] == '\n' && i + 1 < s.s->len && s.s->data[i + 1] != '\n') strbuf_repeat(&b, ' ', spaces);
        }
        return take_text(r, n, &b);
    }
    fail(r, n, "unknown filter '%s'", name);
}

static bool apply_test(render *r, const node *n, const char *name, jv v, const call_args *a) {
    jv arg = a->n_pos > 1 ? a->pos[1] : jv_undef();
    if (!strcmp(name, "defined")) return v.kind != JV_UNDEF;
    if (!strcmp(name, "undefined")) return v.kind == JV_UNDEF;
    if (!strcmp(name, "none")) return v.kind == JV_NONE;
    if (!strcmp(name, "boolean")) return v.kind == JV_BOOL;
    if (!strcmp(name, "false")) return v.kind == JV_BOOL && !v.b;
    if (!strcmp(name, "true")) return v.kind == JV_BOOL && v.b;
    if (!strcmp(name, "integer")) return v.kind == JV_INT;
    if (!strcmp(name, "float")) return v.kind == JV_FLOAT;
    if (!strcmp(name, "number")) return is_num(v);
    if (!strcmp(name, "string")) return v.kind == JV_STR;
    if (!strcmp(name, "mapping")) return v.kind == JV_DICT && !v.is_namespace;
    if (!strcmp(name, "iterable")) return v.kind == JV_STR || v.kind == JV_LIST || v.kind == JV_DICT || v.kind == JV_UNDEF;
    if (!strcmp(name, "sequence")) return v.kind == JV_STR || v.kind == JV_LIST || v.kind == JV_DICT || v.kind == JV_UNDEF;
    if (!strcmp(name, "callable")) return v.kind == JV_FUNC;
    if (!strcmp(name, "odd") || !strcmp(name, "even")) return (as_int(r, n, v) % 2 != 0) == (name[0] == 'o');
    if (!strcmp(name, "divisibleby")) { int64_t d = as_int(r, n, arg); return d && as_int(r, n, v) % d == 0; }
    if (!strcmp(name, "eq") || !strcmp(name, "equalto") || !strcmp(name, "sameas")) return jv_equal(v, arg);
    if (!strcmp(name, "ne")) return !jv_equal(v, arg);
    if (!strcmp(name, "lower") || !strcmp(name, "upper")) {
        if (v.kind != JV_STR) return false;
        jv m = case_map(r, v, name[0] == 'u');
        return m.s->len == v.s->len && !memcmp(m.s->data, v.s->data, v.s->len);
    }
    if (!strcmp(name, "in")) {
        if (arg.kind == JV_LIST) { for (size_t i = 0; i < arg.l->len; i++) if (jv_equal(arg.l->items[i], v)) return true; return false; }
        if (arg.kind == JV_DICT && v.kind == JV_STR) return jv_dict_get(arg, v.s->data, v.s->len).kind != JV_UNDEF;
        if (arg.kind == JV_STR && v.kind == JV_STR) return v.s->len == 0 || memmem(arg.s->data, arg.s->len, v.s->data, v.s->len);
        return false;
    }
    fail(r, n, "unknown test '%s'", name);
}

/* ---- expressions ---- */

static bool contains(render *r, const node *at, jv container, jv item) {
    switch (container.kind) {
    case JV_STR:
        if (item.kind != JV_STR) fail(r, at, "'in <string>' requires string as left operand, not %s", jv_type_name(item));
        return item.s->len == 0 || memmem(container.s->data, container.s->len, item.s->data, item.s->len) != NULL;
    case JV_LIST:
        for (size_t i = 0; i < container.l->len; i++) if (jv_equal(container.l->items[i], item)) return true;
        return false;
    case JV_DICT: return item.kind == JV_STR && jv_dict_get(container, item.s->data, item.s->len).kind != JV_UNDEF;
    case JV_UNDEF: return false;
    default: fail(r, at, "argument of type '%s' is not iterable", jv_type_name(container));
    }
}

static int compare_order(render *r, const node *at, jv a, jv b) {
    if (is_num(a) && is_num(b)) { double x = num(a), y = num(b); return x < y ? -1 : x > y; }
    if (a.kind == JV_STR && b.kind == JV_STR) {
        size_t n = a.s->len < b.s->len ? a.s->len : b.s->len;
        int c = memcmp(a.s->data, b.s->data, n);
        return c ? (c < 0 ? -1 : 1) : (a.s->len > b.s->len) - (a.s->len < b.s->len);
    }
    fail(r, at, "'<' not supported between instances of '%s' and '%s'", jv_type_name(a), jv_type_name(b));
}

static jv binary(render *r, const node *n, jv a, jv b) {
    const char *op = n->name;
    if (!strcmp(op, "~")) {
        strbuf buf = text_buf();
        jv_to_str(&buf, a);
        jv_to_str(&buf, b);
        return take_text(r, n, &buf);
    }
    if (!strcmp(op, "+")) {
        if (a.kind == JV_STR && b.kind == JV_STR) {
            jv out = jv_str(&r->a, "", 0);
            jstr *s = arena_alloc(&r->a, sizeof(jstr) + a.s->len + b.s->len + 1);
            if (!s) out_of_memory(r, n);
            s->len = a.s->len + b.s->len;
            memcpy(s->data, a.s->data, a.s->len);
            memcpy(s->data + a.s->len, b.s->data, b.s->len);
            s->data[s->len] = 0;
            out.s = s;
            return out;
        }
        if (a.kind == JV_LIST && b.kind == JV_LIST) {
            jv l = jv_list(&r->a, a.l->len + b.l->len);
            for (size_t i = 0; i < a.l->len; i++) jv_list_push(&r->a, l, a.l->items[i]);
            for (size_t i = 0; i < b.l->len; i++) jv_list_push(&r->a, l, b.l->items[i]);
            return l;
        }
    }
    if (is_num(a) && is_num(b)) {
        /* ints stay exact in int64: where Python's would grow past it, an error (int_overflow) */
        bool ints = a.kind != JV_FLOAT && b.kind != JV_FLOAT;
        int64_t x = ints ? int_of(a) : 0, y = ints ? int_of(b) : 0, z = 0;
        double fx = num(a), fy = num(b);
        if (!strcmp(op, "+")) { if (ints && __builtin_add_overflow(x, y, &z)) int_overflow(r, n, op); return ints ? jv_int(z) : jv_float(fx + fy); }
        if (!strcmp(op, "-")) { if (ints && __builtin_sub_overflow(x, y, &z)) int_overflow(r, n, op); return ints ? jv_int(z) : jv_float(fx - fy); }
        if (!strcmp(op, "*")) { if (ints && __builtin_mul_overflow(x, y, &z)) int_overflow(r, n, op); return ints ? jv_int(z) : jv_float(fx * fy); }
        if (!strcmp(op, "/")) { if (fy == 0) fail(r, n, "division by zero"); return jv_float(fx / fy); }
        if (ints && x == INT64_MIN && y == -1 && (!strcmp(op, "//") || !strcmp(op, "%"))) int_overflow(r, n, op);
        if (!strcmp(op, "//")) {
            if (fy == 0) fail(r, n, "integer division or modulo by zero");
            if (ints) { int64_t q = x / y; if ((x % y != 0) && ((x < 0) != (y < 0))) q--; return jv_int(q); }
            return jv_float(floor(fx / fy));
        }
        if (!strcmp(op, "%")) {
            if (fy == 0) fail(r, n, "integer division or modulo by zero");
            if (ints) { int64_t m = x % y; if (m != 0 && ((m < 0) != (y < 0))) m += y; return jv_int(m); }
            double m = fmod(fx, fy);
            if (m != 0 && ((m < 0) != (fy < 0))) m += fy;
            return jv_float(m);
        }
        if (!strcmp(op, "**")) {
            if (!ints || y < 0) return jv_float(pow(fx, fy));
            if (!int_pow(x, y, &z)) int_overflow(r, n, op);
            return jv_int(z);
        }
    }
    if (!strcmp(op, "*") && ((a.kind == JV_STR && b.kind == JV_INT) || (a.kind == JV_INT && b.kind == JV_STR))) {
        jv s = a.kind == JV_STR ? a : b;
        int64_t times = a.kind == JV_INT ? a.i : b.i;
        if (times <= 0 || s.s->len == 0) return str_of(r, "", 0);
        if ((uint64_t)times > (uint64_t)(1 << 24) / s.s->len) fail(r, n, "string repetition too large");
        strbuf buf = text_buf();
        for (int64_t i = 0; i < times; i++) strbuf_put(&buf, s.s->data, s.s->len);
        return take_text(r, n, &buf);
    }
    fail(r, n, "unsupported operand type(s) for %s: '%s' and '%s'", op, jv_type_name(a), jv_type_name(b));
}

static jv index_value(render *r, const node *n, jv obj, jv key) {
    char desc[128];
    if (obj.kind == JV_UNDEF) fail(r, n, "'%s' is undefined", describe_node(n->a, desc, sizeof desc));
    if (obj.kind == JV_DICT) {
        if (key.kind != JV_STR) return jv_undef();
        jv v = jv_dict_get(obj, key.s->data, key.s->len);
        if (v.kind == JV_UNDEF) { const char *m = find_method(obj, key.s->data, key.s->len); if (m) return make_func(r, FN_METHOD, m, NULL, obj); }
        return v;
    }
    if (obj.kind == JV_LIST || obj.kind == JV_STR) {
        if (key.kind == JV_STR) return attr_of(r, n, obj, key.s->data, key.s->len);
        if (key.kind != JV_INT && key.kind != JV_BOOL) return jv_undef();
        int64_t len = length_of(r, n, obj), i = key.kind == JV_INT ? key.i : key.b;
        if (i < 0) i += len;
        if (i < 0 || i >= len) return jv_undef();
        if (obj.kind == JV_LIST) return obj.l->items[i];
        size_t a = cp_offset(obj.s, i), b = cp_offset(obj.s, i + 1);
        return str_of(r, obj.s->data + a, b - a);
    }
    return jv_undef();
}

static jv slice_value(render *r, const node *n, jv obj, jv start, jv stop, jv step) {
    if (obj.kind != JV_LIST && obj.kind != JV_STR) fail(r, n, "'%s' object is not subscriptable", jv_type_name(obj));
    int64_t len = length_of(r, n, obj);
    int64_t st = step.kind == JV_NONE || step.kind == JV_UNDEF ? 1 : as_int(r, n, step);
    if (st == 0) fail(r, n, "slice step cannot be zero");
    int64_t lo, hi;
    /* Python's slice.indices */
    if (start.kind == JV_NONE || start.kind == JV_UNDEF) lo = st > 0 ? 0 : len - 1;
    else { lo = as_int(r, n, start); if (lo < 0) lo += len; if (lo < 0) lo = st > 0 ? 0 : -1; if (lo >= len) lo = st > 0 ? len : len - 1; }
    if (stop.kind == JV_NONE || stop.kind == JV_UNDEF) hi = st > 0 ? len : -1;
    else { hi = as_int(r, n, stop); if (hi < 0) hi += len; if (hi < 0) hi = st > 0 ? 0 : -1; if (hi >= len) hi = st > 0 ? len : len - 1; }
    if (obj.kind == JV_LIST) {
        jv l = jv_list(&r->a, 8);
        for (int64_t i = lo; st > 0 ? i < hi : i > hi;) {
            jv_list_push(&r->a, l, obj.l->items[i]);
            if (__builtin_add_overflow(i, st, &i)) break; /* a step past int64 leaves the sequence */
        }
        return l;
    }
    jv chars = list_from_items(r, obj, n);
    strbuf b = text_buf();
    for (int64_t i = lo; st > 0 ? i < hi : i > hi;) {
        jv_to_str(&b, chars.l->items[i]);
        if (__builtin_add_overflow(i, st, &i)) break;
    }
    return take_text(r, n, &b);
}

static jv eval(render *r, frame *f, const node *n) {
    char desc[128];
    switch (n->kind) {
    case N_LITERAL: return n->value;
    case N_NAME: return lookup(r, f, n->name, n->name_len);
    case N_LIST: case N_TUPLE: {
        jv l = jv_list(&r->a, n->args.len);
        for (size_t i = 0; i < n->args.len; i++) jv_list_push(&r->a, l, eval(r, f, n->args.items[i]));
        return l;
    }
    case N_DICT: {
        jv d = jv_dict(&r->a, n->args.len / 2);
        for (size_t i = 0; i + 1 < n->args.len; i += 2) {
            jv k = to_string_value(r, eval(r, f, n->args.items[i]));
            jv_dict_set(&r->a, d, k.s->data, k.s->len, eval(r, f, n->args.items[i + 1]));
        }
        return d;
    }
    case N_ATTR: {
        jv obj = eval(r, f, n->a);
        if (obj.kind == JV_UNDEF) fail(r, n, "'%s' is undefined", describe_node(n->a, desc, sizeof desc));
        return attr_of(r, n, obj, n->name, n->name_len);
    }
    case N_ITEM: return index_value(r, n, eval(r, f, n->a), eval(r, f, n->b));
    case N_SLICE: {
        jv obj = eval(r, f, n->a);
        jv start = n->b ? eval(r, f, n->b) : jv_none(), stop = n->c ? eval(r, f, n->c) : jv_none();
        jv step = n->args.items[0] ? eval(r, f, n->args.items[0]) : jv_none();
        return slice_value(r, n, obj, start, stop, step);
    }
    case N_CALL: {
        jv fn = eval(r, f, n->a);
        if (fn.kind == JV_UNDEF) fail(r, n, "'%s' is undefined", describe_node(n->a, desc, sizeof desc));
        call_args a;
        eval_args(r, f, n, &a, jv_undef());
        return call_value(r, n, fn, &a);
    }
    case N_FILTER: {
        call_args a;
        eval_args(r, f, n, &a, eval(r, f, n->a));
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)n->name_len, n->name);
        return apply_filter(r, f, n, name, a.pos[0], &a);
    }
    case N_TEST: {
        call_args a;
        eval_args(r, f, n, &a, eval(r, f, n->a));
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)n->name_len, n->name);
        return jv_bool(apply_test(r, n, name, a.pos[0], &a) != n->negated);
    }
    case N_NEG: case N_POS: {
        jv v = eval(r, f, n->a);
        if (!is_num(v)) fail(r, n, "bad operand type for unary %c: '%s'", n->kind == N_NEG ? '-' : '+', jv_type_name(v));
        if (n->kind == N_POS) return v;
        if (v.kind == JV_FLOAT) return jv_float(-v.f);
        if (int_of(v) == INT64_MIN) fail(r, n, "integer overflow in unary '-'");
        return jv_int(-int_of(v));
    }
    case N_NOT: return jv_bool(!jv_truthy(eval(r, f, n->a)));
    case N_AND: { jv a = eval(r, f, n->a); return jv_truthy(a) ? eval(r, f, n->b) : a; }
    case N_OR: { jv a = eval(r, f, n->a); return jv_truthy(a) ? a : eval(r, f, n->b); }
    case N_BINOP: return binary(r, n, eval(r, f, n->a), eval(r, f, n->b));
    case N_COMPARE: {
        jv left = eval(r, f, n->args.items[0]);
        for (size_t i = 1; i < n->args.len; i++) {
            jv right = eval(r, f, n->args.items[i]);
            const char *op = n->ops[i - 1];
            bool ok;
            if (!strcmp(op, "==")) ok = jv_equal(left, right);
            else if (!strcmp(op, "!=")) ok = !jv_equal(left, right);
            else if (!strcmp(op, "in")) ok = contains(r, n, right, left);
            else if (!strcmp(op, "not in")) ok = !contains(r, n, right, left);
            else {
                int c = compare_order(r, n, left, right);
                ok = !strcmp(op, "<") ? c < 0 : !strcmp(op, ">") ? c > 0 : !strcmp(op, "<=") ? c <= 0 : c >= 0;
            }
            if (!ok) return jv_bool(false);
            left = right;
        }
        return jv_bool(true);
    }
    case N_COND: return jv_truthy(eval(r, f, n->b)) ? eval(r, f, n->a) : n->c ? eval(r, f, n->c) : jv_undef();
    default: fail(r, n, "not an expression");
    }
}

/* ---- statements ---- */

static void bind_targets(render *r, frame *f, const node *n, jv item) {
    if (n->n_targets == 1) { frame_set(r, f, n->targets[0], strlen(n->targets[0]), item); return; }
    jv parts = item.kind == JV_LIST ? item : list_from_items(r, item, n);
    if (parts.l->len != n->n_targets) fail(r, n, "cannot unpack %zu values into %zu loop variables", parts.l->len, n->n_targets);
    for (size_t k = 0; k < n->n_targets; k++) frame_set(r, f, n->targets[k], strlen(n->targets[k]), parts.l->items[k]);
}

static void exec_for(render *r, frame *f, const node *n) {
    jv seq = eval(r, f, n->a);
    if (seq.kind == JV_NONE) fail(r, n, "'NoneType' object is not iterable");
    jv items = list_from_items(r, seq, n);
    frame *lf = frame_new(r, f);
    if (n->b) { /* the loop's "if" filters before loop.* are computed */
        jv kept = jv_list(&r->a, items.l->len);
        for (size_t i = 0; i < items.l->len; i++) {
            bind_targets(r, lf, n, items.l->items[i]);
            if (jv_truthy(eval(r, lf, n->b))) jv_list_push(&r->a, kept, items.l->items[i]);
        }
        items = kept;
    }
    size_t len = items.l->len;
    for (size_t i = 0; i < len; i++) {
        bind_targets(r, lf, n, items.l->items[i]);
        jv loop = jv_dict(&r->a, 10);
        jv_dict_set(&r->a, loop, "index", 5, jv_int((int64_t)i + 1));
        jv_dict_set(&r->a, loop, "index0", 6, jv_int((int64_t)i));
        jv_dict_set(&r->a, loop, "revindex", 8, jv_int((int64_t)(len - i)));
        jv_dict_set(&r->a, loop, "revindex0", 9, jv_int((int64_t)(len - i - 1)));
        jv_dict_set(&r->a, loop, "first", 5, jv_bool(i == 0));
        jv_dict_set(&r->a, loop, "last", 4, jv_bool(i + 1 == len));
        jv_dict_set(&r->a, loop, "length", 6, jv_int((int64_t)len));
        if (i > 0) jv_dict_set(&r->a, loop, "previtem", 8, items.l->items[i - 1]);
        if (i + 1 < len) jv_dict_set(&r->a, loop, "nextitem", 8, items.l->items[i + 1]);
        frame_set(r, lf, "loop", 4, loop);
        if (exec(r, lf, &n->body) == FLOW_BREAK) break;
    }
    if (len == 0) exec(r, f, &n->else_body);
}

static flow exec(render *r, frame *f, const node_list *body) {
    for (size_t i = 0; i < body->len; i++) {
        const node *n = body->items[i];
        switch (n->kind) {
        case N_TEXT: strbuf_put(&r->out, n->name, n->name_len); break;
        case N_OUTPUT: jv_to_str(&r->out, eval(r, f, n->a)); break;
        case N_IF: {
            flow fl = exec(r, f, jv_truthy(eval(r, f, n->a)) ? &n->body : &n->else_body);
            if (fl != FLOW_NORMAL) return fl;
            break;
        }
        case N_FOR: exec_for(r, f, n); break;
        case N_SET: frame_set(r, f, n->name, n->name_len, eval(r, f, n->a)); break;
        case N_BLOCK_SET: {
            size_t mark = r->out.len;
            exec(r, f, &n->body);
            jv s = str_of(r, r->out.data ? r->out.data + mark : "", r->out.len - mark);
            r->out.len = mark;
            if (r->out.data) r->out.data[mark] = 0;
            frame_set(r, f, n->name, n->name_len, s);
            break;
        }
        case N_SET_ATTR: {
            jv target = eval(r, f, n->b);
            if (target.kind != JV_DICT || !target.is_namespace)
                fail(r, n, "cannot assign attribute on a '%s' (only namespace() objects allow it)", jv_type_name(target));
            jv_dict_set(&r->a, target, n->name, n->name_len, eval(r, f, n->a));
            break;
        }
        case N_MACRO: frame_set(r, f, n->name, n->name_len, make_func(r, FN_MACRO, NULL, n, jv_none())); break;
        case N_BREAK: return FLOW_BREAK;
        case N_CONTINUE: return FLOW_CONTINUE;
        default: fail(r, n, "not a statement");
        }
        check_memory(r, n);
    }
    return FLOW_NORMAL;
}

char *jinja_render(const jinja_template *t, json_t *context, size_t *out_len, qwen_error **err) {
    render *volatile r = calloc(1, sizeof *r);
    if (!r) { qwen_fail(err, QWEN_ERR_NOMEM, "out of memory"); return NULL; }
    r->err = err;
    r->a.limit = RENDER_MEMORY;
    r->out.limit = RENDER_MEMORY;
    char *volatile result = NULL;
    if (setjmp(r->fail) == 0) {
        if (!json_is_object(context)) fail(r, NULL, "the context must be a JSON object");
        r->context = jv_from_json(&r->a, context);
        r->root = frame_new(r, NULL);
        exec(r, r->root, &t->body);
        check_memory(r, NULL);
        result = r->out.data ? r->out.data : strdup("");
        if (out_len) *out_len = r->out.data ? r->out.len : 0;
        r->out.data = NULL;
    }
    free(r->out.data);
    arena_free(&r->a);
    free(r);
    return result;
}
