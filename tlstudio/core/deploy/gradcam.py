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

from tlstudio.core.errors import TlstudioError
from tlstudio.core.models.graph import is_input, is_model, is_sequential, outer_node, sub_model


class GradCamError(TlstudioError):
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

Stage = tuple[str, Any]  # ("layers", [layer, ...]) | ("model", keras.Model) | ("combined", keras.Model)


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


#: Layers whose 4-D output only reshapes a feature map (zero borders, crops): never the one explained.
_NOT_FEATURES = {"ZeroPadding2D", "Cropping2D", "Reshape", "Permute"}


def find_feature_path(model: Any, need_spatial: bool = True) -> list[Any] | None:
    """Path to the last layer with a 4-D output: the nested models that hold it, then the layer.

    With ``need_spatial`` only maps of more than one cell count (a 1 x 1 map explains nothing).
    """
    for layer in reversed(model.layers):
        if is_input(layer):
            continue
        if is_model(layer):
            sub = find_feature_path(layer, need_spatial)
            if sub:
                return [layer, *sub]
            continue
        if type(layer).__name__ in _NOT_FEATURES:
            continue
        is4, cells = _rank4_spatial(layer)
        if is4 and (cells > 1 or not need_spatial):
            return [layer]
    return None


def _plan(container: Any, path: list[Any]) -> tuple[list[Stage], Stage, list[Stage]]:
    """Split ``container`` around ``path``: stages before the feature map, the map, stages after it."""
    child, last = path[0], len(path) == 1
    if is_sequential(container):
        layers = [layer for layer in container.layers if not is_input(layer)]
        i = next(k for k, layer in enumerate(layers) if layer is child)
        before: list[Stage] = [("layers", layers[:i])] if i else []
        after_here: list[Stage] = [("layers", layers[i + 1 :])] if layers[i + 1 :] else []
        if last:
            return before, ("layers", [child]), after_here
        b2, leaf, a2 = _plan(child, path[1:])
        return before + b2, leaf, a2 + after_here
    node = outer_node(container, child)
    if node is None:
        raise GradCamError(f"cannot trace layer {child.name!r} inside {container.name!r} for Grad-CAM")
    t_in, t_out = node
    out = container.outputs[0]
    if last:
        pre = sub_model(container.inputs[0], t_out)
        post = out is t_out or sub_model(t_out, out)
        if pre is not None and post is not None:
            return [], ("model", pre), ([] if post is True else [("model", post)])
        combined = sub_model(container.inputs[0], [t_out, out])
        if combined is None:
            raise GradCamError(f"cannot reach layer {child.name!r} inside {container.name!r} for Grad-CAM")
        return [], ("combined", combined), []
    if t_in is None:
        raise GradCamError(f"the nested model {child.name!r} takes several inputs; Grad-CAM cannot follow it")
    before = [] if t_in is container.inputs[0] else [("model", sub_model(container.inputs[0], t_in))]
    after: list[Stage] = [] if t_out is out else [("model", sub_model(t_out, out))]
    if any(stage[1] is None for stage in before + after):
        raise GradCamError(f"cannot split {container.name!r} around {child.name!r} for Grad-CAM")
    b2, leaf, a2 = _plan(child, path[1:])
    return before + b2, leaf, a2 + after


def _apply(stage: Stage, x: Any) -> Any:
    kind, what = stage
    if kind == "layers":
        for layer in what:
            x = layer(x, training=False)
        return x
    return what(x, training=False)


def _flat_layers(stages: list[Stage]) -> list[Any]:
    """The layers the stages apply, in order, nested models flattened.

    Exact for chains (tlstudio's pool + head, a Teachable Machine head); for anything else the
    logits computed from it do not reproduce the model's probabilities, which is checked.
    """

    def flat(layer: Any) -> list[Any]:
        if is_input(layer):
            return []
        if is_model(layer):
            return [x for inner in layer.layers for x in flat(inner)]
        return [layer]

    out: list[Any] = []
    for kind, what in stages:
        for layer in what if kind == "layers" else [what]:
            out.extend(flat(layer))
    return out


class GradCamModel:
    """A model prepared for Grad-CAM: the feature-map layer found and the model split around it.

    Parameters
    ----------
    model
        A Keras classifier: tlstudio's nested layout, a Teachable Machine model, or any functional
        or sequential model with a 4-D feature map somewhere, however deeply nested.

    Raises
    ------
    GradCamError
        When the model has no 4-D feature map.
    """

    def __init__(self, model: Any) -> None:
        self.model = model
        path = find_feature_path(model) or find_feature_path(model, need_spatial=False)
        if not path:
            raise GradCamError("the model has no convolutional feature map to explain")
        self.path = path
        self.layer_name: str = path[-1].name
        self.before, self.leaf, self.after = _plan(model, path)
        self._logit_layers = self._find_logit_path()

    def _find_logit_path(self) -> list[Any] | None:
        """Layers after the feature map, the last one a softmax Dense, when they can be applied one by one."""
        import keras

        if self.leaf[0] == "combined":
            return None
        layers = _flat_layers(self.after)
        if not layers:
            return None
        last = layers[-1]
        name = getattr(getattr(last, "activation", None), "__name__", "")
        if isinstance(last, keras.layers.Activation) and name == "softmax":
            return layers[:-1] or None
        if isinstance(last, keras.layers.Softmax):
            return layers[:-1] or None
        if isinstance(last, keras.layers.Dense) and name == "softmax":
            return layers
        return None

    def _forward(self, x: Any) -> tuple[Any, Any]:
        """(feature map, probabilities) for a batch."""
        for stage in self.before:
            x = _apply(stage, x)
        if self.leaf[0] == "combined":
            fmap, out = self.leaf[1](x, training=False)
            return fmap, out
        fmap = _apply(self.leaf, x)
        out = fmap
        for stage in self.after:
            out = _apply(stage, out)
        return fmap, out

    def _logits(self, fmap: Any) -> Any | None:
        import keras
        import tensorflow as tf

        layers = self._logit_layers
        if not layers:
            return None
        h = fmap
        try:
            for layer in layers:
                if layer is layers[-1] and isinstance(layer, keras.layers.Dense):
                    h = tf.matmul(h, layer.kernel)
                    if layer.use_bias:
                        h = h + layer.bias
                else:
                    h = layer(h, training=False)
        except Exception:  # noqa: BLE001 - not a plain chain after all: explain the probability
            self._logit_layers = None
            return None
        return h

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
        with tf.GradientTape() as tape:
            # Watching the input records every op after it, frozen (non-trainable) layers included,
            # so the gradient reaches the feature map wherever it sits.
            tape.watch(x)
            fmap, probs = self._forward(x)
            scores = self._logits(fmap)
            # The logits are recomputed layer by layer: use them only if they give these probabilities.
            if scores is not None and not np.allclose(tf.nn.softmax(scores).numpy(), probs.numpy(), atol=1e-4):
                self._logit_layers = None
                scores = None
            if scores is None:
                scores = probs
            p = probs.numpy().reshape(-1)
            idx = int(np.argmax(p)) if class_index is None else int(class_index)
            if not 0 <= idx < p.shape[-1]:
                raise GradCamError(f"class index {idx} is out of range (the model has {p.shape[-1]} classes)")
            score = tf.reshape(scores, (1, -1))[:, idx]
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
