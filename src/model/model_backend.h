/* The model on a backend its caller chooses: the trainer makes one backend per run and builds
 * the workspace on it (and the method's optimizer state, optim/method.h), so a test can run a
 * whole training step on a backend of its own (tests/util/mprotect_backend.h). */
#ifndef BADAM_MODEL_MODEL_BACKEND_H
#define BADAM_MODEL_MODEL_BACKEND_H

#include "badam/llama.h"
#include "model/backend.h"

/* llama_workspace_create on a given backend `be` (the workspace does not own it; it must outlive
 * the workspace). llama_workspace_create is this on a CPU backend of its own. Errors as
 * llama_workspace_create's. */
badam_status llama_workspace_create_on(const llama_model *m, int B, int T, backend *be,
                                       llama_workspace **out, badam_error *err);

#endif
