/* file_map_open maps every byte of a file as it is, whatever its size: empty, under a page, not
 * a multiple of a page, and large files cached in small pieces (written here in 4 KB writes),
 * which the mapping may drop from the page cache and read again to get huge pages
 * (prefer_huge_pages in base/file.c); mapped twice over, as a reloaded model is. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/file.h"
#include "harness.h"

static unsigned char pattern(size_t i) { return (unsigned char)((i * 2654435761u) >> 13); }

/* Writes `size` bytes of the pattern to path in 4 KB writes. */
static void write_file(const char *path, size_t size) {
    FILE *f = fopen(path, "wb");
    REQUIRE(f, "cannot create %s", path);
    unsigned char buf[4096];
    for (size_t done = 0; done < size;) {
        size_t n = size - done < sizeof buf ? size - done : sizeof buf;
        for (size_t i = 0; i < n; i++) buf[i] = pattern(done + i);
        REQUIRE(fwrite(buf, 1, n, f) == n, "cannot write %s", path);
        done += n;
    }
    fclose(f);
}

static void check_map(const char *path, size_t size) {
    for (int round = 0; round < 2; round++) {
        file_map map;
        qwen_error *err = NULL;
        REQUIRE(file_map_open(&map, path, &err) == QWEN_OK, "mapping %zu bytes: %s", size, qwen_error_message(err));
        CHECK(map.size == size, "mapped size %zu, file has %zu", map.size, size);
        CHECK((map.data == NULL) == (size == 0), "%zu bytes: data %p", size, (const void *)map.data);
        size_t wrong = 0, first = 0;
        for (size_t i = 0; i < map.size; i++)
            if (map.data[i] != pattern(i) && !wrong++) first = i;
        CHECK(!wrong, "%zu-byte file, round %d: %zu bytes differ from the file, the first at %zu", size, round, wrong, first);
        file_unmap(&map);
        CHECK(map.data == NULL && map.size == 0, "unmapped");
    }
}

int main(void) {
    char dir[] = "/tmp/qwenc-file-XXXXXX";
    REQUIRE(mkdtemp(dir), "mkdtemp");
    char path[64];
    snprintf(path, sizeof path, "%s/f", dir);
    size_t sizes[] = { 0, 1, 4095, 4096, 65537, (size_t)12 << 20, ((size_t)24 << 20) + 123 };
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        write_file(path, sizes[s]);
        check_map(path, sizes[s]);
    }
    unlink(path);
    rmdir(dir);
    file_map map;
    qwen_error *err = NULL;
    CHECK(file_map_open(&map, "/nonexistent/qwenc-file", &err) != QWEN_OK && err, "a missing file is an error");
    qwen_error_free(err);
    return test_finish("file");
}
