/* Qwen's pre-tokenizer, a Split with this regex, matched by hand over code point classes:
 *
 *   (?i:'s|'t|'re|'ve|'m|'ll|'d)      contractions, any case
 *   | [^\r\n\p{L}\p{N}]?\p{L}+         a word, with one leading non-letter (often a space)
 *   | \p{N}                            one digit
 *   |  ?[^\s\p{L}\p{N}]+[\r\n]*        punctuation run, optional leading space, trailing newlines
 *   | \s*[\r\n]+                       whitespace up to the last newline of a run
 *   | \s+(?!\S)                        whitespace not followed by a non-space (keeps one for the next word)
 *   | \s+
 *
 * Every code point matches one branch, so the pieces tile the text. Alternatives are tried in
 * order, as a backtracking regex engine does; each branch below notes how it resolves.
 */
#include "tokenizer/tokenizer.h"

#include "base/utf8.h"

typedef struct cp_at {
    uint32_t cp;
    uint8_t cls;
    uint8_t len; /* 0 at the end of the text */
} cp_at;

static inline cp_at peek(const qwen_tokenizer *tok, const unsigned char *s, size_t len, size_t i) {
    cp_at r = { 0, 0, 0 };
    if (i >= len) return r;
    if (s[i] < 0x80) {
        r.cp = s[i];
        r.len = 1;
    } else {
        int n = utf8_decode(s + i, len - i, &r.cp);
        r.len = (uint8_t)(n ? n : 1);
        if (!n) r.cp = 0xFFFD;
    }
    r.cls = tok->cp_class[r.cp];
    return r;
}

static inline size_t skip_class(const qwen_tokenizer *tok, const unsigned char *s, size_t len, size_t i,
                                uint8_t want, uint8_t reject) {
    for (;;) {
        cp_at c = peek(tok, s, len, i);
        if (!c.len || !(c.cls & want) || (c.cls & reject)) return i;
        i += c.len;
    }
}

static inline bool is_letter_s(uint32_t c) { return c == 's' || c == 'S' || c == 0x17F; /* long s folds to s */ }

/* Length of a contraction at s[i] == '\'', or 0. */
static size_t contraction(const qwen_tokenizer *tok, const unsigned char *s, size_t len, size_t i) {
    cp_at a = peek(tok, s, len, i + 1);
    if (!a.len) return 0;
    uint32_t c1 = a.cp < 0x80 ? (a.cp | 0x20) : a.cp;
    if (is_letter_s(a.cp) || c1 == 't' || c1 == 'm' || c1 == 'd') return 1 + a.len;
    cp_at b = peek(tok, s, len, i + 1 + a.len);
    if (!b.len || b.cp >= 0x80) return 0;
    uint32_t c2 = b.cp | 0x20;
    if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return 3;
    return 0;
}

size_t pretok_next(const qwen_tokenizer *tok, const unsigned char *s, size_t len, size_t i) {
    cp_at c = peek(tok, s, len, i);
    size_t after = i + c.len;

    if (c.cp == '\'') {
        size_t n = contraction(tok, s, len, i);
        if (n) return i + n;
    }
    /* [^\r\n\p{L}\p{N}]?\p{L}+ */
    if (c.cls & CP_LETTER) return skip_class(tok, s, len, after, CP_LETTER, 0);
    cp_at next = peek(tok, s, len, after);
    if (!(c.cls & (CP_NEWLINE | CP_NUMBER)) && (next.cls & CP_LETTER))
        return skip_class(tok, s, len, after, CP_LETTER, 0);
    /* \p{N} */
    if (c.cls & CP_NUMBER) return after;
    /*  ?[^\s\p{L}\p{N}]+[\r\n]* */
    const uint8_t word_or_space = CP_SPACE | CP_LETTER | CP_NUMBER;
    size_t punct_start = (c.cp == ' ' && next.len && !(next.cls & word_or_space)) ? after
                         : !(c.cls & word_or_space)                           ? i
                                                                              : (size_t)-1;
    if (punct_start != (size_t)-1) {
        size_t j = punct_start;
        for (;;) {
            cp_at p = peek(tok, s, len, j);
            if (!p.len || (p.cls & word_or_space)) break;
            j += p.len;
        }
        return skip_class(tok, s, len, j, CP_NEWLINE, 0);
    }
    /* c is whitespace: find the run and its last newline. */
    size_t end = i, last_nl_end = 0;
    for (;;) {
        cp_at w = peek(tok, s, len, end);
        if (!w.len || !(w.cls & CP_SPACE)) break;
        end += w.len;
        if (w.cls & CP_NEWLINE) last_nl_end = end;
    }
    /* \s*[\r\n]+ */
    if (last_nl_end) return last_nl_end;
    /* \s+(?!\S): the whole run at the end of text, else all but its last code point */
    if (end == len) return end;
    size_t last_start = end - 1;
    while (last_start > i && (s[last_start] & 0xC0) == 0x80) last_start--;
    if (last_start > i) return last_start;
    /* \s+ */
    return end;
}
