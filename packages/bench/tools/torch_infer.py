"""PyTorch side of `nx run bench:infer`: inference of torchvision models in PyTorch eager
(eval mode, channels_last, inference_mode) and in onnxruntime on PyTorch's own `torch.onnx`
export of the same model (the reference for what the runtime reaches on a CPU).

`--serve` prints {"torch", "onnxruntime", "threads", "ort_options"}, then answers one JSON line per
request line on stdin: {"what": "torchEager" | "ortTorch", "batch": n, "repeat": k} ->
{"seconds": [s1, ..., sk]} (k calls of one batch, each timed here); an empty line or EOF ends it.
"""
import argparse
import io
import json
import os
import sys
import time
import warnings

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "tools", "pyref"))
import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402
from tv_compat import import_torchvision  # noqa: E402

tv = import_torchvision()


def ort_session(model: torch.nn.Module, size: int, threads: int, spinning: bool, onnx_out: str | None) -> ort.InferenceSession:
    """onnxruntime on torch.onnx.export (opset 17, dynamic batch) of `model` (also written to `onnx_out`)."""
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(1, 3, size, size),), buf, opset_version=17, input_names=["input"],
                          output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False)
    if onnx_out:
        with open(onnx_out, "wb") as f:
            f.write(buf.getvalue())
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return ort.InferenceSession(buf.getvalue(), so, providers=["CPUExecutionProvider"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", required=True)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--spinning", type=int, default=0, help="onnxruntime intra-op thread spinning (0/1)")
    ap.add_argument("--serve", action="store_true")
    ap.add_argument("--onnx-out", help="also write PyTorch's ONNX export here (bench:infer runs it in onnxruntime-node too)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = getattr(tv.models, a.arch)(num_classes=1000).eval()
    sess = ort_session(model, a.size, a.threads, bool(a.spinning), a.onnx_out)
    model = model.to(memory_format=torch.channels_last)
    inputs = {}

    def batch_input(n):
        if n not in inputs:
            x = torch.randn(n, 3, a.size, a.size)
            inputs[n] = (x.to(memory_format=torch.channels_last), x.numpy().copy())
        return inputs[n]

    def run(what, n):
        xt, xn = batch_input(n)
        if what == "torchEager":
            with torch.inference_mode():
                model(xt)
        elif what == "ortTorch":
            sess.run(None, {"input": xn})
        else:
            raise ValueError(f"unknown workload '{what}'")

    print(json.dumps({"torch": torch.__version__, "onnxruntime": ort.__version__, "threads": torch.get_num_threads(),
                      "ort_options": f"ORT_ENABLE_ALL, {a.threads} intra-op threads, sequential, spinning {'on' if a.spinning else 'off'}"}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            break
        req = json.loads(line)
        try:
            secs = []
            for _ in range(int(req.get("repeat", 1))):
                t0 = time.perf_counter()
                run(req["what"], int(req["batch"]))
                secs.append(time.perf_counter() - t0)
            print(json.dumps({"seconds": secs}), flush=True)
        except Exception as e:  # noqa: BLE001 - reported to the caller
            print(json.dumps({"error": str(e)}), flush=True)


if __name__ == "__main__":
    main()
