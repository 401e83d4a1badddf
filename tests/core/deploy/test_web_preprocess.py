"""The web page's JavaScript preprocessing gives Pillow's pixels, byte for byte (run under Node)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tlstudio.core.data import imageio

WEB = Path(__file__).resolve().parents[3] / "tlstudio" / "resources" / "web"
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(NODE is None, reason="Node.js is not installed")

RUNNER = """
import { readFileSync, writeFileSync } from "node:fs";
import { resizeImage, toProbabilities } from "./preprocess.mjs";
const cases = JSON.parse(readFileSync(process.argv[2], "utf8"));
const out = [];
for (const c of cases) {
  if (c.kind === "probs") { out.push(toProbabilities(c.values)); continue; }
  const data = new Uint8Array(readFileSync(c.file));
  const r = resizeImage({ data, width: c.width, height: c.height }, c.outHeight, c.outWidth, c.policy,
                        { verticalFirst: c.verticalFirst });
  writeFileSync(c.file + ".out", r.data);
  out.push([r.width, r.height]);
}
writeFileSync(process.argv[3], JSON.stringify(out));
"""

# (source width, height) x (target height, width): shrinking, enlarging, same size, odd ratios.
SIZES = [(40, 36), (640, 480), (480, 640), (97, 301), (224, 224), (7, 5), (1000, 3), (300, 299)]
TARGETS = [(32, 32), (224, 224), (96, 128), (299, 300)]


def _run_node(tmp_path: Path, cases: list[dict]) -> list:
    shutil.copy(WEB / "preprocess.js", tmp_path / "preprocess.mjs")
    (tmp_path / "runner.mjs").write_text(RUNNER, encoding="utf-8")
    (tmp_path / "cases.json").write_text(json.dumps(cases), encoding="utf-8")
    subprocess.run([NODE, "runner.mjs", "cases.json", "out.json"], cwd=tmp_path, check=True, timeout=300)
    return json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("policy", ["stretch", "crop", "pad"])
def test_resize_matches_pillow_exactly(tmp_path, policy):
    from tlstudio.core.deploy.web_export import pillow_resizes_vertical_first

    vertical_first = pillow_resizes_vertical_first()
    rng = np.random.default_rng(7)
    cases, expected = [], []
    for i, (w, h) in enumerate(SIZES):
        # Smooth gradients plus noise: rounding differences would show on both.
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([xx * 255 / max(w - 1, 1), yy * 255 / max(h - 1, 1), (xx + yy) % 256], -1)
        pixels = np.clip(base + rng.normal(0, 40, base.shape), 0, 255).astype(np.uint8)
        src = tmp_path / f"img{i}.rgb"
        src.write_bytes(pixels.tobytes())
        for th, tw in TARGETS:
            file = tmp_path / f"img{i}_{th}x{tw}.rgb"
            file.write_bytes(pixels.tobytes())
            cases.append({"file": str(file), "width": w, "height": h, "outHeight": th, "outWidth": tw, "policy": policy,
                          "verticalFirst": vertical_first})
            img = Image.fromarray(pixels, "RGB")
            expected.append(np.asarray(imageio.resize_image(img, (th, tw), policy), dtype=np.uint8))
    sizes = _run_node(tmp_path, cases)
    for case, size, want in zip(cases, sizes, expected, strict=True):
        got = np.frombuffer(Path(case["file"] + ".out").read_bytes(), np.uint8)
        assert size == [case["outWidth"], case["outHeight"]]
        got = got.reshape(case["outHeight"], case["outWidth"], 3)
        diff = np.abs(got.astype(int) - want.astype(int))
        assert diff.max() == 0, f"{case['width']}x{case['height']} -> {size}: {int((diff > 0).sum())} values differ"


def test_probabilities_like_the_predictor(tmp_path):
    from tlstudio.core.deploy.predict import Predictor

    outputs = [[0.1, 0.7, 0.2], [2.0, -1.0, 0.5], [0.8], [3.0], [-2.0]]
    got = _run_node(tmp_path, [{"kind": "probs", "values": v} for v in outputs])
    for values, probs in zip(outputs, got, strict=True):
        fake = Predictor.__new__(Predictor)
        fake._binary = len(values) == 1
        want = Predictor._to_probabilities(fake, np.array([values], np.float64))[0]
        np.testing.assert_allclose(probs, want, atol=1e-12)
