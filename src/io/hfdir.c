#include "io/hfdir.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/file.h"

static char *hub_cache_dir(void) {
    const char *v = getenv("HF_HUB_CACHE");
    if (v && *v) return strdup(v);
    v = getenv("HF_HOME");
    if (v && *v) return path_join(v, "hub");
    v = getenv("HOME");
    if (!v) return NULL;
    return path_join(v, ".cache/huggingface/hub");
}

char *hf_resolve_model_dir(const char *spec, qwen_error **err) {
    if (!spec || !*spec) {
        qwen_fail(err, QWEN_ERR_INVALID_ARG, "no model given: pass a model directory or a hub repo id");
        return NULL;
    }
    if (file_is_dir(spec)) return strdup(spec);
    const char *slash = strchr(spec, '/');
    if (!slash || slash == spec || spec[0] == '.' || strchr(slash + 1, '/')) {
        qwen_fail(err, QWEN_ERR_IO, "model directory '%s' not found", spec);
        return NULL;
    }
    char repo[512], revision[256] = "main";
    snprintf(repo, sizeof repo, "%s", spec);
    char *at = strchr(repo, '@');
    if (at) {
        snprintf(revision, sizeof revision, "%s", at + 1);
        *at = 0;
    }
    char *cache = hub_cache_dir();
    if (!cache) {
        qwen_fail(err, QWEN_ERR_IO, "model '%s' not found: no directory of that name and no HOME for the hub cache", spec);
        return NULL;
    }
    char name[600];
    snprintf(name, sizeof name, "models--%s", repo);
    for (char *p = name; *p; p++)
        if (*p == '/') { memmove(p + 2, p + 1, strlen(p + 1) + 1); p[0] = '-'; p[1] = '-'; break; }
    char *model_dir = path_join(cache, name);
    char *result = NULL;
    char sub[1024];
    /* A revision may be a ref name (refs/<rev> holds the commit) or a commit hash itself. */
    snprintf(sub, sizeof sub, "%s/refs/%s", model_dir, revision);
    char *commit = file_exists(sub) ? file_read_all(sub, NULL, NULL) : NULL;
    if (commit) commit[strcspn(commit, " \r\n")] = 0;
    snprintf(sub, sizeof sub, "%s/snapshots/%s", model_dir, commit ? commit : revision);
    if (file_is_dir(sub)) {
        result = strdup(sub);
    } else if (!at) {
        /* No ref file: take the snapshot if there is exactly one. */
        snprintf(sub, sizeof sub, "%s/snapshots", model_dir);
        DIR *d = opendir(sub);
        struct dirent *de;
        int found = 0;
        char only[512] = "";
        while (d && (de = readdir(d))) {
            if (de->d_name[0] == '.') continue;
            found++;
            snprintf(only, sizeof only, "%s", de->d_name);
        }
        if (d) closedir(d);
        if (found == 1) {
            snprintf(sub, sizeof sub, "%s/snapshots/%s", model_dir, only);
            result = strdup(sub);
        }
    }
    if (!result)
        qwen_fail(err, QWEN_ERR_IO, "model '%s' not found: not a directory, and not in the Hugging Face cache at %s "
                  "(download it with `huggingface-cli download %s`)", spec, model_dir, repo);
    free(commit);
    free(model_dir);
    free(cache);
    return result;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int hf_list_models(hf_model_fn fn, void *user, char **cache_out, qwen_error **err) {
    char *cache = hub_cache_dir();
    if (cache_out) *cache_out = cache ? strdup(cache) : NULL;
    if (!cache) return 0;
    DIR *d = opendir(cache);
    if (!d) {
        bool missing = !file_exists(cache);
        if (!missing) qwen_fail(err, QWEN_ERR_IO, "cannot read the Hugging Face cache at %s", cache);
        free(cache);
        return missing ? 0 : -1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    for (struct dirent *de; (de = readdir(d));) {
        if (strncmp(de->d_name, "models--", 8) || !strstr(de->d_name + 8, "--")) continue;
        if (n == cap) {
            char **grown = realloc(names, (cap = cap ? 2 * cap : 16) * sizeof *names);
            if (!grown) break;
            names = grown;
        }
        if ((names[n] = strdup(de->d_name))) n++;
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, by_name);
    int found = 0;
    for (size_t i = 0; i < n; i++) {
        char repo[600];
        snprintf(repo, sizeof repo, "%s", names[i] + 8); /* "Org--Name" -> "Org/Name" at the first "--" */
        char *sep = strstr(repo, "--");
        memmove(sep + 1, sep + 2, strlen(sep + 2) + 1);
        *sep = '/';
        char *dir = hf_resolve_model_dir(repo, NULL);
        if (dir) {
            fn(user, repo, dir);
            found++;
        }
        free(dir);
        free(names[i]);
    }
    free(names);
    free(cache);
    return found;
}
