/* Jinja values with Python's semantics: truthiness, equality, str(), repr(), json.dumps(). */
#include "chat/jinja_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"

jv jv_undef(void) { return (jv){ .kind = JV_UNDEF }; }
jv jv_none(void) { return (jv){ .kind = JV_NONE }; }
jv jv_bool(bool b) { return (jv){ .kind = JV_BOOL, .b = b }; }
jv jv_int(int64_t i) { return (jv){ .kind = JV_INT, .i = i }; }
jv jv_float(double f) { return (jv){ .kind = JV_FLOAT, .f = f }; }

/* What the constructors return when the arena fails (a->failed, which the renderer checks between
 * statements): empty values that read safely and are never written, the arena failing every
 * later allocation (a push or set that would grow them is dropped). */
static union { jstr s; char room[sizeof(jstr) + 8]; } empty_str; /* "" (zeroed: a length and a NUL) */
static jlist empty_list;
static jdict empty_dict;

jv jv_str(arena *a, const char *s, size_t n) {
    jstr *p = arena_alloc(a, sizeof(jstr) + n + 1);
    if (!p) return (jv){ .kind = JV_STR, .s = &empty_str.s };
    p->len = n;
    if (n) memcpy(p->data, s, n);
    p->data[n] = 0;
    return (jv){ .kind = JV_STR, .s = p };
}

jv jv_list(arena *a, size_t cap) {
    jlist *l = arena_alloc(a, sizeof *l);
    jv *items = l ? arena_alloc(a, (cap ? cap : 4) * sizeof(jv)) : NULL;
    if (!items) return (jv){ .kind = JV_LIST, .l = &empty_list };
    *l = (jlist){ .items = items, .len = 0, .cap = cap ? cap : 4 };
    return (jv){ .kind = JV_LIST, .l = l };
}

jv jv_dict(arena *a, size_t cap) {
    jdict *d = arena_alloc(a, sizeof *d);
    jstr **keys = d ? arena_alloc(a, (cap ? cap : 4) * sizeof(jstr *)) : NULL;
    jv *vals = keys ? arena_alloc(a, (cap ? cap : 4) * sizeof(jv)) : NULL;
    if (!vals) return (jv){ .kind = JV_DICT, .d = &empty_dict };
    *d = (jdict){ .keys = keys, .vals = vals, .len = 0, .cap = cap ? cap : 4 };
    return (jv){ .kind = JV_DICT, .d = d };
}

void jv_list_push(arena *a, jv list, jv item) {
    jlist *l = list.l;
    if (l->len == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 4;
        jv *items = arena_alloc(a, cap * sizeof(jv));
        if (!items) return;
        if (l->len) memcpy(items, l->items, l->len * sizeof(jv));
        l->items = items;
        l->cap = cap;
    }
    l->items[l->len++] = item;
}

jv jv_dict_get(jv dict, const char *key, size_t klen) {
    jdict *d = dict.d;
    for (size_t i = 0; i < d->len; i++)
        if (d->keys[i]->len == klen && !memcmp(d->keys[i]->data, key, klen)) return d->vals[i];
    return jv_undef();
}

void jv_dict_set(arena *a, jv dict, const char *key, size_t klen, jv val) {
    jdict *d = dict.d;
    for (size_t i = 0; i < d->len; i++)
        if (d->keys[i]->len == klen && !memcmp(d->keys[i]->data, key, klen)) { d->vals[i] = val; return; }
    if (d->len == d->cap) {
        size_t cap = d->cap ? 2 * d->cap : 4;
        jstr **keys = arena_alloc(a, cap * sizeof(jstr *));
        jv *vals = arena_alloc(a, cap * sizeof(jv));
        if (!keys || !vals) return;
        if (d->len) memcpy(keys, d->keys, d->len * sizeof(jstr *));
        if (d->len) memcpy(vals, d->vals, d->len * sizeof(jv));
        d->keys = keys;
        d->vals = vals;
        d->cap = cap;
    }
    jv k = jv_str(a, key, klen);
    if (a->failed) return;
    d->keys[d->len] = k.s;
    d->vals[d->len++] = val;
}

bool jv_truthy(jv v) {
    switch (v.kind) {
    case JV_UNDEF: case JV_NONE: return false;
    case JV_BOOL: return v.b;
    case JV_INT: return v.i != 0;
    case JV_FLOAT: return v.f != 0;
    case JV_STR: return v.s->len > 0;
    case JV_LIST: return v.l->len > 0;
    case JV_DICT: return v.is_namespace || v.d->len > 0;
    case JV_FUNC: return true;
    }
    return false;
}

static bool is_number(jv v) { return v.kind == JV_INT || v.kind == JV_FLOAT || v.kind == JV_BOOL; }
static double as_double(jv v) { return v.kind == JV_FLOAT ? v.f : v.kind == JV_INT ? (double)v.i : v.b; }

static bool equal_at(jv a, jv b, int depth) {
    if (is_number(a) && is_number(b)) {
        if (a.kind != JV_FLOAT && b.kind != JV_FLOAT) return (a.kind == JV_INT ? a.i : a.b) == (b.kind == JV_INT ? b.i : b.b);
        return as_double(a) == as_double(b);
    }
    if (a.kind != b.kind) return false;
    switch (a.kind) {
    case JV_UNDEF: case JV_NONE: return true;
    case JV_STR: return a.s->len == b.s->len && !memcmp(a.s->data, b.s->data, a.s->len);
    case JV_LIST:
        if (a.l->len != b.l->len || depth >= JV_MAX_NESTING) return false;
        for (size_t i = 0; i < a.l->len; i++) if (!equal_at(a.l->items[i], b.l->items[i], depth + 1)) return false;
        return true;
    case JV_DICT:
        if (a.d->len != b.d->len || depth >= JV_MAX_NESTING) return false;
        for (size_t i = 0; i < a.d->len; i++) {
            jv o = jv_dict_get(b, a.d->keys[i]->data, a.d->keys[i]->len);
            if (o.kind == JV_UNDEF || !equal_at(a.d->vals[i], o, depth + 1)) return false;
        }
        return true;
    case JV_FUNC: return a.fn == b.fn;
    default: return false;
    }
}

bool jv_equal(jv a, jv b) { return equal_at(a, b, 0); }

const char *jv_type_name(jv v) {
    static const char *names[] = { "undefined", "NoneType", "bool", "int", "float", "str", "list", "dict", "function" };
    return names[v.kind];
}

size_t utf8_count(const char *s, size_t n) {
    size_t c = 0;
    for (size_t i = 0; i < n; i++) c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

/* Python's float repr: the shortest digits that read back the same; fixed notation for
 * 1e-4 <= |f| < 1e16 (with ".0" when integral), exponent notation otherwise. */
static void put_float(strbuf *b, double f) {
    if (isnan(f)) { strbuf_puts(b, "nan"); return; }
    if (isinf(f)) { strbuf_puts(b, f > 0 ? "inf" : "-inf"); return; }
    char tmp[48];
    for (int p = 0; p <= 16; p++) {
        snprintf(tmp, sizeof tmp, "%.*e", p, f);
        if (strtod(tmp, NULL) == f) break;
    }
    const char *p = tmp;
    bool neg = *p == '-';
    if (neg) p++;
    char digits[24];
    int nd = 0;
    for (; *p && *p != 'e'; p++) if (*p >= '0' && *p <= '9' && nd < 20) digits[nd++] = *p;
    int exp = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--; /* trailing zeros of the mantissa */
    if (neg) strbuf_puts(b, "-");
    if (exp < -4 || exp >= 16) {
        strbuf_put(b, digits, 1);
        if (nd > 1) { strbuf_puts(b, "."); strbuf_put(b, digits + 1, (size_t)nd - 1); }
        snprintf(tmp, sizeof tmp, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
        strbuf_puts(b, tmp);
    } else if (exp >= 0) {
        for (int i = 0; i <= exp; i++) strbuf_put(b, i < nd ? &digits[i] : "0", 1);
        strbuf_puts(b, ".");
        if (nd > exp + 1) strbuf_put(b, digits + exp + 1, (size_t)(nd - exp - 1));
        else strbuf_puts(b, "0");
    } else {
        strbuf_puts(b, "0.");
        for (int i = 0; i < -exp - 1; i++) strbuf_puts(b, "0");
        strbuf_put(b, digits, (size_t)nd);
    }
}

static void put_int(strbuf *b, int64_t i) {
    char tmp[32];
    snprintf(tmp, sizeof tmp, "%lld", (long long)i);
    strbuf_puts(b, tmp);
}

static void repr_str(strbuf *b, const char *s, size_t n) {
    bool has_single = memchr(s, '\'', n) != NULL, has_double = memchr(s, '"', n) != NULL;
    char q = has_single && !has_double ? '"' : '\'';
    strbuf_put(b, &q, 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char tmp[8];
        if (c == (unsigned char)q || c == '\\') { tmp[0] = '\\'; tmp[1] = (char)c; strbuf_put(b, tmp, 2); }
        else if (c == '\n') strbuf_puts(b, "\\n");
        else if (c == '\r') strbuf_puts(b, "\\r");
        else if (c == '\t') strbuf_puts(b, "\\t");
        else if (c < 0x20 || c == 0x7F) { snprintf(tmp, sizeof tmp, "\\x%02x", c); strbuf_puts(b, tmp); }
        else strbuf_put(b, (const char *)&c, 1);
    }
    strbuf_put(b, &q, 1);
}

static void repr_at(strbuf *b, jv v, int depth) {
    switch (v.kind) {
    case JV_STR: repr_str(b, v.s->data, v.s->len); return;
    case JV_LIST:
        if (depth >= JV_MAX_NESTING) { strbuf_puts(b, "[...]"); return; }
        strbuf_puts(b, "[");
        for (size_t i = 0; i < v.l->len; i++) {
            if (i) strbuf_puts(b, ", ");
            repr_at(b, v.l->items[i], depth + 1);
        }
        strbuf_puts(b, "]");
        return;
    case JV_DICT:
        if (v.is_namespace) { strbuf_puts(b, "<Namespace>"); return; }
        if (depth >= JV_MAX_NESTING) { strbuf_puts(b, "{...}"); return; }
        strbuf_puts(b, "{");
        for (size_t i = 0; i < v.d->len; i++) {
            if (i) strbuf_puts(b, ", ");
            repr_str(b, v.d->keys[i]->data, v.d->keys[i]->len);
            strbuf_puts(b, ": ");
            repr_at(b, v.d->vals[i], depth + 1);
        }
        strbuf_puts(b, "}");
        return;
    default: jv_to_str(b, v);
    }
}

void jv_repr(strbuf *b, jv v) { repr_at(b, v, 0); }

void jv_to_str(strbuf *b, jv v) {
    switch (v.kind) {
    case JV_UNDEF: return;
    case JV_NONE: strbuf_puts(b, "None"); return;
    case JV_BOOL: strbuf_puts(b, v.b ? "True" : "False"); return;
    case JV_INT: put_int(b, v.i); return;
    case JV_FLOAT: put_float(b, v.f); return;
    case JV_STR: strbuf_put(b, v.s->data, v.s->len); return;
    case JV_FUNC: strbuf_puts(b, "<function>"); return;
    default: jv_repr(b, v);
    }
}

static void json_str(strbuf *b, const char *s, size_t n, bool ascii) {
    strbuf_puts(b, "\"");
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char tmp[8];
        if (c == '"') esc = "\\\"";
        else if (c == '\\') esc = "\\\\";
        else if (c == '\n') esc = "\\n";
        else if (c == '\r') esc = "\\r";
        else if (c == '\t') esc = "\\t";
        else if (c == '\b') esc = "\\b";
        else if (c == '\f') esc = "\\f";
        else if (c < 0x20) { snprintf(tmp, sizeof tmp, "\\u%04x", c); esc = tmp; }
        if (ascii && c >= 0x80) {
            uint32_t cp;
            int len = utf8_decode((const unsigned char *)s + i, n - i, &cp);
            if (len) {
                char u[16];
                if (cp >= 0x10000) snprintf(u, sizeof u, "\\u%04x\\u%04x", 0xD800 + ((cp - 0x10000) >> 10), 0xDC00 + ((cp - 0x10000) & 0x3FF));
                else snprintf(u, sizeof u, "\\u%04x", cp);
                strbuf_put(b, s + i - run, run);
                run = 0;
                strbuf_puts(b, u);
                i += (size_t)len - 1;
                continue;
            }
        }
        if (esc) {
            strbuf_put(b, s + i - run, run);
            run = 0;
            strbuf_puts(b, esc);
        } else {
            run++;
        }
    }
    strbuf_put(b, s + n - run, run);
    strbuf_puts(b, "\"");
}

static void newline_indent(strbuf *b, int indent, int depth) {
    strbuf_puts(b, "\n");
    strbuf_repeat(b, ' ', (size_t)indent * (size_t)depth);
}

static int key_cmp(const void *x, const void *y) {
    const jstr *a = *(jstr *const *)x, *b = *(jstr *const *)y;
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->data, b->data, n);
    return c ? c : (a->len > b->len) - (a->len < b->len);
}

bool jv_nests_deeper(jv v, int limit) {
    if (v.kind != JV_LIST && v.kind != JV_DICT) return false;
    if (limit <= 0) return true;
    size_t n = v.kind == JV_LIST ? v.l->len : v.d->len;
    for (size_t i = 0; i < n; i++)
        if (jv_nests_deeper(v.kind == JV_LIST ? v.l->items[i] : v.d->vals[i], limit - 1)) return true;
    return false;
}

bool jv_to_json(strbuf *b, jv v, const json_style *st, int depth) {
    int indent = st->indent;
    if (depth >= JV_MAX_NESTING) return false;
    switch (v.kind) {
    case JV_NONE: strbuf_puts(b, "null"); return true;
    case JV_BOOL: strbuf_puts(b, v.b ? "true" : "false"); return true;
    case JV_INT: put_int(b, v.i); return true;
    case JV_FLOAT:
        if (isnan(v.f)) strbuf_puts(b, "NaN");
        else if (isinf(v.f)) strbuf_puts(b, v.f > 0 ? "Infinity" : "-Infinity");
        else put_float(b, v.f);
        return true;
    case JV_STR: json_str(b, v.s->data, v.s->len, st->ensure_ascii); return true;
    case JV_LIST:
        if (v.l->len == 0) { strbuf_puts(b, "[]"); return true; }
        strbuf_puts(b, "[");
        for (size_t i = 0; i < v.l->len; i++) {
            if (i) strbuf_puts(b, st->item_sep);
            if (indent >= 0) newline_indent(b, indent, depth + 1);
            if (!jv_to_json(b, v.l->items[i], st, depth + 1)) return false;
        }
        if (indent >= 0) newline_indent(b, indent, depth);
        strbuf_puts(b, "]");
        return true;
    case JV_DICT: {
        if (v.d->len == 0) { strbuf_puts(b, "{}"); return true; }
        size_t n = v.d->len;
        jstr **order = malloc(n * sizeof *order);
        if (!order) return false;
        memcpy(order, v.d->keys, n * sizeof *order);
        if (st->sort_keys) qsort(order, n, sizeof *order, key_cmp);
        strbuf_puts(b, "{");
        bool ok = true;
        for (size_t i = 0; i < n && ok; i++) {
            if (i) strbuf_puts(b, st->item_sep);
            if (indent >= 0) newline_indent(b, indent, depth + 1);
            json_str(b, order[i]->data, order[i]->len, st->ensure_ascii);
            strbuf_puts(b, st->key_sep);
            ok = jv_to_json(b, jv_dict_get(v, order[i]->data, order[i]->len), st, depth + 1);
        }
        free(order);
        if (!ok) return false;
        if (indent >= 0) newline_indent(b, indent, depth);
        strbuf_puts(b, "}");
        return true;
    }
    default: return false;
    }
}

jv jv_from_json(arena *a, json_t *j) {
    switch (json_typeof(j)) {
    case JSON_NULL: return jv_none();
    case JSON_TRUE: return jv_bool(true);
    case JSON_FALSE: return jv_bool(false);
    case JSON_INTEGER: return jv_int(json_integer_value(j));
    case JSON_REAL: return jv_float(json_real_value(j));
    case JSON_STRING: return jv_str(a, json_string_value(j), json_string_length(j));
    case JSON_ARRAY: {
        jv l = jv_list(a, json_array_size(j));
        size_t i;
        json_t *x;
        json_array_foreach(j, i, x) jv_list_push(a, l, jv_from_json(a, x));
        return l;
    }
    case JSON_OBJECT: {
        jv d = jv_dict(a, json_object_size(j));
        const char *k;
        json_t *x;
        json_object_foreach(j, k, x) jv_dict_set(a, d, k, strlen(k), jv_from_json(a, x));
        return d;
    }
    }
    return jv_none();
}
