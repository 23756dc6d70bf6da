/* Sampling, in transformers' order: repetition/presence penalties, temperature, top-k, top-p,
 * min-p, then a draw from the renormalised distribution. Temperature 0 is greedy (argmax). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "qwenc.h"
#include "tensor/tensor.h"

enum { TOP_K_HEAP_MAX = 1024 }; /* top_k up to this goes through kth_largest's heap */

struct qwen_sampler {
    float heap[TOP_K_HEAP_MAX];
    qwen_sampling p;
    uint64_t rng;           /* xorshift64* state */
    struct cand { int32_t id; float logit; } *cand;
    int32_t cap;
    uint8_t *seen_mark;     /* [cap] marks for penalties */
};

qwen_sampler *qwen_sampler_new(const qwen_sampling *params) {
    qwen_sampler *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->p = *params;
    s->rng = params->seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull;
    if (!s->rng) s->rng = 1;
    return s;
}

void qwen_sampler_free(qwen_sampler *s) {
    if (!s) return;
    free(s->cand);
    free(s->seen_mark);
    free(s);
}

static double rng_uniform(qwen_sampler *s) {
    s->rng ^= s->rng >> 12;
    s->rng ^= s->rng << 25;
    s->rng ^= s->rng >> 27;
    return (double)((s->rng * 0x2545F4914F6CDD1Dull) >> 11) / 9007199254740992.0;
}

static int by_logit_desc(const void *a, const void *b) {
    float x = ((const struct cand *)a)->logit, y = ((const struct cand *)b)->logit;
    return x < y ? 1 : x > y ? -1 : 0;
}

static void apply_penalties(qwen_sampler *s, float *logits, int32_t vocab, const int32_t *seen, size_t n_seen) {
    if ((s->p.repetition_penalty == 1.0f || s->p.repetition_penalty <= 0) && s->p.presence_penalty == 0) return;
    memset(s->seen_mark, 0, (size_t)vocab);
    for (size_t i = 0; i < n_seen; i++) {
        int32_t id = seen[i];
        if (id < 0 || id >= vocab || s->seen_mark[id]) continue;
        s->seen_mark[id] = 1;
        float l = logits[id];
        if (s->p.repetition_penalty > 0 && s->p.repetition_penalty != 1.0f)
            l = l > 0 ? l / s->p.repetition_penalty : l * s->p.repetition_penalty;
        logits[id] = l - s->p.presence_penalty;
    }
}

/* Restores the min-heap property of h[0..k) below slot i. */
static void sift_down(float *h, int k, int i) {
    for (;;) {
        int c = 2 * i + 1;
        if (c >= k) return;
        if (c + 1 < k && h[c + 1] < h[c]) c++;
        if (h[i] <= h[c]) return;
        float t = h[i];
        h[i] = h[c];
        h[c] = t;
        i = c;
    }
}

/* The k-th largest of x[0..n) (1 <= k <= n, k <= TOP_K_HEAP_MAX; NaNs count as -inf), through a
 * min-heap of the k largest so far in `heap`: blocks of 16 whose maximum cannot enter the heap are
 * skipped after one vectorizable pass, so a 151,936-entry vocabulary costs tens of microseconds. */
static float kth_largest(const float *x, int32_t n, int k, float *heap) {
    for (int i = 0; i < k; i++) heap[i] = x[i] == x[i] ? x[i] : -INFINITY;
    for (int i = k / 2 - 1; i >= 0; i--) sift_down(heap, k, i);
    int32_t i = k;
    for (; i < n && i % 16; i++)
        if (x[i] > heap[0]) { heap[0] = x[i]; sift_down(heap, k, 0); }
    for (; i + 16 <= n; i += 16) {
        float m = x[i];
        for (int j = 1; j < 16; j++) m = x[i + j] > m ? x[i + j] : m;
        if (!(m > heap[0])) continue;
        for (int j = 0; j < 16; j++)
            if (x[i + j] > heap[0]) { heap[0] = x[i + j]; sift_down(heap, k, 0); }
    }
    for (; i < n; i++)
        if (x[i] > heap[0]) { heap[0] = x[i]; sift_down(heap, k, 0); }
    return heap[0];
}

int32_t qwen_sampler_sample(qwen_sampler *s, float *logits, int32_t vocab, const int32_t *seen, size_t n_seen) {
    if (vocab > s->cap) {
        free(s->cand);
        free(s->seen_mark);
        s->cand = malloc((size_t)vocab * sizeof *s->cand);
        s->seen_mark = malloc((size_t)vocab);
        if (!s->cand || !s->seen_mark) { s->cap = 0; return 0; }
        s->cap = vocab;
    }
    apply_penalties(s, logits, vocab, seen, n_seen);
    if (s->p.temperature <= 0) return (int32_t)argmax_f32(logits, vocab);

    /* Candidates: all ids, or the top k: those at or above the k-th largest logit (ties kept, as
     * transformers does) found through a small heap when k is small, else by a partial sort. */
    int32_t n = 0;
    if (s->p.top_k > 0 && s->p.top_k <= TOP_K_HEAP_MAX && s->p.top_k < vocab) {
        float kth = kth_largest(logits, vocab, s->p.top_k, s->heap);
        for (int32_t i = 0; i < vocab; i++)
            if (logits[i] >= kth) s->cand[n++] = (struct cand){ i, logits[i] / s->p.temperature };
    } else {
        for (int32_t i = 0; i < vocab; i++) s->cand[n++] = (struct cand){ i, logits[i] / s->p.temperature };
    }
    if (s->p.top_k > 0 && s->p.top_k < n && s->p.top_k > TOP_K_HEAP_MAX) {
        /* quickselect the k largest into the front */
        int32_t lo = 0, hi = n - 1, k = s->p.top_k;
        while (lo < hi) {
            float pivot = s->cand[(lo + hi) / 2].logit;
            int32_t i = lo, j = hi;
            while (i <= j) {
                while (s->cand[i].logit > pivot) i++;
                while (s->cand[j].logit < pivot) j--;
                if (i <= j) { struct cand t = s->cand[i]; s->cand[i] = s->cand[j]; s->cand[j] = t; i++; j--; }
            }
            if (k - 1 <= j) hi = j;
            else if (k - 1 >= i) lo = i;
            else break;
        }
        n = k;
    }
    if (n == 0) return (int32_t)argmax_f32(logits, vocab); /* every logit NaN */
    qsort(s->cand, (size_t)n, sizeof *s->cand, by_logit_desc);
    /* softmax over the candidates (probabilities stored in .logit from here on) */
    double sum = 0, max = s->cand[0].logit;
    for (int32_t i = 0; i < n; i++) { double e = exp(s->cand[i].logit - max); s->cand[i].logit = (float)e; sum += e; }
    for (int32_t i = 0; i < n; i++) s->cand[i].logit = (float)(s->cand[i].logit / sum);
    if (s->p.top_p > 0 && s->p.top_p < 1) {
        double cum = 0;
        int32_t keep = 0;
        while (keep < n) { cum += s->cand[keep].logit; keep++; if (cum >= s->p.top_p) break; }
        n = keep;
    }
    if (s->p.min_p > 0) {
        float floor_p = s->p.min_p * s->cand[0].logit;
        int32_t keep = 1;
        while (keep < n && s->cand[keep].logit >= floor_p) keep++;
        n = keep;
    }
    double total = 0;
    for (int32_t i = 0; i < n; i++) total += s->cand[i].logit;
    double r = rng_uniform(s) * total, acc = 0;
    for (int32_t i = 0; i < n; i++) {
        acc += s->cand[i].logit;
        if (r < acc) return s->cand[i].id;
    }
    return s->cand[n - 1].id;
}
