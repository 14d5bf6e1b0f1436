#!/usr/bin/env python3
"""Reference token ids and greedy logits from llama.cpp for actfer's LLM parity tests
(tests/llm_tests.rs), written to tests/data/llm_reference.json:

    {"command": "...", "versions": {...}, "model": {"path": ..., "sha256": ...},
     "tokenizer": [{"text": ..., "parse_special": true, "ids": [...]}, ...],
     "greedy": [{"prompt": ..., "prompt_ids": [...],
                 "steps": [{"token": id, "gap": top1 - top2,
                            "top5": [[id, logit], ...]}, ...]}, ...]}

Each greedy step takes llama.cpp's most likely token and feeds it back, so the Rust test can
continue from llama.cpp's token even where a near-tie makes the argmax unstable.

Needs llama-cpp-python (it builds llama.cpp) in a venv, e.g.:

    python3 -m venv ~/.cache/actfer/llama-venv
    CMAKE_ARGS="-DGGML_NATIVE=ON" ~/.cache/actfer/llama-venv/bin/pip install llama-cpp-python==0.3.36
    ~/.cache/actfer/llama-venv/bin/python tools/reference/llama_reference.py [MODEL.gguf]

MODEL.gguf defaults to $ACTFER_HOME/models/SmolLM2-135M-Instruct.Q4_1.gguf.
"""

import hashlib
import json
import os
import platform
import sys

import llama_cpp
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.environ.get("LLM_REFERENCE_OUT") or os.path.join(ROOT, "tests", "data", "llm_reference.json")
HOME = os.environ.get("ACTFER_HOME") or os.path.expanduser("~/.cache/actfer")
DEFAULT_MODEL = os.path.join(HOME, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
STEPS = 32
KV_TYPE = 0  # GGML_TYPE_F32

CHATML = "<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"
SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"

# 30 varied strings: plain English, spacing, numbers, code, unicode, chat-formatted text.
TOKENIZER_STRINGS = [
    ("Hello world", True),
    (" Hello world", True),
    ("Hello  world   with    spaces", True),
    ("Tabs\tand\nnewlines\n\n\nand\r\nCRLF", True),
    ("   leading and trailing   ", True),
    ("", True),
    ("1234567890", True),
    ("3.14159 and -2.5e10, 1,000,000 and 0x1F", True),
    ("Version 2.0.1 released on 2024-11-29 at 10:30", True),
    ("don't can't won't I'm you're we've they'll he'd", True),
    ("DON'T CAN'T It's O'Brien's", True),
    ("fn main() {\n    println!(\"{}\", 1 + 2);\n}\n", True),
    ("def f(x):\n\treturn [i**2 for i in range(x) if i % 2 == 0]\n", True),
    ("<div class=\"face\">AU12 &amp; AU6</div>", True),
    ("{\"tool\": \"zoom\", \"args\": {\"region\": \"mouth\", \"scale\": 2.5}}", True),
    ("Café naïve résumé façade Ångström", True),
    ("Привет, мир! Как дела?", True),
    ("日本語のテキストと中文文本", True),
    ("한국어 텍스트", True),
    ("emoji 😀🎉👍🏽 and 👨‍👩‍👧", True),
    ("مرحبا بالعالم", True),
    ("Ελληνικά κείμενο", True),
    ("math: ∑ x² ≤ ∞, α+β=γ", True),
    ("zero\u200bwidth and non\u00a0breaking", True),
    ("The zygomaticus major pulls the lip corners (AU12) while orbicularis oculi raises the cheeks (AU6).", True),
    (CHATML.format(system=SYSTEM, user="What is the capital of France?"), True),
    ("<|im_start|>user\nZoom into the mouth.<|im_end|>\n<|im_start|>assistant\n{\"tool\": \"zoom\"}<|im_end|>", True),
    ("<|im_start|>user\nspecial as text<|im_end|>", False),
    ("<|endoftext|><repo_name>actfer<file_sep>src/lib.rs", True),
    ("!!!???...,,,;;;:::---___***", True),
]

GREEDY_PROMPTS = [
    CHATML.format(system=SYSTEM, user="What is the capital of France?"),
    CHATML.format(system=SYSTEM, user="List three facial muscles involved in smiling."),
    CHATML.format(
        system="You answer with a JSON object only.",
        user="Give the emotion for AU6 and AU12 as {\"emotion\": ...}.",
    ),
    "The quick brown fox jumps over the lazy dog. The quick brown",
    "def fibonacci(n):\n    ",
]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def last_logits(llm):
    """The logits after the last evaluated token (llama.cpp computes only that row)."""
    row = llm._ctx.get_logits_ith(-1)
    return np.ctypeslib.as_array(row, shape=(llm.n_vocab(),)).astype(np.float32)


def load(model, kv_type):
    """llama.cpp on 2 threads with keys and values in `kv_type` (0 = f32, 1 = f16)."""
    return llama_cpp.Llama(
        model_path=model,
        n_ctx=1024,
        n_batch=512,
        n_threads=2,
        logits_all=False,
        type_k=kv_type,
        type_v=kv_type,
        flash_attn=False,
        verbose=False,
    )


def tokenize_strings(llm, add_bos):
    """llama.cpp's ids of TOKENIZER_STRINGS."""
    out = []
    for text, special in TOKENIZER_STRINGS:
        ids = llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=special)
        out.append({"text": text, "parse_special": special, "ids": ids})
    return out


def greedy_steps(llm, prompts, add_bos):
    """STEPS greedy steps per prompt, each with llama.cpp's top-5 logits; its token is fed back."""
    greedy = []
    for prompt in prompts:
        ids = llm.tokenize(prompt.encode("utf-8"), add_bos=add_bos, special=True)
        llm.reset()
        llm.eval(ids)
        steps = []
        for _ in range(STEPS):
            logits = last_logits(llm)
            order = np.argsort(-logits, kind="stable")
            top = [[int(i), float(logits[i])] for i in order[:5]]
            token = int(order[0])
            steps.append({"token": token, "gap": float(logits[order[0]] - logits[order[1]]), "top5": top})
            llm.eval([token])
        text = llm.detokenize([s["token"] for s in steps]).decode("utf-8", "replace")
        greedy.append({"prompt": prompt, "prompt_ids": ids, "text": text, "steps": steps})
    return greedy


def main():
    model = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_MODEL
    # keys and values in f32, as candle keeps them: llama.cpp's default f16 cache moves this
    # model's logits by up to ~1.9 on its own (measured on these prompts)
    llm = load(model, KV_TYPE)
    tokenizer = tokenize_strings(llm, add_bos=False)
    greedy = greedy_steps(llm, GREEDY_PROMPTS, add_bos=False)

    write(OUT, "llama_reference.py", model, DEFAULT_MODEL, False, tokenizer=tokenizer, greedy=greedy)


def write(out_path, script, model, default_model, add_bos, **sections):
    """The reference file: the command, versions, model and settings, then `sections`."""
    out = {
        "command": f"~/.cache/actfer/llama-venv/bin/python tools/reference/{script} "
        + ("" if model == default_model else model),
        "versions": {
            "llama_cpp_python": llama_cpp.__version__,
            "python": platform.python_version(),
            "numpy": np.__version__,
        },
        "model": {"path": os.path.basename(model), "sha256": sha256(model)},
        "settings": {"n_threads": 2, "kv_cache": "f32", "flash_attn": False, "add_bos": add_bos},
        **sections,
    }
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {out_path}: {len(out['tokenizer'])} strings, {len(out['greedy'])} greedy prompts x {STEPS} steps")


if __name__ == "__main__":
    main()
