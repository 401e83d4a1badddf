"""``tlstudio export``: one or several formats, --verify, one-line errors."""

from __future__ import annotations

import sys

import pytest
from support.predict_run import trained_run

from tlstudio.cli import main


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return trained_run(tmp_path_factory)


def test_export_onnx_with_verify(run_dir, tmp_path, capsys):
    out = tmp_path / "exp"
    assert main(["export", str(run_dir), "--format", "onnx", "--out", str(out / "flowers.onnx"), "--verify"]) == 0
    text = capsys.readouterr().out
    assert f"onnx: {out / 'flowers.onnx'}" in text
    assert "verified: top-1 agreement 100% on 6 validation images" in text
    assert sorted(p.name for p in out.iterdir()) == ["flowers.onnx", "labels.txt", "model_card.md", "predict_onnx.py"]


def test_several_formats_into_one_folder(run_dir, tmp_path, capsys):
    out = tmp_path / "exp"
    assert main(["export", str(run_dir), "-f", "keras", "--format", "TFLITE", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "keras:" in text and "tflite:" in text
    names = sorted(p.name for p in out.iterdir())
    assert names == ["labels.txt", "model.keras", "model.tflite", "model_card.md", "predict_keras.py", "predict_tflite.py"]


def test_errors_are_one_line(run_dir, tmp_path, capsys, monkeypatch):
    assert main(["export", str(run_dir), "--format", "coreml", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tlstudio export: unknown export format") and "\n" not in err
    monkeypatch.setitem(sys.modules, "tf2onnx", None)
    assert main(["export", str(run_dir), "--format", "onnx", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert 'pip install "tlstudio[onnx]"' in err and "\n" not in err
    assert list(tmp_path.iterdir()) == []
    assert main(["export", str(tmp_path / "nope"), "--format", "keras", "--out", str(tmp_path / "x")]) == 2
    assert "no such model" in capsys.readouterr().err


def test_a_failed_format_is_reported_and_the_others_are_written(run_dir, tmp_path, capsys, monkeypatch):
    from tlstudio.core.deploy import formats

    real = formats.write_format

    def flaky(predictor, fmt, path, scratch, images=None):
        if fmt == "tflite":
            raise formats.ExportError("tflite export failed: converter crashed")
        return real(predictor, fmt, path, scratch, images)

    monkeypatch.setattr(formats, "write_format", flaky)
    monkeypatch.setattr("tlstudio.core.deploy.export.write_format", flaky)
    out = tmp_path / "exp"
    assert main(["export", str(run_dir), "-f", "tflite,keras", "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert "keras:" in captured.out and "tflite:" not in captured.out
    assert "tlstudio export: tflite failed: tflite export failed: converter crashed" in captured.err
    assert "tlstudio export: 1 of 2 formats failed" in captured.err
    assert sorted(p.name for p in out.iterdir()) == ["labels.txt", "model.keras", "model_card.md", "predict_keras.py"]


def test_out_is_never_overwritten(run_dir, tmp_path, capsys):
    out = tmp_path / "exp"
    out.mkdir()
    (out / "model.keras").write_bytes(b"someone else's model")
    assert main(["export", str(run_dir), "-f", "keras", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tlstudio export: ") and "is not empty (it holds model.keras)" in err and "\n" not in err
    assert (out / "model.keras").read_bytes() == b"someone else's model"
    mine = tmp_path / "mine.keras"
    mine.write_bytes(b"mine")
    assert main(["export", str(run_dir), "-f", "keras", "--out", str(mine)]) == 2
    assert "already holds mine.keras" in capsys.readouterr().err
    assert mine.read_bytes() == b"mine"


def test_export_to_a_read_only_or_full_disk_is_one_line_and_leaves_nothing(run_dir, tmp_path, capsys):
    from support.small_disk import tmpfs

    with tmpfs(tmp_path / "ro", read_only=True) as ro:
        assert main(["export", str(run_dir), "-f", "keras", "--out", str(ro / "exp")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith(f"tlstudio export: cannot write into {ro / 'exp'}")
        assert "Read-only file system" in err and list(ro.iterdir()) == []
    with tmpfs(tmp_path / "full", size="64k") as full:
        assert main(["export", str(run_dir), "-f", "keras", "--out", str(full / "exp")]) == 2
        err = capsys.readouterr().err
        assert _last(err).startswith("tlstudio export: ") and "Traceback" not in err
        assert "No space left on device" in _last(err)
        assert list(full.iterdir()) == []  # the staged files and the folder it made are gone
    with tmpfs(tmp_path / "nearly", size="64k") as nearly:
        assert main(["export", str(run_dir / "model.keras"), "-f", "keras", "--out", str(nearly / "m.keras")]) == 2
        assert list(nearly.iterdir()) == []


def test_export_onto_a_file_is_one_line(run_dir, tmp_path, capsys):
    (tmp_path / "a-file").write_text("x")
    assert main(["export", str(run_dir), "-f", "keras,tflite", "--out", str(tmp_path / "a-file")]) == 2
    err = capsys.readouterr().err
    assert err == f"tlstudio export: {tmp_path / 'a-file'} is a file, not a folder: give a new folder to export into\n"
    assert main(["export", str(run_dir), "-f", "keras", "--out", str(tmp_path / "a-file" / "m.keras")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


def _last(text):
    return [ln for ln in text.strip().splitlines() if ln.strip()][-1]
