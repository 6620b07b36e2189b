/* Pair truncation for encoder inputs (task_truncate_pair, include/badam/tasks.h).
 *
 * Hugging Face tokenizers' "longest_first" (tokenizers/src/utils/truncation.rs), for segments of
 * n_a and n_b tokens and a budget L with n_a + n_b > L: let s = min(n_a, n_b) be the shorter and
 * the other the longer (n_a is the shorter on a tie);
 *   s <= L - s:  the shorter keeps s, the longer keeps L - s;
 *   otherwise:   the shorter keeps floor(L / 2), the longer keeps floor(L / 2) + L mod 2.
 * This is what removing one token at a time from the longer segment (from the second on a tie)
 * gives, except that the odd token of the second case always goes to the originally longer one.
 * Transformers' slow (Python) tokenizers break that tie by one token differently; the fast ones
 * (every *TokenizerFast, which run_glue uses) do this. */
#include "badam/tasks.h"

void task_truncate_pair(size_t len_a, size_t len_b, size_t budget, size_t *keep_a, size_t *keep_b) {
    if (len_a + len_b <= budget) {
        *keep_a = len_a;
        *keep_b = len_b;
        return;
    }
    if (len_b == 0) { /* a single segment */
        *keep_a = budget;
        *keep_b = 0;
        return;
    }
    int swap = len_a > len_b;
    size_t shorter = swap ? len_b : len_a, longer;
    if (shorter <= budget - (shorter < budget ? shorter : budget)) {
        longer = budget - shorter;
    } else {
        shorter = budget / 2;
        longer = budget / 2 + budget % 2;
    }
    *keep_a = swap ? longer : shorter;
    *keep_b = swap ? shorter : longer;
}
