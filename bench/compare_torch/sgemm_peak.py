"""fp32 sgemm speed of the OpenBLAS badam links (the OpenMP build), on one GEMM shape: the
denominator of compare_torch's "% of sgemm" column. Prints one JSON object.

Y[M,N] = X[M,K] W[N,K]^T (what a linear layer computes; 2MNK flops), cblas_sgemm row-major;
the best of `rounds` rounds of about seconds/rounds each, after one warm-up call.

usage: sgemm_peak.py M,K,N [--seconds S] [--lib PATH]
"""
import argparse
import ctypes
import json
import time

import numpy as np

LIB = "/usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("shape")
    ap.add_argument("--seconds", type=float, default=1.5)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--lib", default=LIB)
    a = ap.parse_args()
    M, K, N = (int(v) for v in a.shape.split(","))
    blas = ctypes.CDLL(a.lib)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((M, K), dtype=np.float32)
    w = rng.standard_normal((N, K), dtype=np.float32)
    y = np.empty((M, N), dtype=np.float32)
    p = lambda t: t.ctypes.data_as(ctypes.c_void_p)  # noqa: E731
    f = ctypes.c_float
    row_major, no_trans, trans = 101, 111, 112

    def call():
        blas.cblas_sgemm(row_major, no_trans, trans, M, N, K, f(1.0), p(x), K, p(w), K, f(0.0),
                         p(y), N)

    call()
    assert np.allclose(y[:2, :2], x[:2] @ w[:2].T, rtol=1e-3, atol=1e-3), "sgemm result wrong"
    best = 0.0
    for _ in range(a.rounds):
        n, t0 = 0, time.perf_counter()
        while n < 2 or time.perf_counter() - t0 < a.seconds / a.rounds:
            call()
            n += 1
        best = max(best, 2.0 * M * N * K * n / (time.perf_counter() - t0) / 1e9)
    print(json.dumps({"sgemm_gflops": best, "lib": a.lib, "shape": [M, K, N]}))


if __name__ == "__main__":
    main()
