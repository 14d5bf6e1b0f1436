//! Language model speed: prefill and decode tokens/s of the default model (SmolLM2-135M,
//! Q4_1 as shipped and Q8_0 as requantized by set-up) in candle, next to llama.cpp
//! (llama-cpp-python) on the same file, the same token ids and the same thread count, in the
//! same run, with the ratio. Prints one JSON object.
//!
//! `cargo bench --bench llm`. Threads: `CANDLE_NUM_THREADS` (default: the physical cores).
//! llama.cpp runs through `$ACTFER_HOME/llama-venv/bin/python` when that venv has
//! llama-cpp-python (see tools/reference/llama_reference.py); otherwise its columns are null.
//! `ACTFER_BENCH_PROMPT` (default 128) and `ACTFER_BENCH_DECODE` (default 64) set the
//! token counts.
//!
//! The build is portable (the Q8_0 tiles pick their code at run time; candle's Q4_1 products
//! are compiled for baseline x86-64); `RUSTFLAGS="-C target-cpu=native" cargo bench --bench llm`
//! builds for this CPU only.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use actfer::llm::quantize::requantize;
use actfer::llm::{sampling::argmax, Session, TextModel, DEFAULT_MODEL};
use actfer::models::ModelStore;
use candle_core::quantized::GgmlDType;
use serde_json::{json, Value};

const TEXT: &str = "The face shows a brief raise of the inner brows and a slight tightening of \
the lips, then relaxes. An analyst measures the motion in each facial region, compares it with \
the head movement, and decides which action units were active and for how long. ";

fn env_usize(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Best of three runs of (prefill tok/s, decode tok/s) in candle.
fn ours(path: &Path, prompt: &[u32], steps: usize) -> (f64, f64) {
    let mut session = Session::new(TextModel::load(path).expect("load"));
    let (mut best_p, mut best_d) = (0.0f64, 0.0f64);
    for _ in 0..3 {
        session.reset();
        session.append_tokens(prompt);
        let t = Instant::now();
        let mut token = argmax(session.logits().unwrap()).unwrap();
        best_p = best_p.max(prompt.len() as f64 / t.elapsed().as_secs_f64());
        let t = Instant::now();
        for _ in 0..steps {
            session.append_tokens(&[token]);
            token = argmax(session.logits().unwrap()).unwrap();
        }
        best_d = best_d.max(steps as f64 / t.elapsed().as_secs_f64());
    }
    (best_p, best_d)
}

fn llama_cpp(
    python: &Path,
    path: &Path,
    threads: usize,
    prompt: &[u32],
    steps: usize,
) -> Option<Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/reference/llama_bench.py");
    let out = Command::new(python)
        .arg(script)
        .arg(path)
        .arg(threads.to_string())
        .arg(serde_json::to_string(prompt).unwrap())
        .arg(steps.to_string())
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "llama.cpp run failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

fn main() {
    let store = ModelStore::from_env().expect("model store");
    let q4_1 = store.require(DEFAULT_MODEL).expect("run tools/setup");
    let q8_0 = q4_1.with_file_name("SmolLM2-135M-Instruct.Q8_0.gguf");
    let tmp = tempfile::tempdir().unwrap();
    let q8_0: PathBuf = if q8_0.is_file() {
        q8_0
    } else {
        let p = tmp.path().join("q8_0.gguf");
        requantize(&q4_1, &p, GgmlDType::Q8_0).expect("requantize");
        p
    };
    let threads = std::env::var("CANDLE_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(candle_core::utils::get_num_threads);
    let n_prompt = env_usize("ACTFER_BENCH_PROMPT", 128);
    let steps = env_usize("ACTFER_BENCH_DECODE", 64);
    let tokenizer = TextModel::load(&q4_1).expect("load").tokenizer;
    let mut prompt = Vec::new();
    while prompt.len() < n_prompt {
        prompt.extend(tokenizer.encode(TEXT, false, false).unwrap());
    }
    prompt.truncate(n_prompt);
    let python = store.home().join("llama-venv/bin/python");
    let mut rows = Vec::new();
    for (name, path) in [("Q4_1", &q4_1), ("Q8_0", &q8_0)] {
        let (prefill, decode) = ours(path, &prompt, steps);
        let reference = python
            .is_file()
            .then(|| llama_cpp(&python, path, threads, &prompt, steps))
            .flatten();
        let ratio = |key: &str, v: f64| {
            reference
                .as_ref()
                .and_then(|r| r[key].as_f64())
                .map(|r| v / r)
        };
        rows.push(json!({
            "quantization": name,
            "prefill_tokens_per_second": prefill,
            "decode_tokens_per_second": decode,
            "llama_cpp_prefill_tokens_per_second": reference.as_ref().map(|r| r["prefill_tokens_per_second"].clone()),
            "llama_cpp_decode_tokens_per_second": reference.as_ref().map(|r| r["decode_tokens_per_second"].clone()),
            "prefill_ratio": ratio("prefill_tokens_per_second", prefill),
            "decode_ratio": ratio("decode_tokens_per_second", decode),
        }));
        eprintln!("{}", rows.last().unwrap());
    }
    let report = json!({
        "model": DEFAULT_MODEL,
        "threads": threads,
        "prompt_tokens": prompt.len(),
        "decode_tokens": steps,
        "rows": rows,
    });
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
}
