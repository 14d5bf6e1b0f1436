#!/usr/bin/env python3
"""llama.cpp's prefill and decode speed on a GGUF file, for actfer's LLM benchmark
(benches/llm.rs runs it beside its own measurement, on the same file and token ids).

    python llama_bench.py MODEL.gguf THREADS PROMPT_IDS_JSON DECODE_TOKENS

Prints one JSON object: {"prefill_tokens_per_second": ..., "decode_tokens_per_second": ...,
"prompt_tokens": n, "decode_tokens": m, "llama_cpp_python": version}. Decoding is greedy
from the prompt; each of the DECODE_TOKENS steps is one llama_decode call of one token.
Best of three runs.
"""

import json
import sys
import time

import llama_cpp
import numpy as np


def last_logits(llm):
    """The logits after the last evaluated token (llama.cpp computes only that row)."""
    row = llm._ctx.get_logits_ith(-1)
    return np.ctypeslib.as_array(row, shape=(llm.n_vocab(),)).astype(np.float32)


def main():
    model, threads, prompt, steps = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]), int(sys.argv[4])
    llm = llama_cpp.Llama(
        model_path=model,
        n_ctx=max(512, len(prompt) + steps + 8),
        n_batch=512,
        n_threads=threads,
        n_threads_batch=threads,
        verbose=False,
    )
    best_prefill, best_decode = 0.0, 0.0
    for _ in range(3):
        llm.reset()
        t = time.perf_counter()
        llm.eval(prompt)
        prefill = len(prompt) / (time.perf_counter() - t)
        token = int(np.argmax(last_logits(llm)))
        t = time.perf_counter()
        for _ in range(steps):
            llm.eval([token])
            token = int(np.argmax(last_logits(llm)))
        decode = steps / (time.perf_counter() - t)
        best_prefill, best_decode = max(best_prefill, prefill), max(best_decode, decode)
    print(json.dumps({
        "prefill_tokens_per_second": best_prefill,
        "decode_tokens_per_second": best_decode,
        "prompt_tokens": len(prompt),
        "decode_tokens": steps,
        "llama_cpp_python": llama_cpp.__version__,
    }))


if __name__ == "__main__":
    main()
