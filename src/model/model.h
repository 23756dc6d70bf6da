/* The model: configuration, weights bound to the mapped checkpoint, and the session state.
 * One decoder serves Qwen2 and Qwen3; per-architecture differences are flags in model_config. */
#ifndef QWENC_MODEL_MODEL_H
#define QWENC_MODEL_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "qwenc.h"
#include "base/arena.h"
#include "base/threads.h"
#include "io/safetensors.h"
#include "tensor/tensor.h"

typedef enum rope_kind { ROPE_DEFAULT, ROPE_YARN } rope_kind;

enum { MAX_LAYER_BITS = 256 }; /* layers a per-layer list (sliding windows, dense MoE layers) may name */

typedef struct model_config {
    char model_type[32];     /* "qwen2" or "qwen3" */
    int vocab;               /* rows of the embedding table and the logits */
    int hidden;              /* residual stream width */
    int n_layers;
    int n_heads, n_kv_heads; /* query heads; key/value heads (GQA: n_heads % n_kv_heads == 0) */
    int head_dim;            /* explicit in Qwen3; hidden / n_heads otherwise */
    int intermediate;        /* SwiGLU width */
    int max_positions;       /* max_position_embeddings */
    float rms_eps;
    double rope_theta;
    rope_kind rope;
    double yarn_factor, yarn_original_max, yarn_beta_fast, yarn_beta_slow, yarn_attn_factor;
    bool yarn_truncate;      /* the ramp's ends rounded to whole dimensions (transformers' default) */
    bool tie_embeddings;
    bool qkv_bias;           /* biases on q/k/v projections (Qwen2; Qwen3 with attention_bias) */
    bool o_bias;             /* a bias on o_proj too (Qwen3 with attention_bias) */
    bool qk_norm;            /* Qwen3: per-head RMSNorm of q and k before RoPE */
    /* sliding-window attention (use_sliding_window): a layer whose bit is set here attends to the
     * last sliding_window positions only, its own included; 0: every layer attends to all */
    int sliding_window;
    uint64_t sliding_layers[MAX_LAYER_BITS / 64];
    /* mixture of experts (Qwen2-MoE, Qwen3-MoE); n_experts == 0 for dense models */
    int n_experts, n_experts_used; /* routed experts, and how many each token uses */
    int moe_intermediate;    /* a routed expert's SwiGLU width */
    int shared_intermediate; /* Qwen2-MoE's always-on shared expert (0: none) */
    bool norm_topk_prob;     /* renormalise the chosen experts' weights to sum to 1 */
    int decoder_sparse_step; /* layer l is sparse when (l + 1) % step == 0 ... */
    uint64_t mlp_only_layers[MAX_LAYER_BITS / 64]; /* ... and its bit is not set here */
    int ffn_scratch;         /* the widest feed-forward activation: max of the widths above */
    int32_t eos[8];          /* stop ids */
    int n_eos;
} model_config;

/* Parses config.json. */
qwen_status model_config_load(model_config *cfg, const char *dir, qwen_error **err);
/* Positions layer l attends to back from a query's own (that one included); 0: all of them. */
int model_layer_window(const model_config *cfg, int l);
/* Adds an eos id, or each id of a JSON list, to cfg->eos (duplicates and overflow ignored). */
void model_config_add_eos(model_config *cfg, json_t *ids);

typedef struct layer_weights {
    const float *attn_norm;             /* [hidden] */
    qtensor wq, wk, wv;                 /* [n_heads*head_dim, hidden], [n_kv*head_dim, hidden] x2 */
    const float *bq, *bk, *bv;          /* biases (Qwen2; Qwen3 with attention_bias) or NULL */
    const float *q_norm, *k_norm;       /* [head_dim] (Qwen3) or NULL */
    qtensor wo;                         /* [hidden, n_heads*head_dim] */
    const float *bo;                    /* [hidden]: o_proj's bias (Qwen3 with attention_bias) or NULL */
    const float *mlp_norm;              /* [hidden] */
    qtensor gate, up;                   /* [intermediate, hidden] */
    qtensor down;                       /* [hidden, intermediate] */
    /* a sparse (MoE) layer instead of gate/up/down: */
    qtensor router;                     /* [n_experts, hidden] */
    qtensor *e_gate, *e_up, *e_down;    /* [n_experts] each: [moe_inter, hidden] x2, [hidden, moe_inter] */
    qtensor sh_gate, sh_up, sh_down;    /* shared expert (Qwen2-MoE): [shared_inter, hidden] x2, [hidden, shared_inter] */
    qtensor sh_router;                  /* [1, hidden]: sigmoid gate of the shared expert */
    bool sparse;
} layer_weights;

/* The KV cache's element type: f32 (the reference's numbers), f16, or q8_0 (int8 with an f32
 * scale per position and 32 dimensions). */
typedef enum kv_kind { KV_F32, KV_F16, KV_Q8 } kv_kind;

struct qwen_model {
    model_config cfg;
    st_checkpoint ck;        /* the mapped safetensors files */
    qtensor embed;           /* [vocab, hidden] */
    qtensor lm_head;         /* [vocab, hidden]; the embedding when tied */
    const float *final_norm; /* [hidden] */
    layer_weights *layers;   /* [n_layers] */
    double *inv_freq;        /* [head_dim / 2] RoPE frequencies (YaRN-adjusted) */
    double rope_scale;       /* YaRN attention factor applied to cos/sin; 1 otherwise */
    arena small;             /* norms and biases converted to f32 */
    struct owned_block { void *data; size_t size; } *owned; /* regions of the quantized, packed or copied weights made at load time (big_alloc) */
    size_t n_owned;
    qwen_tokenizer *tokenizer;
    char *dir;               /* the resolved model directory */
    char description[256];   /* qwen_model_describe's text */
    qwen_sampling defaults;
    thread_pool *pool;
    kv_kind kv;              /* what sessions keep their KV cache in (qwen_model_opts.kv_type) */
};

struct qwen_session {
    qwen_model *model;
    int max_tokens;
    int len;                 /* tokens in the cache */
    int32_t *tokens;         /* [max_tokens] the ids in the cache */
    void *kv;                /* keys and values, kv_cache_bytes of them (big_alloc): see attention.c */
    int kv_chunk;            /* positions per chunk of the cache (a multiple of 32) */
    void *k_stage;           /* [kv_stage_elems] keys of the incomplete last block of 32 positions */
    /* scratch for a batch of up to `batch_cap` tokens, grown on demand */
    int batch_cap;
    float *x, *xb, *q, *k, *v, *att, *hb, *hb2;
    float *rope_cs;          /* [batch][head_dim] cos | sin of each token's rotary angles */
    float *moe_x, *moe_y;    /* MoE: [batch][hidden] an expert's gathered rows; the layer's output */
    float *moe_logits;       /* MoE: [3][batch][n_experts] router probabilities, choices, weights (see moe_ffn) */
    float *scores;           /* [threads][attention_scratch_floats] attention weights and queries */
    float *att_parts;        /* [attention_parts_floats] a decode step's per-part results (NULL: never split) */
    _Atomic int *att_parts_done; /* [n_kv_heads] parts of each head finished in the current step */
    workspace ws;            /* matmul scratch, kept across calls */
    bool profiling;          /* qwen_session_profile: decode steps add to `profile` */
    qwen_step_profile profile;
};

/* qwen_session_new with the KV cache in chunks of kv_chunk positions (a multiple of 32; otherwise
 * the default, kv_default_chunk): the layout changes, the results must not (tests). */
qwen_session *session_new_chunked(qwen_model *m, int max_tokens, int kv_chunk, qwen_error **err);

/* attention.c */
/* The cache's positions per chunk for a session of max_tokens (a multiple of 32). */
int kv_default_chunk(int max_tokens);
/* Bytes of a KV cache for max_tokens positions in chunks of kv_chunk, and of one such chunk (all
 * layers' and heads' areas: what a session commits up front); floats of one thread's attention
 * scratch; elements of the whole staging area for incomplete key blocks. */
size_t kv_cache_bytes(const qwen_model *m, int max_tokens, int kv_chunk);
size_t kv_chunk_bytes(const qwen_model *m, int kv_chunk);
size_t attention_scratch_floats(const model_config *c);
/* Floats a session keeps for a decode step's attention split over positions (0: this model's
 * pool never splits one; then att_parts stays NULL). */
size_t attention_parts_floats(const qwen_model *m);
size_t kv_stage_elems(const model_config *c);
/* Bytes of one staged key element (4, or 2 for an f16 cache; a q8_0 cache stages f32), and of
 * one position's keys and values across all layers and heads (padding and scales included). */
size_t kv_stage_elem_size(const qwen_model *m);
size_t kv_bytes_per_position(const qwen_model *m);
/* Keeps the staged key block consistent when a session's length drops from old_len to len. */
void kv_cache_truncate(qwen_session *s, int old_len, int len);
/* Stores s->k and s->v of T tokens ([T][n_kv_heads][head_dim] each, as projected) at positions
 * pos0.. of `layer`'s cache, then s->att[t] = attention of s->q[t] over the cache up to its own
 * position, for every head; q and k go through the layer's per-head norms (Qwen3) and RoPE at
 * s->rope_cs[t] on the way (s->q and s->k are left as they are). Runs on the model's pool. */
void attention(qwen_session *s, int layer, int T, int pos0);

/* model.c */
/* The block format a --quant / --type name stands for ("q8_0" or "q8", "q4_0" or "q4") into *type;
 * QWEN_ERR_INVALID_ARG naming the name (and *type untouched) for any other. */
qwen_status quant_type_parse(const char *name, qdtype *type, qwen_error **err);

/* forward.c */
/* Tokens per batch step: a longer run goes in steps of this many from its first token (bounding
 * the scratch memory of long prefills), so a caller that feeds a prompt in slices of this size
 * (qwen_generate, to report progress) gets the same numbers as in one call. */
enum { MODEL_BATCH_TOKENS = 512 };
/* Runs n tokens; `out` receives logits ([n or 1][vocab]) or, with hidden_only, the final-normed
 * hidden states ([n or 1][hidden]). */
qwen_status model_forward(qwen_session *s, const int32_t *ids, int n, float *out, bool all_positions, bool hidden_only,
                          qwen_error **err);

#endif
