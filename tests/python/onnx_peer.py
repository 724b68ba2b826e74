"""onnx and onnxruntime as peers for edge-seg's exported models.

    python onnx_peer.py MODEL.onnx INPUT.raw D H W OUTPUT.raw

Checks the model with onnx.checker (full_check=True), runs INPUT (float32,
[1, 1, D, H, W], little endian) through onnxruntime, and writes the first
output as float32 to OUTPUT.raw. Prints the output shape and the model's
metadata keys as JSON.
"""
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort


def main():
    model_path, input_path, d, h, w, output_path = sys.argv[1:7]
    model = onnx.load(model_path)
    onnx.checker.check_model(model, full_check=True)
    x = np.fromfile(input_path, dtype="<f4").reshape(1, 1, int(d), int(h), int(w))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(model_path, opts, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    y = session.run(None, {name: x})[0]
    np.ascontiguousarray(y, dtype="<f4").tofile(output_path)
    print(json.dumps({
        "shape": list(y.shape),
        "input": name,
        "output": session.get_outputs()[0].name,
        "metadata": sorted(p.key for p in model.metadata_props),
        "opset": [o.version for o in model.opset_import],
    }))


if __name__ == "__main__":
    main()
