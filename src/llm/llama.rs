//! Llama-shaped decoders from GGUF: `llama` (SmolLM2, Llama 3), `qwen2` and `qwen3`, computed on
//! plain f32 rows with a KV cache that grows by appending and, for Q8_0 matrices, the tiled
//! kernels of [`super::q8`].
//!
//! Per layer: RMS norm, attention (queries, keys and values; `qwen2` adds biases, `qwen3`
//! RMS-normalises each head's queries and keys), rotary embeddings (`llama`: adjacent pairs, as
//! GGUF stores llama weights; `qwen2`/`qwen3`: the two halves of the rotated part), grouped
//! key/value heads, softmax over the cached positions, the output projection and a residual;
//! then RMS norm, `silu(gate) * up`, `down` and a residual. A final norm and the output matrix
//! (or the token embeddings when the file ties them) give the logits of the last position.
//!
//! Following llama.cpp's CPU arithmetic (AVX-512 build) operation for operation, so that a Q8_0
//! model's logits equal llama.cpp's to the bit: activations are quantized per 32 values before a
//! Q8_0 product, rotary angles are built by repeated f32 multiplication and applied with its
//! fused multiply-adds, norms sum f32 squares in f64, and SiLU, softmax and the attention dot
//! products use [`super::numerics`]. Matrices in other formats (Q4_1, Q4_K, ...) run through candle's
//! quantized matmul.

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Module, Tensor};

use super::gguf::GgufFile;
use super::numerics::{self, dot_four, LANES};
use super::q8::{Q8Matrix, Q8Vector};
use crate::{Error, Result};

/// The architectures this file runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    Llama,
    Qwen2,
    Qwen3,
}

impl Arch {
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "llama" => Some(Arch::Llama),
            "qwen2" => Some(Arch::Qwen2),
            "qwen3" => Some(Arch::Qwen3),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
            Arch::Qwen3 => "qwen3",
        }
    }
}

/// Shapes and constants from the GGUF metadata.
#[derive(Debug, Clone)]
pub struct Config {
    pub arch: Arch,
    pub layers: usize,
    pub width: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    /// Leading dimensions of each head that are rotated.
    pub rope_dim: usize,
    pub rope_base: f32,
    pub eps: f32,
}

impl Config {
    pub fn from_gguf(file: &GgufFile, arch: Arch) -> Result<Self> {
        let key = |k: &str| format!("{}.{k}", arch.name());
        let int = |k: &str| -> Result<Option<usize>> {
            Ok(file
                .integer(&key(k))?
                .filter(|&v| v > 0)
                .map(|v| v as usize))
        };
        let need = |k: &str| -> Result<usize> {
            int(k)?.ok_or_else(|| {
                Error::bad_input(
                    &file.path,
                    format!(
                        "GGUF metadata has no {}; the file is not a complete {} model",
                        key(k),
                        arch.name()
                    ),
                )
            })
        };
        let float = |k: &str| -> Option<f32> {
            file.get(&key(k)).and_then(|v| {
                v.to_f32()
                    .ok()
                    .or_else(|| v.to_f64().ok().map(|x| x as f32))
            })
        };
        if int("expert_count")?.is_some() {
            return Err(Error::Unsupported {
                path: file.path.clone(),
                what: format!("mixture-of-experts {} model", arch.name()),
                supported: "dense llama, qwen2, qwen3 and gemma3 models".into(),
            });
        }
        let width = need("embedding_length")?;
        let heads = need("attention.head_count")?;
        let head_dim = int("attention.key_length")?.unwrap_or(width / heads);
        Ok(Config {
            arch,
            layers: need("block_count")?,
            width,
            heads,
            kv_heads: int("attention.head_count_kv")?.unwrap_or(heads),
            head_dim,
            rope_dim: int("rope.dimension_count")?.unwrap_or(head_dim),
            rope_base: float("rope.freq_base").unwrap_or(10_000.0),
            eps: float("attention.layer_norm_rms_epsilon").unwrap_or(1e-6),
        })
    }
}

/// A weight matrix `[rows, cols]` applied to rows of `cols` values.
#[derive(Debug)]
enum Linear {
    Q8(Q8Matrix),
    Candle { matmul: QMatMul, rows: usize },
}

impl Linear {
    fn new(q: QTensor) -> Result<Self> {
        let (rows, cols) = q.shape().dims2()?;
        if q.dtype() == GgmlDType::Q8_0 && Q8Matrix::fast() {
            if let Some(m) = Q8Matrix::from_gguf_bytes(rows, cols, &q.data()?) {
                return Ok(Linear::Q8(m));
            }
        }
        Ok(Linear::Candle {
            matmul: QMatMul::from_qtensor(q)?,
            rows,
        })
    }

    fn rows(&self) -> usize {
        match self {
            Linear::Q8(m) => m.rows(),
            Linear::Candle { rows, .. } => *rows,
        }
    }

    /// `out = x W^T` for the `t` rows of `x` (an [`Input`], quantized on first use, so
    /// matrices that share an input quantize it once).
    fn forward(&self, x: &Input, out: &mut Vec<f32>) -> Result<()> {
        out.resize(x.t * self.rows(), 0.0);
        match self {
            Linear::Q8(m) => m.matmul(x.quantized(), out),
            Linear::Candle { matmul, .. } => {
                let cols = x.values.len() / x.t;
                let xs = Tensor::from_slice(x.values, (x.t, cols), &Device::Cpu)?;
                let ys = matmul.forward(&xs)?.flatten_all()?.to_vec1::<f32>()?;
                out.copy_from_slice(&ys);
            }
        }
        Ok(())
    }
}

/// `t` rows of activations, quantized for the Q8_0 kernels on first use.
struct Input<'a> {
    values: &'a [f32],
    t: usize,
    q: std::cell::OnceCell<Q8Vector>,
}

impl<'a> Input<'a> {
    fn new(values: &'a [f32], t: usize) -> Self {
        Input {
            values,
            t,
            q: Default::default(),
        }
    }

    fn quantized(&self) -> &Q8Vector {
        self.q.get_or_init(|| {
            let mut q = Q8Vector::default();
            q.quantize(self.values, self.t);
            q
        })
    }
}

#[derive(Debug)]
struct Layer {
    attn_norm: Vec<f32>,
    wq: Linear,
    wk: Linear,
    wv: Linear,
    /// qwen2's biases of q, k and v.
    bias: Option<[Vec<f32>; 3]>,
    /// qwen3's per-head norms of queries and keys.
    qk_norm: Option<[Vec<f32>; 2]>,
    wo: Linear,
    ffn_norm: Vec<f32>,
    gate: Linear,
    up: Linear,
    down: Linear,
    /// Keys and values of the cached positions, `[position][kv_heads * head_dim]` each.
    keys: Vec<f32>,
    values: Vec<f32>,
}

/// A llama, qwen2 or qwen3 model with its KV cache.
#[derive(Debug)]
pub struct Llama {
    cfg: Config,
    /// Token embeddings `[vocab, width]` as f32, or `None` when they are the output matrix
    /// (tied, Q8_0), whose rows are read instead.
    embeddings: Option<Vec<f32>>,
    layers: Vec<Layer>,
    norm: Vec<f32>,
    output: Linear,
    /// Positions in the cache.
    cached: usize,
}

impl Llama {
    /// Loads the weights of an opened GGUF file of architecture `arch`.
    pub fn load(file: &mut GgufFile, arch: Arch) -> Result<Self> {
        let cfg = Config::from_gguf(file, arch)?;
        let path = file.path.clone();
        let content = &file.content;
        let reader = &mut file.reader;
        let mut tensor = |name: &str| -> Result<QTensor> {
            content.tensor(reader, name, &Device::Cpu).map_err(|e| {
                Error::bad_input(
                    &path,
                    format!(
                        "cannot read tensor {name} ({e}); the file is damaged or not a {} model",
                        arch.name()
                    ),
                )
            })
        };
        let vector = |q: QTensor| -> Result<Vec<f32>> {
            Ok(q.dequantize(&Device::Cpu)?.flatten_all()?.to_vec1()?)
        };
        let tied = !content.tensor_infos.contains_key("output.weight");
        let output = Linear::new(tensor(if tied {
            "token_embd.weight"
        } else {
            "output.weight"
        })?)?;
        let embeddings = match (&output, tied) {
            (Linear::Q8(_), true) => None,
            _ => Some(vector(tensor("token_embd.weight")?)?),
        };
        let mut layers = Vec::with_capacity(cfg.layers);
        for i in 0..cfg.layers {
            let mut t = |name: &str| tensor(&format!("blk.{i}.{name}"));
            let bias = match arch {
                Arch::Qwen2 => Some([
                    vector(t("attn_q.bias")?)?,
                    vector(t("attn_k.bias")?)?,
                    vector(t("attn_v.bias")?)?,
                ]),
                _ => None,
            };
            let qk_norm = match arch {
                Arch::Qwen3 => Some([
                    vector(t("attn_q_norm.weight")?)?,
                    vector(t("attn_k_norm.weight")?)?,
                ]),
                _ => None,
            };
            layers.push(Layer {
                attn_norm: vector(t("attn_norm.weight")?)?,
                wq: Linear::new(t("attn_q.weight")?)?,
                wk: Linear::new(t("attn_k.weight")?)?,
                wv: Linear::new(t("attn_v.weight")?)?,
                bias,
                qk_norm,
                wo: Linear::new(t("attn_output.weight")?)?,
                ffn_norm: vector(t("ffn_norm.weight")?)?,
                gate: Linear::new(t("ffn_gate.weight")?)?,
                up: Linear::new(t("ffn_up.weight")?)?,
                down: Linear::new(t("ffn_down.weight")?)?,
                keys: Vec::new(),
                values: Vec::new(),
            });
        }
        let norm = vector(tensor("output_norm.weight")?)?;
        let model = Llama {
            embeddings,
            layers,
            norm,
            output,
            cfg,
            cached: 0,
        };
        model.check_shapes(&file.path)?;
        Ok(model)
    }

    fn check_shapes(&self, path: &std::path::Path) -> Result<()> {
        let c = &self.cfg;
        let (q, kv) = (c.heads * c.head_dim, c.kv_heads * c.head_dim);
        let l = &self.layers[0];
        let ok = c.heads.is_multiple_of(c.kv_heads)
            && c.rope_dim <= c.head_dim
            && c.rope_dim.is_multiple_of(2)
            && l.wq.rows() == q
            && l.wk.rows() == kv
            && l.wv.rows() == kv
            && l.wo.rows() == c.width
            && l.down.rows() == c.width
            && l.attn_norm.len() == c.width
            && self.norm.len() == c.width
            && self
                .embeddings
                .as_ref()
                .is_none_or(|e| e.len() == self.output.rows() * c.width);
        if ok {
            Ok(())
        } else {
            Err(Error::bad_input(
                path,
                format!(
                    "tensor shapes do not match the metadata ({c:?}); the file is damaged or from an unsupported variant"
                ),
            ))
        }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Forgets the KV cache.
    pub fn clear(&mut self) {
        for l in &mut self.layers {
            l.keys.clear();
            l.values.clear();
        }
        self.cached = 0;
    }

    /// Keeps the first `len` cached positions (no more than are cached); `false` past them.
    pub fn truncate(&mut self, len: usize) -> bool {
        if len > self.cached {
            return false;
        }
        let kvw = self.cfg.kv_heads * self.cfg.head_dim;
        for l in &mut self.layers {
            l.keys.truncate(len * kvw);
            l.values.truncate(len * kvw);
        }
        self.cached = len;
        true
    }

    /// The KV cache: each layer's keys, then its values.
    pub fn export_kv(&self) -> Vec<f32> {
        let mut kv = Vec::new();
        for l in &self.layers {
            kv.extend_from_slice(&l.keys);
            kv.extend_from_slice(&l.values);
        }
        kv
    }

    /// Replaces the KV cache with an [`export_kv`](Self::export_kv) of `len` positions;
    /// `false` (the cache cleared) when its size does not fit this model.
    pub fn import_kv(&mut self, kv: &[f32], len: usize) -> bool {
        self.clear();
        let n = len * self.cfg.kv_heads * self.cfg.head_dim;
        if kv.len() != 2 * n * self.layers.len() {
            return false;
        }
        for (l, chunk) in self.layers.iter_mut().zip(kv.chunks_exact(2 * n)) {
            l.keys.extend_from_slice(&chunk[..n]);
            l.values.extend_from_slice(&chunk[n..]);
        }
        self.cached = len;
        true
    }

    /// Runs `tokens` at positions `pos..pos + tokens.len()` and returns the logits of the last.
    /// `pos` must be the number of cached positions (0 starts over).
    pub fn forward(&mut self, tokens: &[u32], pos: usize) -> Result<Vec<f32>> {
        if pos == 0 {
            self.clear();
        }
        if pos != self.cached {
            return Err(Error::Internal(format!(
                "forward at position {pos} with {} positions cached",
                self.cached
            )));
        }
        let c = self.cfg.clone();
        let t = tokens.len();
        let vocab = self.output.rows();
        let mut x = vec![0f32; t * c.width];
        for (row, &id) in x.chunks_exact_mut(c.width).zip(tokens) {
            let id = id as usize;
            if id >= vocab {
                return Err(Error::Internal(format!(
                    "token id {id} outside the vocabulary of {vocab}"
                )));
            }
            match (&self.embeddings, &self.output) {
                (Some(e), _) => row.copy_from_slice(&e[id * c.width..(id + 1) * c.width]),
                (None, Linear::Q8(m)) => m.dequantize_row(id, row),
                (None, Linear::Candle { .. }) => unreachable!("untied embeddings are kept"),
            }
        }
        let rope = Rope::new(&c, pos, t);
        let mut s = Scratch::default();
        for layer in &mut self.layers {
            rms_norm(&x, &layer.attn_norm, c.eps, &mut s.h);
            {
                let input = Input::new(&s.h, t);
                layer.wq.forward(&input, &mut s.q)?;
                layer.wk.forward(&input, &mut s.k)?;
                layer.wv.forward(&input, &mut s.v)?;
            }
            if let Some([bq, bk, bv]) = &layer.bias {
                add_rows(&mut s.q, bq);
                add_rows(&mut s.k, bk);
                add_rows(&mut s.v, bv);
            }
            if let Some([nq, nk]) = &layer.qk_norm {
                let mut tmp = Vec::new();
                rms_norm(&s.q, nq, c.eps, &mut tmp);
                std::mem::swap(&mut s.q, &mut tmp);
                rms_norm(&s.k, nk, c.eps, &mut tmp);
                std::mem::swap(&mut s.k, &mut tmp);
            }
            rope.apply(&mut s.q, c.head_dim);
            rope.apply(&mut s.k, c.head_dim);
            layer.keys.extend_from_slice(&s.k);
            layer.values.extend_from_slice(&s.v);
            attention(&c, &s.q, &layer.keys, &layer.values, pos, &mut s.att);
            layer.wo.forward(&Input::new(&s.att, t), &mut s.o)?;
            add(&mut x, &s.o);

            rms_norm(&x, &layer.ffn_norm, c.eps, &mut s.h);
            {
                let input = Input::new(&s.h, t);
                layer.gate.forward(&input, &mut s.g)?;
                layer.up.forward(&input, &mut s.u)?;
            }
            numerics::swiglu(&mut s.g, &s.u, layer.up.rows());
            layer.down.forward(&Input::new(&s.g, t), &mut s.o)?;
            add(&mut x, &s.o);
        }
        self.cached = pos + t;
        let last = &x[(t - 1) * c.width..];
        rms_norm(last, &self.norm, c.eps, &mut s.h);
        let mut logits = Vec::new();
        self.output.forward(&Input::new(&s.h, 1), &mut logits)?;
        Ok(logits)
    }
}

/// Buffers of one forward pass.
#[derive(Default)]
struct Scratch {
    h: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    att: Vec<f32>,
    o: Vec<f32>,
    g: Vec<f32>,
    u: Vec<f32>,
}

/// RMS norm of each `w.len()`-long piece of `x` (rows, or heads within rows), times `w`.
fn rms_norm(x: &[f32], w: &[f32], eps: f32, out: &mut Vec<f32>) {
    out.resize(x.len(), 0.0);
    let n = w.len();
    for (xs, ys) in x.chunks_exact(n).zip(out.chunks_exact_mut(n)) {
        let ss: f64 = xs.iter().map(|&v| (v * v) as f64).sum();
        let scale = 1.0 / ((ss / n as f64) as f32 + eps).sqrt();
        for ((y, &v), &g) in ys.iter_mut().zip(xs).zip(w) {
            *y = v * scale * g;
        }
    }
}

fn add(x: &mut [f32], y: &[f32]) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

fn add_rows(x: &mut [f32], bias: &[f32]) {
    for row in x.chunks_exact_mut(bias.len()) {
        add(row, bias);
    }
}

/// Rotary angles for `t` positions from `pos`: per position and rotated pair, cos and sin.
struct Rope {
    neox: bool,
    rope_dim: usize,
    cos: Vec<f32>,
    sin: Vec<f32>,
}

impl Rope {
    fn new(c: &Config, pos: usize, t: usize) -> Self {
        let half = c.rope_dim / 2;
        // llama.cpp's order: theta_0 = p, theta_{i+1} = theta_i * base^(-2/d), in f32
        let step = c.rope_base.powf(-2.0 / c.rope_dim as f32);
        let (mut cos, mut sin) = (Vec::with_capacity(t * half), Vec::with_capacity(t * half));
        for p in pos..pos + t {
            let mut theta = p as f32;
            for _ in 0..half {
                cos.push(theta.cos());
                sin.push(theta.sin());
                theta *= step;
            }
        }
        Rope {
            neox: c.arch != Arch::Llama,
            rope_dim: c.rope_dim,
            cos,
            sin,
        }
    }

    /// Rotates every head of every row of `x` (`t` rows of `heads * head_dim`).
    fn apply(&self, x: &mut [f32], head_dim: usize) {
        let half = self.rope_dim / 2;
        let t = self.cos.len() / half.max(1);
        let row_len = x.len() / t;
        for (r, row) in x.chunks_exact_mut(row_len).enumerate() {
            let (cos, sin) = (&self.cos[r * half..][..half], &self.sin[r * half..][..half]);
            for head in row.chunks_exact_mut(head_dim) {
                for i in 0..half {
                    let (a, b) = if self.neox {
                        (i, i + half)
                    } else {
                        (2 * i, 2 * i + 1)
                    };
                    let (x0, x1) = (head[a], head[b]);
                    // llama.cpp's compiled rotation: the first product of each line is fused
                    head[a] = x0.mul_add(cos[i], -(x1 * sin[i]));
                    head[b] = x0.mul_add(sin[i], x1 * cos[i]);
                }
            }
        }
    }
}

/// Causal attention of `t` query rows at positions `pos..pos + t` over the cached keys and
/// values (positions `0..pos + t`); `out` gets `t` rows of `heads * head_dim`.
fn attention(c: &Config, q: &[f32], keys: &[f32], values: &[f32], pos: usize, out: &mut Vec<f32>) {
    let (hd, kvw) = (c.head_dim, c.kv_heads * c.head_dim);
    let t = q.len() / (c.heads * hd);
    out.clear();
    out.resize(q.len(), 0.0);
    let group = c.heads / c.kv_heads;
    let scale = 1.0 / (hd as f32).sqrt();
    let out_ptr = out.as_mut_ptr() as usize;
    let work = |range: std::ops::Range<usize>| {
        let (mut scores, mut lanes) = (Vec::new(), Vec::new());
        for item in range {
            let (i, h) = (item / c.heads, item % c.heads);
            let kv = (h / group) * hd;
            let n = pos + i + 1; // keys 0..=pos + i
            let query = &q[(i * c.heads + h) * hd..][..hd];
            scores.clear();
            scores.extend((0..n).map(|j| dot_four(query, &keys[j * kvw + kv..][..hd]) * scale));
            numerics::softmax(&mut scores);
            // SAFETY: each (row, head) item writes its own `hd` values of `out`.
            let dst = unsafe {
                std::slice::from_raw_parts_mut(
                    (out_ptr as *mut f32).add((i * c.heads + h) * hd),
                    hd,
                )
            };
            // Probabilities times values, with llama.cpp's lanes: for one query row its
            // vec_dot_f32 (position j in accumulator j % 64), for several its tiled matmul
            // (one chain per lane, j % 16). `lanes` is [lane][dimension].
            let width = if t == 1 { 4 * LANES } else { LANES };
            lanes.clear();
            lanes.resize(width * hd, 0.0);
            for (j, &p) in scores.iter().enumerate() {
                let acc = &mut lanes[(j % width) * hd..][..hd];
                numerics::mul_add_to(acc, &values[j * kvw + kv..][..hd], p);
            }
            let mut column = [0f32; 4 * LANES];
            for (d, out) in dst.iter_mut().enumerate() {
                for (lane, c) in column[..width].iter_mut().enumerate() {
                    *c = lanes[lane * hd + d];
                }
                *out = numerics::reduce(&column[..width]);
            }
        }
    };
    let items = t * c.heads;
    if items * (pos + t) < 4096 {
        work(0..items);
    } else {
        candle_core::utils::barrier_pool().execute_chunked(items, work);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(arch: Arch) -> Config {
        Config {
            arch,
            layers: 1,
            width: 8,
            heads: 2,
            kv_heads: 1,
            head_dim: 4,
            rope_dim: 4,
            rope_base: 10_000.0,
            eps: 1e-6,
        }
    }

    #[test]
    fn rotary_pairs_follow_the_architecture() {
        // position 1, first pair angle 1 rad, second pair 1/100 rad
        let x = [1.0, 0.0, 1.0, 0.0];
        let mut llama = x;
        Rope::new(&config(Arch::Llama), 1, 1).apply(&mut llama, 4);
        // adjacent pairs (0, 1) and (2, 3)
        assert!((llama[0] - 1f32.cos()).abs() < 1e-6 && (llama[1] - 1f32.sin()).abs() < 1e-6);
        assert!((llama[2] - 0.01f32.cos()).abs() < 1e-6);
        let mut neox = x;
        Rope::new(&config(Arch::Qwen3), 1, 1).apply(&mut neox, 4);
        // halves: pairs (0, 2) and (1, 3)
        assert!((neox[0] - (1f32.cos() - 1f32.sin())).abs() < 1e-6);
        assert!((neox[2] - (1f32.sin() + 1f32.cos())).abs() < 1e-6);
        // position 0 is no rotation
        let mut zero = x;
        Rope::new(&config(Arch::Llama), 0, 1).apply(&mut zero, 4);
        assert_eq!(zero, x);
    }

    #[test]
    fn attention_is_causal_and_shares_key_heads() {
        let c = config(Arch::Llama);
        // two positions; key 0 matches the query strongly, value rows differ
        let keys = [10.0, 0.0, 0.0, 0.0, -10.0, 0.0, 0.0, 0.0];
        let values = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
        // query at position 0 sees only key 0: its value exactly, for both heads
        let q = [1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0];
        let mut out = Vec::new();
        attention(&c, &q, &keys[..4], &values[..4], 0, &mut out);
        assert_eq!(out, [1.0, 2.0, 3.0, 4.0, 1.0, 2.0, 3.0, 4.0]);
        // at position 1 head 0 prefers key 0 and head 1 key 1
        attention(&c, &q, &keys, &values, 1, &mut out);
        assert!(
            (out[0] - 1.0).abs() < 1e-3 && (out[4] - 5.0).abs() < 1e-3,
            "{out:?}"
        );
    }

    #[test]
    fn rms_norm_scales_each_piece() {
        let mut out = Vec::new();
        rms_norm(&[3.0, 4.0, 0.0, 2.0], &[1.0, 2.0], 0.0, &mut out);
        let r = (12.5f32).sqrt();
        assert!((out[0] - 3.0 / r).abs() < 1e-6 && (out[1] - 8.0 / r).abs() < 1e-6);
        assert!((out[2]).abs() < 1e-6 && (out[3] - 2.0 * 2.0 / 2f32.sqrt()).abs() < 1e-5);
    }
}
