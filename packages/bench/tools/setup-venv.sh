#!/usr/bin/env bash
# Creates the reference Python environment used by benchmarks and fixture tools (never by the
# product): torch + torchvision (CPU) from the machine's configured pip index.
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
venv="$root/.venv-ref"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import sys; sys.path.insert(0, '$root/tools/pyref'); from tv_compat import import_torchvision; import_torchvision()" 2>/dev/null; then
  "$venv/bin/pip" install --disable-pip-version-check -q torch torchvision numpy safetensors pycocotools
fi
echo "$venv/bin/python"
