"""The import rules of docs/ARCHITECTURE.md, read from the source of every module (lazy imports
inside functions included): the bottom layer never reaches up, the three sides keep apart, and the
commands sit above them all."""
from __future__ import annotations

import ast
from pathlib import Path

import gansynth

PACKAGE = Path(gansynth.__file__).parent
# layer -> the layers its modules may import from (besides their own)
ALLOWED = {
    "core": set(),
    "training": {"core", "evaluation"},  # the learning monitor scores with evaluation's metrics
    "inference": {"core"},
    "evaluation": {"core"},
    "commands": {"core", "training", "inference", "evaluation"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_imports(path: Path) -> set[str]:
    """The gansynth modules (or packages) a source file imports, relative imports resolved."""
    package = module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else module_name(path)
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            name = ".".join(parts + ([node.module] if node.module else []))
            found.add(name)
            found.update(f"{name}.{alias.name}" for alias in node.names)  # `from gansynth.core import audio`
    return {name for name in found if name == "gansynth" or name.startswith("gansynth.")}


def layer(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ALLOWED else None


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_every_module_lives_in_a_layer():
    assert [str(p) for p in modules() if p.parent != PACKAGE and layer(module_name(p)) is None] == []
    assert [p.name for p in modules() if p.parent == PACKAGE] == ["__init__.py"]


def test_layers_import_only_what_the_map_allows():
    broken = []
    for path in modules():
        own = layer(module_name(path))
        if own is None:
            continue
        for name in project_imports(path):
            target = layer(name)
            if target != own and target not in ALLOWED[own]:
                broken.append(f"{module_name(path)} imports {name}")
    assert broken == []


def test_errors_is_a_leaf():
    assert project_imports(PACKAGE / "core" / "errors.py") == set()


def test_the_lightning_module_needs_no_rendering_and_callbacks_no_commands():
    """The two links the layout was drawn to cut: module.py -> render.py and callbacks -> evaluate command."""
    assert not {n for n in project_imports(PACKAGE / "training" / "module.py") if n.startswith("gansynth.inference")}
    assert not {n for n in project_imports(PACKAGE / "training" / "callbacks.py") if n.startswith("gansynth.commands")}
