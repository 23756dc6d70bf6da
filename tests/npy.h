/* A tiny reader for the float32 .npy files of the golden data (tests only). */
#ifndef QWENC_TEST_NPY_H
#define QWENC_TEST_NPY_H

#include <stddef.h>

/* Reads a little-endian float32 C-order .npy. Returns a malloc'ed array and its shape (up to 2
 * dims; a 1-D array has rows = 1), or NULL. */
float *npy_read_f32(const char *path, size_t *rows, size_t *cols);

#endif
