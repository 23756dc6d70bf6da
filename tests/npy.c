#include "npy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

float *npy_read_f32(const char *path, size_t *rows, size_t *cols) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char pre[10];
    float *data = NULL;
    if (fread(pre, 1, 10, f) == 10 && !memcmp(pre, "\x93NUMPY", 6)) {
        size_t hlen = pre[8] | (pre[9] << 8);
        char *hdr = calloc(1, hlen + 1);
        if (hdr && fread(hdr, 1, hlen, f) == hlen && strstr(hdr, "'<f4'") && strstr(hdr, "'fortran_order': False")) {
            const char *sh = strstr(hdr, "'shape': (");
            size_t a = 0, b = 0;
            int n = sh ? sscanf(sh, "'shape': (%zu, %zu", &a, &b) : 0;
            if (n == 1) { b = a; a = 1; }
            if (n >= 1) {
                data = malloc(a * b * sizeof(float));
                if (data && fread(data, sizeof(float), a * b, f) != a * b) { free(data); data = NULL; }
                *rows = a;
                *cols = b;
            }
        }
        free(hdr);
    }
    fclose(f);
    return data;
}
