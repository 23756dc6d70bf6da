/* Sampler behaviour: greedy, truncations, penalties, seeded reproducibility, distribution. */
#include <math.h>
#include <string.h>

#include "harness.h"
#include "qwenc.h"

static int32_t sample_once(qwen_sampling p, const float *logits, int V, const int32_t *seen, size_t n_seen) {
    float *copy = malloc(V * sizeof(float));
    memcpy(copy, logits, V * sizeof(float));
    qwen_sampler *s = qwen_sampler_new(&p);
    int32_t id = qwen_sampler_sample(s, copy, V, seen, n_seen);
    qwen_sampler_free(s);
    free(copy);
    return id;
}

static int cmp_desc(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

int main(void) {
    enum { V = 1000 };
    float logits[V];
    for (int i = 0; i < V; i++) logits[i] = (float)sin(i * 0.37) * 3;
    logits[421] = 10;
    logits[77] = 9.9f;
    qwen_sampling greedy = { .temperature = 0, .top_p = 1, .repetition_penalty = 1 };
    CHECK(sample_once(greedy, logits, V, NULL, 0) == 421, "greedy picks the argmax");
    qwen_sampling k1 = { .temperature = 1, .top_k = 1, .top_p = 1, .repetition_penalty = 1, .seed = 3 };
    for (int i = 0; i < 20; i++) { k1.seed = (uint64_t)i; CHECK(sample_once(k1, logits, V, NULL, 0) == 421, "top_k=1 is greedy"); }
    qwen_sampling k2 = { .temperature = 1, .top_k = 2, .top_p = 1, .repetition_penalty = 1 };
    for (int i = 0; i < 50; i++) {
        k2.seed = (uint64_t)i;
        int32_t id = sample_once(k2, logits, V, NULL, 0);
        CHECK(id == 421 || id == 77, "top_k=2 stays in the top two (%d)", id);
    }
    /* top_k keeps every logit at or above the k-th largest (ties included, as transformers does) */
    float tied[6] = { 5, 1, 3, 4, 3, 0 };
    int hits[6] = { 0 };
    qwen_sampling k3 = { .temperature = 5, .top_k = 3, .top_p = 1, .repetition_penalty = 1 };
    for (int i = 0; i < 400; i++) { k3.seed = (uint64_t)i; hits[sample_once(k3, tied, 6, NULL, 0)]++; }
    CHECK(hits[0] && hits[3] && hits[2] && hits[4] && !hits[1] && !hits[5], "top_k=3 with a tie at the 3rd: %d %d %d %d %d %d", hits[0], hits[1],
          hits[2], hits[3], hits[4], hits[5]);
    /* a vocabulary-sized draw: top_k = 20 picks only (and all of) the 20 largest, NaNs never */
    enum { BIG = 151936, K = 20 };
    float *big = malloc(BIG * sizeof(float)), *sorted = malloc(BIG * sizeof(float));
    for (int i = 0; i < BIG; i++) big[i] = (float)sin(i * 12.9898) * 4 + (float)(i % 7) * 0.01f;
    big[BIG - 1] = 3.99f; /* among the largest, in the very last slot */
    big[17] = NAN;
    int nsorted = 0;
    for (int i = 0; i < BIG; i++) if (!isnan(big[i])) sorted[nsorted++] = big[i];
    for (int a = 0; a < K; a++) /* partial selection sort: the K largest to the front */
        for (int b = a + 1; b < nsorted; b++) if (sorted[b] > sorted[a]) { float t = sorted[a]; sorted[a] = sorted[b]; sorted[b] = t; }
    float kth = sorted[K - 1];
    int in_top = 0, distinct = 0, outside = 0;
    char *seen_id = calloc(BIG, 1);
    qwen_sampling k20 = { .temperature = 1, .top_k = K, .top_p = 1, .repetition_penalty = 1 };
    for (int i = 0; i < 2000; i++) {
        k20.seed = (uint64_t)i;
        int32_t id = sample_once(k20, big, BIG, NULL, 0);
        if (id >= 0 && id < BIG && big[id] >= kth) { in_top++; distinct += !seen_id[id]; seen_id[id] = 1; }
        else outside++;
    }
    CHECK(outside == 0 && distinct == K, "top_k=20 over %d logits: %d draws outside the top 20, %d of them drawn", BIG, outside, distinct);
    /* without top-k: top_p = 0.5 draws only from the nucleus (the fewest most probable tokens holding
     * half the mass), min_p = 0.5 only from tokens at least half as likely as the top one */
    for (int i = 0; i < BIG; i++) if (!isnan(big[i])) sorted[i] = big[i];
    sorted[17] = -INFINITY;
    double zsum = 0, nuc = 0;
    for (int i = 0; i < BIG; i++) zsum += exp((double)sorted[i] - 4.1);
    float *desc = malloc(BIG * sizeof(float));
    memcpy(desc, sorted, BIG * sizeof(float));
    qsort(desc, BIG, sizeof(float), cmp_desc);
    float nucleus_floor = desc[0];
    for (int i = 0; i < BIG && nuc < 0.5 * zsum; i++) { nuc += exp((double)desc[i] - 4.1); nucleus_floor = desc[i]; }
    qwen_sampling p5 = { .temperature = 1, .top_k = 0, .top_p = 0.5f, .repetition_penalty = 1 };
    qwen_sampling m5 = { .temperature = 1, .top_k = 0, .top_p = 1, .min_p = 0.5f, .repetition_penalty = 1 };
    int bad_p = 0, bad_m = 0, low_half = 0;
    for (int i = 0; i < 300; i++) {
        p5.seed = m5.seed = (uint64_t)i;
        int32_t a = sample_once(p5, big, BIG, NULL, 0), b = sample_once(m5, big, BIG, NULL, 0);
        bad_p += !(a >= 0 && a < BIG && big[a] >= nucleus_floor);
        bad_m += !(b >= 0 && b < BIG && exp((double)big[b] - desc[0]) >= 0.5 - 1e-6);
        low_half += a >= 0 && a < BIG && big[a] < (desc[0] + nucleus_floor) / 2;
    }
    CHECK(bad_p == 0 && low_half > 0, "top_p = 0.5 without top-k: %d draws outside the nucleus, %d in its lower half", bad_p, low_half);
    CHECK(bad_m == 0, "min_p = 0.5 without top-k: %d draws below half the top probability", bad_m);
    free(desc);
    free(big); free(sorted); free(seen_id);
    qwen_sampling tp = { .temperature = 1, .top_p = 0.01f, .repetition_penalty = 1 };
    CHECK(sample_once(tp, logits, V, NULL, 0) == 421, "tiny top_p keeps only the best");
    qwen_sampling mp = { .temperature = 1, .min_p = 0.99f, .top_p = 1, .repetition_penalty = 1 };
    CHECK(sample_once(mp, logits, V, NULL, 0) == 421, "min_p near 1 keeps only the best");
    /* repetition penalty: 421 seen, 10/1.5 < 9.9 -> 77 wins greedily */
    qwen_sampling rp = { .temperature = 0, .top_p = 1, .repetition_penalty = 1.5f };
    int32_t seen[] = { 421 };
    CHECK(sample_once(rp, logits, V, seen, 1) == 77, "repetition penalty demotes a seen token");
    qwen_sampling pp = { .temperature = 0, .top_p = 1, .repetition_penalty = 1, .presence_penalty = 0.5f };
    CHECK(sample_once(pp, logits, V, seen, 1) == 77, "presence penalty demotes a seen token");
    /* same seed, same draw; the two-way split is roughly even */
    float two[2] = { 1, 1 };
    qwen_sampling t1 = { .temperature = 1, .top_p = 1, .repetition_penalty = 1, .seed = 42 };
    qwen_sampler *s = qwen_sampler_new(&t1), *s2 = qwen_sampler_new(&t1);
    int ones = 0, same = 1;
    for (int i = 0; i < 4000; i++) {
        float a[2] = { two[0], two[1] }, b[2] = { two[0], two[1] };
        int32_t x = qwen_sampler_sample(s, a, 2, NULL, 0), y = qwen_sampler_sample(s2, b, 2, NULL, 0);
        ones += x;
        same &= x == y;
    }
    CHECK(same, "same seed gives the same sequence");
    CHECK(ones > 1800 && ones < 2200, "even split (%d of 4000)", ones);
    qwen_sampler_free(s);
    qwen_sampler_free(s2);
    return test_finish("sampler");
}
