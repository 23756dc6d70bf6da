/* Corrupt checkpoints and configs are refused with a clear error, never a crash. */
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "qwenc.h"
#include "io/safetensors.h"

static char dir[] = "/tmp/qwenc-st-XXXXXX";

static char *in_dir(const char *name) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return path;
}

/* Writes a safetensors file: 8-byte little-endian header length, the header, then `data_len` bytes. */
static void write_st_pad(const char *name, const char *header, size_t data_len, long long fake_hlen, size_t align) {
    FILE *f = fopen(in_dir(name), "wb");
    size_t pad = (align - strlen(header) % align) % align; /* writers pad the header so the data is aligned */
    unsigned long long h = fake_hlen >= 0 ? (unsigned long long)fake_hlen : strlen(header) + pad;
    for (int i = 0; i < 8; i++) fputc((int)((h >> (8 * i)) & 0xFF), f);
    fputs(header, f);
    for (size_t i = 0; i < pad; i++) fputc(' ', f);
    for (size_t i = 0; i < data_len; i++) fputc(0, f);
    fclose(f);
}

static void write_st(const char *name, const char *header, size_t data_len, long long fake_hlen) {
    write_st_pad(name, header, data_len, fake_hlen, 8);
}

static void write_text(const char *name, const char *text) {
    FILE *f = fopen(in_dir(name), "w");
    fputs(text, f);
    fclose(f);
}

static void expect_st_error(const char *what, const char *needle) {
    st_checkpoint ck = { 0 };
    qwen_error *err = NULL;
    qwen_status st = st_open_file(&ck, in_dir("x.safetensors"), &err);
    CHECK(st != QWEN_OK && err, "%s: must fail", what);
    if (err) {
        CHECK(strstr(qwen_error_message(err), needle) != NULL, "%s: message '%s' should mention '%s'", what, qwen_error_message(err), needle);
        CHECK(!strchr(qwen_error_message(err), '\n'), "%s: one line", what);
    }
    qwen_error_free(err);
    st_close(&ck);
}

static void test_safetensors_files(void) {
    FILE *f = fopen(in_dir("x.safetensors"), "wb");
    fputs("abc", f);
    fclose(f);
    expect_st_error("truncated", "truncated");
    write_st("x.safetensors", "{}", 0, 1 << 20);
    expect_st_error("header past end", "past the end");
    write_st("x.safetensors", "{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}}", 8, -1);
    expect_st_error("offsets out of range", "outside");
    write_st("x.safetensors",
             "{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]},"
             " \"b\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [8, 24]}}", 24, -1);
    expect_st_error("overlap", "overlap");
    write_st("x.safetensors", "{\"a\": {\"dtype\": \"BF16\", \"shape\": [4], \"data_offsets\": [0, 16]}}", 16, -1);
    expect_st_error("dtype/shape mismatch", "need");
    write_st("x.safetensors", "{\"a\": {\"dtype\": \"Q9\", \"shape\": [4], \"data_offsets\": [0, 16]}}", 16, -1);
    expect_st_error("unknown dtype", "dtype");
    write_st("x.safetensors", "{\"a\": {\"dtype\": \"F32\", \"shape\": [-4], \"data_offsets\": [0, 16]}}", 16, -1);
    expect_st_error("negative shape", "shape");
    /* 2^40 x 2^40 elements: the product wraps to 0 in 64 bits, which an empty tensor would match */
    write_st("x.safetensors", "{\"a\": {\"dtype\": \"F32\", \"shape\": [1099511627776, 1099511627776], \"data_offsets\": [0, 0]}}", 16, -1);
    expect_st_error("element count overflowing", "impossibly large");
    write_st("x.safetensors", "{\"a\": [1, 2", 16, -1);
    expect_st_error("malformed header", "JSON");
    write_st("x.safetensors", "{\"a\": {\"dtype\": \"U8\", \"shape\": [2, 34], \"data_offsets\": [0, 68]}}", 68, -1);
    expect_st_error("U8 without qwenc.quant metadata", "U8");
    write_st("x.safetensors", "{\"__metadata__\": {\"qwenc.quant\": \"q3\"}, \"a\": {\"dtype\": \"U8\", \"shape\": [2, 34], \"data_offsets\": [0, 68]}}", 68, -1);
    expect_st_error("unknown quantization", "q3");
    write_st("x.safetensors", "{\"__metadata__\": {\"qwenc.quant\": \"q8_0\", \"qwenc.layout\": \"rows16\"}, \"a\": {\"dtype\": \"U8\", \"shape\": [2, 33], \"data_offsets\": [0, 66]}}", 66, -1);
    expect_st_error("rows not whole blocks", "block-quantized");
    write_st("x.safetensors", "{\"__metadata__\": {\"qwenc.quant\": \"q4_0\"}, \"a\": {\"dtype\": \"U8\", \"shape\": [2, 36], \"data_offsets\": [0, 72]}}", 72, -1);
    expect_st_error("a file from before the interleaved layout", "qwenc quantize");
    write_st("x.safetensors", "{\"__metadata__\": {\"qwenc.quant\": \"q4_0\", \"qwenc.layout\": \"rows16\"}, \"a\": {\"dtype\": \"U8\", \"shape\": [2, 36], \"data_offsets\": [0, 72]}}", 72, -1);
    {
        st_checkpoint q = { 0 };
        CHECK(st_open_file(&q, in_dir("x.safetensors"), NULL) == QWEN_OK && q.n_tensors == 1 && q.tensors[0].dtype == QDT_Q4_0 &&
              q.tensors[0].shape[1] == 64, "a Q4_0 matrix of 2 x 64");
        st_close(&q);
    }
    /* a header of odd length leaves f32 data misaligned: read through an aligned copy */
    const char *odd = "{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}} ";
    write_st_pad("x.safetensors", strlen(odd) % 2 ? odd : "{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}}", 16, -1, 1);
    {
        st_checkpoint a = { 0 };
        CHECK(st_open_file(&a, in_dir("x.safetensors"), NULL) == QWEN_OK && a.n_tensors == 1 && (uintptr_t)a.tensors[0].data % 4 == 0,
              "misaligned data is copied to aligned memory");
        st_close(&a);
    }
    /* a valid one parses */
    write_st("x.safetensors", "{\"__metadata__\": {\"format\": \"pt\"}, \"a\": {\"dtype\": \"F32\", \"shape\": [2, 2], \"data_offsets\": [0, 16]}}", 16, -1);
    st_checkpoint ck = { 0 };
    CHECK(st_open_file(&ck, in_dir("x.safetensors"), NULL) == QWEN_OK && ck.n_tensors == 1 && ck.tensors[0].shape[1] == 2, "valid file");
    st_close(&ck);
    unlink(in_dir("x.safetensors"));
}

/* Copies the golden qwen2-untied-f32 model into the temp dir with one file replaced or cut. */
static void copy_file(const char *from, const char *to, long max_bytes) {
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    char buf[65536];
    size_t n;
    long total = 0;
    while ((n = fread(buf, 1, sizeof buf, a)) > 0) {
        if (max_bytes >= 0 && total + (long)n > max_bytes) n = (size_t)(max_bytes - total);
        fwrite(buf, 1, n, b);
        total += (long)n;
        if (max_bytes >= 0 && total >= max_bytes) break;
    }
    fclose(a);
    fclose(b);
}

static void expect_model_error(const char *what, const char *needle) {
    qwen_error *err = NULL;
    qwen_model *m = qwen_model_open(dir, NULL, &err);
    CHECK(!m && err, "%s: model open must fail", what);
    if (err) CHECK(strstr(qwen_error_message(err), needle) != NULL, "%s: '%s' should mention '%s'", what, qwen_error_message(err), needle);
    qwen_error_free(err);
    qwen_model_close(m);
}

static void test_model_dirs(void) {
    const char *files[] = { "config.json", "model.safetensors.index.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors" };
    char *src = golden_path("models/qwen2-untied-f32");
    char from[512];
    for (size_t i = 0; i < 4; i++) {
        snprintf(from, sizeof from, "%s/%s", src, files[i]);
        copy_file(from, in_dir(files[i]), -1);
    }
    qwen_error *err = NULL;
    qwen_model *m = qwen_model_open(dir, NULL, &err);
    CHECK(m, "the copied model opens: %s", qwen_error_message(err));
    qwen_model_close(m);
    qwen_error_free(err);

    /* truncated shard */
    snprintf(from, sizeof from, "%s/%s", src, files[3]);
    copy_file(from, in_dir(files[3]), 5000);
    expect_model_error("truncated shard", "model-00002-of-00002.safetensors");
    copy_file(from, in_dir(files[3]), -1);

    /* missing tensor: the index names a tensor the shard lacks */
    snprintf(from, sizeof from, "%s/%s", src, files[1]);
    FILE *f = fopen(from, "r");
    char idx[65536];
    size_t n = fread(idx, 1, sizeof idx - 1, f);
    idx[n] = 0;
    fclose(f);
    char *p = strstr(idx, "\"weight_map\": {");
    REQUIRE(p, "index layout");
    p += strlen("\"weight_map\": {");
    char edited[70000];
    snprintf(edited, sizeof edited, "%.*s\"model.layers.9.mlp.up_proj.weight\": \"model-00001-of-00002.safetensors\", %s", (int)(p - idx), idx, p);
    write_text(files[1], edited);
    expect_model_error("index names a missing tensor", "layers.9");
    copy_file(from, in_dir(files[1]), -1);

    /* config problems */
    snprintf(from, sizeof from, "%s/config.json", src);
    unlink(in_dir("config.json"));
    expect_model_error("missing config.json", "config.json");
    write_text("config.json", "{\"model_type\": \"qwen2\", \"hidden_size\": ");
    expect_model_error("malformed config.json", "invalid JSON");
    write_text("config.json", "{\"model_type\": \"llama\"}");
    expect_model_error("unknown model_type", "llama");
    write_text("config.json", "{\"model_type\": \"qwen2\", \"vocab_size\": 2048, \"hidden_size\": 96}");
    expect_model_error("missing field", "num_hidden_layers");
    /* a config whose sizes disagree with the weights */
    copy_file(from, in_dir("config.json"), -1);
    f = fopen(from, "r");
    n = fread(idx, 1, sizeof idx - 1, f);
    idx[n] = 0;
    fclose(f);
    p = strstr(idx, "\"intermediate_size\": 256");
    REQUIRE(p, "config layout");
    memcpy(p, "\"intermediate_size\": 255", 24);
    write_text("config.json", idx);
    expect_model_error("shape mismatch", "shape");
    /* more layers than the checkpoint has: a missing tensor */
    copy_file(from, in_dir("config.json"), -1);
    p = strstr(idx, "\"intermediate_size\": 255");
    memcpy(p, "\"intermediate_size\": 256", 24);
    p = strstr(idx, "\"num_hidden_layers\": 3");
    REQUIRE(p, "config layout");
    memcpy(p, "\"num_hidden_layers\": 4", 22);
    write_text("config.json", idx);
    expect_model_error("more layers than the weights", "config.json says 4 layers but the weights have no tensor 'layers.3.");
    /* a layer count far beyond the weights fails the same way, before allocating for it */
    char *many = malloc(strlen(idx) + 16);
    REQUIRE(many, "memory");
    snprintf(many, strlen(idx) + 16, "%.*s\"num_hidden_layers\": 1000000000%s", (int)(p - idx), idx, p + 22);
    write_text("config.json", many);
    free(many);
    expect_model_error("a billion layers", "config.json says 1000000000 layers");

    for (size_t i = 0; i < 4; i++) unlink(in_dir(files[i]));
    free(src);
}

int main(void) {
    REQUIRE(mkdtemp(dir), "mkdtemp");
    test_safetensors_files();
    test_model_dirs();
    rmdir(dir);
    return test_finish("safetensors");
}
