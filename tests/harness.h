/* A minimal test harness for CTest executables: CHECK records a failure and continues,
 * REQUIRE stops the test; the exit status tells CTest the result. */
#ifndef QWENC_TEST_HARNESS_H
#define QWENC_TEST_HARNESS_H

#include <stdio.h>
#include <stdlib.h>

extern int test_failures;
extern int test_checks;

#define CHECK(cond, ...) do { test_checks++; if (!(cond)) { test_failures++; \
    fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__, __LINE__, #cond); fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)
#define REQUIRE(cond, ...) do { int ok_ = (cond) ? 1 : 0; CHECK(ok_, __VA_ARGS__); if (!ok_) exit(1); } while (0)

/* f32 -> bf16, round to nearest even (finite values). */
static inline unsigned short to_bf16(float f) {
    unsigned int u;
    __builtin_memcpy(&u, &f, 4);
    return (unsigned short)((u + 0x7FFF + ((u >> 16) & 1)) >> 16);
}

/* The golden data directory: $QWENC_GOLDEN, else the path CMake configured. Returns a static string. */
const char *golden_dir(void);
/* golden_dir()/rel in a malloc'ed string. */
char *golden_path(const char *rel);
/* Prints the kernel table in use; when QWENC_KERNELS names one this CPU runs (CTest's *_avx2 and
 * *_avxvnni runs), checks that it is that one. */
void check_kernel_choice(void);
/* Prints a summary and returns the process exit status. */
int test_finish(const char *name);

#endif
