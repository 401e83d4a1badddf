"""``tlstudio train``: train a classifier on an image folder, headless, with a progress bar.

Examples::

    tlstudio train photos/ --base MobileNet --alpha 0.25 --epochs 10 --out runs/first
    tlstudio train --config runs/first/config.json --out runs/again
    tlstudio train --resume runs/first
    tlstudio train photos/ --cluster local:4 --out runs/spread   # needs "tlstudio[cluster]"
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import time
from typing import Any

from tlstudio.commands._shared import apply_base_and_split

HELP = "train a classifier on an image folder"
DEFAULT_FT = 10  # keep in step with tlstudio.core.config.DEFAULT_FINE_TUNE_EPOCHS (not imported: startup time)
AUTO = "auto"
EPOCH_LINE_SECONDS = 1.0


def _or_auto(convert: Any, what: str) -> Any:
    """An argparse ``type`` that takes "auto" or what ``convert`` accepts (``what`` names it in the error)."""

    def parse(text: str) -> Any:
        if text.strip().lower() == AUTO:
            return AUTO
        try:
            return convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what} or 'auto', not {text!r}") from None

    return parse


def _accuracy_words(result) -> str:
    """``0.860 (95 % interval 0.781-0.914)``: the validation accuracy with its uncertainty from run.json."""
    if result.val_accuracy is None:
        return "-"
    from tlstudio.core.run_folder import read_summary

    try:
        interval = read_summary(result.run_dir).get("val_accuracy_ci95")
    except Exception:  # noqa: BLE001 - the accuracy alone is still worth printing
        interval = None
    if isinstance(interval, list | tuple) and len(interval) == 2:
        return f"{result.val_accuracy:.3f} (95 % interval {interval[0]:.3f}-{interval[1]:.3f})"
    return f"{result.val_accuracy:.3f}"


_number_or_auto = _or_auto(float, "a number")
_count_or_auto = _or_auto(int, "a whole number")

# Flags that map one to one on TrainConfig fields (flag dest -> field).
_FIELDS = {
    "base": "base",
    "alpha": "alpha",
    "weights": "weights",
    "fine_tune_epochs": "fine_tune_epochs",
    "unfreeze_top": "unfreeze_top",
    "batch_size": "batch_size",
    "resize_policy": "resize_policy",
    "seed": "seed",
    "base_model": "base_model_path",
    "input_size": "input_size",
    "optimizer": "optimizer",
    "label_smoothing": "label_smoothing",
    "patience": "patience",
}


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("train", help=HELP, description=HELP + ".")
    p.add_argument("data", nargs="?", metavar="DATA", help="image folder: one sub-folder per class, or train/val[/test]")
    p.add_argument("--base", metavar="NAME", help="base model from the catalogue (default MobileNet)")
    p.add_argument("--alpha", type=float, metavar="A", help="width multiplier of MobileNet bases")
    p.add_argument("--weights", metavar="W", help="imagenet (default), none, or a weights file")
    p.add_argument("--base-model", metavar="FILE", help="your own .keras/.h5 model to use as the base")
    p.add_argument("--input-size", type=int, metavar="S", help="square input size (default: the base's)")
    p.add_argument("--epochs", type=_count_or_auto, metavar="N",
                   help="epochs of head training (default auto: until validation stops improving)")
    p.add_argument("--fine-tune-epochs", type=int, metavar="M",
                   help=f"epochs of fine-tuning after the head (default 0; {DEFAULT_FT} when --unfreeze-top is given)")
    p.add_argument("--unfreeze-top", type=int, metavar="N",
                   help="fine-tune the top N blocks of the base after the head has learned (implies fine-tuning)")
    p.add_argument("--batch-size", type=int, metavar="B", help="images per batch (default 32)")
    p.add_argument("--lr", type=_number_or_auto, metavar="X|auto",
                   help="learning rate of head training (default auto: chosen on the validation images)")
    p.add_argument("--dropout", type=_number_or_auto, metavar="X|auto",
                   help="dropout of the head (default auto: chosen on the validation images)")
    p.add_argument("--fine-tune-lr", type=_number_or_auto, metavar="X|auto",
                   help="learning rate of fine-tuning (default auto: 1/100 of the head's)")
    p.add_argument("--threshold", type=_number_or_auto, metavar="T|auto",
                   help="below this confidence the model answers 'not sure' (default auto: chosen on validation)")
    p.add_argument("--optimizer", choices=("adam", "sgd", "adamw"), help="optimizer (default adam)")
    p.add_argument("--label-smoothing", type=float, metavar="X", help="label smoothing (default 0)")
    p.add_argument("--patience", type=int, metavar="N", help="early-stopping patience in epochs (default 3)")
    p.add_argument("--no-early-stopping", action="store_true", help="train every epoch of the budget")
    p.add_argument("--augment", action="store_true", help="random flips, rotations, zoom, shifts, contrast, brightness")
    p.add_argument("--resize-policy", choices=("stretch", "crop", "pad"), help="how images reach the input size")
    p.add_argument("--val-fraction", type=_number_or_auto, metavar="F|auto",
                   help="share of each class for validation (default auto: 20-30 %% from the smallest class)")
    p.add_argument("--test-fraction", type=float, metavar="F", help="share of each class for testing (default 0)")
    p.add_argument("--seed", type=int, metavar="S", help="random seed of the split and the training")
    p.add_argument("--no-cache", action="store_true", help="do not use the embedding cache")
    p.add_argument("--config", metavar="FILE", help="replay a saved configuration (a run's config.json works)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run")
    p.add_argument("--out", metavar="RUN_DIR", help="the run folder to write")
    p.add_argument("--json", action="store_true", help="print the result as one JSON line on stdout")
    p.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help='compute features and fine-tune on Ray: local:N (a throw-away local cluster), auto, or '
        'ray://HOST:10001 (needs pip install "tlstudio[cluster]")',
    )
    p.set_defaults(func=run)


def build_config(args: argparse.Namespace) -> Any:
    """The TrainConfig for the command line: ``--config`` first, then each flag given."""
    from pathlib import Path

    from tlstudio.core.config import TrainConfig
    from tlstudio.core.errors import TlstudioError

    if args.config:
        from tlstudio.core.config import read_config_file
        from tlstudio.core.run_folder import config_from_json

        path = Path(args.config)
        config, _, _ = config_from_json(read_config_file(path), source=path)
    else:
        config = TrainConfig()
    if args.data:
        config.data_dir = str(Path(args.data).expanduser().resolve())
    for dest, name in _FIELDS.items():
        value = getattr(args, dest, None)
        if value is not None:
            setattr(config, name, value)
    apply_base_and_split(config, args)
    # A value given turns its automatic choice off; "auto" turns it back on.
    for flag, name, auto in (("epochs", "head_epochs", "auto_epochs"), ("lr", "head_lr", "auto_head_lr"),
                             ("dropout", "dropout", "auto_dropout"), ("fine_tune_lr", "fine_tune_lr", "auto_fine_tune_lr"),
                             ("threshold", "threshold", "auto_threshold")):
        value = getattr(args, flag, None)
        if value == AUTO:
            setattr(config, auto, True)
        elif value is not None:
            setattr(config, name, value)
            setattr(config, auto, False)
    if args.unfreeze_top and args.fine_tune_epochs is None and config.fine_tune_epochs == 0:
        config.fine_tune_epochs = DEFAULT_FT  # unfreezing means fine-tuning, after the head
    if args.augment:
        config.augment.enabled = True
    if args.no_cache:
        config.use_cache = False
    if args.no_early_stopping:
        config.early_stopping = False
    if not config.data_dir:
        raise TlstudioError("give the image folder (DATA) or a --config that names one")
    config.validate()
    return config


class _Display:
    """Events -> a rich progress bar and log lines on stderr."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )
        self.task: Any = None
        self.total_epochs = 0
        self.pending: Any = None
        self.last_epoch_line = -float("inf")

    def __enter__(self) -> _Display:
        self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.stop()

    def _new_task(self, description: str, total: int) -> None:
        if self.task is not None:
            self.progress.update(self.task, visible=True)
            self.progress.stop_task(self.task)
        self.task = self.progress.add_task(description, total=max(total, 1), info="")

    def _print_epoch(self) -> None:
        event, self.pending = self.pending, None
        if event is None:
            return
        self.last_epoch_line = time.monotonic()
        val = (
            f" val_loss {event.val_loss:.3f} val_acc {event.val_accuracy:.3f}"
            if event.val_loss is not None and event.val_accuracy is not None
            else ""
        )
        self.console.print(
            f"{event.phase} epoch {event.epoch + 1}/{event.epochs}: loss {event.loss:.3f} "
            f"acc {event.accuracy:.3f}{val} ({event.seconds:.1f} s)"
        )

    def __call__(self, event: Any) -> None:
        from tlstudio.core import events as ev

        if not isinstance(event, (ev.EpochEnded, ev.BatchEnded, ev.FileSkipped)):
            self._print_epoch()  # the last epoch of a phase before what follows it
        if isinstance(event, ev.RunStarted):
            self.total_epochs = event.total_epochs
            self.console.print(
                f"[bold]{len(event.classes)} classes[/bold] ({', '.join(event.classes)}): "
                f"{event.num_train} train, {event.num_val} val, {event.num_test} test images"
            )
        elif isinstance(event, ev.PhaseStarted):
            if event.phase in (ev.PHASE_CACHING, ev.PHASE_EVALUATING):
                self._new_task(event.phase, event.steps_per_epoch)
            else:
                self.steps = event.steps_per_epoch
                self.phase_epochs = event.epochs
                self._new_task(f"{event.phase} 1/{event.epochs}", event.steps_per_epoch)
        elif isinstance(event, ev.CacheProgress):
            self.progress.update(self.task, completed=event.done, info=f"{event.hits} cached")
        elif isinstance(event, ev.BatchEnded):
            if event.batch == 0:
                self.progress.reset(self.task, total=max(event.steps, 1))
                self.progress.update(self.task, description=f"{event.phase} {event.epoch + 1}/{self.phase_epochs}")
            self.progress.update(
                self.task, completed=event.batch + 1, info=f"loss {event.loss:.3f} acc {event.accuracy:.3f}"
            )
        elif isinstance(event, ev.EpochEnded):
            # A head on cached features runs hundreds of epochs a minute: one line a second, and the last.
            self.pending = event
            if time.monotonic() - self.last_epoch_line >= EPOCH_LINE_SECONDS or event.epoch + 1 == event.epochs:
                self._print_epoch()
        elif isinstance(event, ev.TrainFinished):
            if self.task is not None:
                task = self.progress.tasks[-1]
                self.progress.update(self.task, completed=task.total)
        elif isinstance(event, ev.FileSkipped):
            self.console.print(f"[yellow]skipped[/yellow] {event.path}: {event.reason}")
        elif isinstance(event, ev.LogMessage):
            style = "yellow" if event.level == "warning" else "dim"
            self.console.print(f"[{style}]{event.text}[/{style}]")


@contextlib.contextmanager
def native_logs_silenced() -> Any:
    """Send what native libraries write to the process's stderr (TensorFlow's absl, oneDNN and CUDA
    start-up lines) to the null device, while Python's ``sys.stderr`` keeps the terminal.

    Only when ``sys.stderr`` is the process's own stderr (not when a test captures it).
    """
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        fd = -1
    if fd != 2:
        yield
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    original, sys.stderr = sys.stderr, os.fdopen(os.dup(saved), "w", buffering=1)
    try:
        yield
    finally:
        sys.stderr.flush()
        sys.stderr.close()
        sys.stderr = original
        os.dup2(saved, 2)
        os.close(saved)


def describe_settings(settings: dict[str, Any], kept: str, threshold: float) -> str:
    """One line: the values the run trained with, "(auto)" after those it chose itself."""
    auto = set(settings.get("automatic", []))
    parts = []
    for key, label, name in (("head_lr", "learning rate", "head_lr"), ("dropout", "dropout", "dropout"),
                             ("fine_tune_lr", "fine-tuning learning rate", "fine_tune_lr")):
        if key in settings:
            parts.append(f"{label} {settings[key]:g}" + (" (auto)" if name in auto else ""))
    if kept:
        parts.append(f"kept: {kept}")
    parts.append(f"'not sure' below {threshold:.0%}" + (" (auto)" if "threshold" in auto else ""))
    return ", ".join(parts)


class Terminated(KeyboardInterrupt):
    """SIGTERM (a service manager, ``kill``): stop now, like a second Ctrl-C."""


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tlstudio.core.errors import TlstudioError
    from tlstudio.core.run_lock import check_new_run_dir

    if args.resume:
        if args.out and Path(args.out).resolve() != Path(args.resume).resolve():
            raise TlstudioError("--resume continues the run in its own folder; leave out --out")
        config = None
        run_dir = Path(args.resume)
        if not run_dir.is_dir():
            raise TlstudioError(f"run folder not found: {run_dir}")
    else:
        if not args.out:
            raise TlstudioError("say where to write the run with --out RUN_DIR")
        run_dir = Path(args.out)
        check_new_run_dir(run_dir)  # before loading TensorFlow: refuse at once
        config = build_config(args)

    with native_logs_silenced():  # TensorFlow prints its start-up lines when it is imported
        from tlstudio.core.train.trainer import train

    cancel = threading.Event()
    previous = signal.getsignal(signal.SIGINT)
    previous_term = signal.getsignal(signal.SIGTERM)

    def on_sigint(signum: int, frame: Any) -> None:
        if cancel.is_set():
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt
        cancel.set()
        print("\nstopping after this batch (Ctrl-C again to abort)", file=sys.stderr)

    def on_sigterm(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGTERM, previous_term)
        raise Terminated

    in_main = threading.current_thread() is threading.main_thread()
    if in_main:
        signal.signal(signal.SIGINT, on_sigint)
        signal.signal(signal.SIGTERM, on_sigterm)
    from contextlib import ExitStack

    try:
        with ExitStack() as stack:
            stack.enter_context(native_logs_silenced())
            extra: dict[str, Any] = {}
            if getattr(args, "cluster", None):
                from tlstudio.cluster.launch import cluster_training

                extra = stack.enter_context(cluster_training(args.cluster))
            display = stack.enter_context(_Display())
            result = train(config, run_dir, emit=display, cancel=cancel, resume=bool(args.resume), **extra)
    except KeyboardInterrupt as exc:
        from tlstudio.core import run_folder

        how = "terminated" if isinstance(exc, Terminated) else "interrupted"
        if run_folder.is_run(run_dir):
            print(f"tlstudio train: {how}; the run keeps its last completed epoch: continue it with "
                  f"tlstudio train --resume {run_dir}", file=sys.stderr)
        else:
            print(f"tlstudio train: {how} before the first epoch; nothing was kept", file=sys.stderr)
        code = 143 if isinstance(exc, Terminated) else 130
        # The run folder is complete and closed; leave now. Interpreter teardown with TensorFlow's
        # threads stopped mid-batch can end in SIGABRT, which would hide this exit code.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    finally:
        if in_main:
            signal.signal(signal.SIGINT, previous)
            signal.signal(signal.SIGTERM, previous_term)
    if args.json:
        print(json.dumps(result.to_json()), flush=True)
    else:
        val = _accuracy_words(result)
        test = f", test accuracy {result.test_accuracy:.3f}" if result.test_accuracy is not None else ""
        print(f"settings: {describe_settings(result.settings, result.kept, result.threshold)}", file=sys.stderr)
        print(
            f"{result.status}: validation accuracy {val}{test}, {result.epochs_run} epochs in "
            f"{result.train_seconds:.1f} s; model: {result.model_path}"
        )
    return 0 if result.status == "finished" else 130
