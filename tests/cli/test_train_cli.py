"""``tlstudio train``: the JSON result, replaying a config, resuming after kill -9, one-line errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tlstudio.cli import main

TINY = ["--base", "MobileNet", "--alpha", "0.25", "--weights", "none", "--input-size", "32", "--batch-size", "8"]


def test_train_prints_one_json_line_and_a_saved_config_replays(image_folder, tmp_path, capsys):
    data = image_folder({"a": 8, "b": 8})
    code = main(["train", str(data), *TINY, "--epochs", "2", "--test-fraction", "0.25", "--out", str(tmp_path / "r1"), "--json"])
    out = capsys.readouterr()
    assert code == 0
    lines = out.out.strip().splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert result["status"] == "finished" and result["epochs_run"] == 2
    assert 0 <= result["val_accuracy"] <= 1 and 0 <= result["test_accuracy"] <= 1
    assert result["train_seconds"] > 0 and result["model_path"].endswith("model.keras")
    assert result["settings"]["head_lr"] > 0 and 0 <= result["threshold"] <= 1 and result["kept"] == "head only"
    assert "train" in out.err  # progress and epochs go to stderr

    code = main(["train", "--config", str(tmp_path / "r1" / "config.json"), "--epochs", "1", "--out", str(tmp_path / "r2"), "--json"])
    again = json.loads(capsys.readouterr().out.strip())
    assert code == 0 and again["epochs_run"] == 1
    saved = json.loads((tmp_path / "r2" / "config.json").read_text())
    assert saved["split"]["test_fraction"] == 0.25 and saved["input_size"] == 32
    assert saved["split"]["val"] == json.loads((tmp_path / "r1" / "config.json").read_text())["split"]["val"]


def test_user_errors_are_one_line(image_folder, tmp_path, capsys):
    assert main(["train", str(tmp_path / "missing"), *TINY, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("tlstudio train:") and "not found" in err
    data = image_folder({"a": 5, "b": 5})
    assert main(["train", str(data), *TINY]) == 2
    assert "--out" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "nowhere")]) == 2
    assert "not found" in capsys.readouterr().err


@pytest.mark.slow
def test_resume_after_kill_9_loses_at_most_the_epoch_in_flight(image_folder, tmp_path):
    data = image_folder({"a": 8, "b": 8})
    run = tmp_path / "run"
    # Augmentation trains end to end (a head on cached features would finish before it could be killed).
    args = [sys.executable, "-m", "tlstudio", "train", str(data), *TINY, "--epochs", "40", "--no-early-stopping",
            "--augment"]
    proc = subprocess.Popen([*args, "--out", str(run)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = run / "checkpoints" / "state.json"
    deadline = time.monotonic() + 240
    done = 0
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if state.is_file():
                try:
                    done = json.loads(state.read_text())["epochs_done"]
                except (OSError, ValueError, KeyError):
                    done = 0
                if done >= 3:
                    break
            time.sleep(0.05)
        if proc.poll() is not None:
            pytest.skip("the run finished before it could be killed")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    killed_at = json.loads(state.read_text())["epochs_done"]
    assert killed_at >= 3
    assert not (run / "model.keras").exists()
    assert json.loads((run / "run.json").read_text())["status"] == "running"

    out = subprocess.run(
        [sys.executable, "-m", "tlstudio", "train", "--resume", str(run), "--json"], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["status"] == "finished" and result["epochs_run"] == 40
    history = json.loads((run / "history.json").read_text())["epochs"]
    assert [h["run_epoch"] for h in history] == list(range(1, 41))
    assert (run / "model.keras").is_file()


def _config(argv):
    import argparse

    from tlstudio.commands import train as train_command

    parser = argparse.ArgumentParser()
    train_command.register(parser.add_subparsers())
    return train_command.build_config(parser.parse_args(["train", *argv]))


def test_flags_set_values_or_leave_them_automatic(image_folder):
    data = str(image_folder({"a": 3, "b": 3}))
    auto = _config([data])
    assert all(auto.is_auto(n) for n in ("head_lr", "dropout", "epochs", "fine_tune_lr", "threshold"))
    assert auto.fine_tune_epochs == 0
    given = _config([data, "--lr", "0.005", "--dropout", "0.3", "--epochs", "12", "--threshold", "0.6",
                     "--fine-tune-lr", "1e-4"])
    assert (given.head_lr, given.dropout, given.head_epochs, given.threshold, given.fine_tune_lr) == (
        0.005, 0.3, 12, 0.6, 1e-4)
    assert not any(given.is_auto(n) for n in ("head_lr", "dropout", "epochs", "fine_tune_lr", "threshold"))
    assert _config([data, "--lr", "auto"]).is_auto("head_lr")
    # unfreezing means fine-tuning: --unfreeze-top alone turns a fine-tuning phase on
    unfrozen = _config([data, "--unfreeze-top", "2"])
    assert unfrozen.unfreeze_top == 2 and unfrozen.fine_tune_epochs == 10
    assert _config([data, "--unfreeze-top", "2", "--fine-tune-epochs", "3"]).fine_tune_epochs == 3


def test_the_settings_line_says_what_was_chosen():
    from tlstudio.commands.train import describe_settings

    line = describe_settings({"head_lr": 0.01, "dropout": 0.0, "fine_tune_lr": 1e-4,
                              "automatic": ["head_lr", "threshold"]}, "head only", 0.65)
    assert line == ("learning rate 0.01 (auto), dropout 0, fine-tuning learning rate 0.0001, kept: head only, "
                    "'not sure' below 65% (auto)")


def test_val_fraction_auto_is_the_default_and_can_be_asked_for(image_folder):
    data = str(image_folder({"a": 3, "b": 3}))
    assert _config([data]).split.val_fraction is None
    assert _config([data, "--val-fraction", "0.25"]).split.val_fraction == 0.25
    assert _config([data, "--val-fraction", "auto"]).split.val_fraction is None


def test_the_final_line_gives_the_interval_and_run_json_the_chosen_share(image_folder, tmp_path, capsys):
    from tlstudio.core.data.holdout import auto_val_fraction

    data = image_folder({"a": 12, "b": 12})
    code = main(["train", str(data), *TINY, "--epochs", "2", "--out", str(tmp_path / "r")])
    captured = capsys.readouterr()
    assert code == 0, captured.err[-2000:]
    out = captured.out.strip().splitlines()[-1]
    assert code == 0 and out.startswith("finished: validation accuracy ")
    assert "(95 % interval " in out
    summary = json.loads((tmp_path / "r" / "run.json").read_text())
    assert summary["val_fraction"] == pytest.approx(auto_val_fraction([12, 12]))
    low, high = summary["val_accuracy_ci95"]
    assert f"{low:.3f}-{high:.3f}" in out
