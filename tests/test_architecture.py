"""The layout is the design: ``xand``'s subpackages form layers that follow the data flow (dataset ->
prepared array -> model -> attribution -> mask -> score -> page), no module imports a higher layer, no
import cycle exists (lazy imports inside functions included), and the core never imports streamlit.
Read with the standard library's ``ast``, so the check costs nothing and needs no import of the code."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
XAND = ROOT / "xand"

#: Lowest first. A component (a subpackage, or a top-level module) may import its own modules and those of
#: lower layers only; two components of one layer do not import each other.
LAYERS: list[tuple[str, ...]] = [
    ("xand.constants", "xand.errors"),  # names of leads, heads, fiducials; the error types
    ("xand", "xand.fileio", "xand.fiducials", "xand.registry"),  # the package, atomic files, Fiducials, registries
    ("xand.data",),  # readers, synthetic set, preprocessing, the prepared array
    ("xand.models", "xand.metrics"),  # architectures; metrics over labels and scores
    ("xand.training",),  # trainer and Predictor (a trained run)
    ("xand.evaluation", "xand.delineation"),  # metrics of a run; fiducials and masks of an ECG
    ("xand.explain",),  # attribution, scores against masks, one-ECG and batch explanation
    ("xand.figures", "xand.reviews", "xand.jobs"),  # what the app shows and stores; background jobs
    ("xand.bench", "xand.fuzzing"),  # benchmarks and fuzzing sit above what they measure
    ("xand.cli",),  # the command line
    ("xand.__main__",),
]
RANK = {comp: i for i, layer in enumerate(LAYERS) for comp in layer}


def _modules() -> dict[str, Path]:
    out = {}
    for p in XAND.rglob("*.py"):
        parts = list(p.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _imports(path: Path, known: set[str]) -> set[str]:
    """Every ``xand`` module ``path`` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        found |= {n for n in names if n in known}
    return found


def _component(mod: str) -> str:
    parts = mod.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else mod


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return {m: _imports(p, set(mods)) - {m} for m, p in mods.items()}


def test_every_component_has_a_layer():
    comps = {_component(m) for m in _modules()}
    assert comps <= set(RANK), f"place these in LAYERS: {sorted(comps - set(RANK))}"


def test_no_module_imports_a_higher_layer_or_a_peer():
    bad = []
    for mod, deps in _graph().items():
        a = _component(mod)
        for dep in deps:
            b = _component(dep)
            if a != b and RANK[b] >= RANK[a]:
                bad.append(f"{mod} imports {dep} ({b} is {'above' if RANK[b] > RANK[a] else 'a peer of'} {a})")
    assert not bad, "\n".join(sorted(bad))


def test_no_import_cycle():
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_core_never_imports_streamlit():
    offenders = []
    for mod, p in _modules().items():
        for node in ast.walk(ast.parse(p.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n == "streamlit" or n.startswith("streamlit.") for n in names):
                offenders.append(mod)
    assert not offenders


def test_the_check_sees_an_upward_import(tmp_path, monkeypatch):
    """The checker itself: a data module importing the trainer is reported."""
    fake = tmp_path / "xand"
    (fake / "data").mkdir(parents=True)
    (fake / "training").mkdir()
    for f in ("__init__.py", "data/__init__.py", "training/__init__.py", "training/trainer.py"):
        (fake / f).write_text("")
    (fake / "data" / "ptbxl.py").write_text("def f():\n    from xand.training.trainer import train\n")
    monkeypatch.setattr(__import__(__name__), "XAND", fake)
    monkeypatch.setattr(__import__(__name__), "ROOT", tmp_path)
    graph = _graph()
    assert graph["xand.data.ptbxl"] == {"xand.training.trainer"}
