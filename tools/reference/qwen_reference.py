#!/usr/bin/env python3
"""Reference greedy logits from llama.cpp on the tiny random-weight llama, qwen2 and qwen3
models of tests/support/tiny_gguf.rs (each with Q8_0 and with f32 matrices), for `qwen2_and_qwen3_match_llama_cpp` and
`qwen_prefill_in_two_passes_matches_one` (tests/llm_tests.rs). Written to
tests/data/qwen_reference.json:

    {"command": ..., "versions": {...}, "settings": {...}, "prompts": [[id, ...], ...],
     "models": {"qwen2-q8_0": {"path": "tiny-qwen2-q8_0.gguf", "sha256": ...,
                          "greedy": [{"prompt_ids": [...],
                                      "steps": [{"token": id, "gap": top1 - top2,
                                                 "top5": [[id, logit], ...],
                                                 "mean_abs": mean |logit|}, ...]}, ...]},
                ...}}

The prompts are fixed token ids (no tokenizer involved); each greedy step feeds llama.cpp's own
most likely token back. The Rust test writes the models again and checks their sha256 against
the recorded ones, so these logits stay those of the files it loads.

    DIR=$(mktemp -d)
    ACTFER_TINY_GGUF_DIR=$DIR cargo test --release --test llm_tests -- --ignored write_tiny_models
    ~/.cache/actfer/llama-venv/bin/python tools/reference/qwen_reference.py $DIR
"""

import json
import os
import platform
import sys

import llama_cpp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llama_reference import last_logits, sha256  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.environ.get("QWEN_REFERENCE_OUT") or os.path.join(ROOT, "tests", "data", "qwen_reference.json")
MODELS = [f"{a}-{t}" for a in ("llama", "qwen2", "qwen3") for t in ("q8_0", "f32")]
STEPS = 16
KV_TYPE = 0  # GGML_TYPE_F32, as actfer keeps keys and values
N_THREADS = 1

# token ids below the vocabulary of 49152; the first is a single token (no attention over
# several positions), the last the longest (the prefill test splits it in two)
PROMPTS = [
    [1],
    [1, 504, 3458, 314, 4649, 30],
    [2, 17, 9001, 31415, 27182, 8, 8, 8, 44000, 123, 4567],
    [1, 10, 200, 3000, 40000, 5, 60, 700, 8000, 49151, 11, 22, 33, 44, 55, 66, 77, 88, 99, 12345],
]


def load(model):
    return llama_cpp.Llama(
        model_path=model,
        n_ctx=512,
        n_batch=512,
        n_threads=N_THREADS,
        n_threads_batch=N_THREADS,
        logits_all=False,
        type_k=KV_TYPE,
        type_v=KV_TYPE,
        flash_attn=False,
        verbose=False,
    )


def greedy(llm):
    out = []
    for ids in PROMPTS:
        llm.reset()
        llm.eval(ids)
        steps = []
        for _ in range(STEPS):
            logits = last_logits(llm)
            order = np.argsort(-logits, kind="stable")
            steps.append(
                {
                    "token": int(order[0]),
                    "gap": float(logits[order[0]] - logits[order[1]]),
                    "top5": [[int(i), float(logits[i])] for i in order[:5]],
                    "mean_abs": float(np.mean(np.abs(logits))),
                }
            )
            llm.eval([int(order[0])])
        out.append({"prompt_ids": ids, "steps": steps})
    return out


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    folder = sys.argv[1]
    models = {}
    for name in MODELS:
        path = os.path.join(folder, f"tiny-{name}.gguf")
        llm = load(path)
        assert llm.n_vocab() == 49152, llm.n_vocab()
        models[name] = {"path": os.path.basename(path), "sha256": sha256(path), "greedy": greedy(llm)}
        del llm
    out = {
        "command": "ACTFER_TINY_GGUF_DIR=DIR cargo test --release --test llm_tests -- --ignored "
        "write_tiny_models && ~/.cache/actfer/llama-venv/bin/python tools/reference/qwen_reference.py DIR",
        "versions": {
            "llama_cpp_python": llama_cpp.__version__,
            "python": platform.python_version(),
            "numpy": np.__version__,
        },
        "settings": {"n_threads": N_THREADS, "kv_cache": "f32", "flash_attn": False, "steps": STEPS},
        "prompts": PROMPTS,
        "models": models,
    }
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(f"wrote {OUT}: {len(models)} models x {len(PROMPTS)} prompts x {STEPS} steps")


if __name__ == "__main__":
    main()
