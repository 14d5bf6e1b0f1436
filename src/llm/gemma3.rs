//! Gemma 3 from a GGUF file, computed as llama.cpp's `gemma3` graph computes it.
//!
//! candle-transformers 0.11's `quantized_gemma3` departs from the model (README, "Language
//! model"): its feed-forward uses SiLU where Gemma uses GELU (tanh form), which moves the
//! logits by 5.5 on average; a multi-token pass after position 0 fails (its mask joins an f32
//! block to a u32 one), so a second chat turn cannot be prefilled; one-token steps ignore the
//! sliding window; and every layer holds rotary tables for 131,072 positions. This file keeps
//! candle's quantized kernels and fixes those:
//!
//! - embeddings scaled by sqrt(width); per layer: RMS norm, attention with RMS-normed queries
//!   and keys, NeoX rotary embeddings (base `rope.freq_base` on global layers, 10 000 on
//!   sliding ones), a post-attention norm and residual, then RMS norm, GELU(gate) * up, down,
//!   a post-feed-forward norm and residual; a final norm and the tied output matrix;
//! - every sixth layer is global, the others see the last `attention.sliding_window`
//!   positions (a key at p0 is masked for a query at p1 when p1 - p0 >= window, as in
//!   llama.cpp);
//! - Q4_0 and Q5_0 matrices are widened to Q8_0 losslessly ([`widen_to_q8_0`]) for candle's
//!   SIMD kernel.

use candle_core::quantized::{QMatMul, QTensor};
use candle_core::{DType, Device, Module, Tensor};
use candle_transformers::quantized_nn::RmsNorm;

use super::gguf::GgufFile;
use super::quantize::widen_to_q8_0;
use crate::{Error, Result};

/// Every n-th layer attends globally (llama.cpp and Gemma 3 fix it at 6).
const GLOBAL_EVERY: usize = 6;
/// Rotary base of the sliding-window layers (llama.cpp's `freq_base_swa` for gemma3).
const LOCAL_ROPE_BASE: f64 = 10_000.0;

/// Shapes and constants from `gemma3.*` metadata.
#[derive(Debug, Clone)]
pub struct Config {
    pub layers: usize,
    pub width: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub eps: f64,
    pub sliding_window: usize,
    pub rope_base: f64,
    /// Linear rotary scaling of the global layers (`rope.scaling.factor`, 1 when absent).
    pub rope_scale: f64,
}

impl Config {
    pub fn from_gguf(file: &GgufFile) -> Result<Self> {
        let arch = file.architecture()?;
        let int = |key: &str| -> Result<usize> {
            let full = format!("{arch}.{key}");
            file.integer(&full)?
                .filter(|&v| v > 0)
                .map(|v| v as usize)
                .ok_or_else(|| missing(file, &full))
        };
        let float = |key: &str| -> Result<Option<f64>> {
            let full = format!("{arch}.{key}");
            match file.get(&full) {
                None => Ok(None),
                Some(v) => v.to_f32().map(|x| Some(x as f64)).or_else(|_| {
                    v.to_f64().map(Some).map_err(|_| {
                        Error::bad_input(
                            &file.path,
                            format!("GGUF metadata {full} is not a number"),
                        )
                    })
                }),
            }
        };
        let width = int("embedding_length")?;
        let heads = int("attention.head_count")?;
        Ok(Config {
            layers: int("block_count")?,
            width,
            heads,
            kv_heads: int("attention.head_count_kv")?,
            head_dim: int("attention.key_length")?,
            eps: float("attention.layer_norm_rms_epsilon")?.unwrap_or(1e-6),
            sliding_window: int("attention.sliding_window")?,
            rope_base: float("rope.freq_base")?.unwrap_or(1_000_000.0),
            rope_scale: float("rope.scaling.factor")?.unwrap_or(1.0),
        })
    }
}

fn missing(file: &GgufFile, key: &str) -> Error {
    Error::bad_input(
        &file.path,
        format!("GGUF metadata has no {key}; the file is not a complete Gemma 3 model"),
    )
}

/// Rotary embedding of one layer kind: `1 / base^(2i/d)` per pair, positions divided by
/// `scale`.
#[derive(Debug, Clone)]
struct Rope {
    inv_freq: Vec<f64>,
    scale: f64,
}

impl Rope {
    fn new(head_dim: usize, base: f64, scale: f64) -> Self {
        let inv_freq = (0..head_dim / 2)
            .map(|i| 1.0 / base.powf(2.0 * i as f64 / head_dim as f64))
            .collect();
        Rope { inv_freq, scale }
    }

    /// `x` [1, heads, t, head_dim] at positions `pos..pos + t`, rotated in NeoX halves.
    fn apply(&self, x: &Tensor, pos: usize) -> Result<Tensor> {
        let t = x.dim(2)?;
        let half = self.inv_freq.len();
        let mut cos = Vec::with_capacity(t * half);
        let mut sin = Vec::with_capacity(t * half);
        for p in pos..pos + t {
            for f in &self.inv_freq {
                let angle = p as f64 / self.scale * f;
                cos.push(angle.cos() as f32);
                sin.push(angle.sin() as f32);
            }
        }
        let cos = Tensor::from_vec(cos, (t, half), x.device())?;
        let sin = Tensor::from_vec(sin, (t, half), x.device())?;
        Ok(candle_nn::rotary_emb::rope(&x.contiguous()?, &cos, &sin)?)
    }
}

#[derive(Debug)]
struct Layer {
    attn_norm: RmsNorm,
    wq: QMatMul,
    wk: QMatMul,
    wv: QMatMul,
    q_norm: RmsNorm,
    k_norm: RmsNorm,
    wo: QMatMul,
    post_attn_norm: RmsNorm,
    ffn_norm: RmsNorm,
    gate: QMatMul,
    up: QMatMul,
    down: QMatMul,
    post_ffn_norm: RmsNorm,
    /// `Some(window)` on sliding-window layers.
    window: Option<usize>,
    /// Keys and values of the positions so far, [1, kv_heads, n, head_dim] each.
    cache: Option<(Tensor, Tensor)>,
}

/// A Gemma 3 text model with its KV cache.
#[derive(Debug)]
pub struct Gemma3 {
    cfg: Config,
    /// [vocab, width] f32.
    embeddings: Tensor,
    layers: Vec<Layer>,
    norm: RmsNorm,
    output: QMatMul,
    rope_global: Rope,
    rope_local: Rope,
    device: Device,
}

impl Gemma3 {
    /// Loads the weights of an opened GGUF file.
    pub fn load(file: &mut GgufFile, device: &Device) -> Result<Self> {
        let cfg = Config::from_gguf(file)?;
        let path = file.path.clone();
        let content = &file.content;
        let reader = &mut file.reader;
        let mut tensor = |name: &str| -> Result<QTensor> {
            content.tensor(reader, name, device).map_err(|e| {
                Error::bad_input(
                    &path,
                    format!("cannot read tensor {name} ({e}); the file is damaged or not a Gemma 3 model"),
                )
            })
        };
        let matmul =
            |q: QTensor| -> Result<QMatMul> { Ok(QMatMul::from_qtensor(widen_to_q8_0(q)?)?) };
        let norm = |q: QTensor| -> Result<RmsNorm> { Ok(RmsNorm::from_qtensor(q, cfg.eps)?) };

        let embeddings = tensor("token_embd.weight")?;
        let output = if content.tensor_infos.contains_key("output.weight") {
            tensor("output.weight")?
        } else {
            tensor("token_embd.weight")?
        };
        let embeddings = embeddings.dequantize(device)?;
        let mut layers = Vec::with_capacity(cfg.layers);
        for i in 0..cfg.layers {
            let mut t = |name: &str| tensor(&format!("blk.{i}.{name}.weight"));
            let global = (i + 1) % GLOBAL_EVERY == 0;
            layers.push(Layer {
                attn_norm: norm(t("attn_norm")?)?,
                wq: matmul(t("attn_q")?)?,
                wk: matmul(t("attn_k")?)?,
                wv: matmul(t("attn_v")?)?,
                q_norm: norm(t("attn_q_norm")?)?,
                k_norm: norm(t("attn_k_norm")?)?,
                wo: matmul(t("attn_output")?)?,
                post_attn_norm: norm(t("post_attention_norm")?)?,
                ffn_norm: norm(t("ffn_norm")?)?,
                gate: matmul(t("ffn_gate")?)?,
                up: matmul(t("ffn_up")?)?,
                down: matmul(t("ffn_down")?)?,
                post_ffn_norm: norm(t("post_ffw_norm")?)?,
                window: (!global).then_some(cfg.sliding_window),
                cache: None,
            });
        }
        Ok(Gemma3 {
            embeddings,
            layers,
            norm: norm(tensor("output_norm.weight")?)?,
            output: matmul(output)?,
            rope_global: Rope::new(cfg.head_dim, cfg.rope_base, cfg.rope_scale),
            rope_local: Rope::new(cfg.head_dim, LOCAL_ROPE_BASE, 1.0),
            cfg,
            device: device.clone(),
        })
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Forgets the KV cache.
    pub fn clear(&mut self) {
        for layer in &mut self.layers {
            layer.cache = None;
        }
    }

    /// Keeps the first `len` cached positions (no more than are cached); `false` past them.
    pub fn truncate(&mut self, len: usize) -> bool {
        if len == 0 {
            self.clear();
            return true;
        }
        let cached = self.layers[0]
            .cache
            .as_ref()
            .map_or(0, |(k, _)| k.dim(2).unwrap_or(0));
        if len > cached {
            return false;
        }
        for layer in &mut self.layers {
            if let Some((k, v)) = layer.cache.take() {
                match (k.narrow(2, 0, len), v.narrow(2, 0, len)) {
                    (Ok(k), Ok(v)) => layer.cache = Some((k, v)),
                    _ => {
                        self.clear();
                        return false;
                    }
                }
            }
        }
        true
    }

    /// Runs `tokens` at positions `pos..pos + tokens.len()` after the cached ones and returns
    /// the logits of the last, [vocab]. `pos == 0` starts over.
    pub fn forward(&mut self, tokens: &[u32], pos: usize) -> Result<Tensor> {
        if pos == 0 {
            self.clear();
        }
        let cached = self.layers[0]
            .cache
            .as_ref()
            .map_or(0, |(k, _)| k.dim(2).unwrap_or(0));
        if cached != pos {
            return Err(Error::Internal(format!(
                "gemma3 forward at position {pos} with {cached} positions cached"
            )));
        }
        let t = tokens.len();
        let ids = Tensor::new(tokens, &self.device)?;
        let mut x = self
            .embeddings
            .index_select(&ids, 0)?
            .unsqueeze(0)? // [1, t, width]
            .affine((self.cfg.width as f64).sqrt(), 0.0)?;
        for layer in &mut self.layers {
            let rope = match layer.window {
                Some(_) => &self.rope_local,
                None => &self.rope_global,
            };
            let h = layer.attn_norm.forward(&x)?;
            let h = attention(layer, &self.cfg, rope, &h, pos)?;
            let h = layer.post_attn_norm.forward(&h)?;
            x = (x + h)?;
            let h = layer.ffn_norm.forward(&x)?;
            let h = (layer.gate.forward(&h)?.gelu()? * layer.up.forward(&h)?)?;
            let h = layer.down.forward(&h)?;
            let h = layer.post_ffn_norm.forward(&h)?;
            x = (x + h)?;
        }
        let last = x.narrow(1, t - 1, 1)?; // [1, 1, width]
        let logits = self.output.forward(&self.norm.forward(&last)?)?; // [1, 1, vocab]
        Ok(logits.flatten_all()?.to_dtype(DType::F32)?)
    }
}

/// Self-attention of one layer on `x` [1, t, width] at positions `pos..`; appends to the
/// layer's cache. Returns [1, t, width].
fn attention(
    layer: &mut Layer,
    cfg: &Config,
    rope: &Rope,
    x: &Tensor,
    pos: usize,
) -> Result<Tensor> {
    let t = x.dim(1)?;
    let (nh, nkv, hd) = (cfg.heads, cfg.kv_heads, cfg.head_dim);
    let heads = |y: Tensor, n: usize| -> Result<Tensor> {
        Ok(y.reshape((1, t, n, hd))?.transpose(1, 2)?.contiguous()?) // [1, n, t, hd]
    };
    let q = heads(layer.wq.forward(x)?, nh)?;
    let k = heads(layer.wk.forward(x)?, nkv)?;
    let v = heads(layer.wv.forward(x)?, nkv)?;
    let q = rope.apply(&layer.q_norm.forward(&q)?, pos)?;
    let k = rope.apply(&layer.k_norm.forward(&k)?, pos)?;
    let (k, v) = match layer.cache.take() {
        Some((ck, cv)) => (Tensor::cat(&[&ck, &k], 2)?, Tensor::cat(&[&cv, &v], 2)?),
        None => (k, v),
    };
    layer.cache = Some((k.clone(), v.clone()));
    let n = k.dim(2)?; // positions 0..n, the queries are the last t of them
    let k = candle_transformers::utils::repeat_kv(k, nh / nkv)?.contiguous()?;
    let v = candle_transformers::utils::repeat_kv(v, nh / nkv)?.contiguous()?;
    let scale = 1.0 / (hd as f64).sqrt();
    let mut scores = (q.matmul(&k.t()?)? * scale)?; // [1, nh, t, n]
    if let Some(mask) = mask(t, n, layer.window, x.device())? {
        scores = scores.broadcast_add(&mask)?;
    }
    let probs = candle_nn::ops::softmax_last_dim(&scores)?;
    let out = probs.matmul(&v)?; // [1, nh, t, hd]
    let out = out.transpose(1, 2)?.reshape((1, t, nh * hd))?;
    Ok(layer.wo.forward(&out)?)
}

/// The additive mask of `t` queries at positions `n - t..n` over keys `0..n`: `-inf` where a
/// key lies ahead of the query or, with a `window`, `window` or more positions behind it.
/// `None` when nothing is masked (one query inside the window).
fn mask(t: usize, n: usize, window: Option<usize>, device: &Device) -> Result<Option<Tensor>> {
    let window = window.unwrap_or(usize::MAX);
    if t == 1 && n <= window {
        return Ok(None);
    }
    let first = n - t;
    let values: Vec<f32> = (0..t)
        .flat_map(|i| {
            let p1 = first + i;
            (0..n).map(move |p0| {
                if p0 > p1 || p1 - p0 >= window {
                    f32::NEG_INFINITY
                } else {
                    0.0
                }
            })
        })
        .collect();
    Ok(Some(Tensor::from_vec(values, (t, n), device)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_are_causal_and_windowed() {
        let m = |t, n, w| -> Option<Vec<Vec<bool>>> {
            mask(t, n, w, &Device::Cpu).unwrap().map(|m| {
                m.to_vec2::<f32>()
                    .unwrap()
                    .into_iter()
                    .map(|r| r.into_iter().map(|x| x == 0.0).collect())
                    .collect()
            })
        };
        assert_eq!(m(1, 5, None), None);
        assert_eq!(m(1, 3, Some(3)), None);
        // two queries at positions 2 and 3 after two cached ones
        assert_eq!(
            m(2, 4, None).unwrap(),
            [[true, true, true, false], [true, true, true, true]]
        );
        // a window of 2: position 3 sees 2 and 3 only
        assert_eq!(m(1, 4, Some(2)).unwrap(), [[false, false, true, true]]);
    }
}
