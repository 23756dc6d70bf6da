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
    float *weights;         /* [cap] the vocabulary's weights (no top-k) */
    int32_t cap;
    uint8_t *seen_mark;     /* [cap] marks for penalties */
};

qwen_sampler *qwen_sampler_new(const qwen_sampling *params) {
    qwen_sampler *s = params ? calloc(1, sizeof *s) : NULL;
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
    free(s->weights);
    free(s);
}

static double rng_uniform(qwen_sampler *s) {
    s->rng ^= s->rng >> 12;
    s->rng ^= s->rng << 25;
    s->rng ^= s->rng >> 27;
    return (double)((s->rng * 0x2545F4914F6CDD1Dull) >> 11) / 9007199254740992.0;
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

/* Moves the k largest of c[0..n) (by logit) to the front, in any order (1 <= k < n). */
static void quickselect(struct cand *c, int32_t n, int32_t k) {
    int32_t lo = 0, hi = n - 1;
    while (lo < hi) {
        float pivot = c[(lo + hi) / 2].logit;
        int32_t i = lo, j = hi;
        while (i <= j) {
            while (c[i].logit > pivot) i++;
            while (c[j].logit < pivot) j--;
            if (i <= j) { struct cand t = c[i]; c[i] = c[j]; c[j] = t; i++; j--; }
        }
        if (k - 1 <= j) hi = j;
        else if (k - 1 >= i) lo = i;
        else break;
    }
}

/* The nucleus of c[0..n) (probabilities in .logit): moves the fewest most probable candidates whose
 * probabilities add up to `mass` to the front, in any order, and returns how many (all n when they
 * never reach it). Expected O(n): a quickselect that keeps the mass of each side of its pivot. */
static int32_t nucleus(struct cand *c, int32_t n, double mass) {
    int32_t lo = 0, hi = n; /* the boundary lies in [lo, hi); c[0..lo) are in, c[hi..n) out */
    double acc = 0;         /* mass of c[0..lo) */
    while (hi - lo > 1) {
        float pivot = c[lo + (hi - lo) / 2].logit;
        /* three-way partition of [lo, hi): greater | equal | less */
        int32_t gt = lo, i = lo, lt = hi;
        double mass_gt = 0, mass_eq = 0;
        while (i < lt) {
            struct cand t = c[i];
            if (t.logit > pivot) { c[i++] = c[gt]; c[gt++] = t; mass_gt += t.logit; }
            else if (t.logit < pivot) { c[i] = c[--lt]; c[lt] = t; }
            else { i++; mass_eq += t.logit; }
        }
        if (acc + mass_gt >= mass) hi = gt; /* it ends among the greater ones */
        else if (acc + mass_gt + mass_eq >= mass) { /* among the equal ones: as many as it takes */
            acc += mass_gt;
            int32_t k = gt;
            while (k < lt && acc < mass) acc += c[k++].logit;
            return k;
        } else {
            acc += mass_gt + mass_eq;
            lo = lt;
        }
    }
    return hi; /* c[lo] alone completes the mass, or everything was needed */
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
    if (!s || !logits || vocab <= 0) return -1;
    if (!seen) n_seen = 0;
    if (vocab > s->cap) {
        free(s->cand);
        free(s->seen_mark);
        free(s->weights);
        s->cand = malloc((size_t)vocab * sizeof *s->cand);
        s->seen_mark = malloc((size_t)vocab);
        s->weights = malloc((size_t)vocab * sizeof *s->weights);
        if (!s->cand || !s->seen_mark || !s->weights) { s->cap = 0; return -1; }
        s->cap = vocab;
    }
    apply_penalties(s, logits, vocab, seen, n_seen);
    if (s->p.temperature <= 0) return (int32_t)argmax_f32(logits, vocab);

    /* Candidates with their probabilities (cand[].logit from the softmax on): the top k — those at or
     * above the k-th largest logit (ties kept, as transformers does), found through a small heap when
     * k is small, else by a quickselect — or, without top-k, the whole vocabulary weighed in one
     * vectorized pass. Nothing is sorted: a 151,936-token vocabulary costs well under a
     * millisecond whatever the settings. */
    int32_t n = 0;
    float T = s->p.temperature;
    bool top_p = s->p.top_p > 0 && s->p.top_p < 1;
    if (s->p.top_k > 0 && s->p.top_k < vocab) {
        if (s->p.top_k <= TOP_K_HEAP_MAX) {
            float kth = kth_largest(logits, vocab, s->p.top_k, s->heap);
            for (int32_t i = 0; i < vocab; i++)
                if (logits[i] >= kth) s->cand[n++] = (struct cand){ i, logits[i] / T };
        } else {
            for (int32_t i = 0; i < vocab; i++) s->cand[n++] = (struct cand){ i, logits[i] / T };
            quickselect(s->cand, n, s->p.top_k);
            n = s->p.top_k;
        }
        if (n == 0) return (int32_t)argmax_f32(logits, vocab); /* every logit NaN */
        double sum = 0, max = s->cand[0].logit;
        for (int32_t i = 1; i < n; i++) max = s->cand[i].logit > max ? s->cand[i].logit : max;
        for (int32_t i = 0; i < n; i++) { double e = exp(s->cand[i].logit - max); s->cand[i].logit = (float)e; sum += e; }
        for (int32_t i = 0; i < n; i++) s->cand[i].logit = (float)(s->cand[i].logit / sum);
    } else {
        float *w = s->weights, wmax = -INFINITY;
        for (int32_t i = 0; i < vocab; i++) w[i] = logits[i] == logits[i] ? logits[i] / T : -INFINITY;
        double total = dot_kernels_best()->exp_sum(w, vocab, &wmax); /* w = exp(z - max z): the top weighs 1 */
        if (!(total > 0)) return (int32_t)argmax_f32(logits, vocab); /* every logit NaN or -inf */
        /* tokens below min_p of the top (weight 1) never stay */
        float cut = s->p.min_p > 0 ? s->p.min_p : 0;
        for (int32_t i = 0; i < vocab; i++)
            if (w[i] >= cut) s->cand[n++] = (struct cand){ i, (float)(w[i] / total) };
    }
    /* top-p: the nucleus, found without sorting; min-p: those at least min_p times the top one */
    if (top_p) n = nucleus(s->cand, n, s->p.top_p);
    if (s->p.min_p > 0) {
        float top = 0;
        for (int32_t i = 0; i < n; i++) top = s->cand[i].logit > top ? s->cand[i].logit : top;
        int32_t keep = 0;
        for (int32_t i = 0; i < n; i++)
            if (s->cand[i].logit >= s->p.min_p * top) s->cand[keep++] = s->cand[i];
        n = keep;
    }
    if (n == 0) return (int32_t)argmax_f32(logits, vocab); /* a min_p above 1 leaves nothing */
    double total = 0;
    for (int32_t i = 0; i < n; i++) total += s->cand[i].logit;
    double r = rng_uniform(s) * total, acc = 0;
    for (int32_t i = 0; i < n; i++) {
        acc += s->cand[i].logit;
        if (r < acc) return s->cand[i].id;
    }
    return s->cand[n - 1].id;
}
