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

/* Split master: the fp32 master p of a bf16 weight kept as the bf16 weight itself plus the low
 * 16 bits of p, 2 bytes per parameter instead of 4, losing nothing. With u = bits(p):
 *   weight = (u + 0x8000) >> 16     (round to nearest, ties away from zero: RNE but for exact ties)
 *   lo     = u & 0xffff
 * and since weight = (u >> 16) + (lo >= 0x8000), p is rebuilt exactly as
 *   u = ((weight - (lo >> 15)) << 16) | lo. */
static inline float badam_master_join(uint16_t weight, uint16_t lo) {
    uint32_t u = ((uint32_t)(uint16_t)(weight - (lo >> 15)) << 16) | lo;
    float p;
    __builtin_memcpy(&p, &u, sizeof p);
    return p;
}
static inline void badam_master_split(float p, uint16_t *weight, uint16_t *lo) {
    uint32_t u;
    __builtin_memcpy(&u, &p, sizeof u);
    *weight = (uint16_t)((u + 0x8000u) >> 16);
    *lo = (uint16_t)(u & 0xffffu);
}

float badam_f16_to_f32(uint16_t h);
uint16_t badam_f32_to_f16(float f);

/* Converts n elements between any two dtypes (src and dst must not overlap). */
void badam_convert(void *dst, badam_dtype dst_dtype, const void *src, badam_dtype src_dtype,
                   size_t n);

#endif
