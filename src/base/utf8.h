/* UTF-8 decoding and encoding (strict: no overlongs, no surrogates, max U+10FFFF). */
#ifndef QWENC_BASE_UTF8_H
#define QWENC_BASE_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Decodes one code point from s[0..len). Returns its byte length (1-4) and stores it in *cp,
 * or returns 0 if the bytes are not valid UTF-8 (including a sequence cut off by `len`). */
int utf8_decode(const unsigned char *s, size_t len, uint32_t *cp);

/* Returns the offset of the first invalid byte, or `len` when the whole buffer is valid. */
size_t utf8_validate(const unsigned char *s, size_t len);

/* Encodes cp into out (at least 4 bytes). Returns the byte length. */
int utf8_encode(uint32_t cp, unsigned char *out);

/* At an invalid position (utf8_decode returned 0, len > 0): the length of its maximal ill-formed
 * subpart, the longest prefix of s that starts some valid sequence (at least 1), which Unicode's
 * recommended practice, Rust's from_utf8_lossy and Python's errors="replace" turn into one U+FFFD. */
size_t utf8_maximal_subpart(const unsigned char *s, size_t len);

/* Copies s[0..len) to out (at least 3 * len bytes) as valid UTF-8, each maximal ill-formed subpart
 * replaced by U+FFFD. Returns the bytes written. */
size_t utf8_lossy(const unsigned char *s, size_t len, char *out);

/* Length of the longest prefix of s[0..len) that may still become valid UTF-8 with more bytes
 * appended: 0 when s is a complete or invalid sequence start, else the number of bytes held. */
size_t utf8_incomplete_tail(const unsigned char *s, size_t len);

#endif
