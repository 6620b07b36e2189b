/* badam demo --encoder (demo_encoder.c). */
#ifndef BADAM_CLI_DEMO_ENCODER_H
#define BADAM_CLI_DEMO_ENCODER_H

/* Fine-tunes the encoder model (a RobertaForMaskedLM folder) on data/demo/same_meaning_* with
 * BAdam and Adam, prints and writes OUT/encoder_demo.md; quick: 10 steps each. 0 on success. */
int demo_encoder_run(const char *model, const char *out, int quick);

#endif
