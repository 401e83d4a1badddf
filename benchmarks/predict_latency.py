"""Warm single-image prediction latency: tlstudio's Predictor against ``model.predict``.

A MobileNetV2-sized classifier (tlstudio's layout, ``weights=None``, 224 x 224) classifies one
image many times, after a warm-up, three ways:

- ``Predictor.predict_array``: the compiled ``tf.function`` tlstudio uses (tensor in, probabilities out);
- ``Predictor.predict``: the same plus decoding-free preprocessing of a PIL image (resize);
- ``model.predict`` on a batch of one, the slow path Keras users often take.

Prints the median and 90th percentile in milliseconds and the ratio model.predict / tlstudio.
Run: ``python benchmarks/predict_latency.py [--runs N] [--size S]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def build_model(size: int):
    try:
        from tlstudio.core.config import TrainConfig
        from tlstudio.core.models.catalogue import build_classifier

        return build_classifier(TrainConfig(base="MobileNetV2", alpha=1.0, input_size=size, weights="none"), 5)
    except ImportError:
        import keras

        inputs = keras.Input((size, size, 3), name="image")
        x = keras.layers.Rescaling(1 / 127.5, offset=-1, name="preprocess")(inputs)
        mnv2 = keras.applications.MobileNetV2(input_shape=(size, size, 3), include_top=False, weights=None)
        base = keras.Model(mnv2.input, mnv2.output, name="base")
        x = keras.layers.GlobalAveragePooling2D(name="pool")(base(x, training=False))
        out = keras.Sequential([keras.layers.Dense(5, activation="softmax", name="predictions")], name="head")(x)
        return keras.Model(inputs, out)


def timed(fn, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000.0)
    return times


def summary(times: list[float]) -> str:
    ordered = sorted(times)
    p90 = ordered[int(0.9 * (len(ordered) - 1))]
    return f"median {statistics.median(times):7.1f} ms   p90 {p90:7.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--size", type=int, default=224)
    args = parser.parse_args()

    import numpy as np
    from PIL import Image

    from tlstudio.core.deploy.predict import Predictor

    model = build_model(args.size)
    predictor = Predictor(model, [f"class {i}" for i in range(5)])
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (args.size, args.size, 3), dtype=np.uint8)
    batch = image[None].astype(np.float32)
    pil = Image.fromarray(rng.integers(0, 255, (480, 640, 3), dtype=np.uint8), "RGB")

    for _ in range(3):  # warm-up: tracing, graph building, first allocations
        predictor.predict_array(batch)
        predictor.predict(pil)
        model.predict(batch, verbose=0)

    ours = timed(lambda: predictor.predict_array(batch), args.runs)
    ours_pil = timed(lambda: predictor.predict(pil), args.runs)
    keras_predict = timed(lambda: model.predict(batch, verbose=0), args.runs)
    np.testing.assert_allclose(predictor.predict_array(batch), model.predict(batch, verbose=0), atol=1e-5)

    print(f"MobileNetV2 classifier, {args.size} x {args.size}, {model.count_params():,} parameters, {args.runs} warm runs")
    print(f"  tlstudio Predictor.predict_array (compiled): {summary(ours)}")
    print(f"  tlstudio Predictor.predict (640x480 PIL):    {summary(ours_pil)}")
    print(f"  keras model.predict (batch of 1):            {summary(keras_predict)}")
    ratio = statistics.median(keras_predict) / statistics.median(ours)
    print(f"  model.predict / tlstudio: {ratio:.1f}x   (goal: tlstudio well under 100 ms)")


if __name__ == "__main__":
    main()
