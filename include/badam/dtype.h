/* Element types of stored tensors and the conversions between them. Compute is fp32. */
#ifndef BADAM_DTYPE_H
#define BADAM_DTYPE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef enum badam_dtype {
    BADAM_DTYPE_F32 = 0,
    BADAM_DTYPE_BF16,
    BADAM_DTYPE_F16,
} badam_dtype;

size_t badam_dtype_size(badam_dtype dtype);
/* Safetensors spelling: "F32", "BF16", "F16". */
const char *badam_dtype_name(badam_dtype dtype);
/* Returns 0 and sets *out on a known name ("F32"/"BF16"/"F16", also
 * "float32"/"bfloat16"/"float16"). */
int badam_dtype_parse(const char *name, badam_dtype *out);

/* bf16 is the top half of an IEEE fp32. fp32 -> bf16 rounds to nearest even; NaN stays NaN. */
static inline float badam_bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static inline uint16_t badam_f32_to_bf16(float f) {
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    if ((bits & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((bits >> 16) | 0x0040u); /* quiet NaN */
    uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);
    return (uint16_t)((bits + rounding) >> 16);
}

float badam_f16_to_f32(uint16_t h);
uint16_t badam_f32_to_f16(float f);

/* Converts n elements between any two dtypes (src and dst must not overlap). */
void badam_convert(void *dst, badam_dtype dst_dtype, const void *src, badam_dtype src_dtype,
                   size_t n);

#endif
