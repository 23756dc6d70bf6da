/* Byte-level BPE: start from one token per byte and repeatedly merge the adjacent pair with the
 * lowest merge rank (leftmost first on ties), as Hugging Face's BPE model does. A binary heap of
 * candidate merges over a linked list of symbols keeps long pieces O(n log n). */
#include "tokenizer/tokenizer.h"

#include <stdlib.h>
#include <string.h>

bool id_vec_push(id_vec *v, int32_t id) {
    if (v->len == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        int32_t *d = realloc(v->data, cap * sizeof *d);
        if (!d) return false;
        v->data = d;
        v->cap = cap;
    }
    v->data[v->len++] = id;
    return true;
}

static inline uint64_t pair_key(int32_t a, int32_t b) { return ((uint64_t)(uint32_t)a << 32) | (uint32_t)b; }

static inline size_t pair_slot(uint64_t key, size_t cap) {
    uint64_t h = key * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 17) & (cap - 1);
}

bool bpe_merge_put(qwen_tokenizer *tok, int32_t left, int32_t right, uint32_t rank, int32_t merged) {
    /* The table is sized by the loader to hold every merge at <= 50% load. */
    uint64_t key = pair_key(left, right);
    size_t j = pair_slot(key, tok->merge_cap);
    while (tok->merges[j].pair != UINT64_MAX) {
        if (tok->merges[j].pair == key) return true; /* first (lowest) rank wins, as in HF */
        j = (j + 1) & (tok->merge_cap - 1);
    }
    tok->merges[j] = (merge_slot){ key, rank, merged };
    return true;
}

static inline const merge_slot *merge_get(const qwen_tokenizer *tok, int32_t left, int32_t right) {
    uint64_t key = pair_key(left, right);
    size_t j = pair_slot(key, tok->merge_cap);
    for (;;) {
        const merge_slot *m = &tok->merges[j];
        if (m->pair == key) return m;
        if (m->pair == UINT64_MAX) return NULL;
        j = (j + 1) & (tok->merge_cap - 1);
    }
}

typedef struct symbol {
    int32_t id;
    int32_t prev, next; /* neighbours in the list, -1 at the ends */
    bool alive;
} symbol;

typedef struct candidate {
    uint64_t order; /* (rank << 32) | left position: lower merges first */
    int32_t merged_id;
} candidate;

typedef struct heap {
    candidate *items;
    size_t len;
} heap;

static void heap_push(heap *h, candidate c) {
    size_t i = h->len++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (h->items[parent].order <= c.order) break;
        h->items[i] = h->items[parent];
        i = parent;
    }
    h->items[i] = c;
}

static candidate heap_pop(heap *h) {
    candidate top = h->items[0];
    candidate last = h->items[--h->len];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        uint64_t best = last.order;
        if (l < h->len && h->items[l].order < best) { m = l; best = h->items[l].order; }
        if (r < h->len && h->items[r].order < best) m = r;
        if (m == i) break;
        h->items[i] = h->items[m];
        i = m;
    }
    if (h->len) h->items[i] = last;
    return top;
}

static void consider(const qwen_tokenizer *tok, const symbol *sym, int32_t pos, heap *h) {
    if (pos < 0 || sym[pos].next < 0) return;
    const merge_slot *m = merge_get(tok, sym[pos].id, sym[sym[pos].next].id);
    if (m) heap_push(h, (candidate){ ((uint64_t)m->rank << 32) | (uint32_t)pos, m->merged_id });
}

bool bpe_encode_piece(const qwen_tokenizer *tok, const unsigned char *s, size_t len, id_vec *out) {
    if (len == 0) return true;
    if (len == 1) return id_vec_push(out, tok->byte_id[s[0]]);
    /* Small pieces (nearly all of them) use stack buffers. */
    symbol sym_small[64];
    candidate cand_small[128];
    symbol *sym = sym_small;
    heap h = { cand_small, 0 };
    if (len > 64) {
        sym = malloc(len * sizeof *sym);
        h.items = malloc(2 * len * sizeof *h.items);
        if (!sym || !h.items) {
            free(sym);
            free(h.items);
            return false;
        }
    }
    for (size_t i = 0; i < len; i++)
        sym[i] = (symbol){ tok->byte_id[s[i]], (int32_t)i - 1, i + 1 < len ? (int32_t)i + 1 : -1, true };
    for (size_t i = 0; i + 1 < len; i++) consider(tok, sym, (int32_t)i, &h);
    /* Each pop either merges or discards a stale candidate; a merge pops one entry and pushes at
     * most two, and there are fewer than len merges, so the heap stays under 2 * len entries. */
    while (h.len) {
        candidate c = heap_pop(&h);
        int32_t pos = (int32_t)(uint32_t)c.order;
        symbol *a = &sym[pos];
        if (!a->alive || a->next < 0) continue;
        symbol *b = &sym[a->next];
        const merge_slot *m = merge_get(tok, a->id, b->id);
        if (!m || m->merged_id != c.merged_id || m->rank != (uint32_t)(c.order >> 32)) continue;
        a->id = c.merged_id;
        b->alive = false;
        a->next = b->next;
        if (b->next >= 0) sym[b->next].prev = pos;
        consider(tok, sym, a->prev, &h);
        consider(tok, sym, pos, &h);
    }
    bool ok = true;
    for (int32_t i = 0; i >= 0 && ok; i = sym[i].next) ok = id_vec_push(out, sym[i].id);
    if (sym != sym_small) {
        free(sym);
        free(h.items);
    }
    return ok;
}
