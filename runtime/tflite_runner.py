"""The LiteRT (TFLite) interpreter behind one `.tflite` file, called with named inputs like an app does.

Kept free of torch so that the latency harness can measure the runtime alone (its memory included).
"""

from __future__ import annotations

import contextlib
import copy
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np


class TFLiteRunner:
    """Runs one `.tflite` file in the LiteRT interpreter (XNNPACK on CPU) through its signature runner."""

    def __init__(self, path: Path, num_threads: int = 1, signature_key: str | None = None) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"no TFLite model at {self.path}")
        self.num_threads = num_threads
        self._interpreter = Interpreter(model_path=str(self.path), num_threads=num_threads)
        signatures = self._interpreter.get_signature_list()
        if signature_key is None:
            if len(signatures) != 1:
                raise ValueError(f"{self.path} has signatures {sorted(signatures)}: pass signature_key")
            signature_key = next(iter(signatures))
        if signature_key not in signatures:
            raise ValueError(f"{self.path} has no signature {signature_key!r} (it has {sorted(signatures)})")
        self.signature_key = signature_key
        self._runner = self._interpreter.get_signature_runner(signature_key)
        inputs = sorted(self._runner.get_input_details().items(), key=lambda item: item[1]["index"])
        self._inputs = {name: _tensor_info(d) for name, d in inputs}
        self._outputs = {name: _tensor_info(d) for name, d in self._runner.get_output_details().items()}
        self._first_call = True

    def signature_io(self) -> dict[str, Any]:
        """{"signature": key, "inputs": {name: {"shape", "dtype", "quantization"}}, "outputs": {...}}.

        Inputs are in the order of the model's arguments; dtypes are numpy dtype names."""
        return {
            "signature": self.signature_key,
            "inputs": copy.deepcopy(self._inputs),
            "outputs": copy.deepcopy(self._outputs),
        }

    def __call__(self, **inputs: np.ndarray) -> dict[str, np.ndarray]:
        """Feed every signature input by name and get every output by name (fresh arrays)."""
        missing = [n for n in self._inputs if n not in inputs]
        unknown = [n for n in inputs if n not in self._inputs]
        if missing or unknown:
            raise ValueError(
                f"{self.path.name}: inputs must be {list(self._inputs)}"
                + (f"; missing {missing}" if missing else "")
                + (f"; unknown {unknown}" if unknown else "")
            )
        feeds = {}
        for name, info in self._inputs.items():
            value, dtype = np.asarray(inputs[name]), np.dtype(info["dtype"])
            if value.dtype.kind == "f" and dtype.kind != "f":
                raise ValueError(f"{self.path.name}: input {name!r} is {dtype} (quantization {info['quantization']})")
            value = np.ascontiguousarray(value, dtype=dtype)
            if value.shape != info["shape"]:
                raise ValueError(f"{self.path.name}: input {name!r} must have shape {info['shape']}, got {value.shape}")
            feeds[name] = value
        if self._first_call:  # LiteRT applies XNNPACK here and prints an INFO line from C++ (no switch for it)
            with _native_stderr_silenced():
                outputs = self._runner(**feeds)
            self._first_call = False
        else:
            outputs = self._runner(**feeds)
        return {name: np.array(outputs[name], copy=True) for name in self._outputs}


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """File descriptor 2 to /dev/null for a moment: "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
    comes from C++ on every interpreter's first run, once per process and worker. A real failure still
    raises a Python exception with its message."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _tensor_info(detail: dict) -> dict[str, Any]:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    return {
        "shape": tuple(int(s) for s in detail["shape"]),
        "dtype": np.dtype(detail["dtype"]).name,
        "quantization": (float(scale), int(zero_point)) if scale else None,
    }
