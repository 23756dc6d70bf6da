/* qwenc — the Qwen model family in pure C. Public API.
 *
 * Conventions:
 *  - Handles are opaque; every `*_open`/`*_new` has a matching `*_close`/`*_free`.
 *  - Functions that can fail take a `qwen_error **err` last. On failure they return NULL or a
 *    non-zero qwen_status and, when `err` is non-NULL, set `*err` to a new error the caller frees
 *    with qwen_error_free(). The library never prints and never exits.
 *  - Strings are UTF-8. Arrays returned to the caller are owned by the caller (free with free()),
 *    unless the comment says "borrowed".
 *  - A NULL handle or a missing required pointer is QWEN_ERR_INVALID_ARG (or NULL) where a call can
 *    fail; getters answer 0, false, NULL or "" for a NULL handle; the close and free calls accept NULL.
 */
#ifndef QWENC_H
#define QWENC_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- errors ----------------------------------------------------------------------------- */

typedef enum qwen_status {
    QWEN_OK = 0,
    QWEN_ERR_IO,          /* a file is missing or unreadable */
    QWEN_ERR_FORMAT,      /* a file is malformed (JSON, safetensors, template ...) */
    QWEN_ERR_UNSUPPORTED, /* valid input that qwenc does not handle (yet) */
    QWEN_ERR_INVALID_ARG, /* the caller passed something invalid (bad UTF-8, id out of range ...) */
    QWEN_ERR_NOMEM,       /* allocation failed */
} qwen_status;

typedef struct qwen_error qwen_error;

const char *qwen_error_message(const qwen_error *err); /* borrowed; "" for NULL */
qwen_status qwen_error_status(const qwen_error *err);
void qwen_error_free(qwen_error *err);

/* ---- tokenizer ---------------------------------------------------------------------------- */

typedef struct qwen_tokenizer qwen_tokenizer;

/* Loads `tokenizer.json` from a model directory (or the file itself if `path` is a file).
 * Returns NULL and sets *err on a missing file, malformed JSON or an unsupported tokenizer. */
qwen_tokenizer *qwen_tokenizer_open(const char *path, qwen_error **err);
void qwen_tokenizer_close(qwen_tokenizer *tok);

typedef struct qwen_encode_opts {
    bool no_added_tokens;     /* treat added/special token strings in the text as plain text (untrusted input) */
    bool no_post_processor;   /* do not add the post-processor's tokens (HF add_special_tokens=False) */
} qwen_encode_opts;

/* Encodes UTF-8 `text` of `len` bytes into token ids, exactly as Hugging Face `tokenizers`
 * `encode(text)` does. On success *ids_out is a malloc'ed array the caller frees, *n_out its length.
 * Invalid UTF-8 is refused with QWEN_ERR_INVALID_ARG naming the byte offset. `opts` may be NULL. */
qwen_status qwen_tokenize(const qwen_tokenizer *tok, const char *text, size_t len,
                          const qwen_encode_opts *opts, int32_t **ids_out, size_t *n_out, qwen_error **err);

/* Decodes ids to text as Hugging Face `tokenizers` decode does: the tokens' bytes, with each
 * maximal ill-formed UTF-8 subsequence (a character cut off included) replaced by U+FFFD, so the
 * text is always valid UTF-8 (qwen_token_bytes gives the raw bytes). On success *text_out is
 * malloc'ed and NUL-terminated, *len_out its length. Unknown ids are an error. */
qwen_status qwen_detokenize(const qwen_tokenizer *tok, const int32_t *ids, size_t n, bool skip_special,
                            char **text_out, size_t *len_out, qwen_error **err);

/* The bytes of one token (borrowed), or NULL for an unknown id. */
const char *qwen_token_bytes(const qwen_tokenizer *tok, int32_t id, size_t *len);
/* The id of an exact token string (regular or added), or -1. */
int32_t qwen_token_id(const qwen_tokenizer *tok, const char *text, size_t len);
bool qwen_token_is_special(const qwen_tokenizer *tok, int32_t id);
/* One past the largest id the tokenizer knows. */
int32_t qwen_tokenizer_vocab_size(const qwen_tokenizer *tok);

/* Streaming decoder: feed ids as they are generated, get back only complete UTF-8. Bytes that can
 * never become valid UTF-8 come out as U+FFFD, one per maximal ill-formed subsequence, so that the
 * pieces add up to qwen_detokenize's text. */
typedef struct qwen_stream_decoder qwen_stream_decoder;
qwen_stream_decoder *qwen_stream_decoder_new(const qwen_tokenizer *tok, bool skip_special);
/* Appends the text completed by `id` to *out (a malloc'ed NUL-terminated string the caller frees,
 * possibly ""). Returns non-zero for an unknown id. */
qwen_status qwen_stream_decoder_push(qwen_stream_decoder *sd, int32_t id, char **out, qwen_error **err);
/* Returns whatever is still held back (an incomplete character, as U+FFFD), malloc'ed. */
char *qwen_stream_decoder_flush(qwen_stream_decoder *sd);
void qwen_stream_decoder_free(qwen_stream_decoder *sd);


/* ---- models ------------------------------------------------------------------------------- */

typedef struct qwen_model qwen_model;

typedef struct qwen_model_opts {
    int threads;       /* worker threads for matmuls; 0 = one per physical core the process may run on */
    const char *quant; /* NULL: weights as stored; "q8_0" or "q4_0" ("q8", "q4"): quantize the matrices
                          at load time (8 or 4 bits per weight in blocks of 32 with an f16 scale) */
    const char *kv_type; /* NULL or "f32": sessions keep keys and values in f32 (the reference's
                            numbers); "f16": half the memory and decode traffic, logits move by ~1e-3;
                            "q8_0" ("q8"): int8 with an f32 scale per 32 dimensions of a position (56%
                            of f16's bytes; head_dim a multiple of 32), logits move by ~1e-2 */
    bool mmap;   /* true: multiply straight from the mapped files as stored (quickest open, pages shared
                    with other processes). false (default): bf16 matrices are repacked into memory for
                    the tile kernels (a copy, on huge pages where the kernel gives them; ~1.2x faster
                    decode and prefill) and Q8_0/Q4_0 matrices of a quantized checkpoint copied there
                    as they are, unless the copies would not fit in the memory available */
    bool bf16_prefill; /* true: batches of tokens (prompt processing) multiply the packed bf16 matrices
                          with their activations rounded to bf16, by AVX512-BF16 dot products (~1.5x
                          faster prefill; logits move by ~1e-2 of their scale, as in a bf16 framework);
                          decode steps stay f32. No effect with --mmap, --quant, or without AVX512-BF16 */
    /* Called on the opening thread as the weights are quantized or packed at load (the long part of
       opening a large model): stage "quantizing" or "packing", fraction of that stage done (0..1,
       reaching 1). NULL: not called. */
    void (*progress)(void *user, const char *stage, double fraction);
    void *progress_user;
} qwen_model_opts;

/* Opens a Hugging Face model directory, or a repo id found in the local hub cache, mapping the
 * safetensors weights (bf16 matrices are then packed into memory unless opts->mmap; --quant
 * quantizes them). Supports Qwen2/Qwen3 causal LMs, their MoE variants, and Qwen3 embedding and
 * reranker checkpoints. `opts` may be NULL. Returns NULL with *err on a missing/corrupt/unsupported
 * checkpoint. */
qwen_model *qwen_model_open(const char *spec, const qwen_model_opts *opts, qwen_error **err);
void qwen_model_close(qwen_model *model);

/* The resolved model directory (borrowed). */
const char *qwen_model_dir(const qwen_model *model);
/* The model directory's tokenizer (borrowed; lives as long as the model), or NULL if it has none. */
const qwen_tokenizer *qwen_model_tokenizer(const qwen_model *model);
int32_t qwen_model_vocab_size(const qwen_model *model);   /* rows of the logits */
int32_t qwen_model_max_context(const qwen_model *model);  /* max_position_embeddings */
int32_t qwen_model_hidden_size(const qwen_model *model);  /* hidden_size: what qwen_embed writes at most */
/* Writes `in_spec`'s model to `out_dir` as a Hugging Face directory whose matrices are stored
 * quantized ("q8_0" or "q4_0"; U8 tensors of blocks, marked in the safetensors metadata), so that
 * later opens map them instead of quantizing at load time. The embedding table keeps its dtype; a
 * tied output head is written as its own quantized lm_head. Copies the config (untied when the head
 * was tied), generation config, tokenizer and chat template files. */
qwen_status qwen_model_save_quantized(const char *in_spec, const char *out_dir, const char *quant, int threads, qwen_error **err);
/* Bytes of weights one decode step reads (every matrix once, a MoE layer's routed experts only,
 * plus one embedding row). */
size_t qwen_model_weight_bytes(const qwen_model *model);
/* Bytes of KV cache one decode step reads per cached position (keys and values of every layer). */
size_t qwen_model_kv_bytes_per_position(const qwen_model *model);
/* A one-line description: architecture, sizes, weight format, kernels. Borrowed. */
const char *qwen_model_describe(qwen_model *model);
/* True when `id` is one of generation_config.json's eos_token_id (or config.json's). */
bool qwen_model_is_eos(const qwen_model *model, int32_t id);

/* A session is one sequence being decoded: its KV cache and position. */
typedef struct qwen_session qwen_session;

/* Creates a session holding up to `max_tokens` positions (<= 0: the model's max context, capped at
 * 8192). The cache is allocated once, here. */
qwen_session *qwen_session_new(qwen_model *model, int max_tokens, qwen_error **err);
void qwen_session_free(qwen_session *s);
int qwen_session_length(const qwen_session *s); /* tokens in the cache */
const int32_t *qwen_session_tokens(const qwen_session *s); /* the cached ids (borrowed) */
/* Forgets everything after the first `n` tokens (n <= length), e.g. to reuse a common prefix. */
void qwen_session_truncate(qwen_session *s, int n);
/* Makes the cache memory of the first `n_tokens` positions resident now (n_tokens <= 0 or more than
 * the session holds: all of it); the contents do not change. Without it the cache is touched as the
 * context grows, a chunk of positions at a time (1024 by default), and the decode step that first
 * writes a chunk pays for all of its pages: on the VM qwenc is benchmarked on, ~0.1 s for a
 * Qwen3-0.6B-shaped chunk in f16 (112 MB), 0.2-0.3 s in f32 (224 MB). For steady per-token times
 * (a benchmark, a server with a known context) reserve up front, as llama.cpp allocates and clears
 * its whole cache when it creates a context; the memory is then held whether used or not. */
void qwen_session_reserve(qwen_session *s, int n_tokens);

/* Runs `n` tokens at the session's current position (a batched prefill when n > 1, a decode step
 * when n == 1) and appends them to the cache. If `logits` is non-NULL it receives float32 logits:
 * [n, vocab] when `all_positions`, else [vocab] for the last token only. Fails when the ids are out
 * of range or the cache is full. */
qwen_status qwen_session_forward(qwen_session *s, const int32_t *ids, size_t n, float *logits, bool all_positions,
                                 qwen_error **err);
/* The same, but `hidden` receives the final-normed hidden states ([n, hidden] or [hidden]) instead of logits. */
qwen_status qwen_session_forward_hidden(qwen_session *s, const int32_t *ids, size_t n, float *hidden, bool all_positions,
                                        qwen_error **err);

/* Where a session's decode steps (one-token forward passes) spent their time while profiling was
 * on: for benchmarks and tuning (`qwenc bench --profile`). */
typedef struct qwen_step_profile {
    int steps;          /* decode steps profiled */
    double step_s;      /* their seconds in all */
    long loops;         /* loops spread over the model's threads, in those steps */
    double loop_s;      /* of step_s, those loops' (from their start to the last thread done) */
    double wait_s;      /* of loop_s, the calling thread waiting for the others at the loops' ends */
    double attention_s; /* of step_s, attention's (its loops and their waits included) */
} qwen_step_profile;
/* Starts profiling the session's decode steps from zero (`on`) or stops; returns the profile so
 * far. Profiling reads the clock a few times per loop (~0.2% of a Qwen3-0.6B step). The time
 * outside the loops (step_s - loop_s) is work the calling thread does alone: norms, residual
 * additions, SwiGLU, activation quantization. */
qwen_step_profile qwen_session_profile(qwen_session *s, bool on);

/* ---- retrieval: embeddings and reranking ---------------------------------------------------- */

/* Qwen3-Embedding: the last token's hidden state after the final RMSNorm, truncated to `dims`
 * (Matryoshka; <= 0 or > hidden: all) and L2-normalised into out[dims]. The ids should come from
 * qwen_tokenize with the post-processor (which appends <|endoftext|>). Returns the number of
 * dimensions written, or a negative status with *err. */
int qwen_embed(qwen_model *model, const int32_t *ids, size_t n, int dims, float *out, qwen_error **err);

/* Qwen3-Reranker: p("yes") of softmax(logit("no"), logit("yes")) at the last position of the
 * model's judging prompt built from instruction (NULL: the default web-search one), query and
 * document. */
qwen_status qwen_rerank(qwen_model *model, const char *instruction, const char *query, const char *document, double *score,
                        qwen_error **err);

/* ---- sampling ----------------------------------------------------------------------------- */

typedef struct qwen_sampling {
    float temperature;        /* 0: greedy */
    int top_k;                /* 0: off */
    float top_p;              /* 1: off */
    float min_p;              /* 0: off */
    float repetition_penalty; /* 1: off (HF semantics: divide positive logits, multiply negative) */
    float presence_penalty;   /* 0: off (subtracted once from every token already seen) */
    uint64_t seed;
} qwen_sampling;

/* The model's defaults from generation_config.json (greedy if it has none). */
qwen_sampling qwen_model_default_sampling(const qwen_model *model);

typedef struct qwen_sampler qwen_sampler;
/* NULL when out of memory or params is NULL. */
qwen_sampler *qwen_sampler_new(const qwen_sampling *params);
void qwen_sampler_free(qwen_sampler *s);
/* Picks the next id from logits[vocab] (modified in place), given the ids seen so far (for the
 * penalties); -1 without a sampler, logits or vocab, or out of memory. */
int32_t qwen_sampler_sample(qwen_sampler *s, float *logits, int32_t vocab, const int32_t *seen, size_t n_seen);

/* ---- generation ---------------------------------------------------------------------------- */

typedef struct qwen_generate_opts {
    int max_tokens;                  /* new tokens at most (<= 0: until the context is full) */
    bool ignore_eos;                 /* keep going past end-of-sequence tokens */
    volatile const int *stop;        /* optional: generation stops when *stop becomes non-zero */
    /* optional: generation stops where the text generated contains one of these (non-empty,
       UTF-8) strings; the text up to it is passed on, the string itself and what follows are
       not (OpenAI's `stop`). Text that could be the start of one is held back until it is
       known not to be. */
    const char *const *stop_strings;
    size_t n_stop_strings;
    /* optional: called on the calling thread as the prompt is processed, after each batch of up
       to 512 tokens (`done` of `total` prompt tokens not taken from the cache) */
    void (*progress)(void *user, size_t done, size_t total);
    void *progress_user;
} qwen_generate_opts;

typedef struct qwen_generate_stats {
    size_t prompt_tokens, reused_tokens, generated_tokens;
    double prefill_seconds, decode_seconds;
    bool hit_eos, hit_limit, stopped;
    bool hit_stop_string; /* ended by one of opts->stop_strings */
} qwen_generate_stats;

/* Called with each generated token and the text it completes (complete UTF-8 only, possibly "";
 * with stop strings, the text now sure not to belong to one, not NUL-terminated: use len). Return
 * false to stop. After the last token, text still held back comes with id -1. */
typedef bool (*qwen_token_fn)(int32_t id, const char *text, size_t len, void *user);

/* Continues `s` with `prompt` and generates. The cached tokens that the prompt starts with are
 * reused (multi-turn chat re-sends the whole history), the rest is prefilled as one batch, then
 * tokens are sampled one by one. The stop token itself is not passed to on_token. Needs the
 * model's tokenizer. */
qwen_status qwen_generate(qwen_session *s, const int32_t *prompt, size_t n_prompt, const qwen_sampling *sampling,
                          const qwen_generate_opts *opts, qwen_token_fn on_token, void *user, qwen_generate_stats *stats,
                          qwen_error **err);

/* ---- chat ---------------------------------------------------------------------------------- */

typedef struct qwen_chat_template qwen_chat_template;

/* Loads the chat template a model directory ships (tokenizer_config.json's "chat_template", a
 * string or a list of named templates, or chat_template.jinja), with its special tokens
 * (bos_token, eos_token ...) as default context. NULL with *err when there is none or it does not parse. */
qwen_chat_template *qwen_chat_template_open(const char *model_dir, qwen_error **err);
/* A template from source text (no default special tokens). */
qwen_chat_template *qwen_chat_template_from_source(const char *source, size_t len, qwen_error **err);
void qwen_chat_template_free(qwen_chat_template *t);
/* Renders with a JSON object as context (messages, tools, add_generation_prompt,
 * enable_thinking, any other key); the template's special tokens fill keys the context lacks.
 * Returns malloc'ed text, or NULL with *err ("line L, column C: ..." or the template's own
 * raise_exception message). */
char *qwen_chat_template_render(const qwen_chat_template *t, const char *context_json, size_t len, size_t *out_len,
                                qwen_error **err);

/* Output parsing: reasoning (<think>...</think>), content, and <tool_call> blocks. */
typedef struct qwen_tool_call {
    char *name;      /* NULL when the call could not be parsed */
    char *arguments; /* JSON text of the arguments object (OpenAI's "arguments" string) */
    char *raw;       /* the text between the tags, always kept */
    char *error;     /* NULL for a valid call, else why it is malformed */
} qwen_tool_call;

typedef enum qwen_delta_kind { QWEN_DELTA_REASONING, QWEN_DELTA_CONTENT, QWEN_DELTA_TOOL_CALL } qwen_delta_kind;

typedef struct qwen_delta {
    qwen_delta_kind kind;
    const char *text;           /* REASONING / CONTENT: new text (borrowed, valid during the callback) */
    size_t len;
    const qwen_tool_call *call; /* TOOL_CALL: a completed call (borrowed) */
} qwen_delta;

typedef void (*qwen_delta_fn)(const qwen_delta *delta, void *user);

typedef struct qwen_output_parser qwen_output_parser;
/* `in_reasoning`: the prompt already opened <think> (a template that starts the answer with it).
 * Text that is not reasoning or a tool call is content; reasoning loses the newlines around it,
 * content the newlines right after </think>; whitespace between tool calls is dropped. NULL
 * without `on_delta` or out of memory. */
qwen_output_parser *qwen_output_parser_new(bool in_reasoning, qwen_delta_fn on_delta, void *user);
/* Feeds generated text (any chunking: the deltas do not depend on it). */
void qwen_output_parser_feed(qwen_output_parser *p, const char *text, size_t len);
/* Ends the output: flushes held text; a <tool_call> without its closing tag becomes a malformed
 * call (its text kept in `raw`). */
void qwen_output_parser_finish(qwen_output_parser *p);
void qwen_output_parser_free(qwen_output_parser *p);

/* The whole result at once. */
typedef struct qwen_parsed_output {
    char *reasoning, *content;  /* malloc'ed, never NULL */
    qwen_tool_call *calls;
    size_t n_calls;
} qwen_parsed_output;
qwen_status qwen_parse_output(const char *text, size_t len, bool in_reasoning, qwen_parsed_output *out);
void qwen_parsed_output_free(qwen_parsed_output *out);
void qwen_tool_call_free(qwen_tool_call *call); /* frees the members, not the struct */

/* ---- conversations ------------------------------------------------------------------------ */

/* A conversation with a model: the history (OpenAI-shaped messages), rendered by the model's own
 * chat template every turn, generated on one session whose KV cache keeps the common prefix, and
 * parsed into reasoning / content / tool calls. What `qwenc chat` (and later the server) runs on. */
typedef struct qwen_chat qwen_chat;

typedef struct qwen_chat_opts {
    const char *system;     /* optional system message */
    bool disable_thinking;  /* enable_thinking=false (Qwen3 hybrid models) */
    int context;            /* KV cache size in tokens; <= 0: 8192 capped at the model's maximum */
} qwen_chat_opts;

/* Loads the model's chat template. The model must outlive the chat. NULL with *err on failure. */
qwen_chat *qwen_chat_new(qwen_model *model, const qwen_chat_opts *opts, qwen_error **err);
void qwen_chat_free(qwen_chat *chat);
/* Appends a message (role "system", "user", "assistant" or "tool"). Fails on invalid UTF-8. */
qwen_status qwen_chat_add(qwen_chat *chat, const char *role, const char *content, qwen_error **err);
/* Sets the tools offered to the model: a JSON array of OpenAI tool objects, or NULL for none. */
qwen_status qwen_chat_set_tools(qwen_chat *chat, const char *tools_json, qwen_error **err);
void qwen_chat_set_thinking(qwen_chat *chat, bool enable);
/* Forgets the history except the system message. */
void qwen_chat_reset(qwen_chat *chat);
/* Renders the history with add_generation_prompt, generates with `sampling`, streams the parsed
 * output to on_delta (may be NULL), and appends the assistant message (content, reasoning_content,
 * tool_calls) to the history — also when generation was stopped early. Once the history outgrows
 * the context, the prompt leaves out its oldest user turns (with their answers; a leading system
 * message stays) until a quarter of the context, or gen->max_tokens if fewer, is left for the
 * answer; the history itself keeps them (qwen_chat_last_turn_json shows what the model saw). */
qwen_status qwen_chat_reply(qwen_chat *chat, const qwen_sampling *sampling, const qwen_generate_opts *gen, qwen_delta_fn on_delta,
                            void *user, qwen_generate_stats *stats, qwen_error **err);
/* The history as a JSON array (malloc'ed), and the template context of the last reply, with its
 * rendered prompt under "prompt" (malloc'ed; NULL before the first reply). */
char *qwen_chat_messages_json(const qwen_chat *chat);
char *qwen_chat_last_turn_json(const qwen_chat *chat);

#ifdef __cplusplus
}
#endif
#endif
