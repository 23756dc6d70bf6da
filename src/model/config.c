/* config.json -> model_config, with the defaults transformers applies. */
#include "model/model.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/error.h"
#include "base/file.h"
#include "base/json.h"

static int get_int(json_t *o, const char *key, int def, bool required, int *out, qwen_error **err) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) {
        if (required) return qwen_fail(err, QWEN_ERR_FORMAT, "config.json: missing '%s'", key);
        *out = def;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > (1 << 30))
        return qwen_fail(err, QWEN_ERR_FORMAT, "config.json: '%s' must be a non-negative integer", key);
    *out = (int)json_integer_value(v);
    return 0;
}

static int get_num(json_t *o, const char *key, double def, double *out, qwen_error **err) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) { *out = def; return 0; }
    if (!json_is_number(v)) return qwen_fail(err, QWEN_ERR_FORMAT, "config.json: '%s' must be a number", key);
    *out = json_number_value(v);
    return 0;
}

void model_config_add_eos(model_config *cfg, json_t *v) {
    if (json_is_integer(v)) {
        int32_t id = (int32_t)json_integer_value(v);
        for (int i = 0; i < cfg->n_eos; i++) if (cfg->eos[i] == id) return;
        if (cfg->n_eos < 8) cfg->eos[cfg->n_eos++] = id;
    } else if (json_is_array(v)) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) model_config_add_eos(cfg, x);
    }
}

static qwen_status load_rope_scaling(model_config *cfg, json_t *rs, qwen_error **err) {
    cfg->rope = ROPE_DEFAULT;
    if (!rs || json_is_null(rs)) return QWEN_OK;
    json_t *t = json_object_get(rs, "rope_type");
    if (!json_is_string(t)) t = json_object_get(rs, "type");
    const char *type = json_is_string(t) ? json_string_value(t) : "";
    if (!strcmp(type, "default")) return QWEN_OK;
    if (strcmp(type, "yarn"))
        return qwen_fail(err, QWEN_ERR_UNSUPPORTED, "config.json: rope_scaling type '%s' is not supported (default and yarn are)", type);
    cfg->rope = ROPE_YARN;
    double attn = -1;
    if (get_num(rs, "factor", 1.0, &cfg->yarn_factor, err) ||
        get_num(rs, "original_max_position_embeddings", cfg->max_positions, &cfg->yarn_original_max, err) ||
        get_num(rs, "beta_fast", 32.0, &cfg->yarn_beta_fast, err) || get_num(rs, "beta_slow", 1.0, &cfg->yarn_beta_slow, err) ||
        get_num(rs, "attention_factor", -1, &attn, err))
        return QWEN_ERR_FORMAT;
    if (cfg->yarn_factor < 1.0 || cfg->yarn_original_max <= 0)
        return qwen_fail(err, QWEN_ERR_FORMAT, "config.json: invalid yarn factor or original_max_position_embeddings");
    /* transformers: the attention factor defaults to 0.1 ln(factor) + 1 (mscale variants aside). */
    double mscale = 0, mscale_all = 0;
    get_num(rs, "mscale", 0, &mscale, NULL);
    get_num(rs, "mscale_all_dim", 0, &mscale_all, NULL);
    if (attn <= 0) {
        double f = cfg->yarn_factor;
        if (mscale > 0 && mscale_all > 0)
            attn = (f <= 1 ? 1 : 0.1 * mscale * log(f) + 1) / (f <= 1 ? 1 : 0.1 * mscale_all * log(f) + 1);
        else
            attn = f <= 1 ? 1 : 0.1 * log(f) + 1;
    }
    cfg->yarn_attn_factor = attn;
    json_t *truncate = json_object_get(rs, "truncate");
    cfg->yarn_truncate = !json_is_false(truncate);
    return QWEN_OK;
}

/* use_sliding_window, as transformers (5) reads it: with a window (sliding_window, when
 * use_sliding_window is true), Qwen3-MoE's attention takes it in every layer; the others in the
 * layers `layer_types` marks "sliding_attention", by default (no layer_types) Qwen2's and Qwen3's
 * layers from max_window_layers on, Qwen2-MoE's even-numbered layers below max_window_layers. */
static qwen_status load_sliding_window(model_config *cfg, json_t *root, qwen_error **err) {
    if (!json_is_true(json_object_get(root, "use_sliding_window"))) return QWEN_OK;
    int window, from;
    if (get_int(root, "sliding_window", 0, false, &window, err) || get_int(root, "max_window_layers", 28, false, &from, err))
        return QWEN_ERR_FORMAT;
    json_t *types = json_object_get(root, "layer_types");
    if (window == 0) return QWEN_OK; /* null: no window */
    if (cfg->n_layers > MAX_LAYER_BITS)
        return qwen_fail(err, QWEN_ERR_UNSUPPORTED, "config.json: sliding-window attention with more than %d layers is not supported", MAX_LAYER_BITS);
    if (types && !json_is_null(types) && (!json_is_array(types) || json_array_size(types) != (size_t)cfg->n_layers))
        return qwen_fail(err, QWEN_ERR_FORMAT, "config.json: 'layer_types' must list one type per layer (%d)", cfg->n_layers);
    cfg->sliding_window = window;
    for (int l = 0; l < cfg->n_layers; l++) {
        bool slides;
        if (!strcmp(cfg->model_type, "qwen3_moe")) {
            slides = true;
        } else if (json_is_array(types)) {
            json_t *t = json_array_get(types, (size_t)l);
            if (!json_is_string(t) || (strcmp(json_string_value(t), "sliding_attention") && strcmp(json_string_value(t), "full_attention")))
                return qwen_fail(err, QWEN_ERR_FORMAT, "config.json: layer_types[%d] must be \"full_attention\" or \"sliding_attention\"", l);
            slides = !strcmp(json_string_value(t), "sliding_attention");
        } else {
            slides = !strcmp(cfg->model_type, "qwen2_moe") ? l % 2 == 0 && l < from : l >= from;
        }
        if (slides) cfg->sliding_layers[l / 64] |= 1ull << (l % 64);
    }
    return QWEN_OK;
}

int model_layer_window(const model_config *cfg, int l) {
    if (!cfg->sliding_window || l < 0 || l >= MAX_LAYER_BITS) return 0;
    return (cfg->sliding_layers[l / 64] >> (l % 64)) & 1 ? cfg->sliding_window : 0;
}

qwen_status model_config_load(model_config *cfg, const char *dir, qwen_error **err) {
    memset(cfg, 0, sizeof *cfg);
    char *path = path_join(dir, "config.json");
    if (!path) return qwen_fail(err, QWEN_ERR_NOMEM, "out of memory");
    if (!file_exists(path)) {
        qwen_fail(err, QWEN_ERR_IO, "%s not found: is %s a Hugging Face model directory?", path, dir);
        free(path);
        return QWEN_ERR_IO;
    }
    json_t *root = json_load_path(path, err);
    free(path);
    if (!root) return QWEN_ERR_FORMAT;
    qwen_status st = QWEN_OK;
    json_t *mt = json_object_get(root, "model_type");
    const char *type = json_is_string(mt) ? json_string_value(mt) : NULL;
    if (!json_is_object(root)) st = qwen_fail(err, QWEN_ERR_FORMAT, "config.json is not a JSON object");
    else if (!type) st = qwen_fail(err, QWEN_ERR_FORMAT, "config.json: missing 'model_type'");
    else if (strcmp(type, "qwen2") && strcmp(type, "qwen3") && strcmp(type, "qwen2_moe") && strcmp(type, "qwen3_moe"))
        st = qwen_fail(err, QWEN_ERR_UNSUPPORTED, "config.json: model_type '%s' is not supported (qwen2, qwen3, qwen2_moe, qwen3_moe are)", type);
    if (st) { json_decref(root); return st; }
    snprintf(cfg->model_type, sizeof cfg->model_type, "%s", type);
    bool qwen3 = !strcmp(type, "qwen3") || !strcmp(type, "qwen3_moe"), moe = strstr(type, "_moe") != NULL;
    double eps, theta;
    if (get_int(root, "vocab_size", 0, true, &cfg->vocab, err) || get_int(root, "hidden_size", 0, true, &cfg->hidden, err) ||
        get_int(root, "num_hidden_layers", 0, true, &cfg->n_layers, err) ||
        get_int(root, "num_attention_heads", 0, true, &cfg->n_heads, err) ||
        get_int(root, "num_key_value_heads", cfg->n_heads, false, &cfg->n_kv_heads, err) ||
        get_int(root, "intermediate_size", 0, true, &cfg->intermediate, err) ||
        get_int(root, "max_position_embeddings", 32768, false, &cfg->max_positions, err) ||
        get_num(root, "rms_norm_eps", 1e-6, &eps, err) || get_num(root, "rope_theta", 10000.0, &theta, err)) {
        json_decref(root);
        return QWEN_ERR_FORMAT;
    }
    if (cfg->n_heads == 0 || cfg->hidden == 0 || cfg->n_layers == 0 || cfg->vocab == 0 || cfg->intermediate == 0 ||
        cfg->n_kv_heads == 0 || cfg->n_heads % cfg->n_kv_heads) {
        json_decref(root);
        return qwen_fail(err, QWEN_ERR_FORMAT, "config.json: sizes must be positive and heads a multiple of KV heads");
    }
    if (get_int(root, "head_dim", cfg->hidden / cfg->n_heads, false, &cfg->head_dim, err)) { json_decref(root); return QWEN_ERR_FORMAT; }
    if (cfg->head_dim == 0 || cfg->head_dim % 2) {
        json_decref(root);
        return qwen_fail(err, QWEN_ERR_FORMAT, "config.json: head_dim must be even and positive");
    }
    cfg->rms_eps = (float)eps;
    cfg->rope_theta = theta;
    json_t *tie = json_object_get(root, "tie_word_embeddings");
    cfg->tie_embeddings = tie ? json_is_true(tie) : false;
    /* Qwen2 has q/k/v biases (Qwen2-MoE unless its qkv_bias is false) and none on o_proj; Qwen3
     * has biases on all four projections exactly when attention_bias is true. */
    json_t *qkv = json_object_get(root, "qkv_bias");
    cfg->qkv_bias = qwen3 ? json_is_true(json_object_get(root, "attention_bias")) : !(moe && json_is_false(qkv));
    cfg->o_bias = qwen3 && cfg->qkv_bias;
    cfg->qk_norm = qwen3;
    json_t *quant = json_object_get(root, "quantization_config"); /* GPTQ, AWQ, FP8 ...: other tensors, other arithmetic */
    if (quant && !json_is_null(quant)) {
        json_t *method = json_object_get(quant, "quant_method");
        st = qwen_fail(err, QWEN_ERR_UNSUPPORTED,
                       "config.json: a pre-quantized checkpoint (quant_method '%s') is not supported: use the model's bf16 checkpoint "
                       "(--quant q8|q4 or `qwenc quantize` make 8- and 4-bit weights from it)",
                       json_is_string(method) ? json_string_value(method) : "?");
        json_decref(root);
        return st;
    }
    json_t *act = json_object_get(root, "hidden_act"); /* every Qwen's SwiGLU is SiLU-gated; another would be silently wrong */
    if (act && !json_is_null(act) && (!json_is_string(act) || strcmp(json_string_value(act), "silu"))) {
        st = qwen_fail(err, QWEN_ERR_UNSUPPORTED, "config.json: hidden_act '%s' is not supported (silu is)", json_is_string(act) ? json_string_value(act) : "?");
        json_decref(root);
        return st;
    }
    /* transformers 5 saves rope_theta and rope_scaling's members together as rope_parameters */
    json_t *rope = json_object_get(root, "rope_scaling"), *params = json_object_get(root, "rope_parameters");
    double partial = 1.0; /* RoPE on part of each head only: no Qwen does that */
    if (get_num(root, "partial_rotary_factor", 1.0, &partial, err) ||
        (json_is_object(params) && partial == 1.0 && get_num(params, "partial_rotary_factor", 1.0, &partial, err))) {
        json_decref(root);
        return QWEN_ERR_FORMAT;
    }
    if (partial != 1.0) {
        json_decref(root);
        return qwen_fail(err, QWEN_ERR_UNSUPPORTED, "config.json: partial_rotary_factor %g is not supported (1 is)", partial);
    }
    if (json_is_object(params)) {
        json_t *top = json_object_get(root, "rope_theta");
        if ((!top || json_is_null(top)) && get_num(params, "rope_theta", 10000.0, &cfg->rope_theta, err)) { json_decref(root); return QWEN_ERR_FORMAT; }
        if (!rope || json_is_null(rope)) rope = params;
    }
    if ((st = load_rope_scaling(cfg, rope, err)) || (st = load_sliding_window(cfg, root, err))) {
        json_decref(root);
        return st;
    }
    cfg->ffn_scratch = cfg->intermediate;
    if (moe) {
        if (get_int(root, "num_experts", 0, true, &cfg->n_experts, err) || get_int(root, "num_experts_per_tok", 0, true, &cfg->n_experts_used, err) ||
            get_int(root, "moe_intermediate_size", 0, true, &cfg->moe_intermediate, err) ||
            get_int(root, "shared_expert_intermediate_size", 0, false, &cfg->shared_intermediate, err) ||
            get_int(root, "decoder_sparse_step", 1, false, &cfg->decoder_sparse_step, err)) {
            json_decref(root);
            return QWEN_ERR_FORMAT;
        }
        if (cfg->n_experts == 0 || cfg->n_experts_used == 0 || cfg->n_experts_used > cfg->n_experts || cfg->moe_intermediate == 0 ||
            cfg->decoder_sparse_step == 0 || cfg->n_experts > 1024) {
            json_decref(root);
            return qwen_fail(err, QWEN_ERR_FORMAT, "config.json: invalid mixture-of-experts sizes");
        }
        cfg->norm_topk_prob = json_is_true(json_object_get(root, "norm_topk_prob"));
        json_t *only = json_object_get(root, "mlp_only_layers"), *v;
        size_t i;
        json_array_foreach(only, i, v) {
            json_int_t l = json_is_integer(v) ? json_integer_value(v) : -1;
            if (l < 0 || (l >= MAX_LAYER_BITS && l < cfg->n_layers)) {
                json_decref(root);
                return qwen_fail(err, QWEN_ERR_FORMAT, "config.json: mlp_only_layers must list layer numbers below %d", MAX_LAYER_BITS);
            }
            if (l < MAX_LAYER_BITS) cfg->mlp_only_layers[l / 64] |= 1ull << (l % 64);
        }
        int64_t routed = (int64_t)cfg->n_experts_used * cfg->moe_intermediate; /* a token's experts side by side (moe_ffn) */
        if (routed > (1 << 26)) {
            json_decref(root);
            return qwen_fail(err, QWEN_ERR_FORMAT, "config.json: invalid mixture-of-experts sizes");
        }
        if (routed > cfg->ffn_scratch) cfg->ffn_scratch = (int)routed;
        if (cfg->shared_intermediate > cfg->ffn_scratch) cfg->ffn_scratch = cfg->shared_intermediate;
    }
    model_config_add_eos(cfg, json_object_get(root, "eos_token_id"));
    json_decref(root);
    return QWEN_OK;
}
