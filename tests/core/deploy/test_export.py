"""Export: every format round-trips, sidecar files, atomic failure, verification, the ONNX extra."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from support.predict_run import CLASSES, COLORS, SIZE, trained_run, write_image

from tlstudio.core.deploy import export as export_mod
from tlstudio.core.deploy import formats as formats_mod
from tlstudio.core.deploy import verification as verification_mod
from tlstudio.core.deploy.export import (
    FORMATS,
    ExportError,
    MissingDependency,
    VerificationError,
    compare_outputs,
    export_model,
    export_models,
    resolve_target,
    run_split_images,
)
from tlstudio.core.deploy.predict import Predictor
from tlstudio.core.deploy.verify import run_exported
from tlstudio.core.errors import Cancelled, TlstudioError


@pytest.fixture(scope="module")
def predictor(tmp_path_factory):
    return Predictor.from_path(trained_run(tmp_path_factory))


@pytest.fixture(scope="module")
def val_batch(predictor):
    files = run_split_images(predictor, ("val",))
    batch, errors = predictor.preprocess([str(f) for f in files])
    assert files and not any(errors)
    return batch


def _visible(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _assert_matches(predictor, fmt, path, batch, atol):
    ours = run_exported(fmt, str(path), batch)
    ref = predictor.predict_array(batch)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, atol=atol)
    assert (ours.argmax(1) == ref.argmax(1)).all()


def test_keras_export_with_fresh_process_verification(predictor, tmp_path):
    result = export_model(predictor, "keras", tmp_path / "out" / "flowers.keras", verify=True)
    out = tmp_path / "out"
    assert result.path == out / "flowers.keras"
    assert _visible(out) == ["flowers.keras", "labels.txt", "model_card.md", "predict_keras.py"]
    assert [p.name for p, _ in result.files][0] == "flowers.keras"
    assert all(size > 0 for _, size in result.files)
    assert (out / "labels.txt").read_text().split() == CLASSES
    v = result.verification
    assert v["ok"] and v["n"] == 6 and v["top1_agreement"] == 1.0 and v["max_prob_diff"] <= 1e-5
    assert v["inputs"] == "validation images"
    card = (out / "model_card.md").read_text()
    for needle in ("MobileNet", "blue, green, red", "32, 32, 3", "stretched", "accuracy 100.0%", "TensorFlow 2.",
                   "tlstudio 0.", "flowers.keras", "Exported 20", "24 train, 6 val", "Verification"):
        assert needle in card, needle


def test_tflite_float32_and_float16_round_trip(predictor, val_batch, tmp_path):
    results = export_models(predictor, ["tflite", "tflite-f16"], tmp_path)
    for result, atol in zip(results, (1e-4, 0.03), strict=True):
        assert result.ok and result.path.suffix == ".tflite" and result.path.parent == tmp_path
        _assert_matches(predictor, result.format, result.path, val_batch, atol)
    f32, f16 = (tmp_path / "model.tflite").stat().st_size, (tmp_path / "model_f16.tflite").stat().st_size
    assert f16 < f32
    assert _visible(tmp_path) == ["labels.txt", "model.tflite", "model_card.md", "model_f16.tflite",
                                  "predict_tflite.py", "predict_tflite_f16.py"]
    # One card lists every model of the export.
    card = (tmp_path / "model_card.md").read_text()
    assert "model.tflite" in card and "model_f16.tflite" in card and "predict_tflite_f16.py" in card


def test_tflite_int8_is_calibrated_and_keeps_float_io(predictor, val_batch, tmp_path):
    from tlstudio.core.deploy.verify import tflite_interpreter

    result = export_model(predictor, "tflite-int8", tmp_path / "m_int8.tflite")
    assert any("calibrated on 24 training images" in n for n in result.notes)
    interp = tflite_interpreter(str(result.path))
    assert interp.get_input_details()[0]["dtype"] == np.float32
    assert interp.get_output_details()[0]["dtype"] == np.float32
    # int8 tensors inside: the weights were really quantised.
    assert any(d["dtype"] == np.int8 for d in interp.get_tensor_details())
    ours = run_exported("tflite-int8", str(result.path), val_batch)
    ref = predictor.predict_array(val_batch)
    assert (ours.argmax(1) == ref.argmax(1)).mean() >= 0.8
    assert np.abs(ours - ref).max() < 0.25


def test_int8_without_training_images_says_what_it_needs(predictor, tmp_path, monkeypatch):
    monkeypatch.setattr(formats_mod, "run_split_images", lambda p, splits: [])
    with pytest.raises(ExportError, match="calibrate"):
        export_model(predictor, "tflite-int8", tmp_path / "x.tflite")
    assert _visible(tmp_path) == []
    # Given images stand in for the run's.
    folder = tmp_path.parent / f"{tmp_path.name}-imgs"
    for i, name in enumerate(CLASSES):
        write_image(folder / f"{name}.png", COLORS[name], pattern=i)
    batch, note = formats_mod.calibration_batch(predictor, [folder])
    assert batch.shape == (3, SIZE, SIZE, 3) and note == "calibrated on 3 given images"


def test_savedmodel_round_trip(predictor, val_batch, tmp_path):
    result = export_model(predictor, "savedmodel", tmp_path / "sm")
    assert (result.path / "saved_model.pb").is_file() and result.path == tmp_path / "sm"
    assert (tmp_path / "predict_savedmodel.py").is_file()
    _assert_matches(predictor, "savedmodel", result.path, val_batch, 1e-5)
    # Exporting again over it is refused: nothing is overwritten.
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    with pytest.raises(ExportError, match="already holds"):
        export_model(predictor, "savedmodel", tmp_path / "sm")
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == before


def test_onnx_round_trip(predictor, val_batch, tmp_path):
    result = export_model(predictor, "onnx", tmp_path / "model.onnx")
    import onnxruntime as ort

    session = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[1:] == [SIZE, SIZE, 3]
    _assert_matches(predictor, "onnx", result.path, val_batch, 1e-4)


def test_missing_onnx_packages_give_the_install_command(predictor, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # makes `import tf2onnx` fail
    with pytest.raises(MissingDependency, match=r'pip install "tlstudio\[onnx\]"') as info:
        export_model(predictor, "onnx", tmp_path / "m.onnx")
    assert "tf2onnx" in str(info.value) and "\n" not in str(info.value)
    assert _visible(tmp_path) == []
    monkeypatch.undo()
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(MissingDependency, match="onnxruntime"):
        export_model(predictor, "onnx", tmp_path / "m.onnx", verify=True)


def test_a_failing_export_leaves_nothing_behind(predictor, tmp_path, monkeypatch):
    def broken(model, path, fmt, scratch, calibration):
        path.write_bytes(b"half a model")
        raise RuntimeError("converter crashed\nwith a long trace")

    monkeypatch.setattr(formats_mod, "_export_tflite", broken)
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(ExportError, match="tflite export failed: converter crashed$"):
        export_model(predictor, "tflite", tmp_path / "model.tflite")
    assert _visible(tmp_path) == ["keep.txt"]


def test_a_disagreeing_export_fails_verification_and_is_not_written(predictor, tmp_path, monkeypatch):
    def wrong(fmt, model_path, batch, scratch):
        ref = predictor.predict_array(batch)
        return ref[:, ::-1].copy()  # the classes reversed

    monkeypatch.setattr(verification_mod, "run_in_fresh_process", wrong)
    with pytest.raises(VerificationError, match="top-1 agreement") as info:
        export_model(predictor, "keras", tmp_path / "m.keras", verify=True)
    assert "nothing was written" in str(info.value)
    assert _visible(tmp_path) == []


def test_a_file_its_runtime_cannot_open_fails_verification(predictor, tmp_path):
    # onnxruntime starts fast; the same path serves every runtime.
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a protobuf")
    with pytest.raises(VerificationError, match="could not be run by its own runtime") as info:
        verification_mod.verify_export(predictor, "onnx", bad)
    assert "\n" not in str(info.value)


def test_cancel_stops_before_anything_is_written(predictor, tmp_path):
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        export_model(predictor, "keras", tmp_path, cancel=cancel)
    assert _visible(tmp_path) == []


def test_compare_outputs_tolerances():
    ref = np.array([[0.9, 0.1], [0.2, 0.8], [0.5001, 0.4999]], np.float32)
    same = compare_outputs("tflite", ref, ref + 1e-5)
    assert same["ok"] and same["top1_agreement"] == 1.0
    # A flip on a near-tie is not held against a format, a real flip is.
    tie = ref.copy()
    tie[2] = [0.4999, 0.5001]
    assert compare_outputs("tflite", ref, tie)["ok"]
    assert compare_outputs("tflite", ref, tie)["top1_agreement"] == pytest.approx(2 / 3)
    assert not compare_outputs("tflite-f16", ref, ref[:, ::-1])["ok"]
    assert compare_outputs("tflite-int8", ref, ref + 0.1)["ok"]


def test_targets_and_format_names(tmp_path):
    assert resolve_target("tflite", tmp_path) == tmp_path / "model.tflite"
    assert resolve_target("keras", str(tmp_path / "new") + "/") == tmp_path / "new" / "model.keras"
    assert resolve_target("onnx", tmp_path / "new") == tmp_path / "new" / "model.onnx"
    assert resolve_target("savedmodel", tmp_path / "sm") == tmp_path / "sm"
    assert resolve_target("savedmodel", tmp_path) == tmp_path / "saved_model"
    with pytest.raises(ExportError, match=".keras"):
        resolve_target("keras", tmp_path / "m.h5")
    assert formats_mod.check_format("TFLite_F16") == "tflite-f16"
    with pytest.raises(TlstudioError, match="unknown export format 'coreml'"):
        formats_mod.check_format("coreml")


def test_bare_model_file_exports_with_default_labels(predictor, tmp_path):
    import shutil

    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(predictor.model_path, src / "mine.keras")
    result = export_model(src / "mine.keras", "keras", tmp_path / "out")
    assert (tmp_path / "out" / "labels.txt").read_text().split("\n")[:3] == ["class 0", "class 1", "class 2"]
    card = (tmp_path / "out" / "model_card.md").read_text()
    assert "mine.keras" in card and "No evaluation" in card
    assert result.path.name == "model.keras"


@pytest.mark.slow
def test_every_format_verified_in_a_fresh_process_and_its_sample_script_runs(predictor, tmp_path):
    # The web export is a folder with a page, checked in a browser: tests/core/deploy/test_web_export.py.
    formats = [f for f in FORMATS if f != "web"]
    results = export_models(predictor, formats, tmp_path / "all", verify=True)
    assert [r.format for r in results] == formats
    for r in results:
        assert r.verification and r.verification["ok"], (r.format, r.verification)
        assert r.verification["top1_agreement"] >= 0.8
    red = write_image(tmp_path / "red.png", COLORS["red"])
    # Every sample script, each as its own __main__, in one process (TensorFlow is imported once).
    scripts = [str(tmp_path / "all" / f"predict_{r.format.replace('-', '_')}.py") for r in results]
    runner = (
        "import runpy, sys\n"
        f"for script in {scripts!r}:\n"
        f"    sys.argv = [script, {str(red)!r}]\n"
        "    try:\n"
        "        runpy.run_path(script, run_name='__main__')\n"
        "    except SystemExit as exc:\n"
        "        assert not exc.code, (script, exc.code)\n"
    )
    out = subprocess.run([sys.executable, "-c", runner], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith(str(red))]
    assert len(lines) == len(formats)
    assert all(ln.split(": ")[1].startswith("red ") for ln in lines), lines


def test_one_loop_goes_on_after_a_failed_format_and_writes_one_card(predictor, tmp_path, monkeypatch):
    real = formats_mod._export_tflite

    def broken_f16(model, path, fmt, scratch, calibration):
        if fmt == "tflite-f16":
            raise RuntimeError("no float16 kernels today")
        real(model, path, fmt, scratch, calibration)

    monkeypatch.setattr(formats_mod, "_export_tflite", broken_f16)
    seen = []
    results = export_models(predictor, ["keras", "tflite-f16", "tflite"], tmp_path / "out", on_format=seen.append)
    assert seen == ["keras", "tflite-f16", "tflite"]
    assert [(r.format, r.ok) for r in results] == [("keras", True), ("tflite-f16", False), ("tflite", True)]
    assert results[1].error == "tflite-f16 export failed: no float16 kernels today" and results[1].files == []
    assert _visible(tmp_path / "out") == ["labels.txt", "model.keras", "model.tflite", "model_card.md",
                                          "predict_keras.py", "predict_tflite.py"]
    card = (tmp_path / "out" / "model_card.md").read_text()
    assert "model.keras" in card and "model.tflite" in card and "f16" not in card
    # Each result lists its model, its script and the shared labels and card, all really there.
    for r in (results[0], results[2]):
        assert [p.name for p, _ in r.files][1:] == [f"predict_{r.format}.py", "labels.txt", "model_card.md"]
        assert all(p.stat().st_size == size for p, size in r.files if p.is_file())
    # Exports get the permissions of the run's own files (both follow the umask, neither is private).
    run_mode = (predictor.run_dir / "run.json").stat().st_mode & 0o777
    assert run_mode == 0o666 & ~_umask()
    assert {p.stat().st_mode & 0o777 for p in (tmp_path / "out").iterdir()} == {run_mode}


def test_a_folder_holding_anything_is_refused_before_the_model_is_loaded(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ExportError, match=r"is not empty \(it holds notes.txt\).*out-2"):
        export_models(tmp_path / "no-such-run", ["keras", "tflite"], out)
    with pytest.raises(ExportError, match="is not empty"):
        export_model(tmp_path / "no-such-run", "keras", out)
    assert (out / "notes.txt").read_text() == "mine" and _visible(out) == ["notes.txt"]
    assert export_mod.free_folder(out) == tmp_path / "out-2"


def test_existing_files_are_never_overwritten(predictor, tmp_path):
    (tmp_path / "flowers.onnx").write_bytes(b"the user's own file")
    with pytest.raises(ExportError, match="already holds flowers.onnx"):
        export_model(predictor, "onnx", tmp_path / "flowers.onnx")
    (tmp_path / "labels.txt").write_text("cat\ndog\n")
    with pytest.raises(ExportError, match="already holds labels.txt"):
        export_model(predictor, "keras", tmp_path / "new.keras")
    assert (tmp_path / "labels.txt").read_text() == "cat\ndog\n"
    assert _visible(tmp_path) == ["flowers.onnx", "labels.txt"]
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(ExportError, match="is a file, not a folder"):
        export_models(predictor, ["keras", "tflite"], tmp_path / "a-file")


def test_a_read_only_folder_gives_one_line(predictor, tmp_path):
    import os

    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as root: permissions are not enforced")
        with pytest.raises(ExportError, match="cannot write into .*locked: Permission denied$"):
            export_model(predictor, "keras", locked)
    finally:
        locked.chmod(0o700)
    assert _visible(locked) == []


def _umask():
    import os

    mask = os.umask(0o022)
    os.umask(mask)
    return mask
