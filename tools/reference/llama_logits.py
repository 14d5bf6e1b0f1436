#!/usr/bin/env python3
"""The sha256 of llama.cpp's whole logit vectors (49,152 little-endian f32) on a few token-id
prompts and decode steps, for the test that actfer's Q8_0 forward equals llama.cpp's to the
bit (tests/llm_tests.rs, `all_logits_equal_llama_cpp_to_the_bit`):

    python llama_logits.py [MODEL.gguf]    # writes tests/data/llm_logits_q8_0.json

MODEL.gguf defaults to set-up's Q8_0 copy, $ACTFER_HOME/models/SmolLM2-135M-Instruct.Q8_0.gguf.
llama.cpp settings as in llama_reference.py (2 threads, f32 KV cache, no flash attention).
Each case evaluates its prompt as one batch, then each of its steps as one token; every
evaluation's logits are hashed.
"""

import hashlib
import json
import os
import platform
import sys

import llama_cpp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llama_reference import HOME, ROOT, last_logits, load, sha256  # noqa: E402

OUT = os.path.join(ROOT, "tests", "data", "llm_logits_q8_0.json")

# the first greedy prompt of llm_reference_q8_0.json (37 tokens, chat-formatted)
CHAT = [1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365, 3511, 308, 34519, 28, 7018, 411,
        407, 19712, 8182, 2, 198, 1, 4093, 198, 1780, 314, 260, 3575, 282, 4649, 47, 2, 198, 1,
        520, 9531, 198]
CASES = [
    {"prompt": [1, 504], "steps": []},
    {"prompt": CHAT, "steps": [504, 2000, 30]},
    # 300 positions: past llama.cpp's first 256-position block of the KV cache
    {"prompt": [100 + (7 * i) % 9000 for i in range(298)], "steps": [504, 30]},
]


def main():
    model = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        HOME, "models", "SmolLM2-135M-Instruct.Q8_0.gguf")
    cases = []
    for case in CASES:
        llm = load(model, 0)
        hashes, argmax = [], []
        for batch in [case["prompt"]] + [[s] for s in case["steps"]]:
            llm.eval(batch)
            logits = last_logits(llm)
            hashes.append(hashlib.sha256(logits.astype("<f4").tobytes()).hexdigest())
            argmax.append(int(np.argmax(logits)))
        cases.append({**case, "sha256": hashes, "argmax": argmax})
    out = {
        "command": "python tools/reference/llama_logits.py " + os.path.basename(model),
        "versions": {"llama_cpp_python": llama_cpp.__version__, "python": platform.python_version()},
        "model": {"file": os.path.basename(model), "sha256": sha256(model)},
        "settings": {"n_threads": 2, "kv_cache": "f32", "flash_attn": False},
        "cases": cases,
    }
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(OUT)


if __name__ == "__main__":
    main()
