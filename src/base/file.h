/* Files: read whole small files, memory-map large ones. */
#ifndef QWENC_BASE_FILE_H
#define QWENC_BASE_FILE_H

#include <stddef.h>
#include <stdio.h>
#include <stdbool.h>
#include "qwenc.h"

/* Reads all of an open stream into a malloc'ed, NUL-terminated buffer (*len excludes the NUL).
 * Returns NULL when out of memory. */
char *file_read_stream(FILE *f, size_t *len);

/* Reads a whole file into a malloc'ed, NUL-terminated buffer (*len excludes the NUL).
 * Returns NULL and sets *err (naming the path) when it cannot be read. */
char *file_read_all(const char *path, size_t *len, qwen_error **err);

/* A read-only memory mapping of a whole file. */
typedef struct file_map {
    const unsigned char *data; /* the file's bytes, or NULL for an empty file */
    size_t size;
} file_map;

/* Maps `path` read-only. Returns non-zero and sets *err on failure. Unmap with file_unmap(). */
qwen_status file_map_open(file_map *map, const char *path, qwen_error **err);
void file_unmap(file_map *map);
/* Tells the kernel this process no longer needs the mapped pages wholly inside [p, p + size) (a
 * range of a file_map): they leave its resident set, and come back from the file if read again. */
void file_map_release(const void *p, size_t size);

bool file_is_dir(const char *path);
bool file_exists(const char *path);

/* Joins a directory and a name into a malloc'ed path. */
char *path_join(const char *dir, const char *name);

#endif
