/* Jinja lexer and parser: template text -> AST, with jinja2's whitespace rules as transformers
 * sets them (trim_blocks, lstrip_blocks, "-" and "+" modifiers). */
#include "chat/jinja_internal.h"

#include <ctype.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/utf8.h"

typedef enum tok_kind { T_TEXT, T_VAR_BEGIN, T_VAR_END, T_BLOCK_BEGIN, T_BLOCK_END, T_NAME, T_STRING, T_INT, T_FLOAT, T_OP, T_EOF } tok_kind;

typedef struct token {
    tok_kind kind;
    const char *s; /* text (T_TEXT, T_STRING unescaped, T_NAME, T_OP) in the template arena */
    size_t len;
    int64_t i;
    double f;
    int line, col;
} token;

typedef struct parser {
    jinja_template *t;
    const char *src;
    size_t len;
    token *toks;
    size_t n_toks, cap_toks, pos;
    jmp_buf fail;
    qwen_error **err;
    int depth;          /* nesting of expressions and blocks being parsed */
    size_t lc_off;      /* line_col's cursor */
    int lc_line, lc_col;
} parser;

static void __attribute__((noreturn, format(printf, 4, 5))) fail_at(parser *p, int line, int col, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    qwen_fail(p->err, QWEN_ERR_FORMAT, "template syntax error at line %d, column %d: %s", line, col, msg);
    longjmp(p->fail, 1);
}

static void *palloc(parser *p, size_t n) {
    void *m = arena_alloc(&p->t->mem, n);
    if (!m) fail_at(p, 0, 0, "out of memory");
    memset(m, 0, n);
    return m;
}

/* ---- lexer ---- */

static void line_col(parser *p, size_t off, int *line, int *col) {
    /* offsets arrive in increasing order: continue from the last one */
    if (off < p->lc_off) { p->lc_off = 0; p->lc_line = 1; p->lc_col = 1; }
    for (; p->lc_off < off && p->lc_off < p->len; p->lc_off++) {
        if (p->src[p->lc_off] == '\n') { p->lc_line++; p->lc_col = 1; } else p->lc_col++;
    }
    *line = p->lc_line;
    *col = p->lc_col;
}

static token *push_tok(parser *p, tok_kind kind, size_t off) {
    if (p->n_toks == p->cap_toks) {
        size_t cap = p->cap_toks ? p->cap_toks * 2 : 256;
        token *t = realloc(p->toks, cap * sizeof *t);
        if (!t) fail_at(p, 0, 0, "out of memory");
        p->toks = t;
        p->cap_toks = cap;
    }
    token *t = &p->toks[p->n_toks++];
    memset(t, 0, sizeof *t);
    t->kind = kind;
    line_col(p, off, &t->line, &t->col);
    return t;
}

static const char *OPS[] = { "==", "!=", "<=", ">=", "//", "**", "+", "-", "*", "/", "%", "~", "<", ">", "=", ".", ",", ":", "|", "(", ")", "[", "]", "{", "}" };

/* Reads a quoted string literal at s[i] with Python escapes; returns the offset after it. */
static size_t lex_string(parser *p, size_t i, token *t) {
    char q = p->src[i++];
    char *out = palloc(p, p->len - i + 1);
    size_t n = 0;
    while (i < p->len && p->src[i] != q) {
        char c = p->src[i++];
        if (c != '\\' || i >= p->len) { out[n++] = c; continue; }
        char e = p->src[i++];
        switch (e) {
        case 'n': out[n++] = '\n'; break;
        case 't': out[n++] = '\t'; break;
        case 'r': out[n++] = '\r'; break;
        case '0': out[n++] = '\0'; break;
        case '\\': case '\'': case '"': out[n++] = e; break;
        case '\n': break;
        case 'u': case 'x': case 'U': {
            int digits = e == 'x' ? 2 : e == 'u' ? 4 : 8;
            uint32_t cp = 0;
            for (int k = 0; k < digits; k++) {
                if (i >= p->len || !isxdigit((unsigned char)p->src[i])) fail_at(p, t->line, t->col, "bad \\%c escape in string", e);
                char h = p->src[i++];
                cp = cp * 16 + (uint32_t)(isdigit((unsigned char)h) ? h - '0' : (tolower((unsigned char)h) - 'a' + 10));
            }
            if (cp > 0x10FFFF) fail_at(p, t->line, t->col, "escape out of range");
            n += (size_t)utf8_encode(cp, (unsigned char *)out + n);
            break;
        }
        default: out[n++] = '\\'; out[n++] = e; break;
        }
    }
    if (i >= p->len) fail_at(p, t->line, t->col, "unterminated string");
    t->s = out;
    t->len = n;
    return i + 1;
}

/* Tokenizes the inside of a {{ }} or {% %} tag starting at i, up to and including its closer.
 * Returns the offset after the closer; *strip_after is set when the closer had a "-". */
static size_t lex_tag(parser *p, size_t i, char close, bool *strip_after, int open_line, int open_col) {
    for (;;) {
        while (i < p->len && isspace((unsigned char)p->src[i])) i++;
        if (i >= p->len) fail_at(p, open_line, open_col, "unclosed tag");
        const char *s = p->src + i;
        size_t rest = p->len - i;
        if (rest >= 3 && s[0] == '-' && s[1] == close && s[2] == '}') { *strip_after = true; return i + 3; }
        if (rest >= 3 && s[0] == '+' && s[1] == close && s[2] == '}') { *strip_after = false; return i + 3; }
        if (rest >= 2 && s[0] == close && s[1] == '}') { *strip_after = false; return i + 2; }
        if (*s == '"' || *s == '\'') {
            token *t = push_tok(p, T_STRING, i);
            i = lex_string(p, i, t);
        } else if (isdigit((unsigned char)*s)) {
            token *t = push_tok(p, T_INT, i);
            size_t j = i;
            bool is_float = false;
            while (j < p->len && (isdigit((unsigned char)p->src[j]) || p->src[j] == '_')) j++;
            if (j + 1 < p->len && p->src[j] == '.' && isdigit((unsigned char)p->src[j + 1])) {
                is_float = true;
                j++;
                while (j < p->len && isdigit((unsigned char)p->src[j])) j++;
            }
            if (j < p->len && (p->src[j] == 'e' || p->src[j] == 'E')) {
                size_t k = j + 1;
                if (k < p->len && (p->src[k] == '+' || p->src[k] == '-')) k++;
                if (k < p->len && isdigit((unsigned char)p->src[k])) {
                    is_float = true;
                    j = k;
                    while (j < p->len && isdigit((unsigned char)p->src[j])) j++;
                }
            }
            char num[512];
            size_t n = 0;
            for (size_t k = i; k < j; k++) {
                if (p->src[k] == '_') continue;
                if (n == sizeof num - 1) fail_at(p, t->line, t->col, "number literal too long");
                num[n++] = p->src[k];
            }
            num[n] = 0;
            errno = 0;
            if (is_float) { t->kind = T_FLOAT; t->f = strtod(num, NULL); }
            else t->i = strtoll(num, NULL, 10);
            /* an integer beyond int64 (Python's would grow; a float beyond double is inf, as Python's) */
            if (errno == ERANGE && !is_float) fail_at(p, t->line, t->col, "integer literal out of range");
            i = j;
        } else if (isalpha((unsigned char)*s) || *s == '_') {
            token *t = push_tok(p, T_NAME, i);
            size_t j = i;
            while (j < p->len && (isalnum((unsigned char)p->src[j]) || p->src[j] == '_')) j++;
            t->s = p->src + i;
            t->len = j - i;
            i = j;
        } else {
            size_t k;
            for (k = 0; k < sizeof OPS / sizeof *OPS; k++) {
                size_t n = strlen(OPS[k]);
                if (rest >= n && !memcmp(s, OPS[k], n)) break;
            }
            if (k == sizeof OPS / sizeof *OPS) {
                int l, c;
                line_col(p, i, &l, &c);
                fail_at(p, l, c, "unexpected character '%c'", *s);
            }
            token *t = push_tok(p, T_OP, i);
            t->s = OPS[k];
            t->len = strlen(OPS[k]);
            i += t->len;
        }
    }
}

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

/* {% raw %}...{% endraw %}: if the tag opened at s[k] (after "{%" and a modifier) is "raw",
 * emits everything up to the matching endraw tag as text, sets *next past that tag and returns
 * true. Whitespace modifiers on the two tags are honoured. */
static bool raw_block(parser *p, size_t k, size_t *next, bool *line_starting) {
    size_t i = k;
    while (i < p->len && is_ws(p->src[i])) i++;
    if (p->len - i < 3 || memcmp(p->src + i, "raw", 3)) return false;
    i += 3;
    while (i < p->len && is_ws(p->src[i])) i++;
    bool strip_inner = i < p->len && p->src[i] == '-';
    if (strip_inner) i++;
    if (p->len - i < 2 || memcmp(p->src + i, "%}", 2)) return false;
    size_t body = i + 2;
    if (strip_inner) while (body < p->len && is_ws(p->src[body])) body++;
    for (size_t m = body; m + 1 < p->len; m++) {
        if (p->src[m] != '{' || p->src[m + 1] != '%') continue;
        size_t q = m + 2;
        bool strip_before = q < p->len && p->src[q] == '-';
        if (strip_before) q++;
        while (q < p->len && is_ws(p->src[q])) q++;
        if (p->len - q < 6 || memcmp(p->src + q, "endraw", 6)) continue;
        q += 6;
        while (q < p->len && is_ws(p->src[q])) q++;
        bool strip_after = q < p->len && p->src[q] == '-';
        if (strip_after) q++;
        if (p->len - q < 2 || memcmp(p->src + q, "%}", 2)) continue;
        size_t text_end = m;
        if (strip_before) while (text_end > body && is_ws(p->src[text_end - 1])) text_end--;
        if (text_end > body) {
            token *t = push_tok(p, T_TEXT, body);
            t->s = p->src + body;
            t->len = text_end - body;
        }
        q += 2;
        *line_starting = false;
        if (strip_after) while (q < p->len && is_ws(p->src[q])) q++;
        else if (q < p->len && p->src[q] == '\n') { q++; *line_starting = true; }
        *next = q;
        return true;
    }
    int l, c;
    line_col(p, k, &l, &c);
    fail_at(p, l, c, "{%% raw %%} without {%% endraw %%}");
}

static void lex(parser *p) {
    size_t i = 0;
    /* jinja2's "line_starting": the text before the next tag begins a line (template start, or
     * what the previous tag consumed ended with a newline) */
    bool line_starting = true;
    for (;;) {
        size_t j = i;
        const char *open = NULL;
        for (; j + 1 < p->len; j++)
            if (p->src[j] == '{' && (p->src[j + 1] == '{' || p->src[j + 1] == '%' || p->src[j + 1] == '#')) { open = p->src + j; break; }
        size_t text_end = open ? j : p->len;
        if (open) {
            char kind = open[1], mod = j + 2 < p->len ? open[2] : 0;
            if (mod == '-') {
                while (text_end > i && is_ws(p->src[text_end - 1])) text_end--;
            } else if (mod != '+' && kind != '{') {
                /* lstrip_blocks: spaces and tabs between a line start and a block/comment tag go */
                size_t ls = text_end;
                while (ls > i && p->src[ls - 1] != '\n') ls--;
                bool only_ws = true;
                for (size_t k = ls; k < text_end; k++) if (!is_ws(p->src[k])) only_ws = false;
                if ((ls > i || line_starting) && only_ws) text_end = ls;
            }
        }
        if (text_end > i) {
            token *t = push_tok(p, T_TEXT, i);
            t->s = p->src + i;
            t->len = text_end - i;
        }
        if (!open) break;
        char kind = open[1];
        size_t k = j + 2;
        if (k < p->len && (p->src[k] == '-' || p->src[k] == '+')) k++;
        int l, c;
        line_col(p, j, &l, &c);
        bool strip_after = false;
        if (kind == '%' && raw_block(p, k, &i, &line_starting)) continue;
        if (kind == '#') {
            size_t m = k;
            while (m + 1 < p->len && !(p->src[m] == '#' && p->src[m + 1] == '}')) m++;
            if (m + 1 >= p->len) fail_at(p, l, c, "unclosed comment");
            strip_after = m > k && p->src[m - 1] == '-';
            i = m + 2;
        } else {
            push_tok(p, kind == '{' ? T_VAR_BEGIN : T_BLOCK_BEGIN, j);
            i = lex_tag(p, k, kind == '{' ? '}' : '%', &strip_after, l, c);
            push_tok(p, kind == '{' ? T_VAR_END : T_BLOCK_END, i);
        }
        line_starting = false;
        if (strip_after) {
            size_t before = i;
            while (i < p->len && is_ws(p->src[i])) i++;
            line_starting = i > before && p->src[i - 1] == '\n';
        } else if (kind != '{') { /* trim_blocks: the first newline after a block or comment tag goes */
            if (i < p->len && p->src[i] == '\n') { i++; line_starting = true; }
            else if (i + 1 < p->len && p->src[i] == '\r' && p->src[i + 1] == '\n') { i += 2; line_starting = true; }
        }
    }
    push_tok(p, T_EOF, p->len);
}

/* ---- parser ---- */

enum { MAX_DEPTH = 200 }; /* deeper nesting is refused rather than risking the stack */

static token *peek(parser *p) { return &p->toks[p->pos]; }
static token *next(parser *p) { token *t = &p->toks[p->pos]; if (t->kind != T_EOF) p->pos++; return t; }
static bool is_op(const token *t, const char *op) { return t->kind == T_OP && t->len == strlen(op) && !memcmp(t->s, op, t->len); }
static bool is_name(const token *t, const char *name) { return t->kind == T_NAME && t->len == strlen(name) && !memcmp(t->s, name, t->len); }
static bool accept_op(parser *p, const char *op) { if (is_op(peek(p), op)) { p->pos++; return true; } return false; }
static bool accept_name(parser *p, const char *n) { if (is_name(peek(p), n)) { p->pos++; return true; } return false; }

static const char *describe(const token *t) {
    switch (t->kind) {
    case T_EOF: return "end of template";
    case T_BLOCK_END: return "end of tag";
    case T_VAR_END: return "end of expression";
    default: return "token";
    }
}

static void expect_op(parser *p, const char *op) {
    token *t = peek(p);
    if (!accept_op(p, op)) fail_at(p, t->line, t->col, "expected '%s', found %s '%.*s'", op, describe(t), (int)t->len, t->s ? t->s : "");
}

static const char *expect_name(parser *p, size_t *len) {
    token *t = next(p);
    if (t->kind != T_NAME) fail_at(p, t->line, t->col, "expected a name, found %s", describe(t));
    if (len) *len = t->len;
    char *s = palloc(p, t->len + 1);
    memcpy(s, t->s, t->len);
    return s;
}

static node *mk(parser *p, node_kind kind, const token *at) {
    node *n = palloc(p, sizeof *n);
    n->kind = kind;
    n->line = at->line;
    n->col = at->col;
    return n;
}

static void list_push(parser *p, node_list *l, node *n) {
    if (l->len == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        node **items = palloc(p, cap * sizeof *items);
        if (l->len) memcpy(items, l->items, l->len * sizeof *items);
        l->items = items;
        l->cap = cap;
    }
    l->items[l->len++] = n;
}

static node *parse_expr(parser *p);
static node *parse_or(parser *p);

static void parse_call_args(parser *p, node *call) {
    /* after '(' */
    size_t n_kw = 0, cap_kw = 0;
    while (!accept_op(p, ")")) {
        if (call->args.len + n_kw) expect_op(p, ",");
        if (accept_op(p, ")")) break; /* trailing comma */
        if (peek(p)->kind == T_NAME && is_op(&p->toks[p->pos + 1], "=")) {
            const char *name = expect_name(p, NULL);
            p->pos++;
            if (n_kw == cap_kw) {
                cap_kw = cap_kw ? cap_kw * 2 : 4;
                const char **names = palloc(p, cap_kw * sizeof *names);
                if (n_kw) memcpy(names, call->kwarg_names, n_kw * sizeof *names);
                call->kwarg_names = names;
            }
            call->kwarg_names[n_kw++] = name;
            list_push(p, &call->kwarg_values, parse_expr(p));
        } else {
            if (n_kw) fail_at(p, peek(p)->line, peek(p)->col, "positional argument after keyword argument");
            list_push(p, &call->args, parse_expr(p));
        }
    }
}

static node *parse_primary(parser *p) {
    token *t = next(p);
    node *n;
    switch (t->kind) {
    case T_STRING: {
        /* adjacent literals concatenate */
        size_t total = t->len, start = p->pos - 1;
        while (peek(p)->kind == T_STRING) total += next(p)->len;
        char *s = palloc(p, total + 1);
        size_t k = 0;
        for (size_t i = start; i < p->pos; i++) { memcpy(s + k, p->toks[i].s, p->toks[i].len); k += p->toks[i].len; }
        n = mk(p, N_LITERAL, t);
        n->value = jv_str(&p->t->mem, s, total);
        return n;
    }
    case T_INT: n = mk(p, N_LITERAL, t); n->value = jv_int(t->i); return n;
    case T_FLOAT: n = mk(p, N_LITERAL, t); n->value = jv_float(t->f); return n;
    case T_NAME:
        n = mk(p, N_LITERAL, t);
        if (is_name(t, "true") || is_name(t, "True")) { n->value = jv_bool(true); return n; }
        if (is_name(t, "false") || is_name(t, "False")) { n->value = jv_bool(false); return n; }
        if (is_name(t, "none") || is_name(t, "None")) { n->value = jv_none(); return n; }
        n->kind = N_NAME;
        n->name = t->s;
        n->name_len = t->len;
        return n;
    case T_OP:
        if (is_op(t, "(")) {
            if (accept_op(p, ")")) return mk(p, N_TUPLE, t);
            node *e = parse_expr(p);
            if (is_op(peek(p), ",")) {
                node *tu = mk(p, N_TUPLE, t);
                list_push(p, &tu->args, e);
                while (accept_op(p, ",")) {
                    if (is_op(peek(p), ")")) break;
                    list_push(p, &tu->args, parse_expr(p));
                }
                e = tu;
            }
            expect_op(p, ")");
            return e;
        }
        if (is_op(t, "[")) {
            n = mk(p, N_LIST, t);
            while (!accept_op(p, "]")) {
                if (n->args.len) expect_op(p, ",");
                if (accept_op(p, "]")) break;
                list_push(p, &n->args, parse_expr(p));
            }
            return n;
        }
        if (is_op(t, "{")) {
            n = mk(p, N_DICT, t);
            while (!accept_op(p, "}")) {
                if (n->args.len) expect_op(p, ",");
                if (accept_op(p, "}")) break;
                list_push(p, &n->args, parse_expr(p));
                expect_op(p, ":");
                list_push(p, &n->args, parse_expr(p));
            }
            return n;
        }
        /* fallthrough */
    default:
        fail_at(p, t->line, t->col, "unexpected %s '%.*s' in expression", describe(t), (int)t->len, t->s ? t->s : "");
    }
}

static node *parse_postfix(parser *p, node *n) {
    for (;;) {
        token *t = peek(p);
        if (accept_op(p, ".")) {
            node *a = mk(p, N_ATTR, t);
            a->a = n;
            token *nt = next(p);
            if (nt->kind != T_NAME && nt->kind != T_INT) fail_at(p, nt->line, nt->col, "expected an attribute name after '.'");
            if (nt->kind == T_INT) { a->kind = N_ITEM; a->b = mk(p, N_LITERAL, nt); a->b->value = jv_int(nt->i); }
            else { a->name = nt->s; a->name_len = nt->len; }
            n = a;
        } else if (accept_op(p, "[")) {
            node *start = NULL, *stop = NULL, *step = NULL;
            bool slice = false;
            if (!is_op(peek(p), ":")) start = parse_expr(p);
            if (accept_op(p, ":")) {
                slice = true;
                if (!is_op(peek(p), ":") && !is_op(peek(p), "]")) stop = parse_expr(p);
                if (accept_op(p, ":") && !is_op(peek(p), "]")) step = parse_expr(p);
            }
            expect_op(p, "]");
            node *x = mk(p, slice ? N_SLICE : N_ITEM, t);
            x->a = n;
            if (slice) { x->b = start; x->c = stop; list_push(p, &x->args, step); }
            else x->b = start;
            n = x;
        } else if (accept_op(p, "(")) {
            node *c = mk(p, N_CALL, t);
            c->a = n;
            parse_call_args(p, c);
            n = c;
        } else {
            return n;
        }
    }
}

static node *parse_filters_and_tests(parser *p, node *n) {
    for (;;) {
        token *t = peek(p);
        if (accept_op(p, "|")) {
            node *f = mk(p, N_FILTER, t);
            f->a = n;
            f->name = expect_name(p, &f->name_len);
            if (accept_op(p, "(")) parse_call_args(p, f);
            n = f;
        } else if (accept_name(p, "is")) {
            node *x = mk(p, N_TEST, t);
            x->a = n;
            x->negated = accept_name(p, "not");
            x->name = expect_name(p, &x->name_len);
            if (accept_op(p, "(")) parse_call_args(p, x);
            n = x;
        } else {
            return n;
        }
    }
}

static node *parse_unary(parser *p) {
    token *t = peek(p);
    node *n;
    if (p->depth > MAX_DEPTH) fail_at(p, t->line, t->col, "expression nested too deeply");
    if (accept_op(p, "-")) { p->depth++; n = mk(p, N_NEG, t); n->a = parse_unary(p); p->depth--; return n; }
    if (accept_op(p, "+")) { p->depth++; n = mk(p, N_POS, t); n->a = parse_unary(p); p->depth--; return n; }
    n = parse_postfix(p, parse_primary(p));
    return parse_filters_and_tests(p, n);
}

static node *binop(parser *p, const token *at, const char *op, node *a, node *b) {
    node *n = mk(p, N_BINOP, at);
    n->name = op;
    n->a = a;
    n->b = b;
    return n;
}

static node *parse_pow(parser *p) {
    node *n = parse_unary(p);
    for (token *t = peek(p); accept_op(p, "**"); t = peek(p)) n = binop(p, t, "**", n, parse_unary(p));
    return n;
}

static node *parse_math2(parser *p) {
    node *n = parse_pow(p);
    for (;;) {
        token *t = peek(p);
        const char *ops[] = { "*", "/", "//", "%" };
        size_t k;
        for (k = 0; k < 4; k++) if (is_op(t, ops[k])) break;
        if (k == 4) return n;
        p->pos++;
        n = binop(p, t, ops[k], n, parse_pow(p));
    }
}

static node *parse_concat(parser *p) {
    node *n = parse_math2(p);
    for (token *t = peek(p); accept_op(p, "~"); t = peek(p)) n = binop(p, t, "~", n, parse_math2(p));
    return n;
}

static node *parse_math1(parser *p) {
    node *n = parse_concat(p);
    for (;;) {
        token *t = peek(p);
        if (accept_op(p, "+")) n = binop(p, t, "+", n, parse_concat(p));
        else if (accept_op(p, "-")) n = binop(p, t, "-", n, parse_concat(p));
        else return n;
    }
}

static node *parse_compare(parser *p) {
    node *first = parse_math1(p);
    node *cmp = NULL;
    size_t cap = 0;
    for (;;) {
        token *t = peek(p);
        const char *op = NULL;
        const char *ops[] = { "==", "!=", "<", ">", "<=", ">=" };
        for (size_t k = 0; k < 6 && !op; k++) if (is_op(t, ops[k])) op = ops[k];
        if (op) p->pos++;
        else if (accept_name(p, "in")) op = "in";
        else if (is_name(t, "not") && is_name(&p->toks[p->pos + 1], "in")) { p->pos += 2; op = "not in"; }
        else break;
        if (!cmp) {
            cmp = mk(p, N_COMPARE, t);
            list_push(p, &cmp->args, first);
        }
        if (cmp->args.len - 1 == cap) {
            cap = cap ? cap * 2 : 4;
            const char **ops2 = palloc(p, cap * sizeof *ops2);
            if (cmp->args.len > 1) memcpy(ops2, cmp->ops, (cmp->args.len - 1) * sizeof *ops2);
            cmp->ops = ops2;
        }
        cmp->ops[cmp->args.len - 1] = op;
        list_push(p, &cmp->args, parse_math1(p));
    }
    return cmp ? cmp : first;
}

static node *parse_not(parser *p) {
    token *t = peek(p);
    if (p->depth > MAX_DEPTH) fail_at(p, t->line, t->col, "expression nested too deeply");
    if (accept_name(p, "not")) { p->depth++; node *n = mk(p, N_NOT, t); n->a = parse_not(p); p->depth--; return n; }
    return parse_compare(p);
}

static node *parse_and(parser *p) {
    node *n = parse_not(p);
    for (token *t = peek(p); accept_name(p, "and"); t = peek(p)) { node *x = mk(p, N_AND, t); x->a = n; x->b = parse_not(p); n = x; }
    return n;
}

static node *parse_or(parser *p) {
    node *n = parse_and(p);
    for (token *t = peek(p); accept_name(p, "or"); t = peek(p)) { node *x = mk(p, N_OR, t); x->a = n; x->b = parse_and(p); n = x; }
    return n;
}

static node *parse_expr(parser *p) {
    if (++p->depth > MAX_DEPTH) fail_at(p, peek(p)->line, peek(p)->col, "expression nested too deeply");
    node *n = parse_or(p);
    for (;;) {
        token *t = peek(p);
        if (!accept_name(p, "if")) { p->depth--; return n; }
        node *c = mk(p, N_COND, t);
        c->a = n;
        c->b = parse_or(p);
        if (accept_name(p, "else")) c->c = parse_expr(p);
        n = c;
    }
}

/* ---- statements ---- */

static void parse_body(parser *p, node_list *body, const char *const *ends, size_t n_ends, const char **which);

static void expect_block_end(parser *p) {
    token *t = next(p);
    if (t->kind != T_BLOCK_END) fail_at(p, t->line, t->col, "expected end of tag '%%}', found '%.*s'", (int)t->len, t->s ? t->s : "");
}

static node *parse_if(parser *p, token *at) {
    node *n = mk(p, N_IF, at);
    n->a = parse_expr(p);
    expect_block_end(p);
    static const char *const ends[] = { "elif", "else", "endif" };
    const char *which;
    parse_body(p, &n->body, ends, 3, &which);
    if (!strcmp(which, "elif")) {
        list_push(p, &n->else_body, parse_if(p, &p->toks[p->pos - 1]));
    } else if (!strcmp(which, "else")) {
        expect_block_end(p);
        static const char *const end[] = { "endif" };
        parse_body(p, &n->else_body, end, 1, &which);
        expect_block_end(p);
    } else {
        expect_block_end(p);
    }
    return n;
}

static node *parse_for(parser *p, token *at) {
    node *n = mk(p, N_FOR, at);
    const char *names[8] = { 0 };
    size_t count = 0;
    do {
        if (count == 8) fail_at(p, at->line, at->col, "too many loop variables");
        names[count++] = expect_name(p, NULL);
    } while (accept_op(p, ","));
    n->targets = palloc(p, count * sizeof *n->targets);
    memcpy(n->targets, names, count * sizeof *names);
    n->n_targets = count;
    if (!accept_name(p, "in")) fail_at(p, peek(p)->line, peek(p)->col, "expected 'in' in for loop");
    n->a = parse_or(p);            /* no conditional expression: a trailing "if" filters */
    n->a = parse_filters_and_tests(p, n->a);
    if (accept_name(p, "if")) n->b = parse_expr(p);
    accept_name(p, "recursive");
    expect_block_end(p);
    static const char *const ends[] = { "else", "endfor" };
    const char *which;
    parse_body(p, &n->body, ends, 2, &which);
    expect_block_end(p);
    if (!strcmp(which, "else")) {
        static const char *const end[] = { "endfor" };
        parse_body(p, &n->else_body, end, 1, &which);
        expect_block_end(p);
    }
    return n;
}

static node *parse_set(parser *p, token *at) {
    size_t len;
    const char *name = expect_name(p, &len);
    node *n = mk(p, N_SET, at);
    n->name = name;
    n->name_len = len;
    if (accept_op(p, ".")) {
        n->kind = N_SET_ATTR;
        n->b = mk(p, N_NAME, at);
        n->b->name = name;
        n->b->name_len = len;
        n->name = expect_name(p, &n->name_len);
    }
    if (peek(p)->kind == T_BLOCK_END && n->kind == N_SET) {
        expect_block_end(p);
        n->kind = N_BLOCK_SET;
        static const char *const end[] = { "endset" };
        const char *which;
        parse_body(p, &n->body, end, 1, &which);
        expect_block_end(p);
        return n;
    }
    expect_op(p, "=");
    n->a = parse_expr(p);
    if (is_op(peek(p), ",")) { /* {% set x = a, b %} makes a tuple */
        node *tu = mk(p, N_TUPLE, at);
        list_push(p, &tu->args, n->a);
        while (accept_op(p, ",")) list_push(p, &tu->args, parse_expr(p));
        n->a = tu;
    }
    expect_block_end(p);
    return n;
}

static node *parse_macro(parser *p, token *at) {
    node *n = mk(p, N_MACRO, at);
    n->name = expect_name(p, &n->name_len);
    expect_op(p, "(");
    const char *names[64] = { 0 };
    size_t count = 0;
    while (!accept_op(p, ")")) {
        if (count) expect_op(p, ",");
        if (count == 64) fail_at(p, at->line, at->col, "too many macro parameters");
        names[count++] = expect_name(p, NULL);
        list_push(p, &n->defaults, accept_op(p, "=") ? parse_expr(p) : NULL);
    }
    n->targets = palloc(p, (count ? count : 1) * sizeof *n->targets);
    memcpy(n->targets, names, count * sizeof *names);
    n->n_targets = count;
    expect_block_end(p);
    static const char *const end[] = { "endmacro" };
    const char *which;
    parse_body(p, &n->body, end, 1, &which);
    if (peek(p)->kind == T_NAME) p->pos++; /* {% endmacro name %} */
    expect_block_end(p);
    return n;
}

/* Parses statements until one of `ends` (the end keyword is consumed, its name in *which) or,
 * when n_ends == 0, the end of the template. */
static void parse_body(parser *p, node_list *body, const char *const *ends, size_t n_ends, const char **which) {
    if (++p->depth > MAX_DEPTH) fail_at(p, peek(p)->line, peek(p)->col, "blocks nested too deeply");
    for (;;) {
        token *t = next(p);
        if (t->kind == T_EOF) {
            if (n_ends) fail_at(p, t->line, t->col, "unexpected end of template, expected '%s'", ends[n_ends - 1]);
            p->depth--;
            return;
        }
        if (t->kind == T_TEXT) {
            node *n = mk(p, N_TEXT, t);
            n->name = t->s;
            n->name_len = t->len;
            list_push(p, body, n);
        } else if (t->kind == T_VAR_BEGIN) {
            node *n = mk(p, N_OUTPUT, t);
            n->a = parse_expr(p);
            token *e = next(p);
            if (e->kind != T_VAR_END) fail_at(p, e->line, e->col, "expected '}}', found '%.*s'", (int)e->len, e->s ? e->s : "");
            list_push(p, body, n);
        } else if (t->kind == T_BLOCK_BEGIN) {
            token *kw = next(p);
            if (kw->kind != T_NAME) fail_at(p, kw->line, kw->col, "expected a statement name");
            for (size_t k = 0; k < n_ends; k++)
                if (is_name(kw, ends[k])) { *which = ends[k]; p->depth--; return; }
            if (is_name(kw, "if")) list_push(p, body, parse_if(p, kw));
            else if (is_name(kw, "for")) list_push(p, body, parse_for(p, kw));
            else if (is_name(kw, "set")) list_push(p, body, parse_set(p, kw));
            else if (is_name(kw, "macro")) list_push(p, body, parse_macro(p, kw));
            else if (is_name(kw, "generation")) {
                /* transformers' AssistantTracker block: marks assistant text, renders its body as is */
                expect_block_end(p);
                static const char *const end[] = { "endgeneration" };
                const char *which;
                parse_body(p, body, end, 1, &which);
                expect_block_end(p);
            }
            else if (is_name(kw, "break") || is_name(kw, "continue")) {
                list_push(p, body, mk(p, is_name(kw, "break") ? N_BREAK : N_CONTINUE, kw));
                expect_block_end(p);
            } else
                fail_at(p, kw->line, kw->col, "unknown or unexpected statement '%.*s'", (int)kw->len, kw->s);
        } else {
            fail_at(p, t->line, t->col, "unexpected token");
        }
    }
}

/* Python's str.splitlines() separators: \n \r \r\n \v \f \x1c \x1d \x1e, U+0085, U+2028, U+2029. */
static size_t line_break_at(const char *s, size_t len, size_t i) {
    unsigned char c = (unsigned char)s[i];
    if (c == '\r') return i + 1 < len && s[i + 1] == '\n' ? 2 : 1;
    if (c == '\n' || c == '\v' || c == '\f' || (c >= 0x1c && c <= 0x1e)) return 1;
    if (c == 0xC2 && i + 1 < len && (unsigned char)s[i + 1] == 0x85) return 2;
    if (c == 0xE2 && i + 2 < len && (unsigned char)s[i + 1] == 0x80 && ((unsigned char)s[i + 2] == 0xA8 || (unsigned char)s[i + 2] == 0xA9))
        return 3;
    return 0;
}

static size_t normalize_newlines(const char *src, size_t len, char *out) {
    size_t k = 0;
    for (size_t i = 0; i < len;) {
        size_t n = line_break_at(src, len, i);
        if (n) {
            if (i + n < len) out[k++] = '\n'; /* the last line break of the source is dropped */
            i += n;
        } else {
            out[k++] = src[i++];
        }
    }
    out[k] = 0;
    return k;
}

jinja_template *jinja_parse(const char *source, size_t len, qwen_error **err) {
    jinja_template *volatile t = calloc(1, sizeof *t);
    if (!t) { qwen_fail(err, QWEN_ERR_NOMEM, "out of memory"); return NULL; }
    /* the AST points into the source text: keep a copy with the template, its line breaks
     * normalised as jinja2 does (str.splitlines + "\n".join: every kind of line break becomes
     * "\n", and a single trailing one is dropped) */
    char *copy = arena_alloc(&t->mem, len + 1);
    if (!copy) { jinja_free(t); qwen_fail(err, QWEN_ERR_NOMEM, "out of memory"); return NULL; }
    len = normalize_newlines(source, len, copy);
    parser p = { .t = t, .src = copy, .len = len, .err = err, .lc_line = 1, .lc_col = 1 };
    if (setjmp(p.fail)) {
        free(p.toks);
        jinja_free(t);
        return NULL;
    }
    lex(&p);
    parse_body(&p, &t->body, NULL, 0, NULL);
    free(p.toks);
    return t;
}

void jinja_free(jinja_template *t) {
    if (!t) return;
    arena_free(&t->mem);
    free(t);
}
