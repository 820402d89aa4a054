"""The layout's dependency rule (docs/ARCHITECTURE.md), read from the source by `ast`:

    cli, a2bs (the public API)  ->  convert, mobile_validation, training  ->  runtime, corpus, viz  ->  core

- an arrow points down only: core (the model and what inference needs, plus the torch-free variant
  table) imports no other package; runtime imports core's torch-free modules only; corpus (training
  data) and viz (previews, plots) import core; training imports corpus and viz; convert imports runtime;
  mobile_validation imports runtime and viz; convert and mobile_validation never import each other;
  cli and the public API compose them all;
- the public API (`a2bs/__init__`, in api/) is imported by every `import a2bs.<package>`: at its top it
  imports nothing of the project but core's torch-free modules, and nothing heavy;
- no import cycle between modules;
- an import inside a function is allowed only where it keeps start-up fast: the module it imports is
  heavy (loads torch, coremltools, LiteRT, openSMILE or matplotlib, directly or through its imports).
Each rule has a negative control: a made-up violation that the checker must report.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("core", "runtime", "corpus", "viz", "training", "convert", "mobile_validation", "cli")
API = "api"  # the folder of the package root `a2bs` (its public API)
MAY_IMPORT = {
    "core": {"core"},
    "runtime": {"core", "runtime"},
    "corpus": {"core", "corpus"},
    "viz": {"core", "viz"},
    "training": {"core", "corpus", "viz", "training"},
    "convert": {"core", "runtime", "convert"},
    "mobile_validation": {"core", "runtime", "viz", "mobile_validation"},
    "cli": set(PACKAGES),
    API: set(PACKAGES),
}
HEAVY_LIBRARIES = {
    "torch",
    "coremltools",
    "ai_edge_litert",
    "litert_torch",
    "ai_edge_quantizer",
    "opensmile",
    "matplotlib",
    "parselmouth",
    "pocketsphinx",
}


@dataclass(frozen=True)
class Import:
    module: str  # importing module, e.g. "a2bs.mobile_validation.parity"
    target: str  # imported module or library, e.g. "a2bs.runtime.engine" or "torch"
    line: int
    local: bool  # inside a function (deferred)


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return "a2bs" if parts == (API, "__init__") else "a2bs." + ".".join(parts)


def _imports(module: str, source: str) -> list[Import]:
    found: list[Import] = []

    def visit(node: ast.AST, local: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = local or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.Import):
                found.extend(Import(module, alias.name, child.lineno, local) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                if child.module in ("a2bs." + p for p in PACKAGES):  # `from a2bs.core import constants`
                    found.extend(Import(module, f"{child.module}.{a.name}", child.lineno, local) for a in child.names)
                else:
                    found.append(Import(module, child.module, child.lineno, local))
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                continue  # annotations only: no import at run time
            visit(child, inner)

    visit(ast.parse(source), False)
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return isinstance(test, ast.Name) and test.id == "TYPE_CHECKING"


def project_sources() -> dict[str, str]:
    return {_module_name(p): p.read_text() for pkg in (*PACKAGES, API) for p in sorted((ROOT / pkg).glob("*.py"))}


def _package(module: str) -> str | None:
    parts = module.split(".")
    if parts == ["a2bs"]:
        return API
    return parts[1] if len(parts) > 1 and parts[0] == "a2bs" and parts[1] in PACKAGES else None


def heavy_modules(graph: dict[str, list[Import]]) -> dict[str, str]:
    """module -> the heavy library its top-level imports load (directly or through project modules)."""
    heavy: dict[str, str] = {}
    changed = True
    while changed:
        changed = False
        for module, imports in graph.items():
            if module in heavy:
                continue
            for imp in imports:
                if imp.local:
                    continue
                root = imp.target.split(".")[0]
                reason = root if root in HEAVY_LIBRARIES else imp.target if imp.target in heavy else None
                if reason:
                    heavy[module] = reason
                    changed = True
                    break
    return heavy


def violations(sources: dict[str, str]) -> list[str]:
    """Every broken rule of the module docstring, one line each (empty: the layout holds)."""
    graph = {module: _imports(module, text) for module, text in sources.items()}
    heavy = heavy_modules(graph)
    torch_free_core = {m for m in graph if _package(m) == "core" and m not in heavy}
    problems = []
    for module, imports in graph.items():
        source_pkg = _package(module)
        for imp in imports:
            target_pkg = _package(imp.target)
            where = f"{module}:{imp.line} imports {imp.target}"
            if target_pkg is not None and target_pkg not in MAY_IMPORT[source_pkg]:
                problems.append(f"{where}: {source_pkg} may not depend on {target_pkg}")
            if source_pkg == "runtime" and target_pkg == "core" and imp.target not in torch_free_core:
                problems.append(f"{where}: runtime may use only core's torch-free modules")
            if source_pkg == API and not imp.local and target_pkg is not None and imp.target not in torch_free_core:
                problems.append(f"{where}: the package root may import only core's torch-free modules at its top")
            if source_pkg == API and not imp.local and imp.target.split(".")[0] in HEAVY_LIBRARIES:
                problems.append(f"{where}: the package root may not import a heavy library at its top")
            if imp.local and source_pkg not in ("cli", API) and target_pkg is not None and imp.target not in heavy:
                problems.append(f"{where} inside a function, but it is light: import it at the top")
    problems += _cycles(graph)
    return problems


def _cycles(graph: dict[str, list[Import]]) -> list[str]:
    edges = {m: {i.target for i in imps if i.target in graph and not i.local} for m, imps in graph.items()}
    found, state = [], dict.fromkeys(edges, 0)  # 0 new, 1 on the path, 2 done

    def walk(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state[nxt] == 1:
                found.append("import cycle: " + " -> ".join([*path[path.index(nxt) :], nxt]))
            elif state[nxt] == 0:
                walk(nxt, [*path, nxt])
        state[node] = 2

    for start in sorted(edges):
        if state[start] == 0:
            walk(start, [start])
    return found


def test_the_layout_keeps_its_dependency_rule() -> None:
    assert violations(project_sources()) == []


@pytest.mark.parametrize(
    ("module", "source", "says"),
    [
        ("a2bs.mobile_validation.x", "from a2bs.convert.bundle import build_bundle\n", "may not depend on convert"),
        ("a2bs.convert.x", "from a2bs.mobile_validation import validate\n", "may not depend on mobile_validation"),
        ("a2bs.core.x", "def f():\n    from a2bs.runtime.manifest import load_manifest\n", "may not depend on runtime"),
        ("a2bs.runtime.x", "from a2bs.core.model import A2BSModel\n", "only core's torch-free modules"),
        ("a2bs.convert.x", "def f():\n    from a2bs.core.files import sha256\n", "light: import it at the top"),
        ("a2bs.core.constants", "from a2bs.core.errors import A2BSError\n", "import cycle"),
        ("a2bs.corpus.x", "from a2bs.training.trainer import train\n", "corpus may not depend on training"),
        ("a2bs.viz.x", "from a2bs.runtime.manifest import load_manifest\n", "viz may not depend on runtime"),
        ("a2bs", "from a2bs.core.model import A2BSModel\n", "only core's torch-free modules at its top"),
        ("a2bs", "import torch\n", "heavy library at its top"),
    ],
)
def test_the_checker_catches_a_forbidden_arrow(module: str, source: str, says: str) -> None:
    sources = project_sources()
    if module == "a2bs.core.constants":  # errors -> ... must not lead back: make errors import constants too
        sources["a2bs.core.errors"] += "\nfrom a2bs.core.constants import SAMPLE_RATE\n"
    sources[module] = sources.get(module, "") + source
    assert any(says in p for p in violations(sources)), violations(sources)


def test_the_runtime_runs_without_torch() -> None:
    """Importing the LiteRT side of the runtime (manifest, engine, bundle inference, the interpreter)
    loads no torch: an app-like process stays small. (Reading Core ML packages goes through coremltools,
    which imports torch when it is installed.)"""
    modules = "a2bs.runtime.manifest, a2bs.runtime.engine, a2bs.runtime.bundle_inference, a2bs.runtime.tflite_runner"
    code = f"import sys\nimport {modules}, a2bs.core.variants\nprint(sorted(m for m in sys.modules if m == 'torch'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def _docs_tables():
    import importlib.util

    spec = importlib.util.spec_from_file_location("docs_tables", ROOT / "benchmarks" / "docs_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_doc_tables_are_current(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every figure of the generated tables comes from its source (`model_figures`, the variant table,
    the benchmark results); a stale table fails, naming the file and the command that fixes it."""
    tables = _docs_tables()
    monkeypatch.setattr(sys, "argv", ["docs_tables.py", "--check"])
    tables.main()  # up to date: returns
    stale = tmp_path / "ARCHITECTURE.md"  # negative control: one drifted figure
    stale.write_text((ROOT / "docs" / "ARCHITECTURE.md").read_text().replace("MMAC |", "MMAC (old) |", 1))
    monkeypatch.setitem(tables.BLOCKS, "model-figures", (stale, tables.BLOCKS["model-figures"][1]))
    monkeypatch.setattr(tables, "ROOT", tmp_path)
    with pytest.raises(SystemExit, match=r"stale generated tables: ARCHITECTURE.md \(model-figures\)"):
        tables.main()


def test_benchmarks_import_only_what_exists() -> None:
    """The benchmarks import a2bs names inside functions too (heavy modules load late), so a moved name breaks
    them only at the end of a long run: every `from a2bs... import name` in them must resolve now."""
    import importlib

    def resolves(module_name: str, name: str) -> bool:
        if hasattr(importlib.import_module(module_name), name):
            return True
        try:
            importlib.import_module(f"{module_name}.{name}")
        except ModuleNotFoundError:
            return False
        return True

    missing = [
        f"{script.name}: from {node.module} import {alias.name}"
        for script in sorted((ROOT / "benchmarks").glob("*.py"))
        for node in ast.walk(ast.parse(script.read_text()))
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("a2bs")
        for alias in node.names
        if not resolves(node.module, alias.name)
    ]
    assert not missing, missing
