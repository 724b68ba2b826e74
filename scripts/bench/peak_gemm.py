"""Single-precision peak of this CPU, measured with OpenBLAS sgemm (numpy).

    python peak_gemm.py THREADS   (set OPENBLAS_NUM_THREADS before importing numpy)
"""
import json
import os
import sys
import time

threads = sys.argv[1] if len(sys.argv) > 1 else "1"
os.environ["OPENBLAS_NUM_THREADS"] = threads
os.environ["OMP_NUM_THREADS"] = threads
import numpy as np  # noqa: E402

n = 2048
a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
b = np.random.default_rng(1).standard_normal((n, n), dtype=np.float32)
a @ b
best = float("inf")
for _ in range(5):
    t = time.perf_counter()
    a @ b
    best = min(best, time.perf_counter() - t)
print(json.dumps({"threads": int(threads), "gflops": 2 * n**3 / best / 1e9}))
