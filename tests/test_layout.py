"""The import graph of ``src`` runs downward: entry points -> inference -> models/data/metrics -> colour/utils."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

# lower number = lower layer; a package may import its own layer only where listed in SIDEWAYS
LAYERS = {
    "utils": 0,
    "colour": 0,
    "weights": 0,
    "metrics": 1,
    "data": 1,
    "models": 1,
    "baselines": 1,
    "inference": 2,
}
ENTRY = 3  # train, eval, deband, export and the bench package
SIDEWAYS = {
    ("models", "metrics"),  # the LightningModule logs metrics; metrics never import models
    ("models", "baselines"),  # the blend head uses the classical guided filter as candidates
}


def _imports() -> set[tuple[str, str, str]]:
    """(importing package, imported package, file) for every ``src.`` import, wherever it sits in the file."""
    found = set()
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC)
        pkg = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("src."):
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names if a.name.startswith("src.")]
            for name in names:
                target = name.split(".")[1]
                if target != pkg:
                    found.add((pkg, target, str(rel)))
    return found


def test_every_package_has_a_layer():
    packages = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages <= set(LAYERS) | {"bench"}, f"give these packages a layer: {packages - set(LAYERS)}"


def test_imports_only_run_downward():
    upward = []
    for src, dst, file in sorted(_imports()):
        lo, hi = LAYERS.get(src, ENTRY), LAYERS.get(dst, ENTRY)
        if lo == ENTRY:  # entry points may use anything, each other included
            continue
        if hi > lo or (hi == lo and (src, dst) not in SIDEWAYS):
            upward.append(f"{file}: {src} -> {dst}")
    assert not upward, "imports against the layering:\n" + "\n".join(upward)
