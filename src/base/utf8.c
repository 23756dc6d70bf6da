#include "base/utf8.h"

#include <string.h>

int utf8_decode(const unsigned char *s, size_t len, uint32_t *cp) {
    if (len == 0) return 0;
    unsigned char c = s[0];
    if (c < 0x80) { *cp = c; return 1; }
    int n;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) { n = 2; v = c & 0x1F; min = 0x80; }
    else if (c >= 0xE0 && c <= 0xEF) { n = 3; v = c & 0x0F; min = 0x800; }
    else if (c >= 0xF0 && c <= 0xF4) { n = 4; v = c & 0x07; min = 0x10000; }
    else return 0;
    if ((size_t)n > len) return 0;
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return n;
}

size_t utf8_validate(const unsigned char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        if (s[i] < 0x80) { i++; continue; }
        uint32_t cp;
        int n = utf8_decode(s + i, len - i, &cp);
        if (n == 0) return i;
        i += (size_t)n;
    }
    return len;
}

int utf8_encode(uint32_t cp, unsigned char *out) {
    if (cp < 0x80) { out[0] = (unsigned char)cp; return 1; }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | (cp >> 18));
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

size_t utf8_maximal_subpart(const unsigned char *s, size_t len) {
    unsigned char c = s[0], lo = 0x80, hi = 0xBF; /* the range of the second byte (Unicode Table 3-7) */
    size_t need;
    if (c >= 0xC2 && c <= 0xDF) need = 2;
    else if (c >= 0xE0 && c <= 0xEF) need = 3, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    else if (c >= 0xF0 && c <= 0xF4) need = 4, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    else return 1;
    size_t n = 1;
    while (n < need && n < len && s[n] >= lo && s[n] <= hi) n++, lo = 0x80, hi = 0xBF;
    return n;
}

size_t utf8_lossy(const unsigned char *s, size_t len, char *out) {
    size_t k = 0, i = 0;
    while (i < len) {
        uint32_t cp;
        int n = utf8_decode(s + i, len - i, &cp);
        if (n) {
            memcpy(out + k, s + i, (size_t)n);
            k += (size_t)n;
            i += (size_t)n;
        } else {
            memcpy(out + k, "\xEF\xBF\xBD", 3);
            k += 3;
            i += utf8_maximal_subpart(s + i, len - i);
        }
    }
    return k;
}

size_t utf8_incomplete_tail(const unsigned char *s, size_t len) {
    /* Look back at most 3 bytes for a lead byte whose sequence is cut off by the end. */
    for (size_t back = 1; back <= 3 && back <= len; back++) {
        unsigned char c = s[len - back];
        if ((c & 0xC0) == 0x80) continue; /* continuation byte: keep looking for the lead */
        size_t need = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c <= 0xDF ? 2 : 1;
        if (c >= 0xF5) need = 1;
        if (need <= back) return 0;
        /* The held bytes must be a valid prefix (e.g. E0 needs A0..BF next). */
        unsigned char pad[4] = {0};
        for (size_t i = 0; i < back; i++) pad[i] = s[len - back + i];
        for (size_t i = back; i < need; i++) pad[i] = 0x80 | 0x10; /* a continuation valid for any lead */
        uint32_t cp;
        if (utf8_decode(pad, need, &cp) == (int)need) return back;
        /* try the other extreme to accept prefixes like F4 8x or E0 Ax */
        for (size_t i = back; i < need; i++) pad[i] = 0xA0;
        if (utf8_decode(pad, need, &cp) == (int)need) return back;
        for (size_t i = back; i < need; i++) pad[i] = 0x80;
        return utf8_decode(pad, need, &cp) == (int)need ? back : 0;
    }
    return 0;
}
