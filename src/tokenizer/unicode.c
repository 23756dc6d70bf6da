#include "tokenizer/tokenizer.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "base/utf8.h"
#include "tokenizer/unicode_classes.h"

static bool is_white_space(uint32_t c) {
    /* Unicode White_Space, which is what \s means in the Oniguruma regex HF tokenizers uses. */
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
           c == 0x3000;
}

static bool is_nfc_stable(uint32_t c) {
    /* Code points that NFC leaves alone, with combining class 0, that never compose with what
     * precedes them: text may be cut before any of them and normalized piecewise. */
    return c < 0x80 || (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
           (c >= 0x3000 && c <= 0x3029) || (c >= 0xFF01 && c <= 0xFF5E) || (c >= 0xAC00 && c <= 0xD7A3);
}

/* Letters and numbers come from Unicode 16.0's tables (unicode_classes.h), as in HF tokenizers'
 * regex, not from utf8proc, whose version is the system's (Debian's 2.8: Unicode 15.0, which lacks
 * the 5,004 letters and digits of 15.1 and 16.0). HF's NFC has Unicode 9.0's data: code points
 * assigned since are CP_NFC_INERT, passed through as unknown characters (combining class 0, no
 * decomposition, composing with nothing) where utf8proc would reorder or compose them. */
uint8_t *unicode_class_table(void) {
    uint8_t *t = calloc(0x110000, 1);
    if (!t) return NULL;
    for (size_t i = 0; i < sizeof UNICODE_LETTERS / sizeof *UNICODE_LETTERS; i++)
        memset(t + UNICODE_LETTERS[i].lo, CP_LETTER, UNICODE_LETTERS[i].hi - UNICODE_LETTERS[i].lo + 1);
    for (size_t i = 0; i < sizeof UNICODE_NUMBERS / sizeof *UNICODE_NUMBERS; i++)
        memset(t + UNICODE_NUMBERS[i].lo, CP_NUMBER, UNICODE_NUMBERS[i].hi - UNICODE_NUMBERS[i].lo + 1);
    for (size_t i = 0; i < sizeof UNICODE_9_UNASSIGNED / sizeof *UNICODE_9_UNASSIGNED; i++)
        for (uint32_t c = UNICODE_9_UNASSIGNED[i].lo; c <= UNICODE_9_UNASSIGNED[i].hi; c++) t[c] |= CP_NFC_INERT;
    for (uint32_t c = 0; c < 0x110000; c++) {
        uint8_t f = t[c];
        if (is_white_space(c)) f |= CP_SPACE;
        if (c == '\r' || c == '\n') f |= CP_NEWLINE;
        if (is_nfc_stable(c)) f = (uint8_t)((f | CP_NFC_STABLE) & ~CP_NFC_INERT); /* the same to both */
        t[c] = f;
    }
    return t;
}

/* Grows *buf to hold at least `need` bytes. */
static bool reserve(char **buf, size_t *cap, size_t need) {
    if (need <= *cap) return true;
    size_t cap2 = *cap ? *cap : 256;
    while (cap2 < need) cap2 *= 2;
    char *p = realloc(*buf, cap2);
    if (!p) return false;
    *buf = p;
    *cap = cap2;
    return true;
}

const char *unicode_nfc(const qwen_tokenizer *tok, const char *s, size_t len, size_t *out_len) {
    const unsigned char *u = (const unsigned char *)s;
    /* Fast path: nothing but stable code points. */
    size_t i = 0;
    while (i < len) {
        if (u[i] < 0x80) { i++; continue; }
        uint32_t cp;
        int n = utf8_decode(u + i, len - i, &cp);
        if (n == 0 || !(tok->cp_class[cp] & CP_NFC_STABLE)) break;
        i += (size_t)n;
    }
    if (i == len) {
        *out_len = len;
        return s;
    }
    /* Segments start at a stable code point and run up to the next one; only segments holding
     * an unstable code point go through utf8proc. An inert code point ends the segment before it
     * and is copied as it is; the next segment starts after it. */
    char *out = NULL;
    size_t cap = 0, n_out = 0;
    if (!reserve(&out, &cap, len + 16)) return NULL;
    size_t seg = 0;
    bool seg_unstable = false;
    i = 0;
    while (i <= len) {
        uint32_t cp = 0;
        int n = 1;
        bool stable = true;
        if (i < len) {
            n = utf8_decode(u + i, len - i, &cp);
            if (n == 0) n = 1; /* callers validate first; be safe anyway */
            stable = (tok->cp_class[cp] & CP_NFC_STABLE) != 0;
        }
        bool inert = i < len && (tok->cp_class[cp] & CP_NFC_INERT);
        if (i == len || ((stable || inert) && i > seg)) {
            size_t slen = i - seg;
            if (!seg_unstable) {
                if (!reserve(&out, &cap, n_out + slen)) goto oom;
                memcpy(out + n_out, s + seg, slen);
                n_out += slen;
            } else {
                utf8proc_uint8_t *norm = NULL;
                utf8proc_ssize_t m = utf8proc_map(u + seg, (utf8proc_ssize_t)slen, &norm,
                                                  UTF8PROC_STABLE | UTF8PROC_COMPOSE);
                if (m < 0) { /* cannot happen for valid UTF-8; keep the text as it is */
                    if (!reserve(&out, &cap, n_out + slen)) goto oom;
                    memcpy(out + n_out, s + seg, slen);
                    n_out += slen;
                } else {
                    if (!reserve(&out, &cap, n_out + (size_t)m)) { free(norm); goto oom; }
                    memcpy(out + n_out, norm, (size_t)m);
                    n_out += (size_t)m;
                }
                free(norm);
            }
            seg = i;
            seg_unstable = false;
            if (i == len) break;
        }
        if (inert) {
            if (!reserve(&out, &cap, n_out + (size_t)n)) goto oom;
            memcpy(out + n_out, s + i, (size_t)n);
            n_out += (size_t)n;
            i += (size_t)n;
            seg = i;
            continue;
        }
        if (!stable) seg_unstable = true;
        i += (size_t)n;
    }
    *out_len = n_out;
    return out;
oom:
    free(out);
    return NULL;
}
