#!/usr/bin/env bash
# Creates the reference Python environment used by benchmarks and fixture tools (never by the
# product): torch + torchvision (CPU) from the machine's configured pip index.
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
venv="$root/.venv-ref"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import sys; sys.path.insert(0, '$root/tools/pyref'); from tv_compat import import_torchvision; import_torchvision(); import onnx, onnxruntime" 2>/dev/null; then
  # Only the machine's configured (local) indexes: the default index is unreachable on the
  # project's machines and pip's retries against it cost minutes.
  extra="$("$venv/bin/pip" config get global.extra-index-url 2>/dev/null || true)"
  index_args=()
  if [ -n "$extra" ]; then
    read -r -a urls <<< "$extra"
    index_args=(--index-url "${urls[0]}")
    for u in "${urls[@]:1}"; do index_args+=(--extra-index-url "$u"); done
  fi
  "$venv/bin/pip" install --disable-pip-version-check -q "${index_args[@]}" torch torchvision numpy safetensors pycocotools onnx onnxruntime
fi
echo "$venv/bin/python"
