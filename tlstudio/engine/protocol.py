"""The engine protocol: every message between the window's process and the engine process.

The window's process never imports TensorFlow; the engine process owns it and answers requests,
as a language server or a Jupyter kernel does. Everything that crosses the pipe is a frozen
dataclass from this module, or a plain value inside one (numbers, strings, tuples, dicts, numpy
arrays, and the plain dataclasses of :mod:`tlstudio.core`: events, ``TrainConfig``,
``LayerTree``, ``Prediction``, ``TrainResult``), pickled by ``multiprocessing``.

A conversation::

    client                                  engine
    ------                                  ------
                                      <-    Hello(pid)
                                      <-    Heartbeat(...)            every HEARTBEAT_SECONDS
    Call(7, BuildModel(config, 3))    ->
                                      <-    Progress(7, StepProgress(...))   rate-limited
                                      <-    Done(7, BuiltModel(...))
    Call(8, Train(...))               ->
                                      <-    Progress(8, RunStarted(...)), Progress(8, BatchEnded(...)) ...
    CancelCall(8)                     ->
                                      <-    Done(8, TrainResult(status="cancelled"))
    Shutdown()                        ->
                                      <-    (the process exits)

Every :class:`Call` gets exactly one final answer: :class:`Done`, :class:`Failed` or
:class:`CallCancelled`. Requests run in *lanes* (one thread each in the engine): a request waits
for the one before it in its lane, but lanes run side by side, so a prediction or Grad-CAM is
answered while a training runs. Only one training may run at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

#: The engine sends a heartbeat this often; the client declares it dead after its deadline.
HEARTBEAT_SECONDS = 0.5

#: Lane names. ``train`` drives one training child process; ``interactive`` answers the quick
#: requests a person waits for (build, open, predict, Grad-CAM); ``batch`` runs the long ones
#: (folder prediction, evaluation, export), so they never delay a single prediction.
LANE_TRAIN = "train"
LANE_INTERACTIVE = "interactive"
LANE_BATCH = "batch"
LANES = (LANE_TRAIN, LANE_INTERACTIVE, LANE_BATCH)


# ---------------------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class Request:
    """Base of every request; ``lane`` says which engine thread answers it."""

    lane: ClassVar[str] = LANE_INTERACTIVE


@dataclass(frozen=True)
class Ping(Request):
    """Answered with :class:`EngineInfo` (whether TensorFlow is loaded, the engine's pid)."""


@dataclass(frozen=True)
class WarmUp(Request):
    """Import TensorFlow and Keras and run a tiny model once; answered with a one-line description."""


@dataclass(frozen=True)
class BuildModel(Request):
    """Build the classifier for ``config`` (downloading weights if needed); answered with :class:`BuiltModel`."""

    config: Any  # TrainConfig
    num_classes: int


@dataclass(frozen=True)
class OpenModelFile(Request):
    """Open a user's model file with core's safe loader; answered with :class:`ModelFileInfo`."""

    path: str


@dataclass(frozen=True)
class LoadPredictor(Request):
    """Load a run folder or model file for prediction (kept loaded); answered with :class:`PredictorInfo`."""

    model: str


@dataclass(frozen=True)
class Train(Request):
    """Run core ``train()`` (in a child process of the engine); events stream as :class:`Progress`.

    Answered with core's ``TrainResult`` (also for a cancelled run that kept weights).
    """

    lane: ClassVar[str] = LANE_TRAIN
    config: Any  # TrainConfig, or None with resume=True
    run_dir: str
    scan: Any = None  # DatasetScan the window already holds
    resume: bool = False
    cluster: str = ""  # a Ray address or "local:N" (issue the features and fine-tuning there); "" = this machine


@dataclass(frozen=True)
class Evaluate(Request):
    """Evaluate a model on labelled images; answered with an ``evaluation.json``-shaped dict.

    With ``folder`` (class sub-folders named like the model's labels) every usable image there is
    evaluated as split ``"folder"``; without it ``model`` must be a run folder and its own
    validation and test splits are evaluated again.
    """

    lane: ClassVar[str] = LANE_BATCH
    model: str  # run folder or model file
    folder: str | None = None


@dataclass(frozen=True)
class PredictImages(Request):
    """Top-k predictions of a few images; each also streams as :class:`ImagePredicted`.

    ``items`` holds ``(item_id, image)`` pairs; an image is a path or a uint8 array (H, W, 3).
    Answered with a tuple of core ``Prediction`` in item order.
    """

    model: str
    items: tuple[tuple[int, Any], ...]
    top_k: int = 3
    threshold: float | None = None


@dataclass(frozen=True)
class GradCamRequest(Request):
    """Grad-CAM of one image; answered with :class:`GradCamResult`.

    ``overlay_size``: for a path and the "stretch" resize policy, the overlay is drawn on a copy of
    the original image this many pixels wide at most (sharper than the small model input).
    """

    model: str
    image: Any  # path or uint8 array
    class_index: int | None = None
    overlay_size: int | None = 320
    overlay_format: str = "png"  # "png": PNG bytes (compact, for any client); "rgb": a uint8 array


@dataclass(frozen=True)
class PredictFolder(Request):
    """Predict every image under ``paths`` (folders recursively); answered with :class:`FolderResult`.

    Progress streams as :class:`StepProgress`; with ``csv_path`` the rows are also written there.
    """

    lane: ClassVar[str] = LANE_BATCH
    model: str
    paths: tuple[str, ...]
    top_k: int = 3
    threshold: float | None = None
    csv_path: str | None = None


@dataclass(frozen=True)
class Export(Request):
    """Export ``source`` into ``destination`` in each format; answered with :class:`ExportSummary`.

    A format that fails is recorded with its reason and the others still go ahead. With ``verify``
    each export is reloaded in a fresh process and compared with the Keras model.
    """

    lane: ClassVar[str] = LANE_BATCH
    source: str  # run folder or model file
    formats: tuple[str, ...]
    destination: str
    verify: bool = True
    images: tuple[str, ...] | None = None  # calibration / verification images


# ---------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class EngineInfo:
    pid: int
    tensorflow_loaded: bool
    description: str = ""


@dataclass(frozen=True)
class BuiltModel:
    """What the Model page shows after a build (the Keras model itself stays in the engine)."""

    tree: Any  # core LayerTree: plain data (names, types, shapes, parameter counts, trainable flags)
    base: str
    input_size: int
    num_classes: int
    total_params: int
    trainable_params: int
    weights_message: str
    seconds: float


@dataclass(frozen=True)
class ModelFileInfo:
    """Facts about a model file opened by the user."""

    path: str
    source: str  # "tlstudio" | "keras3" | "keras2" | "teachable-machine"
    labels: tuple[str, ...] | None
    input_size: tuple[int, int]
    notes: tuple[str, ...] = ()
    num_outputs: int | None = None
    params: int = 0

    @property
    def source_label(self) -> str:
        return SOURCE_LABELS.get(self.source, self.source)


SOURCE_LABELS = {
    "tlstudio": "tlstudio (Keras 3)",
    "keras3": "Keras 3",
    "keras2": "Keras 2 / tf.keras",
    "teachable-machine": "Teachable Machine",
}


@dataclass(frozen=True)
class PredictorInfo:
    """A model loaded for prediction: what the Test page shows about it."""

    source: str
    labels: tuple[str, ...]
    input_size: tuple[int, int]
    resize_policy: str = "stretch"
    notes: tuple[str, ...] = ()
    threshold: float | None = None  # the run's "not sure" threshold, the default of PredictImages


@dataclass(frozen=True)
class GradCamResult:
    class_index: int
    label: str
    probability: float
    heatmap: Any  # float32 (H, W) in [0, 1], the model input's size
    overlay_png: bytes | None  # the heat over the image, PNG-encoded (overlay_format "png")
    layer: str = ""
    overlay_rgb: Any = None  # the same as a uint8 (H, W, 3) array (overlay_format "rgb")


@dataclass(frozen=True)
class FolderResult:
    predictions: tuple[Any, ...]  # core Prediction, one per file, in file order
    csv_path: str | None = None


@dataclass(frozen=True)
class FormatOutcome:
    """What one export format produced.

    ``files``: ((path, size in bytes), ...); ``verification``: core's dict ({"top1_agreement",
    "max_prob_diff", "n", "ok"}) or None; ``error``: why it failed; ``missing_dependency``: True when
    the failure is an optional package that is not installed.
    """

    fmt: str
    files: tuple[tuple[str, int], ...] = ()
    verification: dict | None = None
    error: str | None = None
    missing_dependency: bool = False
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class ExportSummary:
    destination: str
    outcomes: tuple[FormatOutcome, ...]


# ----------------------------------------------------------------------------- progress events


@dataclass(frozen=True)
class StepProgress:
    """Progress of a request that is not a training: ``done`` of ``total`` (0 = unknown), with a line of text."""

    done: int
    total: int
    text: str = ""


@dataclass(frozen=True)
class FormatStarted:
    """An :class:`Export` request starts one of its formats."""

    fmt: str


@dataclass(frozen=True)
class ImagePredicted:
    """One image of a :class:`PredictImages` request is done."""

    item_id: int
    prediction: Any  # core Prediction


# ------------------------------------------------------------------------------------ envelopes


@dataclass(frozen=True)
class Call:
    """Client -> engine: run ``request`` and answer with ``call_id``."""

    call_id: int
    request: Request


@dataclass(frozen=True)
class CancelCall:
    """Client -> engine: stop call ``call_id`` (it then answers :class:`CallCancelled`, or for a
    training the ``TrainResult`` of the cancelled run). ``reason`` "quit" (the window is closing) stops
    a training as "interrupted", to be resumed, instead."""

    call_id: int
    reason: str = "user"


@dataclass(frozen=True)
class Shutdown:
    """Client -> engine: cancel everything, stop the training child and exit."""


@dataclass(frozen=True)
class Hello:
    """Engine -> client, first message: the engine is up."""

    pid: int


@dataclass(frozen=True)
class Heartbeat:
    """Engine -> client, every :data:`HEARTBEAT_SECONDS`: alive, and how many calls are in progress."""

    running: int = 0
    tensorflow_loaded: bool = False


@dataclass(frozen=True)
class Progress:
    """Engine -> client: an event of a running call (core event, :class:`StepProgress`, ...)."""

    call_id: int
    event: Any


@dataclass(frozen=True)
class Done:
    call_id: int
    value: Any


@dataclass(frozen=True)
class Failed:
    """The call failed; ``message`` is one line for the user."""

    call_id: int
    message: str
    error_type: str = "TlstudioError"
    details: str = ""  # a traceback for the log, for unexpected errors only


@dataclass(frozen=True)
class CallCancelled:
    call_id: int
    message: str = "Cancelled."
    interrupted: bool = False  # a training stopped to quit: its run stays "interrupted" and can be resumed


#: Final answers: exactly one per call.
FINAL_REPLIES = (Done, Failed, CallCancelled)


@dataclass
class EngineOptions:
    """How the engine process is set up (passed to it at start)."""

    progress_interval: float = 0.05  # seconds between two forwarded progress events of one call
    heartbeat_seconds: float = HEARTBEAT_SECONDS
    env: dict[str, str] = field(default_factory=dict)
