/* Large anonymous memory (quantized weights, benchmark buffers) on transparent huge
 * pages where the kernel allows them: data streamed once per token then needs a TLB entry per 2 MB
 * instead of per 4 KB, which on this class of CPU is worth up to 2x in read speed. */
#ifndef QWENC_BASE_BIGMEM_H
#define QWENC_BASE_BIGMEM_H

#include <stddef.h>

/* `size` bytes, zero-filled, 2 MB-aligned, touched lazily (pages appear on first write). NULL when
 * out of memory. Release with big_free and the same size. */
void *big_alloc(size_t size);
void big_free(void *p, size_t size);
/* Bytes of memory the system can still give without swapping (MemAvailable), or 0 when unknown. */
size_t big_available(void);
/* kB that /proc/self/smaps reports in `field` ("AnonHugePages", "FilePmdMapped") for the mapping
 * that contains p: how much of it is mapped in whole huge pages; -1 where that cannot be read. */
long big_huge_kb(const void *p, const char *field);

#endif
