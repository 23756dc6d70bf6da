#include "base/file.h"
#include "base/bigmem.h"
#include "base/error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

char *file_read_stream(FILE *f, size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n - 1, f);
        if (n + 1 < cap) break;
        char *bigger = realloc(buf, cap * 2);
        if (!bigger) { free(buf); return NULL; }
        buf = bigger;
        cap *= 2;
    }
    if (!buf) return NULL;
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}

char *file_read_all(const char *path, size_t *len, qwen_error **err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        qwen_fail(err, QWEN_ERR_IO, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = file_read_stream(f, len);
    int failed = ferror(f);
    fclose(f);
    if (!buf) {
        qwen_fail(err, QWEN_ERR_NOMEM, "out of memory reading %s", path);
        return NULL;
    }
    if (failed) {
        free(buf);
        qwen_fail(err, QWEN_ERR_IO, "error reading %s", path);
        return NULL;
    }
    return buf;
}

/* Maps `size` bytes of fd read-only at a 2 MB-aligned address, advised for huge pages. Where the
 * page cache holds the file in 2 MB folios, the kernel then maps each with one page-table entry
 * instead of 512 (FilePmdMapped in smaps), and a decode step, which streams every weight once,
 * misses the TLB far less often: Q4_0 Qwen3-0.6B-shaped decode +5% and prefill +18% here
 * against the same file cached in small folios. The advice also makes a first read through the
 * mapping fill 2 MB folios (on a filesystem with large folios, as ext4 on Linux 6.18 here), and
 * files written in aligned 2 MB pieces (safetensors_write) are cached so to begin with. Linux
 * 6.18 places large file mappings on 2 MB boundaries by itself; older kernels need the explicit
 * alignment. Falls back to a plain mapping where the reservation fails. Returns MAP_FAILED on
 * failure (errno set). */
static void *map_aligned(int fd, size_t size) {
    enum { ALIGN = 2 << 20, PAGE = 4096 };
    char *raw = size + ALIGN > size ? mmap(NULL, size + ALIGN, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0) : MAP_FAILED;
    if (raw == MAP_FAILED) return mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    char *at = (char *)(((uintptr_t)raw + ALIGN - 1) & ~(uintptr_t)(ALIGN - 1));
    void *p = mmap(at, size, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0); /* replaces that part of the reservation */
    if (p == MAP_FAILED) {
        int e = errno;
        munmap(raw, size + ALIGN);
        errno = e;
        return MAP_FAILED;
    }
    size_t span = (size + PAGE - 1) / PAGE * PAGE; /* the mapping's whole pages */
    if (at > raw) munmap(raw, (size_t)(at - raw));
    if (raw + size + ALIGN > at + span) munmap(at + span, (size_t)(raw + size + ALIGN - (at + span)));
#ifdef MADV_HUGEPAGE
    madvise(at, size, MADV_HUGEPAGE); /* a hint: without it the mapping works in 4 KB pages */
#endif
    return p;
}

/* Whether transparent huge pages are on for mappings that ask for them (madvise or always). */
static bool thp_enabled(void) {
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    char line[128] = "";
    if (f) {
        if (!fgets(line, sizeof line, f)) line[0] = 0;
        fclose(f);
    }
    return strstr(line, "[always]") || strstr(line, "[madvise]");
}

/* Reads the byte at p (faulting its page in). */
static void touch(const unsigned char *p) { (void)*(const volatile unsigned char *)p; }

/* Whether the 2 MB page at p (cached, not yet mapped) maps as one huge page when read. */
static bool maps_huge(const unsigned char *p) {
    long before = big_huge_kb(p, "FilePmdMapped");
    touch(p);
    return before >= 0 && big_huge_kb(p, "FilePmdMapped") > before;
}

/* Makes a large mapping at `at` (2 MB-aligned, map_aligned's) come in huge pages when the page
 * cache holds the file in small pieces: a file written by another program in small writes, or
 * read before through a mapping that did not ask for huge pages, stays cached as 4 KB pages and
 * keeps being mapped so. Eight 2 MB pages spread over the file are tested. When one is cached
 * but does not map as a huge page, it is dropped from the cache and read again through the
 * mapping (the kernel then reads it as one huge page where the filesystem allows); only when
 * that worked is the whole file dropped from the cache, to be read again from disk on first
 * use, in huge pages. Pages other processes have mapped stay as they are. Best effort: nothing
 * here fails the mapping. */
static void prefer_huge_pages(int fd, const unsigned char *at, size_t size) {
    enum { HUGE = 2 << 20, PAGE = 4096, SAMPLES = 8 };
    if (size < 4 * (size_t)HUGE || !thp_enabled()) return;
    size_t pages = size / HUGE;
    const unsigned char *small = NULL;
    for (int i = 0; i < SAMPLES && !small; i++) {
        const unsigned char *p = at + (pages * (size_t)(2 * i + 1) / (2 * SAMPLES)) * HUGE;
        unsigned char resident[HUGE / PAGE];
        if (mincore((void *)p, HUGE, resident) != 0) return;
        bool cached = true;
        for (size_t k = 0; k < sizeof resident; k++) cached &= resident[k] & 1;
        if (cached && !maps_huge(p)) small = p; /* (not cached: a first read comes in huge pages) */
    }
    if (!small) return;
    madvise((void *)small, HUGE, MADV_DONTNEED);
    if (posix_fadvise(fd, (off_t)(small - at), HUGE, POSIX_FADV_DONTNEED) != 0 || !maps_huge(small))
        return; /* this kernel or filesystem maps the file in small pages anyway */
    madvise((void *)at, size / PAGE * PAGE, MADV_DONTNEED);
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
}

qwen_status file_map_open(file_map *map, const char *path, qwen_error **err) {
    map->data = NULL;
    map->size = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return qwen_fail(err, QWEN_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return qwen_fail(err, QWEN_ERR_IO, "%s is not a regular file", path);
    }
    if (st.st_size > 0) {
        void *p = map_aligned(fd, (size_t)st.st_size);
        if (p == MAP_FAILED) {
            close(fd);
            return qwen_fail(err, QWEN_ERR_IO, "cannot map %s: %s", path, strerror(errno));
        }
        map->data = p;
        map->size = (size_t)st.st_size;
        if (((uintptr_t)p & ((2u << 20) - 1)) == 0) prefer_huge_pages(fd, p, map->size);
    }
    close(fd);
    return QWEN_OK;
}

void file_unmap(file_map *map) {
    if (map->data) munmap((void *)map->data, map->size);
    map->data = NULL;
    map->size = 0;
}

bool file_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

bool file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

char *path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    size_t n = a;
    if (a > 0 && dir[a - 1] != '/') p[n++] = '/';
    memcpy(p + n, name, b + 1);
    return p;
}

void file_map_release(const void *p, size_t size) {
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0 || !p) return;
    uintptr_t start = ((uintptr_t)p + (uintptr_t)page - 1) & ~((uintptr_t)page - 1), end = ((uintptr_t)p + size) & ~((uintptr_t)page - 1);
    if (end > start) madvise((void *)start, end - start, MADV_DONTNEED);
}
