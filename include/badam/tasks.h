/* SuperGLUE tasks (Wang et al., 2019, "SuperGLUE: A Stickier Benchmark for General-Purpose
 * Language Understanding Systems"): the official jsonl of BoolQ, CB, COPA, MultiRC, RTE, WiC and
 * WSC turned into text-level examples for an encoder (one segment, a segment pair, or a choice
 * set), the pair truncation encoders use, and the official metrics. This layer produces text, not
 * tokens: the encoder's tokenizer turns (text_a, text_b) into `[CLS] A [SEP] B [SEP]` or
 * `<s> A </s></s> B </s>`.
 *
 * Input format per task (docs/file-formats.md, "SuperGLUE task files"):
 *   boolq    A = question, B = passage; labels false, true.
 *   cb       A = premise, B = hypothesis; labels entailment, contradiction, neutral.
 *   rte      A = premise, B = hypothesis; labels entailment, not_entailment.
 *   wic      A = word + ": " + sentence1, B = sentence2, the target word marked in both sentences
 *            with '*' from the character spans start1/end1, start2/end2 (Python code-point
 *            offsets): "feel: You make me *feel* naked." | "She *felt* small and insignificant.";
 *            labels false, true.
 *   wsc      one segment: the text with span1 (the candidate referent) marked '*' and span2 (the
 *            pronoun) marked '#': "*Bob* paid for Charlie 's college education ... #He# is very
 *            hurt."; labels false, true.
 *   copa     multiple choice: A = premise + " What was the cause of this?" (question "cause") or
 *            " What happened as a result?" ("effect"), jiant's wording; choice i is the pair
 *            (A, choice<i+1>); the label is the index of the right choice (0 or 1).
 *   multirc  one binary example per answer option: A = paragraph, B = question + " " + answer;
 *            labels false, true; the examples of one question are consecutive and share a group
 *            (for exact match), and carry the file's passage, question and answer idx.
 * Labels follow the Hugging Face `super_glue` datasets' order. A record without its label (a test
 * set) gives label -1. */
#ifndef BADAM_TASKS_H
#define BADAM_TASKS_H

#include <stddef.h>
#include <stdint.h>

#include "badam/status.h"
#include "badam/tokenizer.h"

/* ---------------------------------------------------------------- tasks */

typedef enum task_kind {
    TASK_BOOLQ = 0,
    TASK_CB,
    TASK_COPA,
    TASK_MULTIRC,
    TASK_RTE,
    TASK_WIC,
    TASK_WSC,
} task_kind;

#define TASK_KIND_COUNT 7
#define TASK_MAX_LABELS 3  /* CB */
#define TASK_MAX_CHOICES 2 /* COPA */

/* Parses "boolq", "cb", "copa", "multirc", "rte", "wic" or "wsc" (ASCII case ignored, so the
 * SuperGLUE folder names "BoolQ", "MultiRC" also parse); anything else is BADAM_E_INVALID with a
 * message listing the known names. */
badam_status task_kind_parse(const char *name, task_kind *out, badam_error *err);
/* "boolq", ... (the --task spelling). */
const char *task_kind_name(task_kind kind);
/* The SuperGLUE folder name: "BoolQ", "CB", "COPA", "MultiRC", "RTE", "WiC", "WSC". */
const char *task_dir_name(task_kind kind);
/* Number of classes (COPA: of choices): 3 for CB, 2 for every other task. */
int task_num_labels(task_kind kind);
/* Name of label index `label` ("entailment", "true", "choice1", ...), NULL when out of range. */
const char *task_label_name(task_kind kind, int label);
/* 1 for COPA (examples are choice sets scored with one output per choice), 0 otherwise. */
int task_is_multiple_choice(task_kind kind);

/* ---------------------------------------------------------------- examples */

/* One example, all text UTF-8 and NUL-terminated, owned by its task_set.
 * Classification: the encoder input is (text_a, text_b), or text_a alone when text_b is NULL
 * (WSC); label is a class index. Multiple choice (COPA): text_b is NULL and input i is
 * (text_a, choices[i]) for i < n_choices; label is the index of the right choice. */
typedef struct task_example {
    char *text_a;
    char *text_b;
    char *choices[TASK_MAX_CHOICES];
    int n_choices; /* 0 for classification */
    int label;     /* in [0, task_num_labels), or -1 when the record has no label */
    long long idx; /* the record's "idx" (its 0-based record number when absent); MultiRC: the
                    * answer's idx */
    size_t group;  /* the question (0-based, in file order) this example answers; MultiRC's
                    * answers of one question share it, every other task has one per example */
    long long passage_idx, question_idx; /* MultiRC: the file's idx of both; -1 otherwise */
    size_t line;                         /* 1-based line of the record in the file */
} task_example;

typedef struct task_set {
    task_kind kind;
    task_example *examples;
    size_t n;
    size_t records;  /* JSON records read (MultiRC: passages) */
    size_t n_groups; /* questions (MultiRC); n for the other tasks */
    size_t labelled; /* examples with a label */
    size_t label_counts[TASK_MAX_LABELS];
    size_t spans_shifted; /* WSC: spans found near, not at, their index (see task_load) */
} task_set;

/* Reads a task's jsonl (one JSON object per line, or a JSON array of them), streamed record by
 * record. Fields per task are the official SuperGLUE ones (see the top of this file); a missing
 * or ill-typed field, an unknown label string, bad JSON or bad UTF-8, a WiC span outside its
 * sentence, or a WSC span whose text is not at (or within two words of) its index is
 * BADAM_E_FORMAT with "<file>: line <l> (record <r>): field '<name>': <why>". A file with no
 * record is an error. *out is released with task_set_free. */
badam_status task_load(task_kind kind, const char *path, task_set **out, badam_error *err);
void task_set_free(task_set *set);

/* ---------------------------------------------------------------- truncation */

/* How many tokens of each segment to keep so that len_a + len_b fits `budget` (the model's
 * maximum length less its special tokens: 3 for `[CLS] A [SEP] B [SEP]`, 4 for RoBERTa's
 * `<s> A </s></s> B </s>`), with the "longest_first" strategy of Hugging Face tokenizers
 * (tokenizers/src/utils/truncation.rs, what every *TokenizerFast does): nothing is cut when the
 * pair fits; when the shorter segment fits in half the budget it is kept whole and the longer one
 * gets the rest; otherwise both get half, the odd token going to the segment that was longer (to
 * the second on a tie). That is removing tokens from the longer segment until both are equal, then
 * from both in turn. Each segment keeps its first tokens (the end is cut). len_b = 0 is a single
 * segment: it keeps min(len_a, budget). Pure integer logic. */
void task_truncate_pair(size_t len_a, size_t len_b, size_t budget, size_t *keep_a, size_t *keep_b);

/* ---------------------------------------------------------------- metrics */

/* Predictions and gold labels are class indices (COPA: choice indices), n of each. Each function
 * needs n >= 1 and every value in range; task_score checks that for a task_set. */

/* Fraction of i with pred[i] == gold[i]. */
double task_accuracy(const int *pred, const int *gold, size_t n);
/* F1 of class c: 2 tp / (2 tp + fp + fn), 0 when tp + fp + fn = 0 (no item predicted or true),
 * which equals 2 P R / (P + R) with P = tp / (tp + fp), R = tp / (tp + fn) and 0 when undefined.
 * Macro-F1 is the mean over all n_classes classes (SuperGLUE's CB F1; sklearn's f1_score with
 * average="macro", labels=range(n_classes), zero_division=0). */
double task_class_f1(const int *pred, const int *gold, size_t n, int c);
double task_macro_f1(const int *pred, const int *gold, size_t n, int n_classes);
/* MultiRC's F1a: the F1 of class 1 (answer correct) over all answer options. */
double task_f1a(const int *pred, const int *gold, size_t n);
/* MultiRC's EM: the fraction of questions whose every answer option is predicted right. group[i]
 * is example i's question; the examples of one question must be consecutive (task_load gives
 * them so), each run of equal group ids being one question. */
double task_exact_match(const int *pred, const int *gold, const size_t *group, size_t n);

typedef struct task_scores {
    double accuracy; /* every task (MultiRC: over answer options) */
    double macro_f1; /* CB; NaN for the other tasks */
    double f1a, em;  /* MultiRC; NaN for the other tasks */
    double score;    /* SuperGLUE's task score: CB (accuracy + macro-F1) / 2, MultiRC
                      * (F1a + EM) / 2, accuracy otherwise */
    size_t n;        /* examples scored */
    size_t n_groups; /* questions scored */
} task_scores;

/* Scores pred[i] (one per example of set, in [0, task_num_labels)) against the set's labels.
 * BADAM_E_INVALID when a prediction is out of range, an example is unlabelled, the set is empty,
 * or a MultiRC question's examples are not consecutive. */
badam_status task_score(const task_set *set, const int *pred, task_scores *out, badam_error *err);
/* "accuracy 0.7000" / "accuracy 0.7000, macro-F1 0.5833" / "F1a 0.6000, EM 0.2500, accuracy
 * 0.6500" (the task's official metrics first). */
void task_scores_describe(task_kind kind, const task_scores *s, char *buf, size_t size);

/* ---------------------------------------------------------------- baseline and summary */

/* The most frequent label of the set's labelled examples (the smaller index on a tie), or -1 when
 * none is labelled. For COPA: the choice index most often right. */
int task_majority_label(const task_set *set);
/* The scores of predicting `label` for every example of set (the majority-class baseline when
 * label is task_majority_label of the training set). Errors as task_score. */
badam_status task_score_constant(const task_set *set, int label, task_scores *out,
                                 badam_error *err);
/* A few lines describing the set: records, examples, questions, the label distribution and the
 * majority baseline on the set itself (when labelled):
 *   "rte: 277 examples (277 records); labels: entailment 146, not_entailment 131;
 *    majority 'entailment': accuracy 0.5271" */
void task_set_describe(const task_set *set, char *buf, size_t size);

/* ---------------------------------------------------------------- batches */

/* Encoder batches of a task set (src/text/task_batch.c). Each example is tokenized once, at
 * creation, with tokenizer_encode_pair (special tokens added, "longest_first" truncation to
 * seq_len tokens in all): (text_a, text_b), text_a alone when text_b is NULL, and for a choice
 * set one row (text_a, choices[i]) per choice.
 *
 * Order: the units are the examples (a choice set is one unit of n_choices consecutive rows;
 * MultiRC's answer options are one unit each). Epoch e takes them in index order or, with
 * shuffle, in the Fisher-Yates permutation of the instruction batcher (badam/data.h: splitmix64
 * seeded with (seed, e)), cut into consecutive runs of batch_size units; the last batch of an
 * epoch may be smaller. Data parallel (n_ranks > 1): rank r takes units [U r / R, U (r + 1) / R)
 * of each global batch of U units, padded to the global batch's longest row, so the order of
 * global batches and every row do not depend on the number of ranks. */
typedef struct task_batch_options {
    int batch_size; /* units (examples; choice tasks: questions) per global batch */
    int seq_len;    /* the most tokens of one row, special tokens included */
    int shuffle;
    uint64_t seed;
    int rank, n_ranks; /* 0 or 1 ranks: one process */
    int32_t pad_id;    /* the model's pad_token_id (RoBERTa's positions count the others) */
} task_batch_options;

/* B rows of T tokens, right-padded with pad_id (type 0, pad_mask 0).
 * targets[u] (u < n_units) is the label of unit u (-100 when unlabelled): a class for
 * classification, the right choice's index for choice sets (n_choices > 0, B = n_units *
 * n_choices). example[u] is unit u's index in the task set. first_row is the index of row 0 in
 * the global batch (rows, not units). */
typedef struct task_batch {
    int B, T;
    int32_t *tokens, *token_types, *targets;
    uint8_t *pad_mask;
    int n_choices, n_units, n_targets, first_row;
    const size_t *example;
} task_batch;

typedef struct task_batcher task_batcher;

/* BADAM_E_INVALID for an empty set, batch_size < 1, seq_len below the tokenizer's special
 * tokens, a rank outside [0, n_ranks) or a choice set whose examples differ in n_choices;
 * tokenizer errors name the example's line. tok and set must outlive the batcher. */
badam_status task_batcher_create(const task_set *set, const badam_tokenizer *tok,
                                 const task_batch_options *opts, task_batcher **out,
                                 badam_error *err);
void task_batcher_free(task_batcher *b);
size_t task_batcher_batches_per_epoch(const task_batcher *b);
/* Units of the smallest global batch of an epoch. */
size_t task_batcher_smallest_batch(const task_batcher *b);
/* Rows a batch holds at most on this rank's share of batch_size units (n_choices per unit). */
int task_batcher_max_rows(const task_batcher *b);
/* Rows whose pair was cut to seq_len. */
size_t task_batcher_truncated(const task_batcher *b);
/* Fills the next batch (arrays owned by the batcher, valid until the next call). */
void task_batcher_next(task_batcher *b, task_batch *out);
/* Exact resume: (epoch, index of the next batch in it), as the instruction batcher. */
void task_batcher_get_state(const task_batcher *b, uint64_t *epoch, uint64_t *index);
badam_status task_batcher_set_state(task_batcher *b, uint64_t epoch, uint64_t index,
                                    badam_error *err);

#endif
