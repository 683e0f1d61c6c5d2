"""Reference check of an exported file with the Python `onnx` package and Python onnxruntime.

    python3 -m venv /tmp/venv-onnx && /tmp/venv-onnx/bin/pip install onnx onnxruntime numpy
    /tmp/venv-onnx/bin/python packages/deploy/tools/check_onnx.py packages/deploy/test/fixtures/mobilenet_v3_small.onnx \
        packages/deploy/test/fixtures/mobilenet_v3_small.json

Runs onnx.checker.check_model(full_check=True) (which includes shape inference), prints the opset and
metadata, runs the model in onnxruntime (CPU) on the JSON's input, and compares the output with the
JSON's tfjs logits: max |ort - tfjs| / max |tfjs| must be < 1e-4. Exit code 1 on any failure.
Prints one JSON line with the numbers.
"""
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort


def main(model_path: str, io_path: str) -> int:
    model = onnx.load(model_path)
    onnx.checker.check_model(model, full_check=True)
    opset = {o.domain: o.version for o in model.opset_import}
    meta = {p.key: p.value for p in model.metadata_props}
    with open(io_path) as f:
        io = json.load(f)
    x = np.asarray(io["input"], dtype=np.float32).reshape(io["dims"])
    ref = np.asarray(io["logits"], dtype=np.float32)
    sess = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    out = sess.run(None, {sess.get_inputs()[0].name: x})[0].reshape(-1)
    err = float(np.max(np.abs(out - ref)) / np.max(np.abs(ref)))
    ok = err < 1e-4
    print(json.dumps({"model": model_path, "checker": "ok", "ir_version": model.ir_version, "opset": opset[""],
                      "inputs": [i.name for i in sess.get_inputs()], "outputs": [o.name for o in sess.get_outputs()],
                      "metadata": meta, "onnx": onnx.__version__, "onnxruntime": ort.__version__, "max_rel_err": err, "ok": ok}))
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
