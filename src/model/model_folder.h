/* Writing a model's Hugging Face folder, shared by the Llama-family and encoder savers. */
#ifndef BADAM_MODEL_MODEL_FOLDER_H
#define BADAM_MODEL_MODEL_FOLDER_H

#include <stddef.h>

#include <jansson.h>

#include "badam/llama.h"
#include "io/safetensors.h"

/* Tensors of a folder that are not parameters of m and may be ignored (NULL: none may). */
typedef int (*model_ignorable_fn)(const llama_model *m, const char *name);

/* Fills every parameter of m (already created, storage in m->dtype) from the tensor of the same
 * HF name in set, converted to m->dtype. Errors (BADAM_E_SHAPE, naming the folder or file and
 * the tensor): a parameter missing from set, a tensor whose shape is not the parameter's, a
 * tensor of set that is neither a parameter nor ignorable. */
badam_status model_load_weights(llama_model *m, const st_set *set, const char *dir,
                                model_ignorable_fn ignorable, badam_error *err);

/* The transformers name of a weight dtype: "float32", "bfloat16", else "float16". */
const char *model_torch_dtype_name(badam_dtype dtype);

/* Writes out_dir/config.json: with src_dir, src_dir/config.json as it is but for the weights'
 * dtype, which set_dtype(json, m->dtype) records; without, fresh(&m->cfg, m->dtype). Errors:
 * those of reading and writing the files. */
typedef json_t *(*model_config_json_fn)(const llama_config *cfg, badam_dtype dtype);
typedef void (*model_set_dtype_fn)(json_t *config, badam_dtype dtype);
badam_status model_write_config(const llama_model *m, const char *src_dir, const char *out_dir,
                                model_config_json_fn fresh, model_set_dtype_fn set_dtype,
                                badam_error *err);

/* Creates out_dir (if missing) and writes every parameter of m under its HF name, shape and
 * m->dtype as safetensors (st_write_dir: shards of at most max_shard_bytes, with an index when
 * there is more than one), in parameter order, the bytes read through m->save_fetch when set.
 * Errors: BADAM_E_NOMEM, and those of io_make_dir / st_write_dir. */
badam_status model_write_weights(const llama_model *m, const char *out_dir, size_t max_shard_bytes,
                                 badam_error *err);

/* Copies each of the n file names present in src_dir to out_dir, in order; a missing one is
 * skipped, and so is one whose source and destination paths are the same text. Stops at the
 * first error (io_optional_file / io_copy_file). */
badam_status model_copy_companions(const char *src_dir, const char *out_dir,
                                   const char *const *files, size_t n, badam_error *err);

#endif
