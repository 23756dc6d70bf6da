/* qwenc list: the models in the Hugging Face hub cache, as Ollama's `list` shows its own. */
#include <dirent.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "io/hfdir.h"

/* Bytes of the files under `dir` (links followed, as a snapshot's files link to the cache's blobs),
 * `depth` levels of subdirectories deep. */
static unsigned long long dir_bytes(const char *dir, int depth) {
    unsigned long long total = 0;
    DIR *d = opendir(dir);
    for (struct dirent *de; d && (de = readdir(d));) {
        if (de->d_name[0] == '.') continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        struct stat st;
        if (stat(path, &st) != 0) continue;
        if (S_ISREG(st.st_mode)) total += (unsigned long long)st.st_size;
        else if (S_ISDIR(st.st_mode) && depth > 0) total += dir_bytes(path, depth - 1);
    }
    if (d) closedir(d);
    return total;
}

static void print_model(void *user, const char *repo, const char *dir) {
    (void)user;
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    json_t *cfg = json_load_file(path, 0, NULL);
    const char *type = cfg ? json_string_value(json_object_get(cfg, "model_type")) : NULL;
    static const char *const supported[] = { "qwen2", "qwen3", "qwen2_moe", "qwen3_moe" };
    bool ok = false;
    for (size_t i = 0; type && i < sizeof supported / sizeof *supported; i++) ok |= !strcmp(type, supported[i]);
    printf("%-40s %-12s %8.2f GB  %s%s\n", repo, type ? type : "?", dir_bytes(dir, 2) / 1e9, dir,
           ok ? "" : type ? "  (not a model qwenc runs)" : "  (no config.json)");
    json_decref(cfg);
}

int cmd_list(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: qwenc list\n\n"
                   "Lists the models in the Hugging Face hub cache ($HF_HUB_CACHE, else $HF_HOME/hub, else\n"
                   "~/.cache/huggingface/hub): the repo ids that -m takes, their model type, size and snapshot.\n");
            return 0;
        }
        fprintf(stderr, "qwenc list: unknown option '%s'\n", argv[i]);
        return 2;
    }
    qwen_error *err = NULL;
    char *cache = NULL;
    printf("%-40s %-12s %11s  %s\n", "REPO", "TYPE", "SIZE", "SNAPSHOT");
    int n = hf_list_models(print_model, NULL, &cache, &err);
    if (n < 0) { free(cache); return cli_fail("list", err); }
    if (n == 0) fprintf(stderr, "qwenc list: no models in the Hugging Face cache at %s (download one with `huggingface-cli download Qwen/Qwen3-0.6B`)\n",
                        cache ? cache : "(no HOME)");
    free(cache);
    return 0;
}
