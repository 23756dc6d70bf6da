/* The AVX2 kernels with AVX-VNNI (256-bit vpdpbusd: Intel since Alder Lake, AMD since Zen 5):
 * the quantized tiles of dot_avx2.c sum u8 x s8 products in one instruction (compiled with
 * -mavx2 -mfma -mf16c -mavxvnni; chosen from CPUID on CPUs without AVX-512). */
#define AVX_VNNI 1
#include "dot_avx2.c"
