"""The LiteRT models shipped inside a2bs (runtime/assets), which `a2bs infer` runs by default without
torch: they must be the bundled default checkpoints, converted, and pass the parity gate against them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from a2bs.core.checkpoint import fingerprint, load_default
from a2bs.mobile_validation.validate import validate_bundle
from a2bs.runtime.manifest import load_manifest, shipped_bundle


@pytest.mark.parametrize("fps", [30, 60])
def test_shipped_model_is_the_default_checkpoint(fps: int) -> None:
    manifest = load_manifest(shipped_bundle(fps))
    assert manifest["fps"] == fps and manifest["platform"] == "android"
    assert manifest["checkpoint"]["fingerprint"] == fingerprint(load_default(fps)), (
        "the default checkpoint changed: rebuild the shipped models with `make shipped-models`"
    )


@pytest.mark.slow
@pytest.mark.parametrize("fps", [30, 60])
def test_shipped_model_passes_validation(fps: int, tmp_path: Path) -> None:
    """The real gate (integrity, manifest, size, end-to-end parity with PyTorch on real speech, streaming),
    on a copy: validation writes its reports into the bundle."""
    copy = tmp_path / "shipped"
    shutil.copytree(shipped_bundle(fps), copy)
    report = validate_bundle(copy, latency=False)
    failed = [f"{c.artifact}: {c.name}: {c.reason}" for c in report.checks if not c.passed]
    assert report.passed, failed
    parity = [c for c in report.checks if c.kind == "parity" and c.name == "end-to-end blendshapes"]
    assert parity and all(c.details["precision_class"] == "fp16" for c in parity)
