/* Qwen3-Embedding and Qwen3-Reranker against the golden cases: ids, embeddings (full and
 * Matryoshka-truncated), cosine matrix, rerank scores. */
#include <math.h>
#include <string.h>
#include <jansson.h>

#include "harness.h"
#include "qwenc.h"

static json_t *load_case(const char *rel) {
    char *path = golden_path(rel);
    json_t *j = json_load_file(path, 0, NULL);
    free(path);
    return j;
}

static void test_embeddings(void) {
    json_t *c = load_case("cases/qwen3-embedding-tiny.json");
    REQUIRE(c, "embedding cases");
    char *dir = golden_path("models/qwen3-embedding-tiny");
    qwen_error *err = NULL;
    qwen_model *m = qwen_model_open(dir, &(qwen_model_opts){ .threads = 2 }, &err);
    REQUIRE(m, "open: %s", qwen_error_message(err));
    json_t *texts = json_object_get(c, "texts"), *want_ids = json_object_get(c, "input_ids"), *want = json_object_get(c, "embeddings");
    size_t n = json_array_size(texts);
    float emb[8][1024];
    int dims = 0;
    for (size_t i = 0; i < n && i < 8; i++) {
        const char *text = json_string_value(json_array_get(texts, i));
        int32_t *ids;
        size_t n_ids;
        REQUIRE(qwen_tokenize(qwen_model_tokenizer(m), text, strlen(text), NULL, &ids, &n_ids, NULL) == QWEN_OK, "tokenize");
        json_t *wi = json_array_get(want_ids, i);
        int same = n_ids == json_array_size(wi);
        for (size_t k = 0; same && k < n_ids; k++) same = ids[k] == json_integer_value(json_array_get(wi, k));
        CHECK(same, "text %zu: ids (with the appended <|endoftext|>)", i);
        dims = qwen_embed(m, ids, n_ids, 0, emb[i], &err);
        REQUIRE(dims > 0 && dims <= 1024, "embed: %s", qwen_error_message(err));
        json_t *we = json_array_get(want, i);
        CHECK((size_t)dims == json_array_size(we), "dimensions %d", dims);
        CHECK(dims == qwen_model_hidden_size(m), "qwen_embed's full width %d is qwen_model_hidden_size %d", dims, qwen_model_hidden_size(m));
        double e = 0;
        for (int d = 0; d < dims; d++) e = fmax(e, fabs(emb[i][d] - json_real_value(json_array_get(we, (size_t)d))));
        CHECK(e < 1e-5, "text %zu: embedding max error %g", i, e);
        /* Matryoshka truncations */
        const char *keys[] = { "16", "32" };
        for (int k = 0; k < 2; k++) {
            float tr[64];
            int td = atoi(keys[k]);
            REQUIRE(qwen_embed(m, ids, n_ids, td, tr, NULL) == td, "truncated embed");
            json_t *wt = json_array_get(json_object_get(json_object_get(c, "mrl_truncated_renormalised"), keys[k]), i);
            double et = 0;
            for (int d = 0; d < td; d++) et = fmax(et, fabs(tr[d] - json_real_value(json_array_get(wt, (size_t)d))));
            CHECK(et < 1e-5, "text %zu: %d-dim embedding max error %g", i, td, et);
        }
        free(ids);
    }
    json_t *cos = json_object_get(c, "cosine");
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            double dot = 0;
            for (int d = 0; d < dims; d++) dot += (double)emb[i][d] * emb[j][d];
            CHECK(fabs(dot - json_real_value(json_array_get(json_array_get(cos, i), j))) < 1e-5, "cosine %zu %zu", i, j);
        }
    qwen_model_close(m);
    free(dir);
    json_decref(c);
}

static void test_rerank(void) {
    json_t *c = load_case("cases/qwen3-tiny.rerank.json");
    REQUIRE(c, "rerank cases");
    char *dir = golden_path("models/qwen3-tiny");
    qwen_model *m = qwen_model_open(dir, &(qwen_model_opts){ .threads = 2 }, NULL);
    REQUIRE(m, "open");
    const char *instruction = json_string_value(json_object_get(c, "instruction"));
    json_t *pairs = json_object_get(c, "pairs"), *p;
    size_t i;
    json_array_foreach(pairs, i, p) {
        double score = -1;
        qwen_error *err = NULL;
        CHECK(qwen_rerank(m, instruction, json_string_value(json_object_get(p, "query")), json_string_value(json_object_get(p, "document")),
                          &score, &err) == QWEN_OK, "rerank: %s", qwen_error_message(err));
        double want = json_real_value(json_object_get(p, "score"));
        CHECK(fabs(score - want) < 1e-5, "pair %zu: score %.8f vs %.8f", i, score, want);
        qwen_error_free(err);
    }
    qwen_model_close(m);
    free(dir);
    json_decref(c);
}

int main(void) {
    test_embeddings();
    test_rerank();
    return test_finish("retrieval");
}
