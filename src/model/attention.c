/* Causal grouped-query attention over the KV cache, as small matrix products. Queries and keys
 * arrive as projected: the per-head norms (Qwen3) and RoPE are applied here (position_head), to
 * each query row as a batch copies it and to each key as it is stored.
 *
 * The cache is one region in position-major chunks of s->kv_chunk positions (kv_default_chunk:
 * CHUNK, or all of a shorter session's); each chunk holds, for every (layer, KV head), an area of
 * kv_chunk / 32 blocks of 32 positions, each block its keys and then
 * its values, laid out for the 6x32 register tile (dot_kernels.gemm6x32_f32), whose weights are 32
 * columns of n rows:
 *   keys:   [head_dim][32]        the block's 32 positions transposed: q·Kᵀ for them is one tile
 *   values: [dpad / 32][32][32]   32 dimensions of each position: P·V for 32 dimensions is one tile
 * (dpad = head_dim rounded up to 32, the padding zero.) A (layer, KV head)'s cached positions are
 * then one contiguous run per chunk, keys and values together, which a thread streams front to
 * back. Short runs are what a decode step reads, and each new run costs a core ~1.5 µs to get
 * going here: 80 cached positions of a head (f32) read cold in ~3.9 µs as one run (plus the staged
 * keys), ~5.3 µs as the six runs of a keys-then-values layout (keys, staged keys, four value
 * slices a chunk apart).
 * The region is on huge pages where the kernel gives them and is touched as the context grows, a
 * chunk of all layers at a time (rather than 2 MB in every (layer, head) area at once). The
 * elements are f32, or f16 when the model was opened with kv_type "f16" (half the memory and the
 * traffic; widened in registers by gemm6x32_f16), or q8_0 groups with kv_type "q8_0" (28% of
 * f32's bytes: int8 with a scale per position and 32 dimensions, see block_bytes; gemm6x32_q8).
 * Keys of the last, incomplete block wait row by row in a staging area ([layer][KV head][32]
 * [head_dim], the element type, f32 for q8_0) and are transposed into their tile when the block
 * completes (quantized for q8_0, each position's 32-dimension groups on their own scale): a
 * decode step then writes one contiguous row per head instead of touching 128 cache lines of the
 * tile, and attention scores those few positions with plain dot products.
 * Query rows that share a KV head (the group's heads, for one or several tokens) are taken in
 * batches of up to 24 (a pool item), block by block: their scores against the block's keys, an
 * online softmax (running maximum and sum per row, later positions weighing 0), then the weighted
 * sum of the block's values, the kernels taking 6 rows at a time while the block stays in L1.
 * Every cached row is read from memory once per batch, with no horizontal sums (but for the
 * staged block); the scratch does not grow with the context. A decode step (one batch per KV
 * head, for groups of up to 24 heads) stores each head's new key and value in the same pool item
 * that attends over them. (Batches of 6, one tile, read a 7-head group's cache three times: a
 * Qwen2.5-0.5B-shaped decode step's attention at 2048 positions took 1.9x as long.) A thread
 * reads its decode items' heads one after another: items of several heads read side by side, a
 * line of each in turn, were 0.05-5.6% slower after 512 positions (0.2-0.7% faster from an empty
 * context), and a prefetch in the f16 tile gained nothing (BENCHMARKS.md, seventeenth session).
 * Keys and values go through the same tile kernel, so that the same load instructions read a
 * head's cache as one sequential run, keys, values, next block: this CPU's prefetcher follows
 * streams per load instruction, and a copy of the same tile for the keys alone (the values
 * through the library's) made a decode step's attention 1.5x as long after 512 positions; a
 * fused scores-softmax-P·V routine lost for the same reason (BENCHMARKS.md, twentieth session).
 * With more threads than KV heads (Qwen2.5-1.5B has 2), a decode step would leave threads idle:
 * each head's blocks are then split into parts (decode_parts), a pool item each, and the last
 * part of a head to finish combines the parts' maxima, sums and P·V sums (merge_parts), as
 * flash-decoding does. The last part holds the blocks this step writes and stores the new key
 * and value first; the others read only blocks completed in earlier steps. */
#include "model/model.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

/* ROWS: query rows per tile (the kernels' 6); BATCH: query rows per pool item, a multiple of ROWS;
 * CHUNK: positions per chunk of the cache, PASS: positions per softmax pass of a prefill batch
 * (its scores, BATCH x PASS floats, stay in L1), both multiples of TILE. A decode step reads a
 * head's cache as one run per chunk, and the runs' starts cost: 1024-position chunks decode
 * 8-15% faster than 256-position ones at 2K positions (3% at 600), measured here in alternation
 * (Q4_0 Qwen3-0.6B shape, f16 cache; 2048 positions no faster than 1024). */
enum { TILE = 32, ROWS = 6, BATCH = 4 * ROWS, CHUNK = 1024, PASS = 256 };
/* A decode step's heads split over positions (see attention): at most MAX_PARTS parts per KV
 * head, each of at least PART_BLOCKS blocks. */
enum { MAX_PARTS = 16, PART_BLOCKS = 8 };

static size_t round_up(size_t n, size_t m) { return (n + m - 1) / m * m; }

size_t attention_scratch_floats(const model_config *c) {
    return BATCH * (PASS + (size_t)c->head_dim + round_up((size_t)c->head_dim, TILE));
}

/* Parts per KV head a decode step over n positions is split into: with more threads than KV
 * heads, enough for an item per thread, none shorter than PART_BLOCKS blocks. (Split with no
 * idle thread to use, a Qwen2.5-1.5B-shaped step, 2 KV heads on 2 threads, was 2.5-4% slower.) */
static int parts_wanted(const qwen_model *m) {
    int kv = m->cfg.n_kv_heads, want = (thread_pool_size(m->pool) + kv - 1) / kv;
    return want < MAX_PARTS ? want : MAX_PARTS;
}

static int decode_parts(const qwen_model *m, int n) {
    int want = parts_wanted(m);
    int blocks = (n + TILE - 1) / TILE, most = blocks / PART_BLOCKS;
    int parts = want < most ? want : most;
    return parts > 1 ? parts : 1;
}

/* Floats of one part's result: its rows' running maximum and sum, then their unnormalized P·V
 * sums in the tile layout ([dpad / 32][BATCH][32]). */
static size_t part_floats(const model_config *c) { return 2 * BATCH + BATCH * round_up((size_t)c->head_dim, TILE); }

size_t attention_parts_floats(const qwen_model *m) {
    int most = parts_wanted(m);
    return most > 1 ? (size_t)m->cfg.n_kv_heads * (size_t)most * part_floats(&m->cfg) : 0;
}

size_t kv_stage_elem_size(const qwen_model *m) { return m->kv == KV_F16 ? sizeof(uint16_t) : sizeof(float); }

/* Bytes of one block of 32 positions: keys [head_dim][32], then values [dpad / 32][32][32], as
 * f32 or f16. For q8_0 (head_dim a multiple of 32, dpad = head_dim) each is head_dim / 32 q8 groups
 * (Q8G_BYTES: 32 f32 scales, then int8 [32][32], tensor.h): key group g holds dimensions 32g..
 * 32g + 31 of the 32 positions ([dimension][position]) with a scale per position; value group g
 * the same dimensions as [position][dimension], a scale per position. */
static size_t key_bytes(const qwen_model *m) {
    size_t d = (size_t)m->cfg.head_dim;
    return m->kv == KV_Q8 ? d / TILE * Q8G_BYTES : TILE * d * kv_stage_elem_size(m);
}
static size_t block_bytes(const qwen_model *m) {
    size_t d = (size_t)m->cfg.head_dim, dpad = round_up(d, TILE);
    return m->kv == KV_Q8 ? 2 * key_bytes(m) : TILE * (d + dpad) * kv_stage_elem_size(m);
}

size_t kv_bytes_per_position(const qwen_model *m) { return (size_t)m->cfg.n_layers * (size_t)m->cfg.n_kv_heads * block_bytes(m) / TILE; }

int kv_default_chunk(int max_tokens) { return max_tokens < CHUNK ? (int)round_up((size_t)(max_tokens > 0 ? max_tokens : 1), TILE) : CHUNK; }

/* Bytes of one (chunk, layer, KV head) area: its blocks of 32 positions. */
static size_t area_bytes(const qwen_model *m, size_t chunk) { return chunk / TILE * block_bytes(m); }

size_t kv_chunk_bytes(const qwen_model *m, int kv_chunk) {
    const model_config *c = &m->cfg;
    return (size_t)c->n_layers * (size_t)c->n_kv_heads * area_bytes(m, (size_t)kv_chunk);
}

size_t kv_cache_bytes(const qwen_model *m, int max_tokens, int kv_chunk) {
    size_t chunks = round_up((size_t)(max_tokens > 0 ? max_tokens : 1), (size_t)kv_chunk) / (size_t)kv_chunk;
    return chunks * kv_chunk_bytes(m, kv_chunk);
}

static char *chunk_area(const qwen_session *s, int chunk, int layer, int kv_head) {
    const model_config *c = &s->model->cfg;
    size_t area = ((size_t)chunk * c->n_layers + (size_t)layer) * c->n_kv_heads + (size_t)kv_head;
    return (char *)s->kv + area * area_bytes(s->model, (size_t)s->kv_chunk);
}

/* The transposed keys of block b (positions 32b..32b+31) of (layer, KV head): [head_dim][32]. */
static void *key_block(const qwen_session *s, int layer, int kv_head, int b) {
    int blocks = s->kv_chunk / TILE; /* per chunk */
    return chunk_area(s, b / blocks, layer, kv_head) + (size_t)(b % blocks) * block_bytes(s->model);
}

/* The values of block b of (layer, KV head), right after its keys: [dpad / 32][32][32]. */
static void *value_block(const qwen_session *s, int layer, int kv_head, int b) {
    return (char *)key_block(s, layer, kv_head, b) + key_bytes(s->model);
}

size_t kv_stage_elems(const model_config *c) { return (size_t)c->n_layers * (size_t)c->n_kv_heads * TILE * (size_t)c->head_dim; }

/* The staging rows of a (layer, KV head): [32][head_dim] elements of the cache's type (f32 for a
 * q8_0 cache, quantized when the block is flushed). */
static void *stage_area(const qwen_session *s, int layer, int kv_head) {
    const model_config *c = &s->model->cfg;
    return (char *)s->k_stage + ((size_t)layer * c->n_kv_heads + (size_t)kv_head) * TILE * (size_t)c->head_dim * kv_stage_elem_size(s->model);
}

/* q8_0 of n (<= 32) values: *scale = max|x| / 127, q[i * stride] = round(x[i] / *scale) (all 0
 * when x is). */
static void quantize_i8(size_t n, const float *x, int8_t *q, size_t stride, float *scale) {
    float amax = 0;
    for (size_t i = 0; i < n; i++) amax = fabsf(x[i]) > amax ? fabsf(x[i]) : amax;
    float d = amax / 127.0f, inv = d > 0 ? 1.0f / d : 0.0f;
    for (size_t i = 0; i < n; i++) q[i * stride] = (int8_t)lrintf(x[i] * inv);
    *scale = d;
}

/* Moves a complete block of 32 staged keys (block `b`) into its tile, transposed. */
static void flush_block(const qwen_session *s, int layer, int h, int b) {
    const model_config *c = &s->model->cfg;
    const dot_kernels *k = dot_kernels_best();
    size_t d = (size_t)c->head_dim;
    void *keys = key_block(s, layer, h, b), *stage = stage_area(s, layer, h);
    if (s->model->kv == KV_Q8) { /* each position's 32-dimension groups quantized, transposed */
        for (size_t g = 0; g < d / TILE; g++) {
            char *grp = (char *)keys + g * Q8G_BYTES;
            for (size_t p = 0; p < TILE; p++)
                quantize_i8(TILE, (const float *)stage + p * d + g * TILE, (int8_t *)(grp + TILE * sizeof(float)) + p, TILE, (float *)grp + p);
        }
    } else if (s->model->kv == KV_F16) { /* the 16-bit values move as they are */
        const uint16_t *in = stage;
        uint16_t *out = keys;
        for (size_t p = 0; p < TILE; p++)
            for (size_t i = 0; i < d; i++) out[i * TILE + p] = in[p * d + i];
    } else {
        k->transpose((const float *)stage, (int64_t)d, keys, TILE, TILE, (int64_t)d);
    }
}

/* out = a head's q or k as attention uses it: RMSNorm with `norm` (Qwen3's per-head q/k norm;
 * NULL: none), then RoPE at token t's angles (s->rope_cs[t]), then times `scale` (a query's
 * 1 / sqrt(head_dim): its scores come out scaled; 1 for a key). out may be `in`. RoPE and the
 * scale in one vectorized kernel (dot_kernels.rope): Q4_0 decode steps 0.6-0.8% faster token by
 * token than with both as scalar loops here (BENCHMARKS.md, eighteenth session). */
static void position_head(const qwen_session *s, const float *norm, int t, const float *in, float *out, float scale) {
    const model_config *c = &s->model->cfg;
    const dot_kernels *k = dot_kernels_best();
    int d = c->head_dim;
    if (norm) k->rmsnorm(out, in, norm, d, c->rms_eps);
    else if (out != in) memcpy(out, in, (size_t)d * sizeof(float));
    k->rope(out, s->rope_cs + (size_t)t * d, d / 2, scale);
}

typedef struct store_job { qwen_session *s; int layer, pos0, T; } store_job;

/* One KV head's keys and values of T tokens: each key row normed and rotated (position_head) into
 * the staging block (rounded to f16 for an f16 cache), flushed to its tile whenever the block
 * fills; values copied (rounded, quantized) 32 dimensions at a time into their block's slices. */
static void store_head(void *ctx, int h, int thread_index) {
    const store_job *j = ctx;
    qwen_session *s = j->s;
    const model_config *c = &s->model->cfg;
    size_t d = (size_t)c->head_dim, nkv = (size_t)c->n_kv_heads * d;
    const dot_kernels *k = dot_kernels_best();
    bool f16 = s->model->kv == KV_F16, q8 = s->model->kv == KV_Q8;
    void *stage = stage_area(s, j->layer, h);
    float *kh = s->scores + (size_t)thread_index * attention_scratch_floats(c); /* the thread's scratch, free until attending */
    for (int t = 0; t < j->T; t++) {
        int pos = j->pos0 + t;
        const float *vh = s->v + (size_t)t * nkv + (size_t)h * d;
        position_head(s, s->model->layers[j->layer].k_norm, t, s->k + (size_t)t * nkv + (size_t)h * d, kh, 1.0f);
        if (f16) k->f32_to_f16_row(kh, (uint16_t *)stage + (size_t)(pos % TILE) * d, (int64_t)d);
        else memcpy((float *)stage + (size_t)(pos % TILE) * d, kh, d * sizeof(float));
        if (pos % TILE == TILE - 1) flush_block(s, j->layer, h, pos / TILE);
        void *values = value_block(s, j->layer, h, pos / TILE);
        size_t at = (size_t)(pos % TILE) * TILE;
        for (size_t i0 = 0; i0 < d; i0 += TILE) {
            size_t width = d - i0 < TILE ? d - i0 : TILE;
            if (q8) {
                char *grp = (char *)values + i0 / TILE * Q8G_BYTES;
                quantize_i8(TILE, vh + i0, (int8_t *)(grp + TILE * sizeof(float)) + at, 1, (float *)grp + pos % TILE);
            } else if (f16) k->f32_to_f16_row(vh + i0, (uint16_t *)values + at + i0 * TILE, (int64_t)width);
            else memcpy((float *)values + at + i0 * TILE, vh + i0, width * sizeof(float));
        }
    }
}

void kv_cache_truncate(qwen_session *s, int old_len, int len) {
    if (len % TILE == 0 || len / TILE == old_len / TILE) return; /* the staged block is still the right one */
    /* the block holding position len - 1 had been completed and flushed: stage its keys again */
    const model_config *c = &s->model->cfg;
    const dot_kernels *k = dot_kernels_best();
    size_t d = (size_t)c->head_dim;
    int b = len / TILE;
    for (int l = 0; l < c->n_layers; l++)
        for (int h = 0; h < c->n_kv_heads; h++) {
            const void *keys = key_block(s, l, h, b);
            void *stage = stage_area(s, l, h);
            if (s->model->kv == KV_Q8) {
                for (size_t i = 0; i < d; i++) {
                    const char *grp = (const char *)keys + i / TILE * Q8G_BYTES;
                    const int8_t *q = (const int8_t *)(grp + TILE * sizeof(float)) + i % TILE * TILE;
                    for (int p = 0; p < TILE; p++) ((float *)stage)[(size_t)p * d + i] = q[p] * ((const float *)grp)[p];
                }
            } else if (s->model->kv == KV_F16) {
                const uint16_t *tile = keys;
                for (size_t i = 0; i < d; i++)
                    for (int p = 0; p < TILE; p++) ((uint16_t *)stage)[(size_t)p * d + i] = tile[i * TILE + (size_t)p];
            } else {
                k->transpose(keys, TILE, (float *)stage, (int64_t)d, (int64_t)d, TILE);
            }
        }
}

/* Prefetches `bytes` from p, a line at a time (for writing when `write`). */
static void prefetch_bytes(const void *p, size_t bytes, bool write) {
    for (size_t o = 0; o < bytes; o += 64) {
        if (write) __builtin_prefetch((const char *)p + o, 1, 3);
        else __builtin_prefetch((const char *)p + o, 0, 3);
    }
}

/* Asks at once for the small, cold things a decode step's item for KV head h (token at `pos`)
 * touches before its cache blocks, so that their misses overlap instead of following one another
 * through the store and the query rows: the head's new key and value and its query rows (the
 * other core may hold them, from the QKV matmul), the staging rows so far, this block's value
 * lines so far (not for q8_0, whose groups lie elsewhere) and the first 4 KB of the head's cache
 * (its first block, where that is shorter: the addresses stay within the objects).
 * Token by token (Q4_0 0.6B shape, f16 cache) 0.7-1.7% faster steps, after 512 positions and from
 * an empty context alike (BENCHMARKS.md, seventeenth session). */
static void prefetch_decode_item(const qwen_session *s, int layer, int h, int pos) {
    const model_config *c = &s->model->cfg;
    size_t d = (size_t)c->head_dim, es = kv_stage_elem_size(s->model), at = (size_t)(pos % TILE), group = (size_t)(c->n_heads / c->n_kv_heads);
    prefetch_bytes(s->k + (size_t)h * d, d * sizeof(float), false);
    prefetch_bytes(s->v + (size_t)h * d, d * sizeof(float), false);
    prefetch_bytes(s->q + (size_t)h * group * d, group * d * sizeof(float), false);
    prefetch_bytes(stage_area(s, layer, h), (at + 1) * d * es, true);
    if (s->model->kv != KV_Q8) {
        const char *values = value_block(s, layer, h, pos / TILE);
        for (size_t i0 = 0; i0 < d; i0 += TILE) prefetch_bytes(values + i0 * TILE * es, (at + 1) * TILE * es, true);
    }
    if (pos >= TILE) prefetch_bytes(key_block(s, layer, h, 0), block_bytes(s->model) < 4096 ? block_bytes(s->model) : 4096, false);
}

typedef struct attn_job {
    qwen_session *s;
    int layer, T, pos0;
    int batches_per_head; /* batches of BATCH query rows per KV head */
    bool store;           /* each item first stores its KV head's keys and values (one batch per head) */
    int parts;            /* > 1: items are (KV head, part): a decode step's head split over positions */
    int first, blocks;    /* blocks [first, blocks) hold the positions the batch attends to (parts split them) */
    int window;           /* a sliding-window layer's window (model_layer_window), else 0 */
} attn_job;

/* Combines the `parts` results of KV head kvh's rows (m, l and P·V sums each, see part_floats)
 * into s->att, as one online softmax over all positions would have ended. */
static void merge_parts(const attn_job *j, int kvh, int rows, int r0) {
    qwen_session *s = j->s;
    const model_config *c = &s->model->cfg;
    int group = c->n_heads / c->n_kv_heads, d = c->head_dim;
    const float *first = s->att_parts + (size_t)kvh * (size_t)j->parts * part_floats(c);
    for (int r = 0; r < rows; r++) {
        float top = -INFINITY, total = 0, w[MAX_PARTS];
        for (int p = 0; p < j->parts; p++) {
            float m = first[(size_t)p * part_floats(c) + r];
            top = m > top ? m : top;
        }
        for (int p = 0; p < j->parts; p++) {
            const float *part = first + (size_t)p * part_floats(c);
            w[p] = part[r] == -INFINITY ? 0.0f : expf(part[r] - top); /* a part with none of this row's positions weighs 0 */
            total += part[BATCH + r] * w[p];
        }
        int t = (r0 + r) / group, head = kvh * group + (r0 + r) % group;
        float *dst = s->att + ((size_t)t * c->n_heads + head) * d, inv = 1.0f / total;
        for (int i = 0; i < d; i++) {
            size_t at = 2 * BATCH + (size_t)(i / TILE * TILE) * BATCH + (size_t)r * TILE + (size_t)(i % TILE);
            float sum = 0;
            for (int p = 0; p < j->parts; p++) sum += first[(size_t)p * part_floats(c) + at] * w[p];
            dst[i] = sum * inv;
        }
    }
}

/* Positions of block b below n (1..32 for a block that starts below n). */
static int block_len(int b, int n) { return n - b * TILE < TILE ? n - b * TILE : TILE; }

/* Scores of block b's first n positions of (layer, kvh) for `rows` query rows (scaled already)
 * into sc [rows][ld], a tile of up to ROWS rows at a time (the block's keys stay in L1 across
 * them); a block from `complete` on holds staged keys, scored with plain dot products. */
static void block_scores(const qwen_session *s, int layer, int kvh, const float *qrows, int rows, int b, int n, int complete, float *sc, int ld) {
    const dot_kernels *k = dot_kernels_best();
    int d = s->model->cfg.head_dim;
    bool f16 = s->model->kv == KV_F16;
    if (b * TILE >= complete) { /* the staged block: a dot product per row and position */
        const void *stage = stage_area(s, layer, kvh);
        for (int r = 0; r < rows; r++)
            for (int i = 0; i < n; i++)
                sc[r * ld + i] = f16 ? k->dot_f16(qrows + (size_t)r * d, (const uint16_t *)stage + (size_t)i * d, d)
                                     : k->dot_f32(qrows + (size_t)r * d, (const float *)stage + (size_t)i * d, d);
        return;
    }
    const void *keys = key_block(s, layer, kvh, b);
    for (int r0 = 0; r0 < rows; r0 += ROWS) {
        int nr = rows - r0 < ROWS ? rows - r0 : ROWS;
        float tile[ROWS * TILE], *out = ld == TILE ? sc + r0 * TILE : tile; /* the tile's rows are 32 apart */
        if (s->model->kv == KV_Q8) k->gemm6x32_q8(keys, false, qrows + (size_t)r0 * d, d, d, nr, false, out);
        else if (f16) k->gemm6x32_f16(keys, qrows + (size_t)r0 * d, d, d, nr, false, out);
        else k->gemm6x32_f32(keys, qrows + (size_t)r0 * d, d, d, nr, false, out);
        if (out == tile)
            for (int r = 0; r < nr; r++) memcpy(sc + (r0 + r) * ld, tile + r * TILE, (size_t)n * sizeof(float));
    }
}

/* One KV head and one batch of up to BATCH query rows (row r = token r / group, head r % group
 * of the group): s->att for those rows. The cache is read a pass of blocks at a time (their
 * keys, then their values), each block serving the whole batch a tile of ROWS rows at a time (a
 * decode step's group of up to BATCH heads reads its head's cache once), with an online softmax:
 * each row keeps its running maximum score m and sum of weights l, and its P·V sums are rescaled
 * by exp(m_old - m_new) when a pass raises the maximum; the sums are divided by l at the end. */
static void attend_batch(void *ctx, int item, int thread_index) {
    const attn_job *j = ctx;
    qwen_session *s = j->s;
    const model_config *c = &s->model->cfg;
    const dot_kernels *k = dot_kernels_best();
    int group = c->n_heads / c->n_kv_heads, d = c->head_dim, dpad = (int)round_up((size_t)d, TILE);
    int part = item % j->parts, kvh = item / j->parts / j->batches_per_head, r0 = item / j->parts % j->batches_per_head * BATCH;
    /* this item's blocks: all, or a part's (the last part's holds the blocks this step writes) */
    int b_lo = j->first + part * (j->blocks - j->first) / j->parts, b_hi = j->first + (part + 1) * (j->blocks - j->first) / j->parts;
    if (j->store && j->parts == 1 && j->T == 1) prefetch_decode_item(s, j->layer, kvh, j->pos0);
    if (j->store && part == j->parts - 1) store_head(&(store_job){ s, j->layer, j->pos0, j->T }, kvh, thread_index);
    int rows = j->T * group - r0 < BATCH ? j->T * group - r0 : BATCH;
    float *sc = s->scores + (size_t)thread_index * attention_scratch_floats(c); /* [BATCH][PASS] */
    float *qrows = sc + BATCH * PASS;                                          /* [BATCH][d] */
    float *outs = qrows + BATCH * (size_t)d; /* [dpad / 32][BATCH][32]: P·V, one tile per 32 dimensions */
    float scale = 1.0f / sqrtf((float)d), m[BATCH], l[BATCH];
    int pos[BATCH];
    for (int r = 0; r < rows; r++) { /* the query rows, normed, rotated and scaled (scores come out scaled) */
        int t = (r0 + r) / group, head = kvh * group + (r0 + r) % group;
        float *qr = qrows + (size_t)r * d;
        position_head(s, s->model->layers[j->layer].q_norm, t, s->q + ((size_t)t * c->n_heads + head) * d, qr, scale);
        pos[r] = j->pos0 + t;
        m[r] = -INFINITY;
        l[r] = 0;
    }
    int n = pos[rows - 1] + 1; /* the batch's latest position, plus one */
    if (j->window && j->parts == 1 && pos[0] - j->window + 1 > b_lo * TILE) b_lo = (pos[0] - j->window + 1) / TILE; /* its earliest row's window */
    int n_end = n < b_hi * TILE ? n : b_hi * TILE; /* and of this item's blocks */
    int complete = (j->pos0 + j->T) / TILE * TILE; /* positions below are in tiles, the rest staged */
    bool f16 = s->model->kv == KV_F16, q8 = s->model->kv == KV_Q8;
    /* blocks at a time: one for a decode step (its head's keys and values then stream as one run),
     * PASS positions for a batch of a prefill (fewer, longer softmax passes and kernel calls) */
    int span = j->batches_per_head == 1 ? 1 : PASS / TILE, ld = span * TILE;
    for (int b0 = b_lo; b0 * TILE < n_end; b0 += span) {
        int p0 = b0 * TILE, np = n_end - p0 < ld ? n_end - p0 : ld; /* this pass's positions: blocks b0.. */
        for (int b = b0; b * TILE < p0 + np; b++)
            block_scores(s, j->layer, kvh, qrows, rows, b, block_len(b, n), complete, sc + (b - b0) * TILE, ld);
        for (int r = 0; r < rows; r++) {
            float *sr = sc + (size_t)r * ld, cm = m[r];
            int valid = pos[r] + 1 - p0 < np ? pos[r] + 1 - p0 : np; /* causal: this row's positions here */
            if (valid < 0) valid = 0;
            int skip = j->window ? pos[r] - j->window + 1 - p0 : 0; /* positions before the row's window */
            skip = skip < 0 ? 0 : skip < valid ? skip : valid;
            memset(sr, 0, (size_t)skip * sizeof(float));
            float sum = skip < valid ? k->exp_sum(sr + skip, valid - skip, &cm) : 0.0f;
            float alpha = m[r] == cm ? 1.0f : expf(m[r] - cm); /* 0 on the first pass (m = -inf) */
            l[r] = l[r] * alpha + sum;
            if (valid < np) memset(sr + valid, 0, (size_t)(np - valid) * sizeof(float)); /* later positions weigh 0 */
            m[r] = cm;
            if (alpha != 1.0f && b0 > b_lo)
                for (int i0 = 0; i0 < dpad; i0 += TILE)
                    for (int i = 0; i < TILE; i++) outs[(size_t)i0 * BATCH + r * TILE + i] *= alpha;
        }
        for (int b = b0; b * TILE < p0 + np; b++) {
            const char *values = value_block(s, j->layer, kvh, b);
            int len = block_len(b, n);
            for (int i0 = 0; i0 < d; i0 += TILE)
                for (int q0 = 0; q0 < rows; q0 += ROWS) {
                    int nr = rows - q0 < ROWS ? rows - q0 : ROWS;
                    float *out = outs + (size_t)i0 * BATCH + q0 * TILE;
                    const float *p = sc + (size_t)q0 * ld + (b - b0) * TILE;
                    if (q8) k->gemm6x32_q8((const uint8_t *)values + (size_t)i0 / TILE * Q8G_BYTES, true, p, ld, len, nr, b > b_lo, out);
                    else if (f16) k->gemm6x32_f16((const uint16_t *)values + (size_t)i0 * TILE, p, ld, len, nr, b > b_lo, out);
                    else k->gemm6x32_f32((const float *)values + (size_t)i0 * TILE, p, ld, len, nr, b > b_lo, out);
                }
        }
    }
    if (j->parts > 1) { /* this part's result; the last part of the head to finish combines them */
        float *mine = s->att_parts + ((size_t)kvh * (size_t)j->parts + (size_t)part) * part_floats(c);
        memcpy(mine, m, (size_t)rows * sizeof(float));
        memcpy(mine + BATCH, l, (size_t)rows * sizeof(float));
        for (int i0 = 0; i0 < dpad; i0 += TILE) memcpy(mine + 2 * BATCH + (size_t)i0 * BATCH, outs + (size_t)i0 * BATCH, (size_t)rows * TILE * sizeof(float));
        if (atomic_fetch_add_explicit(&s->att_parts_done[kvh], 1, memory_order_acq_rel) == j->parts - 1) merge_parts(j, kvh, rows, r0);
        return;
    }
    for (int r = 0; r < rows; r++) {
        int t = (r0 + r) / group, head = kvh * group + (r0 + r) % group;
        float *dst = s->att + ((size_t)t * c->n_heads + head) * d, inv = 1.0f / l[r];
        for (int i0 = 0; i0 < d; i0 += TILE)
            for (int i = 0; i < TILE && i0 + i < d; i++) dst[i0 + i] = outs[(size_t)i0 * BATCH + r * TILE + i] * inv;
    }
}

void attention(qwen_session *s, int layer, int T, int pos0) {
    const model_config *c = &s->model->cfg;
    int group = c->n_heads / c->n_kv_heads;
    int n = pos0 + T, window = model_layer_window(c, layer);
    int first = window && pos0 - window + 1 > 0 ? (pos0 - window + 1) / TILE : 0; /* the first token's window */
    attn_job j = { s, layer, T, pos0, (T * group + BATCH - 1) / BATCH, false, 1, first, (n + TILE - 1) / TILE, window };
    /* one batch per KV head (decode, short batches): the head's store and its attention in one
     * item, one pool loop; otherwise every head is stored before any batch reads it */
    if (j.batches_per_head == 1) {
        j.store = true;
        if (s->att_parts) j.parts = decode_parts(s->model, n - first * TILE);
        for (int h = 0; j.parts > 1 && h < c->n_kv_heads; h++) atomic_store_explicit(&s->att_parts_done[h], 0, memory_order_relaxed);
    } else {
        thread_pool_run(s->model->pool, c->n_kv_heads, store_head, &(store_job){ s, layer, pos0, T });
    }
    thread_pool_run(s->model->pool, c->n_kv_heads * j.batches_per_head * j.parts, attend_batch, &j);
}
