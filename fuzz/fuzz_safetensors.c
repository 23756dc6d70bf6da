/* libFuzzer target: any bytes as a safetensors file. */
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include "io/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[64];
    snprintf(path, sizeof path, "/tmp/qwenc-fuzz-%d.safetensors", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    st_checkpoint ck = { 0 };
    qwen_error *err = NULL;
    st_open_file(&ck, path, &err);
    qwen_error_free(err);
    st_close(&ck);
    return 0;
}
