"""Data that ships inside the package: the sample dataset for "Try a sample"."""

from pathlib import Path

RESOURCES = Path(__file__).resolve().parent
SAMPLE_DATASET = RESOURCES / "sample-signs"


def sample_dataset() -> Path | None:
    """The bundled sample dataset (3 classes of hand signs, Apache-2.0), or None if it was not installed."""
    return SAMPLE_DATASET if SAMPLE_DATASET.is_dir() else None
