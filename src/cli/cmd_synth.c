/* qwenc synth: a random-weight checkpoint with the real shapes of a Qwen model, in the Hugging
 * Face layout, for measuring speed on real sizes without downloading anything. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "base/error.h"
#include "base/file.h"
#include "io/safetensors.h"
#include "io/safetensors_write.h"

typedef struct shape {
    const char *name, *model_type, *arch;
    int vocab, hidden, layers, heads, kv_heads, head_dim, inter;
    bool bias, qk_norm;
    double theta;
    int experts, experts_used, moe_inter; /* mixture of experts (0: dense); untied output head then */
} shape;

static const shape SHAPES[] = {
    { "qwen3-0.6b", "qwen3", "Qwen3ForCausalLM", 151936, 1024, 28, 16, 8, 128, 3072, false, true, 1000000, 0, 0, 0 },
    { "qwen3-1.7b", "qwen3", "Qwen3ForCausalLM", 151936, 2048, 28, 16, 8, 128, 6144, false, true, 1000000, 0, 0, 0 },
    { "qwen2.5-1.5b", "qwen2", "Qwen2ForCausalLM", 151936, 1536, 28, 12, 2, 128, 8960, true, false, 1000000, 0, 0, 0 },
    { "qwen2.5-0.5b", "qwen2", "Qwen2ForCausalLM", 151936, 896, 24, 14, 2, 64, 4864, true, false, 1000000, 0, 0, 0 },
    /* 30.5B weights in all (61 GB in bf16): use --layers to write a slice, e.g. --layers 4 (~6 GB) */
    { "qwen3-30b-a3b", "qwen3_moe", "Qwen3MoeForCausalLM", 151936, 2048, 48, 32, 4, 128, 6144, false, true, 1000000, 128, 8, 768 },
};

typedef struct synth {
    st_write_tensor *t;
    bool *is_norm; /* norm weights are 1 (+ noise), the rest small random values */
    uint64_t seed;
} synth;

static void fill(void *user, size_t index, size_t offset, unsigned char *out, size_t len) {
    synth *s = user;
    uint64_t x = s->seed ^ (index * 0x9E3779B97F4A7C15ull) ^ (offset * 0xBF58476D1CE4E5B9ull) ^ 0x94D049BB133111EBull;
    for (size_t i = 0; i + 1 < len; i += 2) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        float u = (float)((x >> 40) & 0xFFFFFF) / 16777216.0f * 2.0f - 1.0f; /* [-1, 1) */
        float v = s->is_norm[index] ? 1.0f + 0.1f * u : 0.04f * u;
        uint32_t bits;
        memcpy(&bits, &v, 4);
        uint16_t h = (uint16_t)(bits >> 16);
        out[i] = (unsigned char)(h & 0xFF);
        out[i + 1] = (unsigned char)(h >> 8);
    }
}

static void synth_usage(FILE *f) {
    fprintf(f, "usage: qwenc synth --shape NAME OUT_DIR [--tokenizer MODEL_DIR] [--layers N] [--seed S]\n\n"
               "Writes a bf16 checkpoint with random weights and the real shapes of NAME as a Hugging Face\n"
               "directory (config.json, generation_config.json, model.safetensors), for benchmarks; OUT_DIR\n"
               "must be new or hold no checkpoint yet (a model's weights are never replaced).\n"
               "--tokenizer copies tokenizer.json and tokenizer_config.json from MODEL_DIR.\nshapes:");
    for (size_t i = 0; i < sizeof SHAPES / sizeof *SHAPES; i++) fprintf(f, " %s", SHAPES[i].name);
    fprintf(f, "\n");
}

static int copy_file(const char *from, const char *to) {
    size_t len;
    char *data = file_read_all(from, &len, NULL);
    if (!data) return -1;
    FILE *f = fopen(to, "wb");
    int rc = f && fwrite(data, 1, len, f) == len ? 0 : -1;
    if (f && fclose(f)) rc = -1;
    free(data);
    return rc;
}

int cmd_synth(int argc, char **argv) {
    const char *shape_name = NULL, *out = NULL, *tok_dir = NULL, *v;
    int layers = 0;
    uint64_t seed = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { synth_usage(stdout); return 0; }
        else if (cli_flag_value(argc, argv, &i, "--shape", &shape_name) || cli_flag_value(argc, argv, &i, "--tokenizer", &tok_dir)) {}
        else if (cli_flag_value(argc, argv, &i, "--layers", &v)) layers = cli_int("--layers", v);
        else if (cli_flag_value(argc, argv, &i, "--seed", &v)) seed = cli_u64("--seed", v);
        else if (argv[i][0] != '-' && !out) out = argv[i];
        else { fprintf(stderr, "qwenc synth: unknown option '%s'\n", argv[i]); synth_usage(stderr); return 2; }
    }
    const shape *sh = NULL;
    for (size_t i = 0; shape_name && i < sizeof SHAPES / sizeof *SHAPES; i++) if (!strcmp(SHAPES[i].name, shape_name)) sh = &SHAPES[i];
    if (shape_name && !sh) {
        fprintf(stderr, "qwenc synth: unknown shape '%s' (known:", shape_name);
        for (size_t i = 0; i < sizeof SHAPES / sizeof *SHAPES; i++) fprintf(stderr, " %s", SHAPES[i].name);
        fprintf(stderr, ")\n");
        return 2;
    }
    if (!sh || !out) { fprintf(stderr, "qwenc synth: --shape NAME and OUT_DIR are required\n"); synth_usage(stderr); return 2; }
    int L = layers > 0 ? layers : sh->layers;
    const char *ckpt = st_dir_checkpoint(out);
    if (ckpt) { /* random weights never replace a model's */
        fprintf(stderr, "qwenc synth: %s already holds a checkpoint (%s): give a new or empty OUT_DIR, or remove it first\n", out, ckpt);
        return 1;
    }
    if (mkdir(out, 0755) != 0 && errno != EEXIST) { fprintf(stderr, "qwenc synth: cannot create %s: %s\n", out, strerror(errno)); return 1; }

    /* config.json and generation_config.json */
    char *path = path_join(out, "config.json");
    FILE *f = fopen(path, "w");
    if (!f) { fprintf(stderr, "qwenc synth: cannot write %s\n", path); free(path); return 1; }
    fprintf(f, "{\n  \"architectures\": [\"%s\"],\n  \"model_type\": \"%s\",\n  \"hidden_act\": \"silu\",\n  \"vocab_size\": %d,\n"
               "  \"hidden_size\": %d,\n  \"intermediate_size\": %d,\n  \"num_hidden_layers\": %d,\n  \"num_attention_heads\": %d,\n"
               "  \"num_key_value_heads\": %d,\n  \"head_dim\": %d,\n  \"rms_norm_eps\": 1e-06,\n  \"rope_theta\": %.1f,\n"
               "  \"max_position_embeddings\": 40960,\n  \"tie_word_embeddings\": %s,\n  \"attention_bias\": %s,\n",
            sh->arch, sh->model_type, sh->vocab, sh->hidden, sh->inter, L, sh->heads, sh->kv_heads, sh->head_dim, sh->theta,
            sh->experts ? "false" : "true", sh->bias ? "true" : "false");
    if (sh->experts)
        fprintf(f, "  \"num_experts\": %d,\n  \"num_experts_per_tok\": %d,\n  \"moe_intermediate_size\": %d,\n"
                   "  \"norm_topk_prob\": true,\n  \"decoder_sparse_step\": 1,\n  \"mlp_only_layers\": [],\n",
                sh->experts, sh->experts_used, sh->moe_inter);
    fprintf(f, "  \"torch_dtype\": \"bfloat16\",\n  \"bos_token_id\": 151643,\n  \"eos_token_id\": 151645\n}\n");
    fclose(f);
    free(path);
    path = path_join(out, "generation_config.json");
    f = fopen(path, "w");
    if (f) {
        fprintf(f, "{\n  \"bos_token_id\": 151643,\n  \"eos_token_id\": [151645, 151643],\n  \"do_sample\": true,\n"
                   "  \"temperature\": 0.6,\n  \"top_k\": 20,\n  \"top_p\": 0.95\n}\n");
        fclose(f);
    }
    free(path);

    /* tensors */
    size_t cap = 8 + (size_t)L * (16 + 3 * (size_t)sh->experts), n = 0;
    st_write_tensor *t = calloc(cap, sizeof *t);
    bool *is_norm = calloc(cap, sizeof *is_norm);
    char **names = calloc(cap, sizeof *names);
    int64_t H = sh->hidden, Q = (int64_t)sh->heads * sh->head_dim, KV = (int64_t)sh->kv_heads * sh->head_dim, I = sh->inter;
#define ADD(norm, nd, r, c, ...) do { \
        names[n] = malloc(96); snprintf(names[n], 96, __VA_ARGS__); \
        t[n] = (st_write_tensor){ names[n], "BF16", nd, { r, c }, (size_t)(r) * (size_t)((nd) == 2 ? (c) : 1) * 2 }; \
        is_norm[n++] = norm; } while (0)
    ADD(false, 2, (int64_t)sh->vocab, H, "model.embed_tokens.weight");
    ADD(true, 1, H, 0, "model.norm.weight");
    if (sh->experts) ADD(false, 2, (int64_t)sh->vocab, H, "lm_head.weight");
    for (int l = 0; l < L; l++) {
        ADD(true, 1, H, 0, "model.layers.%d.input_layernorm.weight", l);
        ADD(true, 1, H, 0, "model.layers.%d.post_attention_layernorm.weight", l);
        ADD(false, 2, Q, H, "model.layers.%d.self_attn.q_proj.weight", l);
        ADD(false, 2, KV, H, "model.layers.%d.self_attn.k_proj.weight", l);
        ADD(false, 2, KV, H, "model.layers.%d.self_attn.v_proj.weight", l);
        ADD(false, 2, H, Q, "model.layers.%d.self_attn.o_proj.weight", l);
        if (sh->experts) {
            int64_t M = sh->moe_inter;
            ADD(false, 2, (int64_t)sh->experts, H, "model.layers.%d.mlp.gate.weight", l);
            for (int e = 0; e < sh->experts; e++) {
                ADD(false, 2, M, H, "model.layers.%d.mlp.experts.%d.gate_proj.weight", l, e);
                ADD(false, 2, M, H, "model.layers.%d.mlp.experts.%d.up_proj.weight", l, e);
                ADD(false, 2, H, M, "model.layers.%d.mlp.experts.%d.down_proj.weight", l, e);
            }
        } else {
            ADD(false, 2, I, H, "model.layers.%d.mlp.gate_proj.weight", l);
            ADD(false, 2, I, H, "model.layers.%d.mlp.up_proj.weight", l);
            ADD(false, 2, H, I, "model.layers.%d.mlp.down_proj.weight", l);
        }
        if (sh->bias) {
            ADD(false, 1, Q, 0, "model.layers.%d.self_attn.q_proj.bias", l);
            ADD(false, 1, KV, 0, "model.layers.%d.self_attn.k_proj.bias", l);
            ADD(false, 1, KV, 0, "model.layers.%d.self_attn.v_proj.bias", l);
        }
        if (sh->qk_norm) {
            ADD(true, 1, sh->head_dim, 0, "model.layers.%d.self_attn.q_norm.weight", l);
            ADD(true, 1, sh->head_dim, 0, "model.layers.%d.self_attn.k_norm.weight", l);
        }
    }
#undef ADD
    synth s = { t, is_norm, seed };
    path = path_join(out, "model.safetensors");
    qwen_error *err = NULL;
    int rc = 0;
    fprintf(stderr, "qwenc synth: writing %s (%s shape, %d layers)...\n", path, sh->name, L);
    if (st_write(path, t, n, fill, &s, &err)) rc = cli_fail("synth", err);
    free(path);
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    free(t);
    free(is_norm);
    if (!rc && tok_dir) {
        const char *files[] = { "tokenizer.json", "tokenizer_config.json" };
        for (int i = 0; i < 2; i++) {
            char *from = path_join(tok_dir, files[i]), *to = path_join(out, files[i]);
            if (copy_file(from, to)) { fprintf(stderr, "qwenc synth: cannot copy %s\n", from); rc = 1; }
            free(from);
            free(to);
        }
    }
    return rc;
}
