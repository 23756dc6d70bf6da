/* The decoder forward pass, top to bottom, for a batch of T tokens at positions len..len+T-1:
 *
 *   x = embed[ids]
 *   for each layer:
 *     h = rmsnorm(x);  q,k,v = h·Wqᵀ(+b), h·Wkᵀ(+b), h·Wvᵀ(+b)
 *     (Qwen3) q,k = rmsnorm per head;  q,k = rope(q,k);  append k,v to the cache   (attention.c)
 *     x += Wo · attention(q, cached k, cached v)          causal, grouped-query
 *     h = rmsnorm(x);  x += Wdown · (silu(h·Wgateᵀ) * (h·Wupᵀ))        dense layers
 *                      x += Σ_top-k p_e · expert_e(h) (+ shared expert)   MoE layers (moe_ffn)
 *   logits = rmsnorm(x) · lm_headᵀ      (or the normed hidden states, for embeddings)
 *
 * Activations and the KV cache are f32; weights are read in their stored dtype.
 */
#include "model/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/error.h"


static bool grow_scratch(qwen_session *s, int T) {
    if (T <= s->batch_cap) return true;
    const model_config *c = &s->model->cfg;
    size_t t = (size_t)T, q = (size_t)c->n_heads * c->head_dim, kv = (size_t)c->n_kv_heads * c->head_dim;
    size_t experts = c->n_experts ? (size_t)c->n_experts : 1;
    float **bufs[] = { &s->x, &s->xb, &s->q, &s->k, &s->v, &s->att, &s->hb, &s->hb2, &s->rope_cs, &s->moe_x, &s->moe_y, &s->moe_logits };
    size_t routed = c->n_experts ? t * (size_t)c->n_experts_used * c->hidden : 1; /* moe_x: every token once per expert */
    size_t sizes[] = { t * c->hidden, t * c->hidden, t * q, t * kv, t * kv, t * q, t * c->ffn_scratch, t * c->ffn_scratch, t * c->head_dim,
                       routed, c->n_experts ? t * c->hidden : 1, 3 * t * experts };
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) {
        float *p = realloc(*bufs[i], sizes[i] * sizeof(float));
        if (!p) return false;
        *bufs[i] = p;
    }
    s->batch_cap = T;
    return true;
}

/* cos and sin of every rotary angle of one position (times YaRN's attention factor), computed in
 * double as the reference does: cs[0..half) cosines, cs[half..2*half) sines. */
static void rope_angles(const qwen_model *m, int pos, float *cs) {
    int half = m->cfg.head_dim / 2;
    for (int i = 0; i < half; i++) {
        double angle = pos * m->inv_freq[i];
        cs[i] = (float)(cos(angle) * m->rope_scale);
        cs[half + i] = (float)(sin(angle) * m->rope_scale);
    }
}

typedef struct gate_job { float *a; const float *b; int64_t width; } gate_job;

/* Row i: a = silu(a) * b. */
static void gate_row(void *ctx, int i, int thread_index) {
    (void)thread_index;
    const gate_job *j = ctx;
    float *a = j->a + (size_t)i * j->width;
    const float *b = j->b + (size_t)i * j->width;
    dot_kernels_best()->swiglu(a, b, j->width);
}

/* SwiGLU of n rows: out = down(silu(gate(in)) * up(in)). */
static void swiglu(qwen_session *s, const float *in, int n, const qtensor *gate, const qtensor *up, const qtensor *down, float *out) {
    thread_pool *pool = s->model->pool;
    matmul_multi(pool, &s->ws, in, n, 2, (matmul_out[]){ { s->hb, gate, NULL }, { s->hb2, up, NULL } });
    gate_job g = { s->hb, s->hb2, gate->rows };
    thread_pool_run(pool, n, gate_row, &g);
    matmul(pool, &s->ws, out, s->hb, n, down, NULL);
}

/* A sparse feed-forward layer (Qwen2-MoE / Qwen3-MoE), as transformers computes it: softmax over
 * the router's logits, the top n_experts_used experts per token (weights renormalised when
 * norm_topk_prob), each expert a SwiGLU; Qwen2-MoE adds a shared expert scaled by a sigmoid gate.
 * The tokens are gathered expert by expert into one matrix (each expert's rows together), and
 * all experts' gate and up projections run in one pool loop, their down projections in another.
 * in: s->xb [T, hidden]; out: [T, hidden]. */
static void moe_ffn(qwen_session *s, const layer_weights *w, int T, float *out) {
    const model_config *c = &s->model->cfg;
    thread_pool *pool = s->model->pool;
    int H = c->hidden, E = c->n_experts, K = c->n_experts_used < 64 ? c->n_experts_used : 64, I = c->moe_intermediate;
    matmul(pool, &s->ws, s->moe_logits, s->xb, T, &w->router, NULL);
    memset(out, 0, (size_t)T * H * sizeof(float));
    /* moe_logits holds [T][E] router probabilities, then pick[t * E + e] (the slot of expert e among
     * token t's choices, or -1), then wsel[t * K + slot] (that choice's weight) */
    int8_t *pick = (int8_t *)(s->moe_logits + (size_t)T * E);
    float *wsel = s->moe_logits + 2 * (size_t)T * E;
    for (int t = 0; t < T; t++) {
        float *p = s->moe_logits + (size_t)t * E;
        int chosen[64];
        float weight[64], total = 0;
        softmax(p, E);
        for (int k = 0; k < K; k++) {
            int best = -1;
            for (int e = 0; e < E; e++) {
                bool used = false;
                for (int j = 0; j < k; j++) used |= chosen[j] == e;
                if (!used && (best < 0 || p[e] > p[best])) best = e;
            }
            chosen[k] = best;
            weight[k] = p[best];
            total += p[best];
        }
        for (int e = 0; e < E; e++) pick[(size_t)t * E + e] = -1;
        for (int k = 0; k < K; k++) {
            pick[(size_t)t * E + chosen[k]] = (int8_t)k;
            wsel[(size_t)t * K + k] = c->norm_topk_prob ? weight[k] / total : weight[k];
        }
    }
    /* gather: expert e's tokens become rows first[e] .. first[e] + count of moe_x */
    matmul_group *gu = malloc(3 * (size_t)E * sizeof *gu), *down = gu ? gu + 2 * E : NULL;
    int n = 0, rows = 0;
    for (int e = 0; e < E; e++) {
        int first = rows;
        for (int t = 0; t < T; t++)
            if (pick[(size_t)t * E + e] >= 0) memcpy(s->moe_x + (size_t)rows++ * H, s->xb + (size_t)t * H, (size_t)H * sizeof(float));
        if (rows == first) continue;
        matmul_group g = { first, rows - first, &w->e_gate[e], s->hb + (size_t)first * I };
        if (gu) {
            gu[2 * n] = g;
            gu[2 * n + 1] = (matmul_group){ first, rows - first, &w->e_up[e], s->hb2 + (size_t)first * I };
            down[n] = (matmul_group){ first, rows - first, &w->e_down[e], s->moe_x + (size_t)first * H };
        } else { /* no memory for the batch: this expert alone (its down output over its own input rows) */
            matmul_multi(pool, &s->ws, s->moe_x + (size_t)first * H, g.n, 2, (matmul_out[]){ { g.y, g.w, NULL }, { s->hb2 + (size_t)first * I, &w->e_up[e], NULL } });
            for (int r = first; r < rows; r++) dot_kernels_best()->swiglu(s->hb + (size_t)r * I, s->hb2 + (size_t)r * I, I);
            matmul(pool, &s->ws, s->moe_x + (size_t)first * H, s->hb + (size_t)first * I, g.n, &w->e_down[e], NULL);
        }
        n++;
    }
    if (gu) {
        matmul_grouped(pool, &s->ws, s->moe_x, rows, 2 * n, gu);
        gate_job g = { s->hb, s->hb2, I };
        thread_pool_run(pool, rows, gate_row, &g);
        matmul_grouped(pool, &s->ws, s->hb, rows, n, down); /* each expert's output over its gathered input */
        free(gu);
    }
    /* scatter: every token adds its experts' outputs, weighted, in expert order */
    for (int e = 0, r = 0; e < E; e++)
        for (int t = 0; t < T; t++) {
            int slot = pick[(size_t)t * E + e];
            if (slot >= 0) dot_kernels_best()->axpy(out + (size_t)t * H, wsel[(size_t)t * K + slot], s->moe_x + (size_t)r++ * H, H);
        }
    if (c->shared_intermediate) {
        float *y = s->moe_x, gate;
        swiglu(s, s->xb, T, &w->sh_gate, &w->sh_up, &w->sh_down, y);
        for (int t = 0; t < T; t++) {
            matmul(NULL, NULL, &gate, s->xb + (size_t)t * H, 1, &w->sh_router, NULL);
            dot_kernels_best()->axpy(out + (size_t)t * H, 1.0f / (1.0f + expf(-gate)), y + (size_t)t * H, H);
        }
    }
}

/* A per-token step of a layer, run on the pool's threads. */
typedef struct token_job {
    qwen_session *s;
    const float *norm; /* norm_token's weights */
} token_job;

/* xb[t] = rmsnorm(x[t]) with j->norm. */
static void norm_token(void *ctx, int t, int thread_index) {
    (void)thread_index;
    const token_job *j = ctx;
    const model_config *c = &j->s->model->cfg;
    size_t H = (size_t)c->hidden;
    dot_kernels_best()->rmsnorm(j->s->xb + (size_t)t * H, j->s->x + (size_t)t * H, j->norm, c->hidden, c->rms_eps);
}

/* One batch of at most MODEL_BATCH_TOKENS tokens; `out` (NULL: nothing) receives logits or, with
 * hidden_only, normed hidden states, for every position or only the last. */
static void forward_chunk(qwen_session *s, const int32_t *ids, int T, float *out, bool all_positions, bool hidden_only) {
    qwen_model *m = s->model;
    const model_config *c = &m->cfg;
    int H = c->hidden, d = c->head_dim, pos0 = s->len;
    thread_pool *pool = m->pool;
    const dot_kernels *k = dot_kernels_best();
    bool profile = s->profiling && T == 1; /* a decode step (qwen_session_profile) */
    double t0 = profile ? clock_seconds() : 0;
    if (profile) thread_pool_count(pool, true);

    for (int t = 0; t < T; t++) qtensor_row_f32(&m->embed, ids[t], s->x + (size_t)t * H);
    for (int t = 0; t < T; t++) rope_angles(m, pos0 + t, s->rope_cs + (size_t)t * d); /* shared by every layer and head */

    for (int l = 0; l < c->n_layers; l++) {
        const layer_weights *w = &m->layers[l];
        token_job tj = { s, w->attn_norm };
        thread_pool_run(pool, T, norm_token, &tj);
        matmul_multi(pool, &s->ws, s->xb, T, 3, (matmul_out[]){ { s->q, &w->wq, w->bq }, { s->k, &w->wk, w->bk }, { s->v, &w->wv, w->bv } });
        double a0 = profile ? clock_seconds() : 0;
        attention(s, l, T, pos0); /* q/k norms and RoPE, stores k and v, attends */
        if (profile) s->profile.attention_s += clock_seconds() - a0;
        matmul(pool, &s->ws, s->xb, s->att, T, &w->wo, w->bo);
        k->axpy(s->x, 1.0f, s->xb, (int64_t)T * H); /* x += xb, the residual (exact: one rounding, as a sum) */

        tj.norm = w->mlp_norm;
        thread_pool_run(pool, T, norm_token, &tj);
        float *ffn_out = w->sparse ? s->moe_y : s->xb;
        if (w->sparse) moe_ffn(s, w, T, ffn_out);
        else swiglu(s, s->xb, T, &w->gate, &w->up, &w->down, s->xb);
        k->axpy(s->x, 1.0f, ffn_out, (int64_t)T * H);
    }
    s->len += T;
    if (out) {
        int first = all_positions ? 0 : T - 1;
        for (int t = first; t < T; t++) rmsnorm(s->xb + (size_t)t * H, s->x + (size_t)t * H, m->final_norm, H, c->rms_eps);
        if (hidden_only) memcpy(out, s->xb + (size_t)first * H, (size_t)(T - first) * H * sizeof(float));
        else matmul(pool, &s->ws, out, s->xb + (size_t)first * H, T - first, &m->lm_head, NULL);
    }
    if (profile) {
        thread_pool_counts n = thread_pool_count(pool, false);
        s->profile.steps++;
        s->profile.step_s += clock_seconds() - t0;
        s->profile.loops += n.loops;
        s->profile.loop_s += n.loop_s;
        s->profile.wait_s += n.wait_s;
    }
}

qwen_status model_forward(qwen_session *s, const int32_t *ids, int n, float *out, bool all_positions, bool hidden_only, qwen_error **err) {
    int chunk = n < MODEL_BATCH_TOKENS ? n : MODEL_BATCH_TOKENS;
    if (!grow_scratch(s, chunk)) return qwen_fail(err, QWEN_ERR_NOMEM, "out of memory for a %d-token batch", chunk);
    int32_t width = hidden_only ? s->model->cfg.hidden : s->model->cfg.vocab; /* of one output row */
    for (int done = 0; done < n; done += chunk) {
        int T = n - done < chunk ? n - done : chunk;
        bool last = done + T == n;
        float *rows = NULL;
        if (out && all_positions) rows = out + (size_t)done * width;
        else if (out && last) rows = out;
        forward_chunk(s, ids + done, T, rows, all_positions, hidden_only);
    }
    return QWEN_OK;
}
