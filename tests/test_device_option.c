/* --device on the command line (badam/device.h): an unknown device is refused by name; "cuda"
 * without the CUDA build or without a GPU stops with an error saying which, before any output or
 * run folder; LoRA on cuda is refused by name; "cpu" is the default and works; generate and eval
 * refuse --device cuda on every machine (decoding and evaluation run on the CPU) and take cpu. With
 * a GPU (and the CUDA build) the cuda cases are skipped: test_cuda_model and
 * scripts/device_check.sh cover them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/cuda/cuda_backend.h"
#include "testutil.h"

static char g_out[2048];

static int badam(const char *args, char *output, size_t size) {
    return test_run_cli(g_out, NULL, args, output, size);
}

static void test_unknown_device(void) {
    char buf[8192];
    int rc = badam("plan --model models/tiny-random-llama --device tpu", buf, sizeof buf);
    CHECKF(rc != 0 && strstr(buf, "'tpu' is not a device (cpu or cuda)"), "rc %d: %s", rc, buf);
    rc =
        badam("plan --model models/tiny-random-llama --device cpu --method badam", buf, sizeof buf);
    CHECKF(rc == 0 && strstr(buf, "badam"), "rc %d: %s", rc, buf);
    /* LoRA's adapters are host memory: refused on cuda by name, whatever the machine */
    char args[4096];
    snprintf(args, sizeof args,
             "train --device cuda --method lora --model models/tiny-random-llama --data x.json "
             "--out %s/lora",
             g_out);
    rc = badam(args, buf, sizeof buf);
    CHECKF(rc != 0 && strstr(buf, "--method lora is not supported on cuda"), "rc %d: %s", rc, buf);
}

/* Without a usable GPU: train and plan refuse --device cuda with the reason. */
static void test_cuda_refused(void) {
    size_t f, t;
    badam_error err = {0};
    if (!backend_cuda_mem_info(&f, &t, NULL, 0, &err)) {
        printf("a GPU is here: the refusal is not tested\n");
        return;
    }
    const char *why = backend_cuda_built() ? "no CUDA GPU found" : "built without CUDA";
    char buf[8192], args[4096];
    int rc = badam("plan --model models/tiny-random-llama --device cuda", buf, sizeof buf);
    CHECKF(rc != 0 && strstr(buf, why) && !strstr(buf, "weights"), "plan rc %d: %s", rc, buf);
    snprintf(args, sizeof args,
             "train --device cuda --model models/tiny-random-llama --data nonexistent.json "
             "--out %s/run",
             g_out);
    rc = badam(args, buf, sizeof buf);
    CHECKF(rc != 0 && strstr(buf, why), "train rc %d: %s", rc, buf);
}

/* generate and eval: cuda refused with what is not supported, cpu accepted. */
static void test_generate_eval(void) {
    char buf[8192];
    int rc = badam("generate --model models/tiny-random-llama --prompt hi --device cuda", buf,
                   sizeof buf);
    CHECKF(rc != 0 && strstr(buf, "cuda is not supported here yet: decoding"), "rc %d: %s", rc,
           buf);
    rc =
        badam("eval --model models/tiny-random-llama --data x.json --device cuda", buf, sizeof buf);
    CHECKF(rc != 0 && strstr(buf, "cuda is not supported here yet"), "rc %d: %s", rc, buf);
    rc = badam("eval --model models/tiny-random-llama --data x.json --device tpu", buf, sizeof buf);
    CHECKF(rc != 0 && strstr(buf, "'tpu' is not a device"), "rc %d: %s", rc, buf);
    rc = badam("generate --model models/tiny-random-llama --prompt hi --max-new-tokens 2 --device "
               "cpu",
               buf, sizeof buf);
    CHECKF(rc == 0, "generate --device cpu: rc %d: %s", rc, buf);
}

int main(void) {
    if (!getenv("BADAM_CLI") || !getenv("BADAM_SOURCE_DIR")) {
        fprintf(stderr, "SKIP: run through ctest (BADAM_CLI, BADAM_SOURCE_DIR)\n");
        return TEST_SKIP_CODE;
    }
    snprintf(g_out, sizeof g_out, "%s", test_workdir("device-option"));
    RUN_TEST(test_unknown_device);
    RUN_TEST(test_cuda_refused);
    RUN_TEST(test_generate_eval);
    return test_result();
}
