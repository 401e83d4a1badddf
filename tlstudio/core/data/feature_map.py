"""A 2-D map of a dataset's features: PCA by default, UMAP when ``umap-learn`` is installed and asked for."""

from __future__ import annotations

import numpy as np

METHODS = ("auto", "pca", "umap")


def umap_available() -> bool:
    """Whether the optional ``umap-learn`` package can be imported."""
    import importlib.util

    return importlib.util.find_spec("umap") is not None


def project_2d(x: np.ndarray, method: str = "pca", seed: int = 0) -> tuple[np.ndarray, str]:
    """Coordinates ``(n, 2)`` of the rows of ``x`` and the method used ("pca" or "umap").

    ``method="auto"`` uses UMAP when it is installed and there are enough points for it, else PCA.
    PCA is exact and deterministic (a thin SVD of the centred features); its axes are signed so the
    same data gives the same picture every time.
    """
    if method not in METHODS:
        raise ValueError(f"map method must be one of {', '.join(METHODS)}, not {method!r}")
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    if n == 0:
        return np.zeros((0, 2), np.float32), "pca"
    if method in ("auto", "umap") and n >= 15 and umap_available():
        import umap

        coords = umap.UMAP(n_components=2, random_state=seed).fit_transform(x)
        return np.asarray(coords, np.float32), "umap"
    centred = x - x.mean(axis=0, keepdims=True)
    if n == 1 or not np.any(centred):
        return np.zeros((n, 2), np.float32), "pca"
    u, s, vt = np.linalg.svd(centred, full_matrices=False)
    coords = u[:, :2] * s[:2]
    signs = np.sign(vt[:2].sum(axis=1))
    signs[signs == 0] = 1
    coords = coords * signs
    if coords.shape[1] < 2:
        coords = np.pad(coords, ((0, 0), (0, 2 - coords.shape[1])))
    return coords.astype(np.float32), "pca"
