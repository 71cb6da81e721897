"""One error convention: every error class of the project derives from one base in a leaf module."""
from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import gansynth
from gansynth.core.errors import GANSynthError

PACKAGE = Path(gansynth.__file__).parent


def project_error_classes() -> dict[str, type]:
    """Every exception class defined in a gansynth module, by qualified name."""
    found = {}
    for module_info in pkgutil.walk_packages([str(PACKAGE)], "gansynth."):
        module = importlib.import_module(module_info.name)
        for name, value in vars(module).items():
            if inspect.isclass(value) and issubclass(value, BaseException) and value.__module__ == module.__name__:
                found[f"{module_info.name}.{name}"] = value
    return found


def test_errors_module_imports_nothing():
    tree = ast.parse((PACKAGE / "core" / "errors.py").read_text())
    assert [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))] == []


def test_every_project_error_derives_from_the_base():
    classes = project_error_classes()
    assert [name for name, cls in classes.items() if not issubclass(cls, GANSynthError)] == []
    assert len(classes) >= 17  # the base and the error of every module that raises one
