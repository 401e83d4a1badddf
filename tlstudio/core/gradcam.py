"""Grad-CAM: where in the image the model looked for a class.

The feature map explained is the last convolutional (4-D) output of the base, found
automatically. tlstudio's classifiers nest the base (``image -> preprocess -> base -> pool -> head``),
so the model is split in three around the base: the part before it, a model from the base input to
``[feature map, base output]``, and the part after it. The gradient of the class score (the logit
before the final softmax, where it can be recovered) with respect to the feature map weighs the
map's channels (Selvaraju et al., 2017).

The overlay colours the heat with a small jet-like colour map made here (no matplotlib).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from tlstudio.core.errors import TlsError


class GradCamError(TlsError):
    """The model has no feature map Grad-CAM can use."""


@dataclass
class GradCam:
    """A Grad-CAM result.

    Attributes
    ----------
    heatmap
        float32 (H, W) in [0, 1], the size of the model input.
    overlay
        The model-input image with the heat coloured over it (RGB, H x W).
    class_index
        The class explained.
    label, probability
        Its label and the model's probability for it.
    image
        The resized image the model saw (RGB, H x W).
    layer
        Name of the feature-map layer used.
    """

    heatmap: np.ndarray
    overlay: Image.Image
    class_index: int
    label: str = ""
    probability: float = 0.0
    image: Image.Image | None = None
    layer: str = ""


def jet_colormap(n: int = 256) -> np.ndarray:
    """A jet-like colour table: ``(n, 3)`` uint8 going blue -> cyan -> yellow -> red."""
    x = np.linspace(0.0, 1.0, n)
    r = np.clip(1.5 - np.abs(4.0 * x - 3.0), 0.0, 1.0)
    g = np.clip(1.5 - np.abs(4.0 * x - 2.0), 0.0, 1.0)
    b = np.clip(1.5 - np.abs(4.0 * x - 1.0), 0.0, 1.0)
    return (np.stack([r, g, b], axis=1) * 255.0 + 0.5).astype(np.uint8)


_JET = jet_colormap()


def colorize(heatmap: np.ndarray) -> Image.Image:
    """The heatmap (values in [0, 1]) as an RGB image through :func:`jet_colormap`."""
    idx = np.clip(np.nan_to_num(heatmap) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return Image.fromarray(_JET[idx], "RGB")


def resize_heatmap(heatmap: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a heatmap to ``(height, width)``, kept in [0, 1]."""
    h, w = size
    img = Image.fromarray(np.asarray(heatmap, dtype=np.float32), mode="F")
    out = np.asarray(img.resize((w, h), Image.Resampling.BILINEAR), dtype=np.float32)
    return np.clip(out, 0.0, 1.0)


def overlay_heatmap(image: Image.Image | np.ndarray, heatmap: np.ndarray, alpha: float = 0.45) -> Image.Image:
    """Blend the coloured heatmap over ``image`` (the heatmap is resized to the image).

    Parameters
    ----------
    image
        RGB Pillow image or uint8 array (H, W, 3).
    heatmap
        Values in [0, 1], any size.
    alpha
        Weight of the colour (0 = only the image, 1 = only the heat).
    """
    if isinstance(image, np.ndarray):
        image = Image.fromarray(np.asarray(image, dtype=np.uint8), "RGB")
    image = image.convert("RGB")
    w, h = image.size
    heat = resize_heatmap(heatmap, (h, w)) if heatmap.shape != (h, w) else heatmap
    return Image.blend(image, colorize(heat), float(alpha))


# --- the model split ------------------------------------------------------------------------------


def _rank4_spatial(layer: Any) -> tuple[bool, int]:
    """(has a 4-D output, spatial cells) of a layer, (False, 0) when it has no single output."""
    try:
        out = layer.output
    except (AttributeError, ValueError):
        return False, 0
    if isinstance(out, (list, tuple)):
        return False, 0
    shape = tuple(out.shape)
    if len(shape) != 4:
        return False, 0
    h, w = shape[1], shape[2]
    return True, (int(h) * int(w)) if h and w else 0


def _is_model(layer: Any) -> bool:
    import keras

    return isinstance(layer, keras.Model)


def _pick_feature_layer(layers: Sequence[Any]) -> Any | None:
    """The last layer with a 4-D output, preferring one that still has more than one spatial cell."""
    candidates = []
    for layer in layers:
        if type(layer).__name__ == "InputLayer":
            continue
        is4, cells = _rank4_spatial(layer)
        if is4:
            candidates.append((layer, cells))
    if not candidates:
        return None
    spatial = [layer for layer, cells in candidates if cells > 1]
    return spatial[-1] if spatial else candidates[-1][0]


def _outer_node(model: Any, layer: Any) -> tuple[Any, Any] | None:
    """(input tensor, output tensor) of ``layer``'s call inside ``model``'s graph."""
    import keras

    for node in reversed(getattr(layer, "_inbound_nodes", [])):
        if len(node.input_tensors) != 1 or len(node.output_tensors) != 1:
            continue
        t_in, t_out = node.input_tensors[0], node.output_tensors[0]
        try:
            keras.Model(t_out, model.outputs[0])
        except Exception:  # this call is not part of the model's graph
            continue
        return t_in, t_out
    return None


def _chain_layers(model: Any) -> list[Any]:
    """The layers of a model in order, nested models flattened.

    Right for chains (tlstudio's pool + head); for anything else the logits computed from it do
    not reproduce the model's probabilities, which :meth:`GradCamModel.compute` checks.
    """
    out: list[Any] = []
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        if _is_model(layer):
            out.extend(_chain_layers(layer))
        else:
            out.append(layer)
    return out


class GradCamModel:
    """A model prepared for Grad-CAM: the feature-map layer found and the model split around it.

    Parameters
    ----------
    model
        A Keras classifier; tlstudio's nested layout or any functional / sequential model with a
        4-D feature map somewhere.

    Raises
    ------
    GradCamError
        When the model has no 4-D feature map.
    """

    def __init__(self, model: Any) -> None:
        import keras

        self.model = model
        self.pre: Any = None
        self.post: Any = None
        container = None
        feature = None
        for layer in reversed(model.layers):
            if _is_model(layer):
                inner = _pick_feature_layer(layer.layers)
                if inner is not None:
                    container, feature = layer, inner
                    break
            elif _rank4_spatial(layer)[0] and type(layer).__name__ != "InputLayer":
                break
        if container is not None and feature is not None:
            node = _outer_node(model, container)
            if node is None:
                raise GradCamError(f"cannot trace the nested model {container.name!r} for Grad-CAM")
            t_in, t_out = node
            self.pre = keras.Model(model.inputs[0], t_in)
            if feature.output is container.outputs[0]:
                self.features = keras.Model(container.inputs[0], feature.output)
            else:
                self.features = keras.Model(container.inputs[0], [feature.output, container.outputs[0]])
            self.post = keras.Model(t_out, model.outputs[0])
        else:
            feature = _pick_feature_layer(model.layers)
            if feature is None:
                raise GradCamError("the model has no convolutional feature map to explain")
            self.features = keras.Model(model.inputs[0], feature.output)
            self.post = keras.Model(feature.output, model.outputs[0])
        self.layer_name: str = feature.name
        self._logit_layers = self._find_logit_path()

    def _find_logit_path(self) -> list[Any] | None:
        """Layers of the post part, the last one a softmax Dense, when it is a plain chain."""
        import keras

        layers = _chain_layers(self.post)
        if not layers:
            return None
        last = layers[-1]
        if isinstance(last, keras.layers.Activation) and getattr(last.activation, "__name__", "") == "softmax":
            return layers[:-1] or None
        if isinstance(last, keras.layers.Dense) and getattr(last.activation, "__name__", "") == "softmax":
            return layers
        return None

    def _scores(self, x: Any, use_logits: bool) -> tuple[Any, Any]:
        """(class scores, probabilities) of the post part for base output ``x``."""
        import keras
        import tensorflow as tf

        probs = self.post(x, training=False)
        if not use_logits or self._logit_layers is None:
            return probs, probs
        h = x
        try:
            for layer in self._logit_layers:
                if layer is self._logit_layers[-1] and isinstance(layer, keras.layers.Dense):
                    h = tf.matmul(h, layer.kernel)
                    if layer.use_bias:
                        h = h + layer.bias
                else:
                    h = layer(h, training=False)
        except Exception:  # noqa: BLE001 - not a plain chain after all: explain the probability
            self._logit_layers = None
            return probs, probs
        return h, probs

    def compute(self, batch: np.ndarray, class_index: int | None = None) -> tuple[np.ndarray, int, np.ndarray]:
        """Grad-CAM of one image.

        Parameters
        ----------
        batch
            float32 (1, H, W, 3) raw RGB 0-255.
        class_index
            The class to explain; default the predicted one.

        Returns
        -------
        (cam, class_index, probabilities)
            ``cam`` at the feature map's resolution, in [0, 1].
        """
        import tensorflow as tf

        x = tf.convert_to_tensor(np.asarray(batch, dtype=np.float32))
        inner = self.pre(x, training=False) if self.pre is not None else x
        with tf.GradientTape() as tape:
            out = self.features(inner, training=False)
            fmap, base_out = (out[0], out[1]) if isinstance(out, (list, tuple)) else (out, out)
            scores, probs = self._scores(base_out, use_logits=True)
            if self._logit_layers is not None:
                # The logits are recomputed by hand: check they really give these probabilities.
                if not np.allclose(tf.nn.softmax(scores).numpy(), probs.numpy(), atol=1e-4):
                    self._logit_layers = None
                    scores = probs
            p = probs.numpy()[0]
            idx = int(np.argmax(p)) if class_index is None else int(class_index)
            if not 0 <= idx < p.shape[-1]:
                raise GradCamError(f"class index {idx} is out of range (the model has {p.shape[-1]} classes)")
            score = scores[:, idx]
        grads = tape.gradient(score, fmap)
        if grads is None:
            raise GradCamError(f"no gradient flows from the prediction to layer {self.layer_name!r}")
        fmap_np = fmap.numpy()[0]
        weights = grads.numpy()[0].mean(axis=(0, 1))
        cam = np.maximum((fmap_np * weights).sum(axis=-1), 0.0)
        peak = float(cam.max())
        cam = cam / peak if peak > 1e-12 else np.zeros_like(cam)
        return cam.astype(np.float32), idx, p


def gradcam(
    target: Any,
    image: np.ndarray,
    class_index: int | None = None,
    *,
    labels: Sequence[str] | None = None,
    alpha: float = 0.45,
) -> GradCam:
    """Grad-CAM heatmap and overlay for one resized image.

    Parameters
    ----------
    target
        A Keras classifier or a :class:`GradCamModel` made from one (reuse it for many images).
    image
        uint8 (H, W, 3): the image already resized to the model input.
    class_index
        The class to explain (default: the predicted class).
    labels
        Class names, for the result's ``label``.
    alpha
        Colour weight of the overlay.

    Returns
    -------
    GradCam
        ``heatmap`` (H, W) in [0, 1] and the ``overlay`` image.
    """
    gm = target if isinstance(target, GradCamModel) else GradCamModel(target)
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise GradCamError(f"Grad-CAM needs one RGB image (H, W, 3), not {arr.shape}")
    cam, idx, probs = gm.compute(arr[None].astype(np.float32), class_index)
    h, w = arr.shape[:2]
    heat = resize_heatmap(cam, (h, w))
    peak = float(heat.max())
    if peak > 0:
        heat = heat / peak
    base = Image.fromarray(arr.astype(np.uint8), "RGB")
    label = labels[idx] if labels is not None and idx < len(labels) else f"class {idx}"
    return GradCam(
        heatmap=heat.astype(np.float32),
        overlay=overlay_heatmap(base, heat, alpha),
        class_index=idx,
        label=label,
        probability=float(probs[idx]),
        image=base,
        layer=gm.layer_name,
    )
