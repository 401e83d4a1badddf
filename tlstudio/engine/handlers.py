"""What the engine does for each request: thin calls into core, run inside the engine process.

Each handler takes the request and a :class:`CallContext` (``emit`` for progress, ``cancel`` to
stop) and returns the plain result the protocol promises. Loaded models are kept in a small
:class:`ModelCache`, so the second prediction with a model costs milliseconds, not a reload.
Training is not here: the server runs it in a child process (see :mod:`tlstudio.engine.server`).
"""

from __future__ import annotations

import io
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tlstudio.core import run_folder
from tlstudio.core.errors import Cancelled, TlstudioError
from tlstudio.engine import protocol as p

#: Models kept loaded at once (the Test page's model and one being compared or exported).
CACHE_SIZE = 2
#: Images per predict() call while a folder is processed: the progress and cancel granularity.
FOLDER_CHUNK = 16


@dataclass
class CallContext:
    """What a handler gets besides its request."""

    emit: Callable[[Any], None]
    cancel: threading.Event
    models: ModelCache

    def check_cancel(self) -> None:
        if self.cancel.is_set():
            raise Cancelled()


class ModelCache:
    """Predictors by source path, reloaded when the file on disk changed; safe across lanes."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self._items: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _stamp(source: str) -> float:
        path = Path(source)
        target = run_folder.model_file(path) if path.is_dir() else path
        try:
            return target.stat().st_mtime
        except OSError:
            return 0.0

    def get(self, source: str) -> Any:
        """The core ``Predictor`` of a run folder or model file (loaded on first use)."""
        from tlstudio.core.deploy.predict import Predictor

        key = str(Path(source).expanduser())
        stamp = self._stamp(key)
        with self._lock:  # one load at a time: two lanes asking for one model load it once
            cached = self._items.get(key)
            if cached is not None and cached[0] == stamp:
                self._items.move_to_end(key)
                return cached[1]
            predictor = Predictor.from_path(key)
            self._items[key] = (stamp, predictor)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
            return predictor


# ----------------------------------------------------------------------------------- model page


def warm_up(request: p.WarmUp, ctx: CallContext) -> str:
    """Import TensorFlow and Keras and run one tiny model, so the first real request is fast."""
    start = time.perf_counter()
    import keras
    import numpy as np
    import tensorflow as tf

    # Importing the core modules the requests use costs a second more; pay it now too.
    import tlstudio.core.deploy.gradcam  # noqa: F401
    import tlstudio.core.deploy.predict  # noqa: F401
    import tlstudio.core.models.catalogue  # noqa: F401

    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
    model(np.zeros((1, 16, 16, 3), np.float32), training=False)
    return f"TensorFlow {tf.__version__} ready ({time.perf_counter() - start:.1f} s)"


def build_model(request: p.BuildModel, ctx: CallContext) -> p.BuiltModel:
    """Build the classifier and describe it as a plain layer tree."""
    from tlstudio.core.models import catalogue
    from tlstudio.core.models.layer_tree import LayerTree

    start = time.perf_counter()
    config = request.config
    num_classes = max(2, int(request.num_classes))
    status = catalogue.weights_status(config)
    ctx.emit(p.StepProgress(0, 0, status.message or "Building the model..."))

    def progress(done: int, total: int) -> None:
        ctx.emit(p.StepProgress(int(done), int(total), "Downloading weights..."))

    base = catalogue.build_base(config, progress=progress, cancel=ctx.cancel)
    ctx.check_cancel()
    ctx.emit(p.StepProgress(0, 0, "Adding the classifier head..."))
    model = catalogue.build_classifier(config, num_classes, base=base)
    family = None
    if not config.base_model_path:
        try:
            family = catalogue.get_spec(config.base).family
        except TlstudioError:  # an unknown name was already reported by build_base
            family = None
    tree = LayerTree.from_model(model, family=family)
    if config.layer_state:
        tree.apply_state(config.layer_state)
    return p.BuiltModel(
        tree=tree,
        base=config.base if not config.base_model_path else Path(config.base_model_path).name,
        input_size=int(catalogue.input_size(config)),
        num_classes=num_classes,
        total_params=int(tree.total_params),
        trainable_params=int(tree.trainable_params),
        weights_message=status.message,
        seconds=time.perf_counter() - start,
    )


def open_model_file(request: p.OpenModelFile, ctx: CallContext) -> p.ModelFileInfo:
    """Open a user's model file with core's safe loader (no code in the file is ever run)."""
    from tlstudio.core.models.open_model import load_model_file

    ctx.emit(p.StepProgress(0, 0, f"Opening {Path(request.path).name}..."))
    loaded = load_model_file(request.path)
    model = loaded.model
    try:
        outputs: int | None = int(model.outputs[0].shape[-1])
    except (AttributeError, IndexError, TypeError):  # no simple single output: leave it unknown
        outputs = None
    try:
        params = int(model.count_params())
    except (AttributeError, ValueError):
        params = 0
    return p.ModelFileInfo(
        path=str(loaded.path),
        source=loaded.source,
        labels=tuple(loaded.labels) if loaded.labels else None,
        input_size=(int(loaded.input_size[0]), int(loaded.input_size[1])),
        notes=tuple(loaded.notes or ()),
        num_outputs=outputs,
        params=params,
    )


# ------------------------------------------------------------------------------------- predict


def _error_prediction(image: Any, message: str) -> Any:
    from tlstudio.core.deploy.predict import Prediction

    source = os.fspath(image) if isinstance(image, str | Path) else "<image>"
    return Prediction(source, error=message)


def _predict_one(predictor: Any, image: Any, top_k: int, threshold: float | None) -> Any:
    try:
        return predictor.predict([image], top_k=top_k, threshold=threshold)[0]
    except TlstudioError as exc:
        return _error_prediction(image, str(exc))
    except Exception as exc:  # a file the decoder chokes on is the user's to fix, not a crash
        return _error_prediction(image, f"{type(exc).__name__}: {exc}")


def load_predictor(request: p.LoadPredictor, ctx: CallContext) -> p.PredictorInfo:
    """Load a model for prediction ahead of the first image (a page shows it is ready)."""
    ctx.emit(p.StepProgress(0, 0, f"Loading {Path(request.model).name}..."))
    predictor = ctx.models.get(request.model)
    return p.PredictorInfo(
        source=request.model,
        labels=tuple(predictor.labels),
        input_size=(int(predictor.input_size[0]), int(predictor.input_size[1])),
        resize_policy=str(predictor.resize_policy),
        notes=tuple(str(n) for n in predictor.notes),
        threshold=getattr(predictor, "threshold", None),
    )


def predict_images(request: p.PredictImages, ctx: CallContext) -> tuple[Any, ...]:
    """Predict each image; every answer also goes out at once as :class:`ImagePredicted`."""
    predictor = ctx.models.get(request.model)
    results = []
    for item_id, image in request.items:
        ctx.check_cancel()
        prediction = _predict_one(predictor, image, request.top_k, request.threshold)
        results.append(prediction)
        ctx.emit(p.ImagePredicted(int(item_id), prediction))
    return tuple(results)


def png_bytes(image: Any) -> bytes:
    """A PIL image as PNG bytes."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def gradcam(request: p.GradCamRequest, ctx: CallContext) -> p.GradCamResult:
    """Grad-CAM of one image; the overlay comes back as PNG bytes, the heatmap as an array."""
    import numpy as np

    from tlstudio.core.deploy.gradcam import overlay_heatmap

    predictor = ctx.models.get(request.model)
    cam = predictor.gradcam(request.image, class_index=request.class_index)
    overlay = cam.overlay
    # With "stretch" the heatmap maps onto the whole original image, so draw it on a sharper copy;
    # with "crop" or "pad" the model saw another framing and only the model-input overlay is right.
    if request.overlay_size and isinstance(request.image, str | Path) and predictor.resize_policy == "stretch":
        from tlstudio.core.data.imageio import make_thumbnail

        try:
            overlay = overlay_heatmap(make_thumbnail(request.image, int(request.overlay_size)), cam.heatmap)
        except (TlstudioError, OSError, ValueError):  # the model-input overlay is still a right answer
            overlay = cam.overlay
    return p.GradCamResult(
        class_index=int(cam.class_index),
        label=str(cam.label),
        probability=float(cam.probability),
        heatmap=cam.heatmap,
        overlay_png=png_bytes(overlay) if request.overlay_format == "png" else None,
        layer=str(cam.layer),
        overlay_rgb=np.asarray(overlay.convert("RGB")) if request.overlay_format == "rgb" else None,
    )


def predict_folder(request: p.PredictFolder, ctx: CallContext) -> p.FolderResult:
    """Predict every image under the paths, a chunk at a time (progress and cancel between chunks)."""
    from tlstudio.core.deploy.batch import CSV_HEADER, collect_files, csv_row

    predictor = ctx.models.get(request.model)
    files = [str(f) for f in collect_files(request.paths)]
    total = len(files)
    results: list[Any] = []
    ctx.emit(p.StepProgress(0, total, "Predicting..."))
    for start in range(0, total, FOLDER_CHUNK):
        ctx.check_cancel()
        chunk = files[start : start + FOLDER_CHUNK]
        try:
            results.extend(predictor.predict(chunk, top_k=request.top_k, threshold=request.threshold))
        except Exception:  # one bad file must not lose the others: retry one by one
            results.extend(_predict_one(predictor, f, request.top_k, request.threshold) for f in chunk)
        ctx.emit(p.StepProgress(len(results), total, "Predicting..."))
    if request.csv_path:
        import csv

        from tlstudio.core.atomic import write_text

        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(CSV_HEADER)
        for prediction in results:
            writer.writerow(csv_row(prediction))
        write_text(Path(request.csv_path), buffer.getvalue())
    return p.FolderResult(tuple(results), request.csv_path)


# -------------------------------------------------------------------------------------- export


def export(request: p.Export, ctx: CallContext) -> p.ExportSummary:
    """Export to each format with core's one export loop; a format that fails is recorded, the others go on."""
    from tlstudio.core.deploy.export import export_models

    ctx.emit(p.StepProgress(0, 0, "Loading the model..."))
    predictor = ctx.models.get(request.source)  # loaded once for every format, and kept for the next export
    last = [0, 0]

    def progress(done: int, total: int) -> None:
        last[:] = [int(done), int(total)]
        ctx.emit(p.StepProgress(int(done), int(total)))

    def status(text: str) -> None:
        ctx.emit(p.StepProgress(last[0], last[1], text))

    results = export_models(predictor, request.formats, request.destination, verify=request.verify,
                            progress=progress, cancel=ctx.cancel, images=request.images, status=status,
                            on_format=lambda fmt: ctx.emit(p.FormatStarted(fmt)))
    outcomes = tuple(
        p.FormatOutcome(r.format, tuple((str(path), int(size)) for path, size in r.files),
                        dict(r.verification) if r.verification else None, r.error, bool(r.missing_dependency),
                        tuple(str(n) for n in r.notes))
        for r in results
    )
    return p.ExportSummary(str(request.destination), outcomes)


#: Which function answers which request (training is the server's own).
HANDLERS: dict[type, Callable[[Any, CallContext], Any]] = {
    p.WarmUp: warm_up,
    p.BuildModel: build_model,
    p.OpenModelFile: open_model_file,
    p.LoadPredictor: load_predictor,
    p.PredictImages: predict_images,
    p.GradCamRequest: gradcam,
    p.PredictFolder: predict_folder,
    p.Export: export,
}
