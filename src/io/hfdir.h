/* Hugging Face model directories and the local hub cache. */
#ifndef QWENC_IO_HFDIR_H
#define QWENC_IO_HFDIR_H

#include "qwenc.h"

/* Resolves what a user passed as -m: an existing directory is used as is; otherwise `Org/Name`
 * (optionally `Org/Name@revision`) is looked up in the hub cache ($HF_HUB_CACHE, else
 * $HF_HOME/hub, else ~/.cache/huggingface/hub) as models--Org--Name/snapshots/<rev>, with <rev>
 * read from refs/<revision or main>. Returns a malloc'ed directory path, or NULL with *err saying
 * where it looked. */
char *hf_resolve_model_dir(const char *spec, qwen_error **err);

/* The models in the hub cache: calls fn(user, repo id "Org/Name", its directory as
 * hf_resolve_model_dir resolves it) for each models--Org--Name that has a snapshot, in name order.
 * Returns how many, or -1 with *err when the cache directory cannot be read (a cache that does not
 * exist yet holds 0). `cache` (may be NULL) receives the cache directory searched (malloc'ed). */
typedef void (*hf_model_fn)(void *user, const char *repo, const char *dir);
int hf_list_models(hf_model_fn fn, void *user, char **cache, qwen_error **err);

#endif
