"""Machine checks of the architecture: core is Qt-free, and the GUI opens without TensorFlow."""

from __future__ import annotations

import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import tlstudio

REPO = Path(__file__).resolve().parents[1]


def _modules(package: str) -> list[str]:
    pkg = __import__(package, fromlist=["_"])
    return [f"{package}.{m.name}" for m in pkgutil.iter_modules(pkg.__path__)]


def _imported_after(modules: list[str]) -> set[str]:
    code = (
        "import sys, importlib\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print('\\n'.join(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    return set(out.stdout.split())


def test_core_imports_neither_qt_nor_tensorflow():
    loaded = _imported_after(_modules("tlstudio.core"))
    assert not {m for m in loaded if m.split(".")[0] in {"PySide6", "pyqtgraph"}}
    assert "tensorflow" not in loaded and "keras" not in loaded
    assert not {m for m in loaded if m.startswith(("tlstudio.gui", "tlstudio.workers"))}


def test_gui_and_cli_import_without_tensorflow():
    mods = ["tlstudio.cli", *_modules("tlstudio.commands")]
    if (Path(tlstudio.__file__).parent / "app.py").exists():
        mods.append("tlstudio.app")
    mods += _modules("tlstudio.gui") + _modules("tlstudio.workers")
    loaded = _imported_after(mods)
    assert "tensorflow" not in loaded and "keras" not in loaded


def test_import_linter_contracts_hold():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if lint is None:
        pytest.skip("import-linter is not installed")
    result = subprocess.run([lint], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr


def test_workers_use_qtcore_only():
    offenders = []
    for path in (REPO / "tlstudio" / "workers").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        if "QtWidgets" in text or "QtGui" in text:
            offenders.append(path.name)
    assert not offenders, f"workers must use QtCore only: {offenders}"
