/* libFuzzer target: any bytes encoded (valid UTF-8 or not) and the ids decoded back; streaming
 * decoder fed the same ids. QWENC_FUZZ_MODEL names the model directory. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "qwenc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static qwen_tokenizer *tok;
    if (!tok) {
        const char *dir = getenv("QWENC_FUZZ_MODEL");
        tok = qwen_tokenizer_open(dir ? dir : "../shared/golden/models/qwen3-tiny", NULL);
        if (!tok) abort();
    }
    int32_t *ids;
    size_t n;
    qwen_encode_opts opts = { .no_added_tokens = size && (data[0] & 1) };
    if (qwen_tokenize(tok, (const char *)data, size, &opts, &ids, &n, NULL) == QWEN_OK) {
        char *text;
        size_t len;
        if (qwen_detokenize(tok, ids, n, false, &text, &len, NULL) == QWEN_OK) {
            if (len != size || memcmp(text, data, size)) { /* must round-trip modulo NFC: compare lengths only when ASCII */
                int ascii = 1;
                for (size_t i = 0; i < size; i++) ascii &= data[i] < 0x80;
                if (ascii) abort();
            }
            free(text);
        }
        qwen_stream_decoder *sd = qwen_stream_decoder_new(tok, false);
        for (size_t i = 0; i < n; i++) {
            char *piece;
            if (qwen_stream_decoder_push(sd, ids[i], &piece, NULL) == QWEN_OK) free(piece);
        }
        free(qwen_stream_decoder_flush(sd));
        qwen_stream_decoder_free(sd);
        free(ids);
    }
    return 0;
}
