"""Machine checks of the architecture: core is Qt-free, the GUI opens without TensorFlow, the import contracts hold."""

from __future__ import annotations

import os
import pkgutil
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import tlstudio

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"


def _modules(package: str) -> list[str]:
    """``package`` and every module below it, at any depth (subpackages included)."""
    pkg = __import__(package, fromlist=["_"])
    return [package] + [m.name for m in pkgutil.walk_packages(pkg.__path__, prefix=f"{package}.")]


def _imported_after(modules: list[str]) -> set[str]:
    code = (
        "import sys, importlib\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print('\\n'.join(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    return set(out.stdout.split())


def test_the_walk_reaches_nested_modules():
    modules = _modules("tlstudio.core")
    assert "tlstudio.core.data.scan" in modules and "tlstudio.core.models.layer_tree" in modules
    assert "tlstudio.gui.widgets.pixmaps" in _modules("tlstudio.gui")


#: Core modules that subclass Keras classes and so import Keras at module level; every other module
#: imports them inside functions only, which the next test checks by importing all the rest.
KERAS_BOUND = {"tlstudio.core.train.callbacks"}


def test_core_imports_neither_qt_nor_tensorflow():
    loaded = _imported_after([m for m in _modules("tlstudio.core") if m not in KERAS_BOUND])
    assert not {m for m in loaded if m.split(".")[0] in {"PySide6", "pyqtgraph", "ray"}}
    assert "tensorflow" not in loaded and "keras" not in loaded
    assert not {m for m in loaded if m.startswith(("tlstudio.gui", "tlstudio.workers", "tlstudio.engine"))}


def test_gui_and_cli_import_without_tensorflow():
    mods = ["tlstudio.cli", *_modules("tlstudio.commands")]
    if (Path(tlstudio.__file__).parent / "app.py").exists():
        mods.append("tlstudio.app")
    mods += _modules("tlstudio.gui") + _modules("tlstudio.workers")
    loaded = _imported_after(mods)
    assert "tensorflow" not in loaded and "keras" not in loaded


def _lint_imports(cwd: Path, extra_path: Path | None = None) -> subprocess.CompletedProcess:
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if lint is None:
        pytest.skip("import-linter is not installed")
    paths = [str(TESTS), str(cwd)] + ([str(extra_path)] if extra_path else [])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths))
    return subprocess.run([lint, "--no-cache"], capture_output=True, text=True, cwd=cwd, env=env)


def test_import_linter_contracts_hold():
    result = _lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr


def test_our_contract_types_catch_what_they_forbid(tmp_path):
    """The two home-made contract types fail on a package that breaks them (lazy, multi-line imports too)."""
    pkg = tmp_path / "fakepkg"
    files = {
        "__init__.py": "",
        "core/__init__.py": "",
        "core/uses_engine.py": "def later():\n    from fakepkg.engine import run\n    return run\n",
        "engine/__init__.py": "run = 1\n",
        "workers/__init__.py": "",
        "workers/good.py": "from PySide6.QtCore import QObject\n",
        "workers/bad.py": "def later():\n    from PySide6 import (\n        QtCore,\n        QtWidgets,\n    )\n",
    }
    for name, text in files.items():
        (pkg / name).parent.mkdir(parents=True, exist_ok=True)
        (pkg / name).write_text(text, encoding="utf-8")
    (tmp_path / ".importlinter").write_text(
        textwrap.dedent(
            """
            [importlinter]
            root_package = fakepkg
            include_external_packages = True
            contract_types =
                forbidden_submodules: support.import_contracts.ForbiddenSubmodulesContract
                forbidden_if_present: support.import_contracts.ForbiddenIfPresentContract

            [importlinter:contract:qtcore]
            name = workers use QtCore only
            type = forbidden_submodules
            source_modules = fakepkg.workers
            forbidden_modules =
                PySide6.QtGui
                PySide6.QtWidgets

            [importlinter:contract:optional]
            name = core never imports engine or cluster
            type = forbidden_if_present
            source_modules = fakepkg.core
            forbidden_modules =
                fakepkg.engine
                fakepkg.cluster
            """
        ),
        encoding="utf-8",
    )
    result = _lint_imports(tmp_path)
    out = result.stdout + result.stderr
    assert result.returncode != 0, out
    assert "fakepkg.workers.bad imports PySide6.QtWidgets" in out
    assert "fakepkg.workers.good" not in out.split("BROKEN")[-1]
    assert "fakepkg.core.uses_engine -> fakepkg.engine" in out
    assert "Contracts: 0 kept, 2 broken." in out
    # Once the offenders are gone both contracts hold, with fakepkg.cluster still absent.
    (pkg / "workers" / "bad.py").unlink()
    (pkg / "core" / "uses_engine.py").unlink()
    result = _lint_imports(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_only_imageio_opens_image_files_with_pillow():
    """Every reader sees the same pixels and the same errors: Pillow opens files in imageio only."""
    allowed = {"tlstudio/core/data/imageio.py", "tlstudio/core/deploy/sample_scripts.py"}  # the latter: script text
    offenders = [
        str(path.relative_to(REPO))
        for path in (REPO / "tlstudio").rglob("*.py")
        if "Image.open(" in path.read_text(encoding="utf-8") and str(path.relative_to(REPO)) not in allowed
    ]
    assert not offenders, f"open images through tlstudio.core.data.imageio: {offenders}"


def test_json_is_parsed_by_the_one_safe_reader():
    """Deep or huge JSON must give a clear error everywhere: tlstudio.core.json_file parses it all."""
    allowed = {"tlstudio/core/json_file.py", "tlstudio/core/deploy/sample_scripts.py"}  # the latter: script text
    offenders = [
        str(path.relative_to(REPO))
        for path in (REPO / "tlstudio").rglob("*.py")
        if ("json.loads(" in (text := path.read_text(encoding="utf-8")) or "json.load(" in text)
        and str(path.relative_to(REPO)) not in allowed
    ]
    assert not offenders, f"read JSON with tlstudio.core.json_file.read_json / loads_json: {offenders}"
