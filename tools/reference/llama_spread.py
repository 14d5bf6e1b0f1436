#!/usr/bin/env python3
"""How far llama.cpp's logits move with its own attention settings, on one prompt of token ids.

    python llama_spread.py MODEL.gguf '[1, 504]'

Runs llama.cpp (llama-cpp-python, one thread) three times on the same ids: f32 KV cache as
actfer's parity references use, f32 KV cache with flash attention, and its default f16 KV
cache. Prints the mean and largest difference of the last position's logits of the two others
against the first. Used in README ("Language model") to size the parity tests' envelope.
"""

import json
import os
import sys

import llama_cpp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from llama_reference import last_logits  # noqa: E402


def logits(model, ids, **settings):
    llm = llama_cpp.Llama(model_path=model, n_ctx=256, n_batch=512, n_threads=1,
                          logits_all=False, verbose=False, **settings)
    llm.eval(ids)
    return last_logits(llm).copy()


def main():
    model, ids = sys.argv[1], json.loads(sys.argv[2])
    base = logits(model, ids, type_k=0, type_v=0, flash_attn=False)
    for name, settings in [("f32 KV + flash attention", dict(type_k=0, type_v=0, flash_attn=True)),
                           ("f16 KV", dict(type_k=1, type_v=1, flash_attn=False))]:
        d = np.abs(logits(model, ids, **settings) - base)
        print(f"{name} vs f32 KV: mean {d.mean():.4f}, max {d.max():.4f}")


if __name__ == "__main__":
    main()
