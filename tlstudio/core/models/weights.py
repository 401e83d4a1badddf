"""Where pre-trained weights come from: the bundled file, the Keras cache, or a download.

The ImageNet weights of every catalogue base are the official Keras files. They are looked
up in this order:

1. the file shipped inside tlstudio (``tlstudio/weights/``), when it is exactly the file needed;
2. the Keras cache, ``$KERAS_HOME/models/<official file name>`` (the same place and name
   ``keras.applications`` uses, so weights downloaded by either are shared);
3. a download of the official URL (or of ``$TLSTUDIO_WEIGHTS_MIRROR/<file name>`` when that is
   set), written atomically into the Keras cache and checked against the hash Keras publishes.

Nothing here imports TensorFlow, so the GUI can ask :func:`find_official` what will happen
without loading anything.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tlstudio.core.atomic import atomic_path
from tlstudio.core.errors import Cancelled, TlstudioError
from tlstudio.core.hashing import file_digest
from tlstudio.core.paths import keras_home

BUNDLED_DIR = Path(__file__).resolve().parents[2] / "weights"
MIRROR_ENV = "TLSTUDIO_WEIGHTS_MIRROR"
DOWNLOAD_TIMEOUT = 30.0  # seconds without an answer before a download is given up

_GCS = "https://storage.googleapis.com/tensorflow/keras-applications/"

Progress = Callable[[int, int], None]


class WeightsError(TlstudioError):
    """Pre-trained weights that cannot be found, fetched or loaded."""


@dataclass(frozen=True)
class OfficialWeights:
    """One official Keras ImageNet weights file (without the classifier top).

    Attributes
    ----------
    file_name : str
        The name ``keras.applications`` gives it in ``$KERAS_HOME/models/``.
    url : str
        Where Keras downloads it from.
    file_hash : str | None
        The hash Keras checks (64 hex digits: SHA-256, 32: MD5), or None where Keras has none.
    fallback : OfficialWeights | None
        For MobileNet and MobileNetV2 at a size with its own file: the 224x224 file of the same
        width. Convolution weights do not depend on the input size, so it is used when the
        size-specific file is neither here nor downloadable.
    """

    file_name: str
    url: str
    file_hash: str | None = None
    fallback: OfficialWeights | None = None  # the 224x224 file, used offline when this size's file is missing


# Hashes of the no-top files, copied from keras.applications.
_MOBILENET_HASHES = {  # earlier keras.applications releases published these (SHA-256)
    "2_5_224": "dbdb03ee2a22fd895301636cd328b234bb3a9952358f436d82f46b81e0d5b0bf",
}
_MOBILENET_V3_HASHES = {
    "large_224_0.75_float": "40af19a13ebea4e2ee0c676887f69a2e",
    "large_224_1.0_float": "07fb09a5933dd0c8eaafa16978110389",
    "small_224_0.75_float": "ebdb5cc8e0b497cd13a7c275d475c819",
    "small_224_1.0_float": "d3e8ec802a04aa4fc771ee12a9a9b836",
}
_EFFICIENTNET_HASHES = {
    "b0": "50bc09e76180e00e4465e1a485ddc09d",
    "b1": "74c4e6b3e1f6a1eea24c589628592432",
    "b2": "111f8e2ac8aa800a7a99e3239f7bfb39",
    "b3": "af6d107764bb5b1abb91932881670226",
}
_EFFICIENTNET_V2_HASHES = {
    "b0": "893217f2bb855e2983157299931e43ff",
    "b1": "0e80663031ca32d657f9caa404b6ec37",
    "b2": "1dfe2e7a5d45b6632553a8961ea609eb",
    "b3": "f6abf7b5849ac99a89b50dd3fd532856",
}
_RESNET_HASHES = {
    "resnet50": "4d473c1dd8becc155b73f8504c6f6626",
    "resnet101": "88cf7a10940856eca736dc7b7e228a21",
    "resnet50v2": "fac2f116257151a9d068a22e544a4917",
    "resnet101v2": "c0ed64b8031c3730f411d2eb4eea35b5",
}
_CONVNEXT_HASHES = {
    "convnext_tiny": "d547c096cabd03329d7be5562c5e14798aa39ed24b474157cef5e85ab9e49ef1",
    "convnext_small": "6fc8009faa2f00c1c1dfce59feea9b0745eb260a7dd11bee65c8e20843da6eab",
}
_SIMPLE = {  # name -> (file name, url, hash)
    "vgg16": (
        "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        _GCS + "vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "6d6bbae143d832006294945121d1f1fc",
    ),
    "vgg19": (
        "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
        _GCS + "vgg19/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "253f8cb515780f3b799900260a226db6",
    ),
    "inceptionv3": (
        "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
        _GCS + "inception_v3/inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "bcbd6486424b2319ff4ef7d526e38f63",
    ),
    "xception": (
        "xception_weights_tf_dim_ordering_tf_kernels_notop.h5",
        _GCS + "xception/xception_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "b0042744bf5b25fce3cb969f33bebb97",
    ),
    "densenet121": (
        "densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5",
        _GCS + "densenet/densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "30ee3e1110167f948a6b9946edeeb738",
    ),
    "nasnetmobile": (
        "nasnet_mobile_no_top.h5",
        _GCS + "nasnet/NASNet-mobile-no-top.h5",
        "1ed92395b5b598bdda52abe5c0dbfd63",
    ),
}


def _alpha_key(alpha: float | None) -> float:
    return float(alpha if alpha is not None else 1.0)


def find_official(name: str, alpha: float | None, size: int) -> OfficialWeights | None:
    """The official no-top ImageNet weights file for a catalogue base, or None if Keras has none.

    Parameters
    ----------
    name : str
        Catalogue name (``"MobileNet"``, ``"EfficientNetB0"``, ...), any case.
    alpha : float | None
        Width multiplier for the MobileNets; ignored elsewhere.
    size : int
        Input size (square). MobileNet and MobileNetV2 have one file per input size and use the
        224 file for sizes they have no file for, exactly as ``keras.applications`` does.
    """
    key = name.lower()
    a = _alpha_key(alpha)
    if key == "mobilenet":
        texts = {1.0: "1_0", 0.75: "7_5", 0.5: "5_0", 0.25: "2_5"}
        if a not in texts:
            return None
        rows = size if size in (128, 160, 192, 224) else 224
        file_name = f"mobilenet_{texts[a]}_{rows}_tf_no_top.h5"
        fallback = find_official(name, alpha, 224) if rows != 224 else None
        return OfficialWeights(
            file_name, _GCS + "mobilenet/" + file_name, _MOBILENET_HASHES.get(f"{texts[a]}_{rows}"), fallback
        )
    if key == "mobilenetv2":
        if a not in (0.35, 0.5, 0.75, 1.0, 1.3, 1.4):
            return None
        rows = size if size in (96, 128, 160, 192, 224) else 224
        file_name = f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{a}_{rows}_no_top.h5"
        fallback = find_official(name, alpha, 224) if rows != 224 else None
        return OfficialWeights(file_name, _GCS + "mobilenet_v2/" + file_name, None, fallback)
    if key in ("mobilenetv3small", "mobilenetv3large"):
        variant = f"{key[len('mobilenetv3') :]}_224_{a}_float"
        return _hashed(variant, _MOBILENET_V3_HASHES, f"weights_mobilenet_v3_{variant}_no_top_v2.h5", _GCS + "mobilenet_v3/")
    if key.startswith("efficientnetv2"):
        variant = key[len("efficientnetv2") :]
        return _hashed(variant, _EFFICIENTNET_V2_HASHES, f"efficientnetv2-{variant}_notop.h5", _GCS + "efficientnet_v2/")
    if key.startswith("efficientnet"):
        variant = key[len("efficientnet") :]
        return _hashed(variant, _EFFICIENTNET_HASHES, f"efficientnet{variant}_notop.h5",
                       "https://storage.googleapis.com/keras-applications/")
    if key in _RESNET_HASHES:
        return _hashed(key, _RESNET_HASHES, f"{key}_weights_tf_dim_ordering_tf_kernels_notop.h5", _GCS + "resnet/")
    if key.startswith("convnext"):
        variant = "convnext_" + key[len("convnext") :]
        return _hashed(variant, _CONVNEXT_HASHES, f"{variant}_notop.h5", _GCS + "convnext/")
    if key in _SIMPLE:
        return OfficialWeights(*_SIMPLE[key])
    return None


def _hashed(variant: str, hashes: dict[str, str], file_name: str, folder_url: str) -> OfficialWeights | None:
    """The weights of ``variant`` when its family publishes them (``hashes`` lists those that exist)."""
    if variant not in hashes:
        return None
    return OfficialWeights(file_name, folder_url + file_name, hashes[variant])


def bundled_path(file_name: str) -> Path | None:
    """The copy of ``file_name`` shipped inside tlstudio, if there is one."""
    path = BUNDLED_DIR / file_name
    return path if path.is_file() else None


def cached_path(file_name: str) -> Path:
    """Where Keras keeps (or would keep) an official weights file: ``$KERAS_HOME/models/<name>``."""
    return keras_home() / "models" / file_name


def locate(official: OfficialWeights) -> tuple[str, Path | None]:
    """Where an official file is available without the network.

    Returns
    -------
    (kind, path)
        ``("bundled", path)``, ``("cached", path)`` or ``("download", None)``.
    """
    bundled = bundled_path(official.file_name)
    if bundled is not None:
        return "bundled", bundled
    cached = cached_path(official.file_name)
    if cached.is_file() and cached.stat().st_size > 0:
        return "cached", cached
    return "download", None


def download_url(official: OfficialWeights) -> str:
    """The URL a download uses: ``$TLSTUDIO_WEIGHTS_MIRROR/<file name>`` when set, else the official one."""
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    if mirror:
        return mirror.rstrip("/") + "/" + official.file_name
    return official.url


def hash_matches(path: Path, file_hash: str | None) -> bool:
    """Check a file against a Keras-style hash (64 hex digits: SHA-256, otherwise MD5)."""
    if not file_hash:
        return True
    algorithm = "sha256" if len(file_hash) == 64 else "md5"
    return file_digest(path, algorithm) == file_hash.lower()


def offline_message(official: OfficialWeights) -> str:
    target = cached_path(official.file_name)
    return (
        f"the ImageNet weights file {official.file_name} is not on this computer and could not be downloaded "
        f"from {official.url}; download it elsewhere and put it at {target}, "
        f"or choose a weights file, or train without pre-training (weights: none)"
    )


def download(
    official: OfficialWeights,
    *,
    progress: Progress | None = None,
    cancel=None,
    timeout: float | None = None,
) -> Path:
    """Download an official weights file into the Keras cache and return its path.

    The file is written under a temporary name and renamed into place only when complete and
    its hash matches, so an interrupted download never leaves a broken file behind.

    Parameters
    ----------
    official : OfficialWeights
        The file to fetch.
    progress : callable, optional
        ``progress(done_bytes, total_bytes)``; ``total_bytes`` is 0 when the server does not say.
    cancel : threading.Event, optional
        Set it to stop the download (raises :class:`~tlstudio.core.errors.Cancelled`).
    timeout : float, optional
        Seconds to wait for the server (default :data:`DOWNLOAD_TIMEOUT`).

    Raises
    ------
    WeightsError
        When the network or the server fails, or the file does not match its published hash.
    """
    url = download_url(official)
    target = cached_path(official.file_name)
    try:
        with atomic_path(target) as tmp:
            try:
                request = urllib.request.Request(url, headers={"User-Agent": "tlstudio"})
                with urllib.request.urlopen(request, timeout=timeout or DOWNLOAD_TIMEOUT) as response:
                    total = int(response.headers.get("Content-Length") or 0)
                    done = 0
                    if progress:
                        progress(0, total)
                    with open(tmp, "wb") as out:
                        while True:
                            if cancel is not None and cancel.is_set():
                                raise Cancelled("Download cancelled.")
                            chunk = response.read(1 << 16)
                            if not chunk:
                                break
                            out.write(chunk)
                            done += len(chunk)
                            if progress:
                                progress(done, total)
            except (urllib.error.URLError, OSError, ValueError) as exc:
                raise WeightsError(offline_message(official) + f" ({_reason(exc)})") from None
            if total and done != total:
                raise WeightsError(
                    f"the download of {official.file_name} was incomplete ({done} of {total} bytes)"
                )
            if not hash_matches(tmp, official.file_hash):
                raise WeightsError(
                    f"the downloaded {official.file_name} does not match its published checksum; "
                    "it was not kept (try again, or place the official file yourself)"
                )
    except OSError as exc:  # the cache folder cannot be written
        raise WeightsError(f"cannot write {target}: {exc.strerror or exc}") from None
    return target


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return str(exc) or type(exc).__name__


def resolve_official(
    official: OfficialWeights, *, progress: Progress | None = None, cancel=None, offline: bool = False
) -> tuple[str, Path]:
    """Find or fetch an official file: bundled, then cached, then downloaded.

    When the file is neither here nor downloadable but its :attr:`OfficialWeights.fallback` (the
    224x224 file of the same MobileNet) is here, that one is used.

    Returns
    -------
    (kind, path)
        ``kind`` is ``"bundled"``, ``"cached"`` or ``"downloaded"``, or ``"fallback-bundled"`` /
        ``"fallback-cached"`` for the 224x224 file.

    Raises
    ------
    WeightsError
        When it is neither here nor downloadable; the message says which file to put where.
    """
    kind, path = locate(official)
    if path is not None:
        return kind, path
    fallback_kind, fallback_path = locate(official.fallback) if official.fallback else ("download", None)
    try:
        if offline:
            raise WeightsError(offline_message(official))
        return "downloaded", download(official, progress=progress, cancel=cancel)
    except WeightsError:
        if fallback_path is not None:
            return f"fallback-{fallback_kind}", fallback_path
        raise
