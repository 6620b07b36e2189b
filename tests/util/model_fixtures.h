/* Helpers shared by model tests: random models, batches from JSON, full gradient buffers. */
#ifndef BADAM_TEST_MODEL_FIXTURES_H
#define BADAM_TEST_MODEL_FIXTURES_H

#include "badam/llama.h"
#include "testutil.h"

/* A small config: C hidden, L layers, Hq/Hkv heads, vocab V; tied and bias flags as given. */
llama_config fixture_config(int C, int I, int L, int Hq, int Hkv, int V, int tied, int qkv_bias,
                            int o_bias);
/* Fills every parameter with N(0, scale) (norm weights 1 + 0.1 N(0,1)), in the model's dtype. */
void fixture_randomize(llama_model *m, test_rng *rng, float scale);
/* Random tokens and targets (about a quarter of targets -100, plus right padding when pad). */
void fixture_batch(test_rng *rng, int B, int T, int V, int pad, int32_t *tokens, int32_t *targets);

/* One fp32 buffer per parameter (all allocated); and the per-plan view of it. */
float **fixture_grads_alloc(const llama_model *m);
void fixture_grads_zero(const llama_model *m, float **grads);
void fixture_grads_free(const llama_model *m, float **grads);
/* grads restricted to flags (NULL where need_grad[i] is 0), in `view` (n_params pointers). */
void fixture_grads_view(const llama_model *m, float **grads, const uint8_t *need_grad,
                        float **view);

/* Runs forward + backward with `plan` (all computed gradients accumulated into grads, which is
 * zeroed first); returns the mean loss, or NAN on error (reported as a test failure). */
double fixture_train_step(const llama_model *m, llama_workspace *ws, const llama_batch *batch,
                          const llama_grad_plan *plan, float **grads);

/* Writes a random model (N(0, scale) weights) as a Hugging Face folder. */
int fixture_write_model(const char *dir, const llama_config *cfg, badam_dtype dtype, uint64_t seed,
                        float scale);
/* Writes n pre-tokenized JSONL examples of min_len..max_len tokens, a prompt masked with -100. */
int fixture_write_tokenized_data(const char *path, int n, int min_len, int max_len, int vocab,
                                 uint64_t seed);

#endif
