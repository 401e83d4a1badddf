"""Faults injected for real against the CLI: busy and foreign folders, signals, early failures, bugs.

Each test would fail if its promise (docs/promises.md) broke: a folder overwritten, a second writer let
in, a run left saying "running", an empty run folder left behind, a traceback shown to a user.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tlstudio.cli import main
from tlstudio.core import run_folder

TINY = ["--base", "MobileNet", "--alpha", "0.25", "--weights", "none", "--input-size", "32", "--batch-size", "8"]


def _env():
    return dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), TF_CPP_MIN_LOG_LEVEL="3")


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def test_train_out_refuses_files_and_folders_it_did_not_create(image_folder, tmp_path, capsys):
    data = image_folder({"a": 5, "b": 5})
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "holiday.jpg").write_bytes(b"photo")
    assert main(["train", str(data), *TINY, "--out", str(mine)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"tlstudio train: {mine} already holds holiday.jpg; tlstudio writes a new run only into a new "
                   "or empty folder: choose another --out")
    assert [p.name for p in mine.iterdir()] == ["holiday.jpg"]
    assert main(["train", str(data), *TINY, "--out", str(mine / "holiday.jpg")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert (mine / "holiday.jpg").read_bytes() == b"photo"


def test_a_training_that_fails_before_its_first_epoch_leaves_no_folder(image_folder, tmp_path, capsys):
    data = image_folder({"only": 6})
    run = tmp_path / "runs" / "one-class"
    assert main(["train", str(data), *TINY, "--out", str(run)]) == 2
    err = capsys.readouterr().err
    assert _last_line(err) == "tlstudio train: at least two classes with training images are needed"
    assert "Traceback" not in err
    assert not (tmp_path / "runs").exists()  # nor the folder made to hold it


def test_a_second_writer_is_refused_at_once(image_folder, tmp_path, capsys):
    from tlstudio.core.config import TrainConfig
    from tlstudio.core.run_lock import RunLock

    run = tmp_path / "run"
    run_folder.write_run_config(run, TrainConfig(data_dir=str(image_folder({"a": 5, "b": 5}))), ["a", "b"], {})
    run_folder.write_summary(run, {"status": "running"})
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys,time\nfrom tlstudio.core.run_lock import RunLock\n"
         "lock = RunLock(sys.argv[1]); lock.acquire(); print('locked', flush=True); time.sleep(120)", str(run)],
        stdout=subprocess.PIPE, text=True, env=_env())
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert main(["train", "--resume", str(run)]) == 2
        err = capsys.readouterr().err.strip()
        assert err == (f"tlstudio train: {run} is being written by process {holder.pid}: one training per run "
                       "folder (wait for it to end, or choose another folder)")
    finally:
        holder.kill()
        holder.wait(10)
    with RunLock(run):  # the killed holder left nothing held
        pass


def test_every_error_is_one_line_and_debug_shows_the_traceback(tmp_path, capsys, monkeypatch):
    from tlstudio.commands import scan

    def broken(args):
        raise RuntimeError("a bug\nwith two lines")

    monkeypatch.setattr(scan, "run", broken)
    assert main(["scan", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err == ("tlstudio scan: unexpected error: RuntimeError: a bug (run again with --debug to see the "
                   "traceback and report it)\n")
    assert main(["--debug", "scan", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and err.endswith("tlstudio scan: unexpected error: RuntimeError: a bug\n")
    assert main(["train", "--epochs", "x"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("tlstudio train: argument --epochs")


def test_predict_never_overwrites_a_csv(tmp_path, capsys):
    mine = tmp_path / "mine.csv"
    mine.write_text("my,own,table\n")
    assert main(["predict", str(tmp_path / "no-model"), str(tmp_path), "--csv", str(mine)]) == 2
    assert capsys.readouterr().err == (f"tlstudio predict: {mine} already exists; tlstudio does not overwrite "
                                       "files: choose another --csv\n")
    assert mine.read_text() == "my,own,table\n"


def test_predict_csv_onto_a_folder_is_one_line(tmp_path, capsys, monkeypatch):
    from tlstudio.commands import predict

    def write_csv(args):
        from tlstudio.core.atomic import write_text

        write_text(args.csv, "x")

    monkeypatch.setattr(predict, "run", write_csv)
    (tmp_path / "out.csv").mkdir()
    assert main(["predict", "m.keras", "img.png", "--csv", str(tmp_path / "out.csv")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("tlstudio predict: ") and "out.csv" in err


@pytest.mark.slow
def test_sigterm_leaves_an_interrupted_run_that_resumes(image_folder, tmp_path):
    data = image_folder({"a": 8, "b": 8})
    run = tmp_path / "run"
    # Augmentation sends every epoch through the image pipeline: the run is still going when the signal lands.
    args = [sys.executable, "-m", "tlstudio", "train", str(data), *TINY, "--epochs", "40", "--no-early-stopping",
            "--augment"]
    proc = subprocess.Popen([*args, "--out", str(run)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env())
    state = run / "checkpoints" / "state.json"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None and not state.is_file():
        time.sleep(0.05)
    if proc.poll() is not None:
        pytest.skip("the run finished before it could be stopped")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-2000:]
    assert _last_line(err) == (f"tlstudio train: terminated; the run keeps its last completed epoch: continue it "
                               f"with tlstudio train --resume {run}")
    assert "Traceback" not in err
    assert json.loads((run / "run.json").read_text())["status"] == "interrupted"
    assert run_folder.load_run(run).status == "interrupted"
    done = json.loads(state.read_text())["epochs_done"]
    resumed = subprocess.run([sys.executable, "-m", "tlstudio", "train", "--resume", str(run), "--json"],
                             capture_output=True, text=True, timeout=600, env=_env())
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    result = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert result["status"] == "finished" and result["epochs_run"] == 40 and done >= 1
