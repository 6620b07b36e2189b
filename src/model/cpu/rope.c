/* Rotary position embedding, Hugging Face rotate_half convention (ops.h states the math). */
#include "model/cpu/ops.h"

#include <math.h>

void rope_tables(float *cos_t, float *sin_t, const float *inv_freq, int T, int half) {
#pragma omp parallel for
    for (int p = 0; p < T; p++) {
        for (int i = 0; i < half; i++) {
            double angle = (double)p * inv_freq[i];
            cos_t[(size_t)p * half + i] = (float)cos(angle);
            sin_t[(size_t)p * half + i] = (float)sin(angle);
        }
    }
}

/* Rotates every head of every row by +angle (sign = 1) or -angle (sign = -1). */
static void rope_rotate(float *x, const int32_t *pos, const float *cos_t, const float *sin_t, int n,
                        int n_heads, int head_dim, float sign) {
    int half = head_dim / 2;
#pragma omp parallel for
    for (int r = 0; r < n; r++) {
        const float *c = cos_t + (size_t)pos[r] * half;
        const float *s = sin_t + (size_t)pos[r] * half;
        for (int h = 0; h < n_heads; h++) {
            float *xh = x + ((size_t)r * n_heads + h) * head_dim;
            for (int i = 0; i < half; i++) {
                float a = xh[i], b = xh[i + half], si = sign * s[i];
                xh[i] = a * c[i] - b * si;
                xh[i + half] = b * c[i] + a * si;
            }
        }
    }
}

void rope_forward(float *x, const int32_t *pos, const float *cos_t, const float *sin_t, int n,
                  int n_heads, int head_dim) {
    rope_rotate(x, pos, cos_t, sin_t, n, n_heads, head_dim, 1.0f);
}

void rope_backward(float *dx, const int32_t *pos, const float *cos_t, const float *sin_t, int n,
                   int n_heads, int head_dim) {
    rope_rotate(dx, pos, cos_t, sin_t, n, n_heads, head_dim, -1.0f);
}
