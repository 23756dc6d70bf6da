/* The NEON table again, compiled for ARMv8.2-A with the dot-product instructions: its quantized
 * tiles use sdot (see dot_neon.c). Taken only where the CPU reports them (HWCAP_ASIMDDP). */
#define NEON_DOTPROD
#include "dot_neon.c"
