//! Tiny GGUF text models with seeded random weights, for testing the llama, qwen2 and qwen3
//! families against llama.cpp without a real checkpoint.
//!
//! Each file has 2 layers of width 64, 4 query heads and 2 key-value heads of 16 dimensions, a
//! SwiGLU feed-forward of 128, and the byte-level BPE tokenizer of another GGUF (its
//! `tokenizer.ggml.*` metadata, copied), so the embedding is `[vocab, 64]`. Matrices are Q8_0
//! or f32 (two files per architecture, same draws), norms and biases f32. qwen2 adds q/k/v
//! biases, qwen3 per-head RMS norms of q and k and an output matrix of its own (llama and qwen2
//! tie it to the embedding).
//!
//! The weights come from a splitmix64 generator and only integer and f32 arithmetic (no
//! `ln`/`cos`), so the same seed writes the same bytes (checked on x86-64; on aarch64 candle
//! quantizes to Q8_0 with NEON code that could round a tie the other way). The reference
//! logits of tests/data/qwen_reference.json hold for the files as long as their sha256 does,
//! which the tests check.
//!
//! [`write_tiny_chat_model`] writes the same networks with a tokenizer of their own instead (a
//! byte-level BPE of the 256 bytes, a few merges and ChatML's special tokens, with SmolLM2's
//! chat template), so a test needs no downloaded model: the library's unit tests include this
//! file too (the LoRA trainer's tests, `src/llm/lora`).
#![allow(dead_code)] // each includer uses part of it

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};

/// The architectures this module writes.
pub const ARCHITECTURES: [&str; 3] = ["llama", "qwen2", "qwen3"];

pub const HIDDEN: usize = 64;
pub const LAYERS: usize = 2;
pub const HEADS: usize = 4;
pub const KV_HEADS: usize = 2;
pub const HEAD_DIM: usize = 16;
pub const FFN: usize = 128;
pub const CONTEXT: usize = 512;

/// The weight types of the matrices (embedding and output included): Q8_0, which both sides
/// multiply by quantizing the activations to Q8_0 too, and f32, which neither rounds.
pub const MATRIX_TYPES: [GgmlDType; 2] = [GgmlDType::Q8_0, GgmlDType::F32];

/// The name of a tiny model, e.g. `qwen2-q8_0`: its key in the reference file.
pub fn model_name(arch: &str, matrices: GgmlDType) -> String {
    let t = match matrices {
        GgmlDType::Q8_0 => "q8_0",
        GgmlDType::F32 => "f32",
        other => panic!("no tiny models in {other:?}"),
    };
    format!("{arch}-{t}")
}

/// The file name of a tiny model.
pub fn file_name(arch: &str, matrices: GgmlDType) -> String {
    format!("tiny-{}.gguf", model_name(arch, matrices))
}

/// splitmix64: a seeded stream of 64-bit words.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform on [0, 1) with 24 bits, exact in f32.
    fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u32 << 24) as f32
    }

    /// About normal (sum of four uniforms, centred, unit variance): bounded by +-3.46.
    fn normal(&mut self) -> f32 {
        let s = self.uniform() + self.uniform() + self.uniform() + self.uniform();
        (s - 2.0) * 1.732_050_8
    }
}

/// Seeds differ by architecture so the three models are unrelated (the two weight types of
/// one architecture share their draws).
fn seed(arch: &str) -> u64 {
    arch.bytes().fold(0x5eed_0fac_7fe7_u64, |h, b| {
        h.wrapping_mul(31).wrapping_add(b as u64)
    })
}

struct Writer {
    rng: Rng,
    tensors: Vec<(String, QTensor)>,
}

impl Writer {
    fn values(&mut self, n: usize, scale: f32, offset: f32) -> Vec<f32> {
        (0..n).map(|_| offset + scale * self.rng.normal()).collect()
    }

    /// A `[rows, cols]` matrix (GGUF `ne = [cols, rows]`), `scale` times the normal draws.
    fn matrix(&mut self, name: &str, rows: usize, cols: usize, scale: f32, dtype: GgmlDType) {
        let v = self.values(rows * cols, scale, 0.0);
        let t = Tensor::from_vec(v, (rows, cols), &Device::Cpu).unwrap();
        self.tensors
            .push((name.to_string(), QTensor::quantize(&t, dtype).unwrap()));
    }

    /// A vector in f32: `offset + scale * normal`.
    fn vector(&mut self, name: &str, n: usize, scale: f32, offset: f32) {
        let v = self.values(n, scale, offset);
        let t = Tensor::from_vec(v, n, &Device::Cpu).unwrap();
        self.tensors.push((
            name.to_string(),
            QTensor::quantize(&t, GgmlDType::F32).unwrap(),
        ));
    }
}

/// Writes the tiny model of `arch` (one of [`ARCHITECTURES`]) with matrices of type
/// `matrices` (one of [`MATRIX_TYPES`]) to `out`, with the tokenizer metadata of the GGUF at
/// `tokenizer_from`.
pub fn write_tiny_model(arch: &str, matrices: GgmlDType, tokenizer_from: &Path, out: &Path) {
    let mut f = std::fs::File::open(tokenizer_from).unwrap();
    let source = gguf_file::Content::read(&mut f).unwrap();
    let metadata: BTreeMap<String, Value> = source
        .metadata
        .into_iter()
        .filter(|(k, _)| k.starts_with("tokenizer.ggml."))
        .collect();
    write_with_tokenizer(arch, matrices, metadata, out);
}

/// SmolLM2-135M-Instruct's chat template (ChatML with a default system prompt), as its GGUF
/// stores it.
pub const CHATML_TEMPLATE: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// The merges of the tiny chat tokenizer (GPT-2 byte alphabet: `Ġ` is a space).
const CHAT_MERGES: [(&str, &str); 8] = [
    ("Ġ", "t"),
    ("h", "e"),
    ("i", "n"),
    ("Ġ", "a"),
    ("e", "r"),
    ("Ġt", "he"),
    ("o", "n"),
    ("a", "n"),
];

/// GPT-2's byte alphabet: printable Latin-1 bytes stand for themselves, the others take the
/// chars from U+0100 on, in byte order.
fn byte_alphabet() -> Vec<char> {
    let mut next = 256u32;
    (0..=255u8)
        .map(|b| {
            if matches!(b, 0x21..=0x7e | 0xa1..=0xac | 0xae..=0xff) {
                char::from(b)
            } else {
                next += 1;
                char::from_u32(next - 1).unwrap()
            }
        })
        .collect()
}

/// The tiny chat tokenizer's metadata: `<|endoftext|>`, `<|im_start|>` and `<|im_end|>` (ids
/// 0, 1, 2 as in SmolLM2; control tokens), the 256 bytes, the merges' results; BOS 1, EOS 2,
/// no BOS added; [`CHATML_TEMPLATE`].
pub fn chat_tokenizer_metadata() -> BTreeMap<String, Value> {
    let mut tokens: Vec<String> = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
        .map(String::from)
        .to_vec();
    let mut types = vec![3i32; 3];
    for c in byte_alphabet() {
        tokens.push(c.to_string());
        types.push(1);
    }
    for (a, b) in CHAT_MERGES {
        tokens.push(format!("{a}{b}"));
        types.push(1);
    }
    let strings = |v: Vec<String>| Value::Array(v.into_iter().map(Value::String).collect());
    let merges = CHAT_MERGES.map(|(a, b)| format!("{a} {b}")).to_vec();
    BTreeMap::from([
        ("tokenizer.ggml.model".into(), Value::String("gpt2".into())),
        ("tokenizer.ggml.pre".into(), Value::String("smollm".into())),
        ("tokenizer.ggml.tokens".into(), strings(tokens)),
        (
            "tokenizer.ggml.token_type".into(),
            Value::Array(types.into_iter().map(Value::I32).collect()),
        ),
        ("tokenizer.ggml.merges".into(), strings(merges)),
        ("tokenizer.ggml.bos_token_id".into(), Value::U32(1)),
        ("tokenizer.ggml.eos_token_id".into(), Value::U32(2)),
        ("tokenizer.ggml.add_bos_token".into(), Value::Bool(false)),
        (
            "tokenizer.chat_template".into(),
            Value::String(CHATML_TEMPLATE.into()),
        ),
    ])
}

/// Writes the tiny model of `arch` with the tiny chat tokenizer ([`chat_tokenizer_metadata`])
/// to `out`: a self-contained chat model, 267 tokens of vocabulary.
pub fn write_tiny_chat_model(arch: &str, matrices: GgmlDType, out: &Path) {
    write_with_tokenizer(arch, matrices, chat_tokenizer_metadata(), out);
}

/// Writes the tiny model of `arch` with `metadata` (the tokenizer's keys) to `out`.
fn write_with_tokenizer(
    arch: &str,
    matrices: GgmlDType,
    mut metadata: BTreeMap<String, Value>,
    out: &Path,
) {
    assert!(ARCHITECTURES.contains(&arch), "no tiny model for {arch}");
    let vocab = match &metadata["tokenizer.ggml.tokens"] {
        Value::Array(tokens) => tokens.len(),
        other => panic!("tokenizer.ggml.tokens is {other:?}"),
    };

    let u32_ = |n: usize| Value::U32(n as u32);
    // 10,000 rather than Qwen's 1,000,000: with 16 dimensions per head most rotary
    // frequencies would hardly turn over a few dozen positions
    let rope_base: f32 = 10_000.0;
    let general = [
        ("general.architecture", Value::String(arch.to_string())),
        (
            "general.name",
            Value::String(format!(
                "tiny random {} (actfer tests)",
                model_name(arch, matrices)
            )),
        ),
        // llama.cpp's LLAMA_FTYPE_MOSTLY_Q8_0 and LLAMA_FTYPE_ALL_F32
        (
            "general.file_type",
            u32_(if matrices == GgmlDType::Q8_0 { 7 } else { 0 }),
        ),
    ];
    for (k, v) in general {
        metadata.insert(k.to_string(), v);
    }
    let key = |k: &str| format!("{arch}.{k}");
    for (k, v) in [
        ("context_length", u32_(CONTEXT)),
        ("embedding_length", u32_(HIDDEN)),
        ("block_count", u32_(LAYERS)),
        ("feed_forward_length", u32_(FFN)),
        ("attention.head_count", u32_(HEADS)),
        ("attention.head_count_kv", u32_(KV_HEADS)),
        ("attention.key_length", u32_(HEAD_DIM)),
        ("attention.value_length", u32_(HEAD_DIM)),
        ("attention.layer_norm_rms_epsilon", Value::F32(1e-6)),
        ("rope.freq_base", Value::F32(rope_base)),
        ("rope.dimension_count", u32_(HEAD_DIM)),
    ] {
        metadata.insert(key(k), v);
    }

    let q8 = matrices;
    let mut w = Writer {
        rng: Rng::new(seed(arch)),
        tensors: Vec::new(),
    };
    w.matrix("token_embd.weight", vocab, HIDDEN, 0.25, q8);
    w.vector("output_norm.weight", HIDDEN, 0.1, 1.0);
    if arch == "qwen3" {
        w.matrix("output.weight", vocab, HIDDEN, 0.25, q8);
    }
    let (q_dim, kv_dim) = (HEADS * HEAD_DIM, KV_HEADS * HEAD_DIM);
    for l in 0..LAYERS {
        let name = |t: &str| format!("blk.{l}.{t}");
        w.vector(&name("attn_norm.weight"), HIDDEN, 0.1, 1.0);
        w.matrix(&name("attn_q.weight"), q_dim, HIDDEN, 0.08, q8);
        w.matrix(&name("attn_k.weight"), kv_dim, HIDDEN, 0.08, q8);
        w.matrix(&name("attn_v.weight"), kv_dim, HIDDEN, 0.08, q8);
        if arch == "qwen2" {
            w.vector(&name("attn_q.bias"), q_dim, 0.2, 0.0);
            w.vector(&name("attn_k.bias"), kv_dim, 0.2, 0.0);
            w.vector(&name("attn_v.bias"), kv_dim, 0.2, 0.0);
        }
        if arch == "qwen3" {
            w.vector(&name("attn_q_norm.weight"), HEAD_DIM, 0.2, 1.0);
            w.vector(&name("attn_k_norm.weight"), HEAD_DIM, 0.2, 1.0);
        }
        w.matrix(&name("attn_output.weight"), HIDDEN, q_dim, 0.08, q8);
        w.vector(&name("ffn_norm.weight"), HIDDEN, 0.1, 1.0);
        w.matrix(&name("ffn_gate.weight"), FFN, HIDDEN, 0.08, q8);
        w.matrix(&name("ffn_up.weight"), FFN, HIDDEN, 0.08, q8);
        w.matrix(&name("ffn_down.weight"), HIDDEN, FFN, 0.06, q8);
    }

    let meta: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let tensors: Vec<(&str, &QTensor)> = w.tensors.iter().map(|(k, t)| (k.as_str(), t)).collect();
    let mut file = std::fs::File::create(out).unwrap();
    gguf_file::write(&mut file, &meta, &tensors).unwrap();
}
