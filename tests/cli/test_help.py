"""`--help` of every command of both console scripts reads well in an 80-column terminal: no line wider,
every option and choice whole, help text in a column wide enough for a few words, every command's summary in
full in its group's listing; and `a2bs --help` says where conversion lives (`a2bs-convert`)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
import typer
from entry_points import run

from a2bs.cli import convert as convert_cli
from a2bs.cli import main as main_cli

WIDTH = 80


def commands() -> Iterator[tuple[Callable[[], None], list[str], typer.core.click.Command]]:
    """(entry point, argv before --help, click command) of every command and group of both scripts."""
    for main, prog, app in ((main_cli.main, "a2bs", main_cli.app), (convert_cli.main, "a2bs-convert", convert_cli.app)):
        stack = [([prog], typer.main.get_command(app))]
        while stack:
            argv, command = stack.pop()
            yield main, argv, command
            for name, sub in sorted(getattr(command, "commands", {}).items()):
                stack.append(([*argv, name], sub))


CASES = list(commands())


def help_text(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], main, argv: list[str]) -> str:
    monkeypatch.setenv("COLUMNS", str(WIDTH))
    monkeypatch.delenv("TERMINAL_WIDTH", raising=False)
    code, out, err = run(monkeypatch, capsys, main, *argv, "--help")
    assert code == 0 and not err, (code, err)
    return out


def squeezed(text: str) -> str:
    """The text with the box drawing characters removed and all whitespace as single spaces."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


@pytest.mark.parametrize(("main", "argv", "command"), CASES, ids=[" ".join(argv) for _, argv, _ in CASES])
def test_help_fits_80_columns(monkeypatch, capsys, main, argv: list[str], command) -> None:
    """Was: rich's four-column table left ~20 columns for help text, split `tflite` over two lines and cut
    `model.safetensors` to `model.safetens…`."""
    text = help_text(monkeypatch, capsys, main, argv)
    lines = text.splitlines()
    assert max(map(len, lines)) <= WIDTH, max(lines, key=len)
    assert "…" not in text
    assert not re.search(r"(--[\w-]*|a2bs)-$", text, re.M), "an option or command name broken at its hyphen"
    for param in command.params:
        for name in [*param.opts, *param.secondary_opts]:
            if name.startswith("-"):
                assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text), f"{name} cut or missing"
        for choice in getattr(getattr(param, "type", None), "choices", None) or ():
            assert re.search(rf"\b{re.escape(str(choice))}\b", text), f"choice {choice} of {param.name} cut"
        words = (getattr(param, "help", None) or "").split()[:3]
        if len(words) == 3:  # the start of its help on one line: the help column is more than a few words wide
            assert any(" ".join(words) in squeezed(line) for line in lines), f"{param.name}: {words} wrapped"
    for name, sub in getattr(command, "commands", {}).items():
        summary = sub.get_short_help_str(limit=10**6)
        assert re.search(rf"^[\s│]*{name}\s", text, re.M), f"command {name} missing"
        assert squeezed(summary) in squeezed(text), f"{name}: summary cut: {summary!r}"


def test_a2bs_help_names_a2bs_convert(monkeypatch, capsys) -> None:
    """Was: `a2bs --help` listed infer, info, train, validate and data, and never said how to build a bundle."""
    text = squeezed(help_text(monkeypatch, capsys, main_cli.main, ["a2bs"]))
    assert "a2bs-convert" in text


def test_every_face_control_has_the_infer_option_its_doc_names() -> None:
    """docs/CONTROLS.md's table names an `a2bs infer` option per control: each one exists, with the limits
    of core/controls.py (a typo in the table or a control without an option fails here)."""
    from pathlib import Path

    from a2bs.core.controls import LIMITS

    doc = (Path(__file__).resolve().parents[2] / "docs" / "CONTROLS.md").read_text()
    table = dict(re.findall(r"^\| `(\w+)` \| `(--[\w-]+)` \|", doc, re.M))
    assert set(table) == set(LIMITS)
    params = {opt: p for p in typer.main.get_command(main_cli.app).commands["infer"].params for opt in p.opts}
    for name, option in table.items():
        assert option in params, f"{option} (control {name}) is not an option of a2bs infer"
        limits = params[option] if hasattr(params[option], "min") else params[option].type  # typer >= 0.29 / click
        assert (limits.min, limits.max) == LIMITS[name]
