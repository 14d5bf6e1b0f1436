#!/usr/bin/env python3
"""Every named intermediate tensor of llama.cpp's forward pass, for finding where actfer's
forward parts from it.

    python llama_dump.py MODEL.gguf '[1, 504]' OUT [NEXT_IDS]

Evaluates the ids as one batch (llama-cpp-python, 2 threads, f32 KV cache, no flash attention:
the settings of tools/reference/llama_reference.py), then each id of the optional JSON list
NEXT_IDS as one decode step. Writes OUT0.npz for the batch and OUT1.npz, OUT2.npz, ... for the
steps: each f32 tensor under llama.cpp's name ("attn_norm-4", "Qcur-4", "kq_soft_max-4",
"ffn_swiglu-4", "l_out-4", ...; a name computed again gets "#1", "#2": "Qcur-4#2" is after
the rotary embedding), in llama.cpp's shape reversed (numpy order), plus "logits" (the last
position's). The tensors come from llama.cpp's eval callback (`cb_eval`), which sees each node
of the graph after it is computed.
"""

import ctypes
import json
import sys

import llama_cpp
import numpy as np

GGML_TYPE_F32 = 0


class GgmlTensor(ctypes.Structure):
    """The head of ggml's `struct ggml_tensor` (ggml.h), as far as `name`."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("buffer", ctypes.c_void_p),
        ("ne", ctypes.c_int64 * 4),
        ("nb", ctypes.c_size_t * 4),
        ("op", ctypes.c_int),
        ("op_params", ctypes.c_int32 * 16),
        ("flags", ctypes.c_int32),
        ("src", ctypes.c_void_p * 10),
        ("view_src", ctypes.c_void_p),
        ("view_offs", ctypes.c_size_t),
        ("data", ctypes.c_void_p),
        ("name", ctypes.c_char * 64),
    ]


def read_tensor(t):
    """A copy of an f32 tensor's values, following its strides (views and permutes)."""
    ne, nb = list(t.ne), list(t.nb)
    span = sum((n - 1) * b for n, b in zip(ne, nb)) + 4
    raw = (ctypes.c_char * span).from_address(t.data)
    base = np.frombuffer(raw, dtype=np.float32, count=1)
    return np.lib.stride_tricks.as_strided(base, shape=ne[::-1], strides=nb[::-1]).copy()


def main():
    model, ids, out = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
    steps = json.loads(sys.argv[4]) if len(sys.argv) > 4 else []
    got = {}

    def callback(ptr, ask, _user):
        if ask:
            return True  # yes, show this tensor once computed
        t = ctypes.cast(ptr, ctypes.POINTER(GgmlTensor)).contents
        if t.type == GGML_TYPE_F32 and t.data:
            name = t.name.decode()
            key, k = name, 0
            while key in got:
                k += 1
                key = f"{name}#{k}"
            got[key] = read_tensor(t)
        return True

    keep = llama_cpp.ggml_backend_sched_eval_callback(callback)
    llm = llama_cpp.Llama(model_path=model, n_ctx=1024, n_batch=512, n_threads=2,
                          type_k=0, type_v=0, flash_attn=False, verbose=False)
    params = llm.context_params
    params.cb_eval = keep
    llm._ctx = llama_cpp._internals.LlamaContext(model=llm._model, params=params, verbose=False)
    llm._batch = llama_cpp._internals.LlamaBatch(n_tokens=512, embd=0, n_seq_max=1, verbose=False)
    for k, batch in enumerate([ids] + [[s] for s in steps]):
        got.clear()
        llm.eval(batch)
        row = llm._ctx.get_logits_ith(-1)
        got["logits"] = np.ctypeslib.as_array(row, shape=(llm.n_vocab(),)).astype(np.float32).copy()
        np.savez(f"{out}{k}.npz", **got)
        print(f"{out}{k}.npz: {len(got)} tensors")


if __name__ == "__main__":
    main()
