"""Two real run folders made once per test session with ``tlstudio.core.train.trainer.train``.

A tiny three-colour dataset (Pillow writes it), MobileNet alpha 0.25 at 64 px with the ImageNet
weights shipped with tlstudio (at 32 px, or without weights, its features barely differ between
images, so a model would answer the same for everything), a few head epochs on cached features. The runs are cached under
pytest's base temp folder, so the GUI and worker tests of one session share them.

Import it from a test module: ``from support.trained_runs import trained_runs`` (tests/gui is on sys.path
for its own modules); other folders use :func:`load`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

CLASSES = ("blue", "green", "red")
COLOURS = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (40, 80, 220)}
SIZE = 64


@dataclass(frozen=True)
class TrainedRuns:
    data: Path  # the dataset root (class folders)
    runs: tuple[Path, ...]  # two finished run folders
    loose: Path  # a folder of extra images + one broken file, for folder tests


def write_image(path: Path, colour, size=(40, 36), pattern: int = 0) -> Path:
    from PIL import Image, ImageDraw

    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new("RGB", size, colour)
    draw = ImageDraw.Draw(img)
    x, y = (pattern * 7) % (size[0] - 6), (pattern * 5) % (size[1] - 6)
    draw.rectangle([x, y, x + 5, y + 5], fill=(255 - colour[0], 255 - colour[1], 255 - colour[2]))
    img.save(path)
    return path


def make_runs(folder: Path) -> TrainedRuns:
    from tlstudio.core.config import TrainConfig
    from tlstudio.core.train.trainer import train

    data = folder / "data"
    for name in CLASSES:
        for i in range(6):
            write_image(data / name / f"{name}_{i:02d}.png", COLOURS[name], pattern=i)
    loose = folder / "loose"
    for i, name in enumerate(CLASSES):
        write_image(loose / f"{name}_new.png", COLOURS[name], pattern=i + 11)
    (loose / "broken.jpg").write_bytes(b"this is not a jpeg")
    runs = []
    for k, (epochs, lr) in enumerate(((3, 0.003), (5, 0.02))):
        config = TrainConfig(
            data_dir=str(data),
            base="MobileNet",
            alpha=0.25,
            input_size=SIZE,
            weights="imagenet",
            head_epochs=epochs,
            fine_tune_epochs=0,
            batch_size=8,
            head_lr=lr,
            early_stopping=False,
        )
        result = train(config, folder / f"run{k + 1}")
        assert result.status == "finished"
        runs.append(result.run_dir)
    return TrainedRuns(data, tuple(runs), loose)


def session_runs(tmp_path_factory) -> TrainedRuns:
    folder = tmp_path_factory.getbasetemp() / "gui-trained-runs"
    done = folder / "done"
    if done.exists():
        return TrainedRuns(folder / "data", (folder / "run1", folder / "run2"), folder / "loose")
    runs = make_runs(folder)
    done.write_text("ok")
    return runs


@pytest.fixture(scope="session")
def trained_runs(tmp_path_factory) -> TrainedRuns:
    return session_runs(tmp_path_factory)


_PREDICTORS: dict[str, object] = {}


def reference_predictor(run_dir: Path):
    """A core Predictor of a run, loaded once per session: the answers the GUI must show."""
    from tlstudio.core.deploy.predict import Predictor

    key = str(run_dir)
    if key not in _PREDICTORS:
        _PREDICTORS[key] = Predictor.from_path(run_dir)
    return _PREDICTORS[key]


def record_for(run_dir: Path, name: str = ""):
    """The project's RunRecord of a run folder, filled from its summary (as the Train page adds it)."""
    from tlstudio.core.project import RunRecord
    from tlstudio.core.run_folder import read_summary

    info = read_summary(run_dir)
    return RunRecord(
        run_dir=str(run_dir),
        name=name,
        created=info.get("created", ""),
        base=info.get("base", ""),
        status=info.get("status", ""),
        val_accuracy=info.get("val_accuracy"),
        test_accuracy=info.get("test_accuracy"),
        epochs_run=info.get("epochs_run", 0),
        train_seconds=info.get("train_seconds", 0.0),
        frozen_summary=info.get("frozen_summary", ""),
    )

