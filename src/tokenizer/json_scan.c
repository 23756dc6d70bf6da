/* A fast path for the two big parts of tokenizer.json — model.vocab (150k "token": id pairs) and
 * model.merges (150k pairs) — read straight from the text without building JSON objects; jansson
 * still parses everything else. When the spans cannot be found the caller parses the whole file
 * with jansson, so this is only ever an optimisation. */
#include "tokenizer/json_scan.h"

#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"

static size_t skip_ws(const char *s, size_t n, size_t i) {
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++;
    return i;
}

/* End of the string starting at s[i] == '"', or 0 when it is unterminated. */
static size_t skip_string(const char *s, size_t n, size_t i) {
    for (i++; i < n; i++) {
        if (s[i] == '\\') i++;
        else if (s[i] == '"') return i + 1;
    }
    return 0;
}

/* End of any JSON value starting at s[i] (not validated beyond nesting), or 0. */
static size_t skip_value(const char *s, size_t n, size_t i) {
    if (i >= n) return 0;
    if (s[i] == '"') return skip_string(s, n, i);
    if (s[i] == '{' || s[i] == '[') {
        int depth = 0;
        for (; i < n; i++) {
            char c = s[i];
            if (c == '"') {
                i = skip_string(s, n, i);
                if (!i) return 0;
                i--;
            } else if (c == '{' || c == '[') {
                depth++;
            } else if (c == '}' || c == ']') {
                if (--depth == 0) return i + 1;
            }
        }
        return 0;
    }
    while (i < n && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' && s[i] != '\n' && s[i] != '\r' && s[i] != '\t') i++;
    return i;
}

/* Decodes the JSON string at s[i] into out (capacity cap). Returns the end offset or 0. */
static size_t read_string(const char *s, size_t n, size_t i, char *out, size_t cap, size_t *len) {
    if (i >= n || s[i] != '"') return 0;
    size_t k = 0;
    for (i++; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"') { *len = k; return i + 1; }
        if (k + 4 > cap || c < 0x20) return 0;
        if (c != '\\') { out[k++] = (char)c; continue; }
        if (++i >= n) return 0;
        switch (s[i]) {
        case '"': out[k++] = '"'; break;
        case '\\': out[k++] = '\\'; break;
        case '/': out[k++] = '/'; break;
        case 'b': out[k++] = '\b'; break;
        case 'f': out[k++] = '\f'; break;
        case 'n': out[k++] = '\n'; break;
        case 'r': out[k++] = '\r'; break;
        case 't': out[k++] = '\t'; break;
        case 'u': {
            uint32_t cp = 0;
            for (int h = 0; h < 4; h++) {
                if (++i >= n) return 0;
                char d = s[i];
                cp = cp * 16 + (uint32_t)(d >= '0' && d <= '9' ? d - '0' : d >= 'a' && d <= 'f' ? d - 'a' + 10 : d >= 'A' && d <= 'F' ? d - 'A' + 10 : 99);
                if (cp > 0xFFFF) return 0;
            }
            if (cp >= 0xD800 && cp <= 0xDBFF) { /* a surrogate pair */
                if (i + 6 >= n || s[i + 1] != '\\' || s[i + 2] != 'u') return 0;
                uint32_t lo = (uint32_t)strtoul((char[5]){ s[i + 3], s[i + 4], s[i + 5], s[i + 6], 0 }, NULL, 16);
                if (lo < 0xDC00 || lo > 0xDFFF) return 0;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                i += 6;
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                return 0;
            }
            k += (size_t)utf8_encode(cp, (unsigned char *)out + k);
            break;
        }
        default: return 0;
        }
    }
    return 0;
}

/* Finds "key" in the object starting at s[i] == '{'; returns the value's start or 0. */
static size_t find_key(const char *s, size_t n, size_t i, const char *key) {
    size_t klen = strlen(key);
    i = skip_ws(s, n, i + 1);
    while (i < n && s[i] == '"') {
        size_t kend = skip_string(s, n, i);
        if (!kend) return 0;
        bool match = kend - i - 2 == klen && !memcmp(s + i + 1, key, klen);
        i = skip_ws(s, n, kend);
        if (i >= n || s[i] != ':') return 0;
        i = skip_ws(s, n, i + 1);
        if (match) return i;
        i = skip_value(s, n, i);
        if (!i) return 0;
        i = skip_ws(s, n, i);
        if (i < n && s[i] == ',') i = skip_ws(s, n, i + 1);
    }
    return 0;
}

bool tj_find_spans(const char *s, size_t n, tj_span *vocab, tj_span *merges) {
    size_t i = skip_ws(s, n, 0);
    if (i >= n || s[i] != '{') return false;
    size_t model = find_key(s, n, i, "model");
    if (!model || s[model] != '{') return false;
    size_t v = find_key(s, n, model, "vocab"), m = find_key(s, n, model, "merges");
    if (!v || !m || s[v] != '{' || s[m] != '[') return false;
    size_t ve = skip_value(s, n, v), me = skip_value(s, n, m);
    if (!ve || !me) return false;
    *vocab = (tj_span){ v, ve };
    *merges = (tj_span){ m, me };
    return true;
}

long tj_each_vocab(const char *s, tj_span span, tj_vocab_fn fn, void *user) {
    char key[1024];
    size_t i = skip_ws(s, span.end, span.begin + 1), klen;
    long count = 0;
    while (i < span.end && s[i] != '}') {
        i = read_string(s, span.end, i, key, sizeof key, &klen);
        if (!i) return -1;
        i = skip_ws(s, span.end, i);
        if (i >= span.end || s[i] != ':') return -1;
        i = skip_ws(s, span.end, i + 1);
        char *end;
        long long id = strtoll(s + i, &end, 10);
        if (end == s + i || (size_t)(end - s) > span.end) return -1;
        i = skip_ws(s, span.end, (size_t)(end - s));
        if (fn(user, key, klen, id)) return -1;
        count++;
        if (i < span.end && s[i] == ',') i = skip_ws(s, span.end, i + 1);
        else if (i >= span.end || s[i] != '}') return -1;
    }
    return count;
}

long tj_each_merge(const char *s, tj_span span, tj_merge_fn fn, void *user) {
    char a[1024], b[1024];
    size_t i = skip_ws(s, span.end, span.begin + 1), alen, blen;
    long count = 0;
    while (i < span.end && s[i] != ']') {
        if (s[i] == '[') { /* ["a", "b"] */
            i = read_string(s, span.end, skip_ws(s, span.end, i + 1), a, sizeof a, &alen);
            if (!i) return -1;
            i = skip_ws(s, span.end, i);
            if (i >= span.end || s[i] != ',') return -1;
            i = read_string(s, span.end, skip_ws(s, span.end, i + 1), b, sizeof b, &blen);
            if (!i) return -1;
            i = skip_ws(s, span.end, i);
            if (i >= span.end || s[i] != ']') return -1;
            i++;
        } else { /* "a b" */
            char ab[2048];
            size_t len;
            i = read_string(s, span.end, i, ab, sizeof ab, &len);
            if (!i) return -1;
            char *sp = memchr(ab, ' ', len);
            if (!sp) return -1;
            alen = (size_t)(sp - ab);
            blen = len - alen - 1;
            if (alen >= sizeof a || blen >= sizeof b) return -1;
            memcpy(a, ab, alen);
            memcpy(b, sp + 1, blen);
        }
        if (fn(user, a, alen, b, blen, count)) return -1;
        count++;
        i = skip_ws(s, span.end, i);
        if (i < span.end && s[i] == ',') i = skip_ws(s, span.end, i + 1);
        else if (i >= span.end || s[i] != ']') return -1;
    }
    return count;
}

long tj_count_elements(const char *s, tj_span span) {
    size_t i = skip_ws(s, span.end, span.begin + 1);
    long count = 0;
    while (i < span.end && s[i] != ']' && s[i] != '}') {
        i = skip_value(s, span.end, i);
        if (!i) return -1;
        count++;
        i = skip_ws(s, span.end, i);
        if (i < span.end && s[i] == ',') i = skip_ws(s, span.end, i + 1);
    }
    return count;
}
