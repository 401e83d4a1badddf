"""Inject faults into the real ``tlstudio`` CLI and count how many of its promises about files hold.

Every check runs ``python -m tlstudio ...`` in a fresh process on real files in a temporary folder
(real signals, a real lock held by another process, damaged checkpoints, a read-only and a full
file system where this machine lets us mount a tmpfs) and looks at what is left on disk and what
the user was told. The promises are the ones of docs/promises.md.

Run: ``python benchmarks/fault_injection.py`` (about two to five minutes; prints one line per check,
then ``N of M checks hold``; exit code 1 when any does not).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--base", "MobileNet", "--alpha", "0.25", "--weights", "none", "--input-size", "32", "--batch-size", "8"]
ENV = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), TF_CPP_MIN_LOG_LEVEL="3")


def cli(*args: str, timeout: float = 600, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tlstudio", *args], capture_output=True, text=True,
                          env=env or ENV, timeout=timeout, cwd=ROOT)


#: Run in a fresh interpreter: the real window, offscreen, trains with augmentation (every epoch through the
#: image pipeline) and is closed after its first epoch, answering "Stop the training and quit?" with Yes.
CLOSE_WINDOW = """
import json, sys, time
from pathlib import Path
from PySide6.QtWidgets import QApplication, QMessageBox
from tlstudio.core import run_folder
from tlstudio.core.data.scan import scan_dataset
from tlstudio.gui.main_window import MainWindow
app = QApplication([])
window = MainWindow()
window.show()
state = window.state
state.set_scan(scan_dataset(sys.argv[1]))
state.update_train_config(base="MobileNet", alpha=0.25, weights="none", input_size=32, batch_size=8, head_epochs=30,
                          auto_epochs=False, fine_tune_epochs=0, early_stopping=False, augment={"enabled": True})
page = window.go_to("train")
assert page.start_training()
run = page.run_dir
deadline = time.monotonic() + 300
while page.plots.epoch_count() < 1 and page.is_training() and time.monotonic() < deadline:
    app.processEvents()
    time.sleep(0.02)
answers = [QMessageBox.StandardButton.Yes, QMessageBox.StandardButton.Discard]
QMessageBox.question = staticmethod(lambda *a, **k: answers.pop(0))
t0 = time.monotonic()
window.close()
seconds = time.monotonic() - t0
print(json.dumps({"run": str(run), "status": run_folder.read_summary(run).status, "seconds": seconds,
                  "model": run_folder.has_model(run), "visible": window.isVisible()}), flush=True)
"""


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tlstudio", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV, cwd=ROOT)


def one_line(proc: subprocess.CompletedProcess[str], code: int = 2) -> bool:
    """The command failed with ``code`` and its error is one ``tlstudio CMD:`` line, no traceback."""
    last = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()][-1:] or [""]
    return proc.returncode == code and last[0].startswith("tlstudio ") and "Traceback" not in proc.stderr


def make_images(root: Path, classes: dict[str, int]) -> Path:
    from PIL import Image

    colours = [(220, 40, 40), (40, 200, 60), (40, 80, 220)]
    for k, (name, count) in enumerate(classes.items()):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            img = Image.new("RGB", (40, 36), colours[k % 3])
            img.putpixel((i % 40, i % 36), (255, 255, 255))
            img.save(root / name / f"{name}_{i:02d}.png")
    return root


def wait_for(path: Path, proc: subprocess.Popen[str], seconds: float = 300) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proc.poll() is None:
        if path.is_file():
            return True
        time.sleep(0.05)
    return path.is_file()


def status_of(run: Path) -> str:
    """The run's status as every reader sees it (run.json completed by the lock's liveness)."""
    code = f"from tlstudio.core.run_folder import read_summary; print(read_summary({str(run)!r}).status)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV)
    return out.stdout.strip()


def can_mount() -> bool:
    probe = Path(tempfile.mkdtemp())
    ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)], capture_output=True).returncode == 0
    if ok:
        subprocess.run(["umount", "-l", str(probe)], capture_output=True)
    probe.rmdir()
    return ok


class Checks:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.data = make_images(work / "data", {"blue": 10, "green": 10, "red": 10})
        self.results: list[tuple[str, str, bool, str]] = []

    def check(self, promise: str, what: str, fn: Callable[[], tuple[bool, str]]) -> None:
        try:
            held, detail = fn()
        except Exception as exc:  # noqa: BLE001 - a check that crashes does not hold
            held, detail = False, f"{type(exc).__name__}: {exc}"
        self.results.append((promise, what, held, detail))
        print(f"{'holds ' if held else 'BROKEN'}  [{promise}] {what}" + ("" if held else f"  -- {detail}"), flush=True)

    # --- 1. never overwrite ------------------------------------------------------------------------
    def train_out_foreign(self) -> tuple[bool, str]:
        mine = self.work / "holiday"
        mine.mkdir()
        (mine / "photo.jpg").write_bytes(b"mine")
        proc = cli("train", str(self.data), *TINY, "--out", str(mine))
        proc2 = cli("train", str(self.data), *TINY, "--out", str(mine / "photo.jpg"))
        kept = [p.name for p in mine.iterdir()] == ["photo.jpg"] and (mine / "photo.jpg").read_bytes() == b"mine"
        return one_line(proc) and one_line(proc2) and kept, proc.stderr.strip()[-300:]

    def export_out_foreign(self) -> tuple[bool, str]:
        out = self.work / "exp-foreign"
        out.mkdir()
        (out / "model.keras").write_bytes(b"theirs")
        proc = cli("export", str(self.run), "-f", "keras", "--out", str(out))
        file_target = self.work / "mine.keras"
        file_target.write_bytes(b"mine")
        proc2 = cli("export", str(self.run), "-f", "keras", "--out", str(file_target))
        kept = (out / "model.keras").read_bytes() == b"theirs" and file_target.read_bytes() == b"mine"
        return one_line(proc) and one_line(proc2) and kept and len(list(out.iterdir())) == 1, proc.stderr[-300:]

    def one_card(self) -> tuple[bool, str]:
        out = self.work / "exp-all"
        proc = cli("export", str(self.run), "-f", "keras,tflite,tflite-f16", "--out", str(out))
        card = (out / "model_card.md").read_text() if (out / "model_card.md").is_file() else ""
        names = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
        listed = all(n in card for n in ("model.keras", "model.tflite", "model_f16.tflite"))
        return proc.returncode == 0 and listed and names.count("model_card.md") == 1, f"{proc.returncode} {names}"

    # --- 2. one writer ---------------------------------------------------------------------------
    def second_writer(self) -> tuple[bool, str]:
        run = self.work / "busy"
        # Augmented: every epoch goes through the image pipeline, so the run is still training when the
        # signals below arrive (a head on cached features runs all 60 epochs in well under a second).
        first = start("train", str(self.data), *TINY, "--epochs", "60", "--no-early-stopping", "--augment",
                      "--out", str(run))
        try:
            if not wait_for(run / "checkpoints" / "state.json", first):
                return False, "the first training never checkpointed"
            t0 = time.monotonic()
            second = cli("train", "--resume", str(run))
            quick = time.monotonic() - t0 < 60
            ok = one_line(second) and "being written by process" in second.stderr and quick
            self.busy = (run, first)
            return ok, second.stderr.strip()[-300:]
        except BaseException:
            first.kill()
            raise

    # --- 5. true states --------------------------------------------------------------------------
    def sigterm(self) -> tuple[bool, str]:
        run, first = self.busy
        first.send_signal(signal.SIGTERM)
        _out, err = first.communicate(timeout=120)
        says = json.loads((run / "run.json").read_text()).get("status")
        hint = f"--resume {run}" in err
        return first.returncode == 143 and says == "interrupted" and hint and "Traceback" not in err, err[-300:]

    def kill_9(self) -> tuple[bool, str]:
        run, _ = self.busy
        again = start("train", "--resume", str(run))
        state = run / "checkpoints" / "state.json"
        before = json.loads(state.read_text())["epochs_done"]
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and again.poll() is None:
            if json.loads(state.read_text()).get("epochs_done", 0) > before:
                break
            time.sleep(0.1)
        again.send_signal(signal.SIGKILL)
        again.wait(30)
        seen = status_of(run)
        resumed = cli("train", "--resume", str(run), "--json")
        result = json.loads(resumed.stdout.strip().splitlines()[-1]) if resumed.returncode == 0 else {}
        ok = seen == "interrupted" and result.get("status") == "finished" and result.get("epochs_run") == 60
        return ok, f"status after kill -9: {seen}; resume: {resumed.returncode} {resumed.stderr[-200:]}"

    def damaged_checkpoint(self) -> tuple[bool, str]:
        run = self.work / "damaged"
        proc = start("train", str(self.data), *TINY, "--epochs", "60", "--no-early-stopping", "--out", str(run))
        state = run / "checkpoints" / "state.json"
        wait_for(state, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        state.write_text(state.read_text()[:20])
        resumed = cli("train", "--resume", str(run))
        history = json.loads((run / "history.json").read_text())["epochs"] if (run / "history.json").is_file() else []
        return one_line(resumed) and "damaged" in resumed.stderr and bool(history), resumed.stderr.strip()[-300:]

    def early_failure(self) -> tuple[bool, str]:
        one = make_images(self.work / "one-class", {"only": 6})
        run = self.work / "runs-early" / "run"
        proc = cli("train", str(one), *TINY, "--out", str(run))
        return one_line(proc) and not (self.work / "runs-early").exists(), proc.stderr.strip()[-300:]

    def close_window(self) -> tuple[bool, str]:
        data = self.work / "data-close"
        shutil.copytree(self.data, data)
        env = dict(ENV, QT_QPA_PLATFORM="offscreen", TLSTUDIO_HOME=str(self.work / "home-close"),
                   XDG_CONFIG_HOME=str(self.work / "config-close"))  # the window's settings stay in the work folder
        proc = subprocess.run([sys.executable, "-c", CLOSE_WINDOW, str(data)], capture_output=True, text=True,
                              env=env, timeout=600, cwd=ROOT)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        if not lines:
            return False, proc.stderr.strip()[-300:]
        seen = json.loads(lines[-1])
        self.closed = (data, Path(seen["run"]))
        ok = seen["status"] == "interrupted" and not seen["model"] and not seen["visible"]
        return ok, f"{seen}"

    # --- 6. inputs -------------------------------------------------------------------------------
    def resume_changed_classes(self) -> tuple[bool, str]:
        data, run = self.closed
        (data / "green").rename(data / "teal")
        refused = cli("train", "--resume", str(run))
        (data / "teal").rename(data / "green")
        named = "new: teal; gone: green" in refused.stderr
        return one_line(refused) and named and status_of(run) == "interrupted", refused.stderr.strip()[-300:]

    def resume_after_close(self) -> tuple[bool, str]:
        _data, run = self.closed
        resumed = cli("train", "--resume", str(run), "--json")
        result = json.loads(resumed.stdout.strip().splitlines()[-1]) if resumed.returncode == 0 else {}
        ok = result.get("status") == "finished" and result.get("epochs_run") == 30
        return ok, f"{resumed.returncode} {resumed.stderr.strip()[-200:]}"

    # --- 4. the feature cache ---------------------------------------------------------------------
    def cache_bypassed(self) -> tuple[bool, str]:
        home = self.work / "home-no-cache"
        home.mkdir()
        (home / "cache").write_text("a file where the cache folder would go")  # cannot be created, even by root
        run = self.work / "run-no-cache"
        proc = cli("train", str(self.data), *TINY, "--epochs", "2", "--out", str(run),
                   env=dict(ENV, TLSTUDIO_HOME=str(home)))
        said = " ".join(proc.stderr.split())
        once = said.count("it is bypassed") == 1 and "the feature cache in" in said
        return proc.returncode == 0 and once and status_of(run) == "finished", proc.stderr.strip()[-300:]

    # --- 8. one line, no traceback ----------------------------------------------------------------
    def export_read_only(self) -> tuple[bool, str]:
        ro = self.work / "ro"
        ro.mkdir()
        if self.mount:
            subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,ro", "tmpfs", str(ro)], check=True)
        else:
            ro.chmod(0o500)
        try:
            proc = cli("export", str(self.run), "-f", "keras", "--out", str(ro / "exp"))
            empty = list(ro.iterdir()) == []
        finally:
            if self.mount:
                subprocess.run(["umount", "-l", str(ro)], capture_output=True)
            ro.chmod(0o700)
        if not self.mount and os.geteuid() == 0:
            return True, "skipped: root without mount ignores permissions"
        return one_line(proc) and empty, proc.stderr.strip()[-300:]

    def export_full_disk(self) -> tuple[bool, str]:
        if not self.mount:
            return True, "skipped: cannot mount a tmpfs here"
        full = self.work / "full"
        full.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(full)], check=True)
        try:
            proc = cli("export", str(self.run), "-f", "keras", "--out", str(full / "exp"))
            empty = list(full.iterdir()) == []
        finally:
            subprocess.run(["umount", "-l", str(full)], capture_output=True)
        return one_line(proc) and empty, proc.stderr.strip()[-300:]

    def export_onto_file(self) -> tuple[bool, str]:
        target = self.work / "plain-file"
        target.write_text("x")
        proc = cli("export", str(self.run), "-f", "keras,tflite", "--out", str(target))
        return one_line(proc) and target.read_text() == "x", proc.stderr.strip()[-300:]

    def usage_errors(self) -> tuple[bool, str]:
        procs = [cli("train", "--epochs", "x"), cli("predict", str(self.work / "no-model.keras"), str(self.data)),
                 cli("export", str(self.run), "-f", "coreml", "--out", str(self.work / "x"))]
        return all(one_line(p) for p in procs), " | ".join(p.stderr.strip()[-120:] for p in procs)

    # --- files -----------------------------------------------------------------------------------
    def csv_injection(self) -> tuple[bool, str]:
        evil = self.work / "evil"
        evil.mkdir()
        shutil.copy(next((self.data / "red").iterdir()), evil / "=HYPERLINK(1).png")
        out = self.work / "preds.csv"
        proc = subprocess.run([sys.executable, "-m", "tlstudio", "predict", str(self.run), "=HYPERLINK(1).png",
                               "--csv", str(out)], capture_output=True, text=True, env=ENV, cwd=evil)
        text = out.read_text() if out.is_file() else ""
        return proc.returncode == 0 and "'=HYPERLINK(1).png" in text, proc.stderr[-300:]

    def permissions(self) -> tuple[bool, str]:
        run_modes = {p.stat().st_mode & 0o777 for p in self.run.iterdir() if p.is_file() and not p.name.startswith(".")}
        exp_modes = {p.stat().st_mode & 0o777 for p in (self.work / "exp-all").iterdir() if p.is_file()}
        return run_modes == exp_modes and len(run_modes) == 1, f"run {sorted(map(oct, run_modes))} export {sorted(map(oct, exp_modes))}"

    # --- 3. model files: FIFOs and hostile archives --------------------------------------------
    def model_fifo(self) -> tuple[bool, str]:
        fifo = self.work / "model.h5"
        os.mkfifo(fifo)
        image = next(self.data.rglob("*.png"))
        try:
            proc = cli("predict", str(fifo), str(image), timeout=120)
        except subprocess.TimeoutExpired:
            return False, "predict blocked on a FIFO given as the model"
        return one_line(proc) and "named pipe" in proc.stderr, proc.stderr.strip()[-300:]

    def model_zip_bomb(self) -> tuple[bool, str]:
        import zipfile

        bomb = self.work / "bomb.keras"
        with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("config.json", "{}")
            zf.writestr("model.weights.h5", b"\0" * (64 * 1024 * 1024))
        proc = cli("predict", str(bomb), str(next(self.data.rglob("*.png"))))
        return one_line(proc) and "zip bomb" in proc.stderr, proc.stderr.strip()[-300:]

    # --- 4. the feature cache ---------------------------------------------------------------------
    def damaged_cache(self) -> tuple[bool, str]:
        where = subprocess.run([sys.executable, "-c", "from tlstudio.core import paths; print(paths.cache_dir())"],
                               capture_output=True, text=True, env=ENV)
        shards = list(Path(where.stdout.strip()).glob("features/*/shard-*.npy"))
        for shard in shards:  # every entry the reference run stored: flip its last byte
            data = bytearray(shard.read_bytes())
            data[-1] ^= 0xFF
            shard.write_bytes(bytes(data))
        run = self.work / "run-after-damage"
        proc = cli("train", str(self.data), *TINY, "--epochs", "2", "--out", str(run))
        return proc.returncode == 0 and status_of(run) == "finished", f"{len(shards)} shards; {proc.stderr[-300:]}"

    # --- 7. projects ------------------------------------------------------------------------------
    def hand_edited_project(self) -> tuple[bool, str]:
        path = self.work / "edited.tlsproj"
        path.write_text(json.dumps({"schema_version": 1, "train": {"batch_size": "lots", "head_lr": -1},
                                    "runs": [{"run_dir": 5}, "x"]}))
        code = ("import sys\nfrom tlstudio.core.project import Project, ProjectError\n"
                f"try:\n    Project.load({str(path)!r})\nexcept ProjectError as e:\n    print(e); sys.exit(3)\n")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV)
        return out.returncode == 3 and "learning rates" in out.stdout and not out.stderr.strip(), out.stderr[-300:]

    def run_all(self) -> int:
        self.mount = can_mount()
        self.run = self.work / "run"
        trained = cli("train", str(self.data), *TINY, "--epochs", "3", "--out", str(self.run))
        if trained.returncode != 0:
            print(f"cannot train the reference run: {trained.stderr[-500:]}")
            return 2
        self.check("1", "train --out refuses a folder holding a user's files, and a file", self.train_out_foreign)
        self.check("1", "export --out refuses a non-empty folder and an existing file", self.export_out_foreign)
        self.check("1", "a multi-format export writes one model card listing every format", self.one_card)
        self.check("2", "a second writer is refused at once while a training runs", self.second_writer)
        self.check("5", "SIGTERM leaves an 'interrupted' run that says how to resume", self.sigterm)
        self.check("5", "kill -9 reads as 'interrupted' and --resume finishes the run", self.kill_9)
        self.check("5", "a damaged checkpoint is refused, never restarted from epoch 0", self.damaged_checkpoint)
        self.check("5", "a training failing before its first epoch leaves no folder", self.early_failure)
        self.check("5", "closing the window during training (Yes) leaves the run 'interrupted'", self.close_window)
        self.check("6", "a resume whose class folders changed is refused naming them", self.resume_changed_classes)
        self.check("5", "the run the window's close interrupted resumes and finishes", self.resume_after_close)
        self.check("4", "a cache that cannot be written: the run finishes, the warning printed once",
                   self.cache_bypassed)
        self.check("8", "export into a read-only folder: one line, nothing left", self.export_read_only)
        self.check("8", "export onto a full disk: one line, nothing left", self.export_full_disk)
        self.check("8", "export onto a file: one line", self.export_onto_file)
        self.check("8", "usage and input errors: one line, exit 2, no traceback", self.usage_errors)
        self.check("6", "CSV cells a spreadsheet would run are escaped", self.csv_injection)
        self.check("-", "run files and export files share their permissions", self.permissions)
        self.check("3", "a FIFO given as a model is refused at once, never blocks", self.model_fifo)
        self.check("3", "a zip-bomb .keras file is refused before anything is unpacked", self.model_zip_bomb)
        self.check("4", "damaged feature-cache entries are recomputed; the run finishes", self.damaged_cache)
        self.check("7", "a hand-edited project is repaired or refused in one line", self.hand_edited_project)
        held = sum(1 for r in self.results if r[2])
        print(f"\n{held} of {len(self.results)} checks hold")
        return 0 if held == len(self.results) else 1


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="tlstudio-faults-"))
    try:
        return Checks(work).run_all()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
