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
 * bf16), compiled per CPU path: the same bits as badam_bf16_to_f32 and badam_f32_to_bf16 element
 * by element (tests/test_cpu.c checks all 65536 bf16 values, odd lengths and offsets).
 *
 * bf16 -> fp32 is bits(f) = h << 16: no rounding, so NaN payloads, infinities and subnormals pass
 * through unchanged. GCC -O2 does not vectorise the scalar loop, so the x86 paths widen
 * explicitly: zero-extend 16-bit lanes to 32 (vpmovzxwd) and shift left by 16, 16 values per
 * step (AVX2: two 8-lane halves; AVX-512: one 16-lane register, the tail under a mask); the
 * baseline path interleaves zero words below each value (SSE2 punpcklwd/punpckhwd, 8 per step). */
static void bf16_to_f32_scalar(float *restrict dst, const uint16_t *restrict src, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t bits = (uint32_t)src[i] << 16;
        memcpy(&dst[i], &bits, sizeof bits);
    }
}
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>
CPU_TARGET_AVX512 static void bf16_to_f32_avx512(float *restrict dst, const uint16_t *restrict src,
                                                 size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(src + i)));
        _mm512_storeu_si512(dst + i, _mm512_slli_epi32(w, 16));
    }
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        __m512i w = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, src + i));
        _mm512_mask_storeu_epi32(dst + i, m, _mm512_slli_epi32(w, 16));
    }
}
CPU_TARGET_AVX2 static void bf16_to_f32_avx2(float *restrict dst, const uint16_t *restrict src,
                                             size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i lo = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(src + i)));
        __m256i hi = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(src + i + 8)));
        _mm256_storeu_si256((__m256i *)(dst + i), _mm256_slli_epi32(lo, 16));
        _mm256_storeu_si256((__m256i *)(dst + i + 8), _mm256_slli_epi32(hi, 16));
    }
    bf16_to_f32_scalar(dst + i, src + i, n - i);
}
static void bf16_to_f32_portable(float *restrict dst, const uint16_t *restrict src, size_t n) {
    size_t i = 0;
    const __m128i zero = _mm_setzero_si128();
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm_loadu_si128((const __m128i *)(src + i));
        _mm_storeu_si128((__m128i *)(dst + i), _mm_unpacklo_epi16(zero, h));
        _mm_storeu_si128((__m128i *)(dst + i + 4), _mm_unpackhi_epi16(zero, h));
    }
    bf16_to_f32_scalar(dst + i, src + i, n - i);
}
static void bf16_to_f32(float *restrict dst, const uint16_t *restrict src, size_t n) {
    CPU_VARIANT_PICK_(bf16_to_f32, (dst, src, n), )
}
#else
static void bf16_to_f32(float *restrict dst, const uint16_t *restrict src, size_t n) {
    (void)cpu_dispatch_path();
    bf16_to_f32_scalar(dst, src, n);
}
#endif

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
