#include "harness.h"

#include <string.h>

#include "tensor/tensor.h"

int test_failures = 0;
int test_checks = 0;

const char *golden_dir(void) {
    const char *g = getenv("QWENC_GOLDEN");
    if (g && *g) return g;
    g = getenv("QWENC_GOLDEN_DEFAULT");
    if (g && *g) return g;
    return "../shared/golden";
}

char *golden_path(const char *rel) {
    const char *g = golden_dir();
    char *p = malloc(strlen(g) + strlen(rel) + 2);
    sprintf(p, "%s/%s", g, rel);
    return p;
}

int test_finish(const char *name) {
    printf("%s: %d checks, %d failures\n", name, test_checks, test_failures);
    if (test_checks == 0) {
        printf("%s: no checks ran\n", name);
        return 1;
    }
    return test_failures ? 1 : 0;
}

void check_kernel_choice(void) {
    const dot_kernels *want = dot_kernels_named(getenv("QWENC_KERNELS")), *got = dot_kernels_best();
    printf("kernels: %s\n", got->name);
    if (dot_kernels_runnable(want)) CHECK(got == want, "QWENC_KERNELS=%s, but the %s kernels are in use", want->name, got->name);
}
