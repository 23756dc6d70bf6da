/* bench_gguf_write: writes a qwenc model directory (config.json, safetensors, tokenizer.json) as
 * a GGUF file for llama.cpp, at BF16 or quantized to Q8_0 / Q4_0 with the same block quantizer
 * qwenc uses, so both engines run exactly the same weights. Dense Qwen2/Qwen3 (tied or untied
 * head) and Qwen3-MoE (each layer's experts as llama.cpp's stacked 3-D tensors, the router in F32).
 * usage: bench_gguf_write MODEL_DIR OUT.gguf bf16|q8_0|q4_0 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "qwenc.h"
#include "base/file.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "tensor/tensor.h"

enum { GGUF_U32 = 4, GGUF_I32 = 5, GGUF_F32 = 6, GGUF_STRING = 8, GGUF_ARRAY = 9 };
enum { GT_F32 = 0, GT_Q4_0 = 2, GT_Q8_0 = 8, GT_BF16 = 30 };

static void w_u32(FILE *f, uint32_t v) { fwrite(&v, 4, 1, f); }
static void w_u64(FILE *f, uint64_t v) { fwrite(&v, 8, 1, f); }
static void w_str(FILE *f, const char *s, size_t n) { w_u64(f, n); fwrite(s, 1, n, f); }
static void kv_str(FILE *f, const char *k, const char *v) { w_str(f, k, strlen(k)); w_u32(f, GGUF_STRING); w_str(f, v, strlen(v)); }
static void kv_u32(FILE *f, const char *k, uint32_t v) { w_str(f, k, strlen(k)); w_u32(f, GGUF_U32); w_u32(f, v); }
static void kv_f32(FILE *f, const char *k, float v) { w_str(f, k, strlen(k)); w_u32(f, GGUF_F32); fwrite(&v, 4, 1, f); }

typedef struct out_tensor {
    char name[96];
    const st_tensor *src;    /* the source matrix or vector, or the first of n_mats stacked ones */
    const st_tensor **mats;  /* stacked experts: [n_mats] sources of the same shape (owned), or NULL */
    uint64_t n_mats;
    int type;
    uint64_t rows, cols, offset, nbytes;
} out_tensor;

static uint64_t type_bytes(int type, uint64_t rows, uint64_t cols) {
    switch (type) {
    case GT_F32: return rows * cols * 4;
    case GT_BF16: return rows * cols * 2;
    case GT_Q8_0: return rows * (cols / 32) * 34;
    default: return rows * (cols / 32) * 18;
    }
}

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: %s MODEL_DIR OUT.gguf bf16|q8_0|q4_0\n", argv[0]); return 2; }
    const char *dir = argv[1], *out_path = argv[2], *fmt = argv[3];
    int mat_type = !strcmp(fmt, "bf16") ? GT_BF16 : !strcmp(fmt, "q8_0") ? GT_Q8_0 : !strcmp(fmt, "q4_0") ? GT_Q4_0 : -1;
    if (mat_type < 0) { fprintf(stderr, "unknown format %s\n", fmt); return 2; }
    qwen_error *err = NULL;
    model_config cfg;
    st_checkpoint ck;
    if (model_config_load(&cfg, dir, &err) || st_open_dir(&ck, dir, &err)) { fprintf(stderr, "%s\n", qwen_error_message(err)); return 1; }
    bool moe = cfg.n_experts > 0, dense_layers = false;
    for (size_t i = 0; i < sizeof cfg.mlp_only_layers / sizeof *cfg.mlp_only_layers; i++) dense_layers |= cfg.mlp_only_layers[i] != 0;
    if (cfg.rope != ROPE_DEFAULT || cfg.sliding_window || cfg.o_bias ||
        (moe && (strcmp(cfg.model_type, "qwen3_moe") || cfg.shared_intermediate || dense_layers || cfg.decoder_sparse_step != 1))) {
        fprintf(stderr, "only dense Qwen2/Qwen3 and all-sparse Qwen3-MoE models with default RoPE, full attention and no o_proj bias\n");
        return 1;
    }
    char *tj_path = path_join(dir, "tokenizer.json");
    json_t *tj = json_load_file(tj_path, 0, NULL);
    free(tj_path);
    if (!tj) { fprintf(stderr, "cannot read tokenizer.json\n"); return 1; }

    /* tensors, in llama.cpp's names */
    out_tensor *ts = calloc(8 + (size_t)cfg.n_layers * 20, sizeof *ts);
    size_t n = 0;
    static const char *map[][2] = {
        { "input_layernorm.weight", "attn_norm.weight" }, { "post_attention_layernorm.weight", "ffn_norm.weight" },
        { "self_attn.q_proj.weight", "attn_q.weight" }, { "self_attn.k_proj.weight", "attn_k.weight" },
        { "self_attn.v_proj.weight", "attn_v.weight" }, { "self_attn.o_proj.weight", "attn_output.weight" },
        { "self_attn.q_proj.bias", "attn_q.bias" }, { "self_attn.k_proj.bias", "attn_k.bias" }, { "self_attn.v_proj.bias", "attn_v.bias" },
        { "self_attn.q_norm.weight", "attn_q_norm.weight" }, { "self_attn.k_norm.weight", "attn_k_norm.weight" },
        { "mlp.gate_proj.weight", "ffn_gate.weight" }, { "mlp.up_proj.weight", "ffn_up.weight" }, { "mlp.down_proj.weight", "ffn_down.weight" },
    };
    const st_tensor *t;
    if ((t = st_find(&ck, "model.embed_tokens.weight"))) { ts[n] = (out_tensor){ "token_embd.weight", t, NULL, 1, mat_type, 0, 0, 0, 0 }; n++; }
    if ((t = st_find(&ck, "model.norm.weight"))) { ts[n] = (out_tensor){ "output_norm.weight", t, NULL, 1, GT_F32, 0, 0, 0, 0 }; n++; }
    if (!cfg.tie_embeddings && (t = st_find(&ck, "lm_head.weight"))) { ts[n] = (out_tensor){ "output.weight", t, NULL, 1, mat_type, 0, 0, 0, 0 }; n++; }
    for (int l = 0; l < cfg.n_layers; l++) {
        for (size_t k = 0; k < sizeof map / sizeof *map; k++) {
            char src[128];
            snprintf(src, sizeof src, "model.layers.%d.%s", l, map[k][0]);
            if (!(t = st_find(&ck, src))) continue;
            snprintf(ts[n].name, sizeof ts[n].name, "blk.%d.%s", l, map[k][1]);
            ts[n].src = t;
            ts[n].n_mats = 1;
            ts[n].type = t->ndim == 2 ? mat_type : GT_F32;
            n++;
        }
        if (!moe) continue;
        char src[160];
        snprintf(src, sizeof src, "model.layers.%d.mlp.gate.weight", l);
        if (!(t = st_find(&ck, src))) { fprintf(stderr, "missing %s\n", src); return 1; }
        snprintf(ts[n].name, sizeof ts[n].name, "blk.%d.ffn_gate_inp.weight", l);
        ts[n].src = t;
        ts[n].n_mats = 1;
        ts[n++].type = GT_F32; /* llama.cpp keeps the router in F32 */
        static const char *experts[][2] = { { "gate_proj", "ffn_gate_exps" }, { "up_proj", "ffn_up_exps" }, { "down_proj", "ffn_down_exps" } };
        for (int k = 0; k < 3; k++) {
            out_tensor *o = &ts[n++];
            snprintf(o->name, sizeof o->name, "blk.%d.%s.weight", l, experts[k][1]);
            o->n_mats = (uint64_t)cfg.n_experts;
            o->mats = calloc(o->n_mats, sizeof *o->mats);
            o->type = mat_type;
            for (int e = 0; e < cfg.n_experts; e++) {
                snprintf(src, sizeof src, "model.layers.%d.mlp.experts.%d.%s.weight", l, e, experts[k][0]);
                if (!(o->mats[e] = st_find(&ck, src))) { fprintf(stderr, "missing %s\n", src); return 1; }
            }
            o->src = o->mats[0];
        }
    }
    uint64_t off = 0;
    for (size_t i = 0; i < n; i++) {
        ts[i].rows = ts[i].src->ndim == 2 ? (uint64_t)ts[i].src->shape[0] : 1;
        ts[i].cols = (uint64_t)ts[i].src->shape[ts[i].src->ndim - 1];
        ts[i].nbytes = type_bytes(ts[i].type, ts[i].rows, ts[i].cols) * ts[i].n_mats;
        ts[i].offset = off;
        off += (ts[i].nbytes + 31) & ~(uint64_t)31;
    }

    FILE *f = fopen(out_path, "wb");
    if (!f) { perror(out_path); return 1; }
    /* 2 MB writes at 2 MB-aligned offsets, as qwenc's safetensors writer does: both engines then map
     * their file from large page-cache folios (small writes leave 4 KB pages, read markedly slower) */
    static char iobuf[2 << 20];
    setvbuf(f, iobuf, _IOFBF, sizeof iobuf);
    const char *arch = cfg.model_type;
    json_t *vocab = json_object_get(json_object_get(tj, "model"), "vocab");
    json_t *merges = json_object_get(json_object_get(tj, "model"), "merges");
    json_t *added = json_object_get(tj, "added_tokens");
    fwrite("GGUF", 1, 4, f);
    w_u32(f, 3);
    w_u64(f, n);
    w_u64(f, moe ? 25 : 22); /* the key-value pairs written below */
    char key[128];
    if (moe) arch = "qwen3moe"; /* llama.cpp's name for Qwen3-MoE */
    kv_str(f, "general.architecture", arch);
    kv_str(f, "general.name", "qwenc-synthetic");
    kv_u32(f, "general.file_type", mat_type == GT_BF16 ? 32 : mat_type == GT_Q8_0 ? 7 : 2);
#define ARCH_KEY(s) (snprintf(key, sizeof key, "%s." s, arch), key)
    kv_u32(f, ARCH_KEY("block_count"), (uint32_t)cfg.n_layers);
    kv_u32(f, ARCH_KEY("context_length"), (uint32_t)cfg.max_positions);
    kv_u32(f, ARCH_KEY("embedding_length"), (uint32_t)cfg.hidden);
    kv_u32(f, ARCH_KEY("feed_forward_length"), (uint32_t)cfg.intermediate);
    kv_u32(f, ARCH_KEY("attention.head_count"), (uint32_t)cfg.n_heads);
    kv_u32(f, ARCH_KEY("attention.head_count_kv"), (uint32_t)cfg.n_kv_heads);
    kv_u32(f, ARCH_KEY("attention.key_length"), (uint32_t)cfg.head_dim);
    kv_u32(f, ARCH_KEY("attention.value_length"), (uint32_t)cfg.head_dim);
    kv_f32(f, ARCH_KEY("rope.freq_base"), (float)cfg.rope_theta);
    kv_f32(f, ARCH_KEY("attention.layer_norm_rms_epsilon"), cfg.rms_eps);
    if (moe) {
        kv_u32(f, ARCH_KEY("expert_count"), (uint32_t)cfg.n_experts);
        kv_u32(f, ARCH_KEY("expert_used_count"), (uint32_t)cfg.n_experts_used);
        kv_u32(f, ARCH_KEY("expert_feed_forward_length"), (uint32_t)cfg.moe_intermediate);
    }
    kv_str(f, "tokenizer.ggml.model", "gpt2");
    kv_str(f, "tokenizer.ggml.pre", "qwen2");
    /* tokens: every id up to the embedding rows; holes are [PADn] as convert_hf_to_gguf writes them */
    char **names = calloc((size_t)cfg.vocab, sizeof *names);
    int32_t *types = calloc((size_t)cfg.vocab, sizeof *types);
    const char *k;
    json_t *v;
    json_object_foreach(vocab, k, v) {
        json_int_t id = json_integer_value(v);
        if (id >= 0 && id < cfg.vocab) { names[id] = strdup(k); types[id] = 1; }
    }
    size_t ai;
    json_array_foreach(added, ai, v) {
        json_int_t id = json_integer_value(json_object_get(v, "id"));
        if (id < 0 || id >= cfg.vocab) continue;
        free(names[id]);
        names[id] = strdup(json_string_value(json_object_get(v, "content")));
        types[id] = json_is_true(json_object_get(v, "special")) ? 3 : 4;
    }
    w_str(f, "tokenizer.ggml.tokens", strlen("tokenizer.ggml.tokens"));
    w_u32(f, GGUF_ARRAY);
    w_u32(f, GGUF_STRING);
    w_u64(f, (uint64_t)cfg.vocab);
    for (int i = 0; i < cfg.vocab; i++) {
        char pad[32];
        if (!names[i]) { snprintf(pad, sizeof pad, "[PAD%d]", i); w_str(f, pad, strlen(pad)); types[i] = 5; }
        else w_str(f, names[i], strlen(names[i]));
    }
    w_str(f, "tokenizer.ggml.token_type", strlen("tokenizer.ggml.token_type"));
    w_u32(f, GGUF_ARRAY);
    w_u32(f, GGUF_I32);
    w_u64(f, (uint64_t)cfg.vocab);
    fwrite(types, 4, (size_t)cfg.vocab, f);
    w_str(f, "tokenizer.ggml.merges", strlen("tokenizer.ggml.merges"));
    w_u32(f, GGUF_ARRAY);
    w_u32(f, GGUF_STRING);
    w_u64(f, json_array_size(merges));
    json_array_foreach(merges, ai, v) {
        char buf[1024];
        if (json_is_string(v)) snprintf(buf, sizeof buf, "%s", json_string_value(v));
        else snprintf(buf, sizeof buf, "%s %s", json_string_value(json_array_get(v, 0)), json_string_value(json_array_get(v, 1)));
        w_str(f, buf, strlen(buf));
    }
    kv_u32(f, "tokenizer.ggml.bos_token_id", 151643);
    kv_u32(f, "tokenizer.ggml.eos_token_id", 151645);
    kv_u32(f, "tokenizer.ggml.padding_token_id", 151643);
    kv_u32(f, "general.alignment", 32);
    /* tensor infos */
    for (size_t i = 0; i < n; i++) {
        w_str(f, ts[i].name, strlen(ts[i].name));
        w_u32(f, ts[i].mats ? 3 : ts[i].rows > 1 || ts[i].src->ndim == 2 ? 2 : 1);
        w_u64(f, ts[i].cols);
        if (ts[i].rows > 1 || ts[i].src->ndim == 2) w_u64(f, ts[i].rows);
        if (ts[i].mats) w_u64(f, ts[i].n_mats);
        w_u32(f, (uint32_t)ts[i].type);
        w_u64(f, ts[i].offset);
    }
    long pos = ftell(f);
    while (pos % 32) { fputc(0, f); pos++; }
    /* data */
    float *row = malloc(1 << 20);
    unsigned char *qrow = malloc(1 << 20);
    for (size_t i = 0; i < n; i++)
        for (uint64_t m = 0; m < ts[i].n_mats; m++) {
            const st_tensor *s = ts[i].mats ? ts[i].mats[m] : ts[i].src;
            qtensor q = { .dtype = s->dtype, .rows = (int64_t)ts[i].rows, .cols = (int64_t)ts[i].cols, .data = s->data };
            for (uint64_t r = 0; r < ts[i].rows; r++) {
                if (ts[i].type == GT_BF16 && s->dtype == QDT_BF16) { fwrite((const char *)s->data + r * ts[i].cols * 2, 2, ts[i].cols, f); continue; }
                qtensor_row_f32(&q, (int64_t)r, row);
                if (ts[i].type == GT_F32) fwrite(row, 4, ts[i].cols, f);
                else if (ts[i].type == GT_Q8_0) { quantize_row_q8_0(row, (block_q8_0 *)qrow, (int64_t)ts[i].cols); fwrite(qrow, 34, ts[i].cols / 32, f); }
                else if (ts[i].type == GT_Q4_0) { quantize_row_q4_0(row, (block_q4_0 *)qrow, (int64_t)ts[i].cols); fwrite(qrow, 18, ts[i].cols / 32, f); }
                else { fprintf(stderr, "bf16 output needs bf16 input\n"); return 1; }
            }
            if (m + 1 < ts[i].n_mats) continue;
            uint64_t pad = ((ts[i].nbytes + 31) & ~(uint64_t)31) - ts[i].nbytes;
            for (uint64_t p = 0; p < pad; p++) fputc(0, f);
        }
    fclose(f);
    fprintf(stderr, "wrote %s (%zu tensors, %s)\n", out_path, n, fmt);
    for (int i = 0; i < cfg.vocab; i++) free(names[i]);
    for (size_t i = 0; i < n; i++) free(ts[i].mats);
    free(names); free(types); free(row); free(qrow); free(ts);
    json_decref(tj);
    st_close(&ck);
    return 0;
}
