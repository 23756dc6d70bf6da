/* The tokenizer's internal state, shared by its files:
 *   load.c        tokenizer.json -> this struct
 *   unicode.c     code point classes (the pre-tokenizer's \p{L} \p{N} \s) and NFC
 *   pretokenize.c Qwen's Split regex, hand-written
 *   bpe.c         byte-level BPE merges by rank
 *   encode.c      added tokens, the pipeline, the post-processor
 *   decode.c      ids -> text, and the streaming decoder
 */
#ifndef QWENC_TOKENIZER_TOKENIZER_H
#define QWENC_TOKENIZER_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "qwenc.h"
#include "base/arena.h"
#include "base/strmap.h"

/* Code point class bits, one byte per code point in qwen_tokenizer.cp_class. */
enum {
    CP_LETTER = 1,     /* \p{L} */
    CP_NUMBER = 2,     /* \p{N} */
    CP_SPACE = 4,      /* \s (Unicode White_Space) */
    CP_NEWLINE = 8,    /* \r or \n */
    CP_NFC_STABLE = 16, /* unchanged by NFC, combining class 0, never the second of a composition */
    CP_NFC_INERT = 32   /* unassigned in Unicode 9.0: HF's NFC knows nothing of it (see unicode.c) */
};

typedef struct added_token {
    const char *content; /* the token's text (arena) */
    size_t len;
    int32_t id;
    bool special, lstrip, rstrip, single_word, normalized;
} added_token;

typedef struct merge_slot {
    uint64_t pair;     /* (left id << 32) | right id; UINT64_MAX when empty */
    uint32_t rank;
    int32_t merged_id;
} merge_slot;

struct qwen_tokenizer {
    int32_t n_ids;          /* one past the largest id, regular or added */
    int32_t id_cap;         /* allocated length of the id_* arrays */
    const char **id_bytes;  /* [n_ids] a token's bytes (byte-level decoded), NULL for unknown ids */
    uint32_t *id_len;       /* [n_ids] */
    uint8_t *id_special;    /* [n_ids] 1 for special added tokens */
    strmap vocab;           /* regular token bytes -> id */
    /* [n_ids] memo of "BPE of this token's bytes gives back just this token": 0 not known yet,
     * 1 yes, 2 no. Filled lazily by encode (benign races: every thread computes the same value). */
    _Atomic uint8_t *bpe_is_self;
    int32_t byte_id[256];   /* the id of each single byte */

    merge_slot *merges;     /* open-addressing table, merge_cap slots (power of two) */
    size_t merge_cap;

    added_token *added;     /* [n_added], longest first */
    size_t n_added;
    bool added_first_byte[256];

    int32_t *post_prefix, *post_suffix; /* the post-processor's ids around a single sequence */
    size_t n_post_prefix, n_post_suffix;

    uint8_t *cp_class;      /* [0x110000] CP_* bits */
    arena strings;          /* token bytes and added token contents */
};

/* unicode.c */
uint8_t *unicode_class_table(void); /* malloc'ed [0x110000]; NULL when out of memory */
/* NFC of s[0..len) (valid UTF-8). Returns s itself when already NFC-stable (no copy, *out_len = len),
 * otherwise a malloc'ed buffer. Returns NULL when out of memory. */
const char *unicode_nfc(const qwen_tokenizer *tok, const char *s, size_t len, size_t *out_len);

/* pretokenize.c: the end offset of the piece starting at `i` (i < len, valid UTF-8). */
size_t pretok_next(const qwen_tokenizer *tok, const unsigned char *s, size_t len, size_t i);

/* bpe.c */
bool bpe_merge_put(qwen_tokenizer *tok, int32_t left, int32_t right, uint32_t rank, int32_t merged);
/* Appends the BPE ids of one pre-tokenized piece to `out`. Returns false when out of memory. */
typedef struct id_vec { int32_t *data; size_t len, cap; } id_vec;
bool id_vec_push(id_vec *v, int32_t id);
bool bpe_encode_piece(const qwen_tokenizer *tok, const unsigned char *s, size_t len, id_vec *out);

/* load.c: GPT-2's byte <-> printable code point mapping used by byte-level BPE. */
uint32_t byte_level_char(unsigned char b);

#endif
