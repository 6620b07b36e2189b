#include "badam/dtype.h"

#include <math.h>
#include <strings.h>

#include "base/cpu_dispatch.h"

size_t badam_dtype_size(badam_dtype dtype) {
    return dtype == BADAM_DTYPE_F32 ? 4 : 2;
}

const char *badam_dtype_name(badam_dtype dtype) {
    switch (dtype) {
    case BADAM_DTYPE_F32:
        return "F32";
    case BADAM_DTYPE_BF16:
        return "BF16";
    case BADAM_DTYPE_F16:
        return "F16";
    }
    return "?";
}

int badam_dtype_parse(const char *name, badam_dtype *out) {
    if (!strcmp(name, "F32") || !strcasecmp(name, "float32"))
        *out = BADAM_DTYPE_F32;
    else if (!strcmp(name, "BF16") || !strcasecmp(name, "bfloat16"))
        *out = BADAM_DTYPE_BF16;
    else if (!strcmp(name, "F16") || !strcasecmp(name, "float16"))
        *out = BADAM_DTYPE_F16;
    else
        return -1;
    return 0;
}

/* IEEE half: 1 sign, 5 exponent (bias 15), 10 mantissa bits. */
float badam_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    uint32_t bits;
    if (exp == 0) {
        float f = ldexpf((float)mant, -24); /* zero or subnormal */
        return sign ? -f : f;
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 112) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* Round to nearest even, overflow to infinity, subnormals kept. */
uint16_t badam_f32_to_f16(float f) {
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    uint16_t sign = (uint16_t)((bits >> 16) & 0x8000u);
    uint32_t abs = bits & 0x7fffffffu;
    if (abs > 0x7f800000u) return sign | 0x7e00u;
    if (abs >= 0x477ff000u) return sign | 0x7c00u; /* >= 65520 rounds to inf */
    if (abs < 0x38800000u) {                       /* below smallest normal half */
        float a;
        memcpy(&a, &abs, sizeof a);
        float scaled = a * 16777216.0f; /* 2^24: units of the smallest subnormal */
        return sign | (uint16_t)lrintf(scaled);
    }
    uint32_t mant_round = abs + 0xfffu + ((abs >> 13) & 1u);
    return sign | (uint16_t)((mant_round - 0x38000000u) >> 13);
}

/* The two conversions every bf16 model does in bulk (weights to fp32 for GEMMs, masters back to
 * bf16), as branch-free loops compiled per CPU path: the same bits as badam_bf16_to_f32 and
 * badam_f32_to_bf16 element by element. */
CPU_BODY void bf16_to_f32_body(float *restrict dst, const uint16_t *restrict src, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t bits = (uint32_t)src[i] << 16;
        memcpy(&dst[i], &bits, sizeof bits);
    }
}
CPU_VARIANTS_VOID(bf16_to_f32, (float *restrict dst, const uint16_t *restrict src, size_t n),
                  (dst, src, n))

CPU_BODY void f32_to_bf16_body(uint16_t *restrict dst, const float *restrict src, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &src[i], sizeof bits);
        uint16_t rounded = (uint16_t)((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
        dst[i] = (bits & 0x7fffffffu) > 0x7f800000u ? (uint16_t)((bits >> 16) | 0x0040u) : rounded;
    }
}
CPU_VARIANTS_VOID(f32_to_bf16, (uint16_t *restrict dst, const float *restrict src, size_t n),
                  (dst, src, n))

void badam_convert(void *dst, badam_dtype dst_dtype, const void *src, badam_dtype src_dtype,
                   size_t n) {
    if (dst_dtype == src_dtype) {
        memcpy(dst, src, n * badam_dtype_size(src_dtype));
        return;
    }
    if (src_dtype == BADAM_DTYPE_BF16 && dst_dtype == BADAM_DTYPE_F32) {
        bf16_to_f32(dst, src, n);
        return;
    }
    if (src_dtype == BADAM_DTYPE_F32 && dst_dtype == BADAM_DTYPE_BF16) {
        f32_to_bf16(dst, src, n);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        float x;
        switch (src_dtype) {
        case BADAM_DTYPE_F32:
            x = ((const float *)src)[i];
            break;
        case BADAM_DTYPE_BF16:
            x = badam_bf16_to_f32(((const uint16_t *)src)[i]);
            break;
        default:
            x = badam_f16_to_f32(((const uint16_t *)src)[i]);
            break;
        }
        switch (dst_dtype) {
        case BADAM_DTYPE_F32:
            ((float *)dst)[i] = x;
            break;
        case BADAM_DTYPE_BF16:
            ((uint16_t *)dst)[i] = badam_f32_to_bf16(x);
            break;
        default:
            ((uint16_t *)dst)[i] = badam_f32_to_f16(x);
            break;
        }
    }
}
