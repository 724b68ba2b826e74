"""Time one tile of an ONNX model in onnxruntime.

    python ort_tile.py MODEL.onnx EDGE THREADS TILES
"""
import json
import sys
import time

import numpy as np
import onnxruntime as ort

model, edge, threads, tiles = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
opts = ort.SessionOptions()
opts.intra_op_num_threads = threads
opts.inter_op_num_threads = 1
opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
s = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
x = np.random.default_rng(0).uniform(-1, 1, (1, 1, edge, edge, edge)).astype(np.float32)
t = time.perf_counter()
s.run(None, {"image": x})
first = time.perf_counter() - t
t = time.perf_counter()
for _ in range(tiles):
    s.run(None, {"image": x})
per = (time.perf_counter() - t) / tiles
print(json.dumps({"threads": threads, "seconds_per_tile": per, "first_tile_seconds": first}))
