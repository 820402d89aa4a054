"""core/errors.py: the reader of untrusted JSON refuses what readers would disagree on."""

from __future__ import annotations

from pathlib import Path

import pytest

from a2bs.core.errors import A2BSError, read_json


def test_read_json_refuses_a_repeated_key(tmp_path: Path) -> None:
    """Readers disagree on which of two equal keys counts (Python: the last; many others: the first), so a
    file could tell a2bs one thing and an app another: refused, at any depth, naming the key."""
    path = tmp_path / "manifest.json"
    path.write_text('{"fps": 30, "timeline": {"window": 1024}, "files": [{"a": 1, "b": 2}]}')
    assert read_json(path, "a2bs bundle manifest")["fps"] == 30
    for text, key in [
        ('{"fps": 30, "fps": 60}', "'fps'"),
        ('{"timeline": {"window": 1024, "window": 512}}', "'window'"),
        ('{"files": [{"path": "a", "path": "../b"}]}', "'path'"),
    ]:
        path.write_text(text)
        with pytest.raises(A2BSError, match=f"{key} appears twice") as info:
            read_json(path, "a2bs bundle manifest")
        assert str(path) in str(info.value)
