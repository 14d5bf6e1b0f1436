//! The training forward of a llama, qwen2 or qwen3 GGUF model with LoRA.
//!
//! Every tensor is dequantized to f32 and held as a plain [`Tensor`] (frozen: no gradient);
//! each targeted projection `W` `[out, in]` gets a LoRA pair of [`Var`]s, A `[r, in]` (uniform
//! in `+-1/sqrt(in)`, seeded) and B `[out, r]` (zeros), and computes
//! `x W^T + (x A^T) B^T * alpha / r`. [`LoraModel::forward`] gives the logits of every
//! position of one sequence under a causal mask, computed as the inference decoder
//! ([`crate::llm::llama`]) computes them: the same norms, rotary pairs (llama: adjacent pairs,
//! as GGUF stores its q/k rows; qwen2/qwen3: the two halves), rotary angles built the same way
//! (repeated f32 multiplication), qwen2's q/k/v biases, qwen3's per-head q/k norms, grouped
//! key/value heads, and the token embeddings as the output matrix when the file has no
//! `output.weight`.

use candle_core::{DType, Device, Tensor, Var, D};

use super::adapter::{LoraConfig, Target, SUFFIX_A, SUFFIX_B};
use super::ops::{frozen_matmul, row_shift};
use crate::llm::gguf::GgufFile;
use crate::llm::llama::{Arch, Config};
use crate::synth::rng::Rng;
use crate::{Error, Result};

/// A LoRA pair: A `[r, in]` and B `[out, r]`.
#[derive(Debug, Clone)]
pub struct LoraPair {
    pub a: Var,
    pub b: Var,
}

/// A projection: its frozen matrix and, when targeted, its LoRA pair.
#[derive(Debug)]
struct Projection {
    /// The matrix's GGUF name, e.g. `blk.0.attn_q.weight`.
    name: String,
    /// `[out, in]`
    weight: Tensor,
    lora: Option<LoraPair>,
}

impl Projection {
    /// `x` `[t, in]` -> `[t, out]`.
    fn forward(&self, x: &Tensor, scale: f64) -> Result<Tensor> {
        let y = frozen_matmul(x, &self.weight)?;
        Ok(match &self.lora {
            None => y,
            Some(l) => {
                let low = x.matmul(&l.a.as_tensor().t()?)?; // [t, r]
                let delta = low.matmul(&l.b.as_tensor().t()?)?; // [t, out]
                (y + (delta * scale)?)?
            }
        })
    }
}

#[derive(Debug)]
struct Layer {
    attn_norm: Tensor,
    q: Projection,
    k: Projection,
    v: Projection,
    /// qwen2's biases of q, k and v.
    bias: Option<[Tensor; 3]>,
    /// qwen3's per-head norms of queries and keys.
    qk_norm: Option<[Tensor; 2]>,
    o: Projection,
    ffn_norm: Tensor,
    gate: Projection,
    up: Projection,
    down: Projection,
}

impl Layer {
    fn projections(&self) -> [&Projection; 7] {
        [
            &self.q, &self.k, &self.v, &self.o, &self.gate, &self.up, &self.down,
        ]
    }

    #[cfg(test)]
    fn projections_mut(&mut self) -> [&mut Projection; 7] {
        [
            &mut self.q,
            &mut self.k,
            &mut self.v,
            &mut self.o,
            &mut self.gate,
            &mut self.up,
            &mut self.down,
        ]
    }
}

/// A llama-shaped model in f32 with LoRA pairs on its targeted projections.
#[derive(Debug)]
pub struct LoraModel {
    cfg: Config,
    lora: LoraConfig,
    /// `[vocab, width]`
    embeddings: Tensor,
    /// `[vocab, width]`; `None` when the embeddings are the output matrix.
    output: Option<Tensor>,
    norm: Tensor,
    layers: Vec<Layer>,
}

impl LoraModel {
    /// Opens a GGUF file and builds the model with fresh LoRA pairs (A from `seed`, B zero).
    pub fn open(path: &std::path::Path, lora: &LoraConfig, seed: u64) -> Result<Self> {
        Self::load(&mut GgufFile::open(path)?, lora, seed)
    }

    /// Builds the model from an opened GGUF file (see [`LoraModel::open`]).
    pub fn load(file: &mut GgufFile, lora: &LoraConfig, seed: u64) -> Result<Self> {
        let lora = lora
            .clone()
            .validated()
            .map_err(|e| Error::bad_input(&file.path, e))?;
        let architecture = file.architecture()?;
        let arch = Arch::from_name(&architecture).ok_or_else(|| Error::Unsupported {
            path: file.path.clone(),
            what: format!("LoRA training of architecture {architecture:?}"),
            supported: "llama, qwen2, qwen3".into(),
        })?;
        let cfg = Config::from_gguf(file, arch)?;
        let path = file.path.clone();
        let content = &file.content;
        let reader = &mut file.reader;
        let mut tensor = |name: &str| -> Result<Tensor> {
            let q = content.tensor(reader, name, &Device::Cpu).map_err(|e| {
                Error::bad_input(
                    &path,
                    format!("cannot read tensor {name} ({e}); the file is damaged or not a {architecture} model"),
                )
            })?;
            Ok(q.dequantize(&Device::Cpu)?.to_dtype(DType::F32)?)
        };
        let embeddings = tensor("token_embd.weight")?;
        let output = if content.tensor_infos.contains_key("output.weight") {
            Some(tensor("output.weight")?)
        } else {
            None
        };
        let root = Rng::new(seed);
        let mut layers = Vec::with_capacity(cfg.layers);
        for i in 0..cfg.layers {
            let mut proj = |target: Target| -> Result<Projection> {
                let name = target.gguf_name(i);
                let weight = tensor(&name)?;
                let lora = if lora.targets.contains(&target) {
                    let (out_dim, in_dim) = weight.dims2()?;
                    let key = (i * Target::ALL.len() + target as usize) as u64;
                    Some(new_pair(&mut root.derive(key), lora.rank, in_dim, out_dim)?)
                } else {
                    None
                };
                Ok(Projection { name, weight, lora })
            };
            let (q, k, v, o) = (
                proj(Target::Q)?,
                proj(Target::K)?,
                proj(Target::V)?,
                proj(Target::O)?,
            );
            let (gate, up, down) = (proj(Target::Gate)?, proj(Target::Up)?, proj(Target::Down)?);
            let mut t = |name: &str| tensor(&format!("blk.{i}.{name}"));
            let bias = match arch {
                Arch::Qwen2 => Some([t("attn_q.bias")?, t("attn_k.bias")?, t("attn_v.bias")?]),
                _ => None,
            };
            let qk_norm = match arch {
                Arch::Qwen3 => Some([t("attn_q_norm.weight")?, t("attn_k_norm.weight")?]),
                _ => None,
            };
            layers.push(Layer {
                attn_norm: t("attn_norm.weight")?,
                ffn_norm: t("ffn_norm.weight")?,
                q,
                k,
                v,
                bias,
                qk_norm,
                o,
                gate,
                up,
                down,
            });
        }
        let norm = tensor("output_norm.weight")?;
        let model = LoraModel {
            cfg,
            lora,
            embeddings,
            output,
            norm,
            layers,
        };
        model.check_shapes(&file.path)?;
        Ok(model)
    }

    fn check_shapes(&self, path: &std::path::Path) -> Result<()> {
        let c = &self.cfg;
        let (qw, kvw) = (c.heads * c.head_dim, c.kv_heads * c.head_dim);
        let dims = |t: &Tensor| t.dims().to_vec();
        let ok = self.layers.iter().all(|l| {
            dims(&l.q.weight) == [qw, c.width]
                && dims(&l.k.weight) == [kvw, c.width]
                && dims(&l.v.weight) == [kvw, c.width]
                && dims(&l.o.weight) == [c.width, qw]
                && l.gate.weight.dim(1).ok() == Some(c.width)
                && dims(&l.up.weight) == dims(&l.gate.weight)
                && l.down.weight.dims() == [c.width, l.gate.weight.dim(0).unwrap_or(0)]
                && dims(&l.attn_norm) == [c.width]
                && dims(&l.ffn_norm) == [c.width]
        }) && c.heads.is_multiple_of(c.kv_heads)
            && c.rope_dim <= c.head_dim
            && c.rope_dim.is_multiple_of(2)
            && self.embeddings.dim(1).ok() == Some(c.width)
            && self
                .output
                .as_ref()
                .is_none_or(|o| o.dims() == self.embeddings.dims())
            && dims(&self.norm) == [c.width];
        if ok {
            Ok(())
        } else {
            Err(Error::bad_input(
                path,
                format!("tensor shapes do not match the metadata ({c:?}); the file is damaged or from an unsupported variant"),
            ))
        }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn lora_config(&self) -> &LoraConfig {
        &self.lora
    }

    pub fn vocab_size(&self) -> usize {
        self.embeddings.dim(0).unwrap_or(0)
    }

    /// The LoRA pairs by matrix name, in layer order then q, k, v, o, gate, up, down.
    pub fn pairs(&self) -> Vec<(&str, &LoraPair)> {
        self.layers
            .iter()
            .flat_map(|l| l.projections())
            .filter_map(|p| p.lora.as_ref().map(|l| (p.name.as_str(), l)))
            .collect()
    }

    /// Every trained variable with its adapter tensor name (`NAME.lora_a`, `NAME.lora_b`),
    /// sorted by name.
    pub fn vars(&self) -> Vec<(String, Var)> {
        let mut vars: Vec<(String, Var)> = self
            .pairs()
            .into_iter()
            .flat_map(|(name, p)| {
                [
                    (format!("{name}{SUFFIX_A}"), p.a.clone()),
                    (format!("{name}{SUFFIX_B}"), p.b.clone()),
                ]
            })
            .collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        vars
    }

    /// Sets the LoRA tensors from `tensors` (adapter names); every pair of this model must be
    /// there with its shape.
    pub fn set_lora(&self, tensors: &std::collections::BTreeMap<String, Tensor>) -> Result<()> {
        let vars = self.vars();
        if tensors.len() != vars.len() {
            return Err(Error::Internal(format!(
                "the adapter has {} tensors, the model {} LoRA tensors: its targets differ",
                tensors.len(),
                vars.len()
            )));
        }
        for (name, var) in vars {
            let t = tensors
                .get(&name)
                .ok_or_else(|| Error::Internal(format!("the adapter has no {name}")))?;
            if t.dims() != var.dims() {
                return Err(Error::Internal(format!(
                    "{name} is {:?} in the adapter and {:?} in the model",
                    t.dims(),
                    var.dims()
                )));
            }
            var.set(&t.to_dtype(DType::F32)?)?;
        }
        Ok(())
    }

    /// The LoRA tensors by adapter name (copies, detached from training).
    pub fn lora_tensors(&self) -> Result<std::collections::BTreeMap<String, Tensor>> {
        self.vars()
            .into_iter()
            .map(|(n, v)| Ok((n, v.as_tensor().copy()?.detach())))
            .collect()
    }

    /// The logits of every position of `tokens` (one sequence from position 0): `[t, vocab]`.
    pub fn forward(&self, tokens: &[u32]) -> Result<Tensor> {
        self.logits(&self.hidden(tokens)?)
    }

    /// The final-normed hidden states of every position: `[t, width]`.
    pub fn hidden(&self, tokens: &[u32]) -> Result<Tensor> {
        let c = &self.cfg;
        let t = tokens.len();
        if t == 0 {
            return Err(Error::Internal("forward on no tokens".into()));
        }
        let vocab = self.vocab_size();
        if let Some(&id) = tokens.iter().find(|&&id| id as usize >= vocab) {
            return Err(Error::Internal(format!(
                "token id {id} outside the vocabulary of {vocab}"
            )));
        }
        let ids = Tensor::new(tokens, &Device::Cpu)?;
        let mut x = self.embeddings.index_select(&ids, 0)?; // [t, width]
        let rope = Rope::new(c, t)?;
        let scale = self.lora.scale();
        let group = c.heads / c.kv_heads;
        let score_scale = 1.0 / (c.head_dim as f64).sqrt();
        for l in &self.layers {
            let h = rms_norm(&x, &l.attn_norm, c.eps)?;
            let mut q = l.q.forward(&h, scale)?;
            let mut k = l.k.forward(&h, scale)?;
            let mut v = l.v.forward(&h, scale)?;
            if let Some([bq, bk, bv]) = &l.bias {
                q = q.broadcast_add(bq)?;
                k = k.broadcast_add(bk)?;
                v = v.broadcast_add(bv)?;
            }
            let mut q = q.reshape((t, c.heads, c.head_dim))?;
            let mut k = k.reshape((t, c.kv_heads, c.head_dim))?;
            let v = v.reshape((t, c.kv_heads, c.head_dim))?;
            if let Some([nq, nk]) = &l.qk_norm {
                q = rms_norm(&q, nq, c.eps)?;
                k = rms_norm(&k, nk, c.eps)?;
            }
            let q = rope.apply(&q)?.transpose(0, 1)?.contiguous()?; // [heads, t, hd]
            let k = repeat_kv(&rope.apply(&k)?.transpose(0, 1)?, group)?; // [heads, t, hd]
            let v = repeat_kv(&v.transpose(0, 1)?, group)?; // [heads, t, hd]
            let scores = (q.matmul(&k.t()?)? * score_scale)?; // [heads, t, t]
            let e = row_shift(&scores, true)?.exp()?;
            let p = e.broadcast_div(&e.sum_keepdim(D::Minus1)?)?;
            let att = p.matmul(&v)?; // [heads, t, hd]
            let att = att.transpose(0, 1)?.reshape((t, c.heads * c.head_dim))?;
            x = (x + l.o.forward(&att, scale)?)?;

            let h = rms_norm(&x, &l.ffn_norm, c.eps)?;
            let g = l.gate.forward(&h, scale)?.silu()?;
            let u = l.up.forward(&h, scale)?;
            x = (x + l.down.forward(&(g * u)?, scale)?)?;
        }
        rms_norm(&x, &self.norm, c.eps)
    }

    /// Logits of hidden states `[n, width]`: `[n, vocab]`.
    pub fn logits(&self, hidden: &Tensor) -> Result<Tensor> {
        Ok(frozen_matmul(
            hidden,
            self.output.as_ref().unwrap_or(&self.embeddings),
        )?)
    }

    /// The summed negative log-likelihood of `targets[i]` after `inputs[..=rows[i]]`, over
    /// every `i`: runs `inputs`, takes the hidden states of `rows`, and returns a scalar that
    /// backpropagates into the LoRA pairs.
    pub fn nll_sum(&self, inputs: &[u32], rows: &[u32], targets: &[u32]) -> Result<Tensor> {
        Ok(self
            .token_logprobs(inputs, rows, targets)?
            .neg()?
            .sum_all()?)
    }

    /// The log-probability of each `targets[i]` after `inputs[..=rows[i]]`: `[n]`, every entry
    /// backpropagating into the LoRA pairs (the policy update weighs each token on its own).
    pub fn token_logprobs(&self, inputs: &[u32], rows: &[u32], targets: &[u32]) -> Result<Tensor> {
        if rows.len() != targets.len() {
            return Err(Error::Internal(format!(
                "{} rows for {} targets",
                rows.len(),
                targets.len()
            )));
        }
        let h = self.hidden(inputs)?;
        let rows_t = Tensor::new(rows, &Device::Cpu)?;
        let logits = self.logits(&h.index_select(&rows_t, 0)?)?; // [n, vocab]
        let z = row_shift(&logits, false)?;
        let lse = z.exp()?.sum_keepdim(D::Minus1)?.log()?; // [n, 1]
        let targets = Tensor::new(targets, &Device::Cpu)?.unsqueeze(1)?;
        let picked = z.gather(&targets, 1)?; // [n, 1]
        Ok((picked - lse)?.squeeze(1)?)
    }
}

/// `A` uniform in `+-1/sqrt(in)` from `rng`, `B` zeros.
fn new_pair(rng: &mut Rng, rank: usize, in_dim: usize, out_dim: usize) -> Result<LoraPair> {
    let bound = 1.0 / (in_dim as f32).sqrt();
    let a: Vec<f32> = (0..rank * in_dim)
        .map(|_| rng.range(-bound, bound))
        .collect();
    Ok(LoraPair {
        a: Var::from_tensor(&Tensor::from_vec(a, (rank, in_dim), &Device::Cpu)?)?,
        b: Var::zeros((out_dim, rank), DType::F32, &Device::Cpu)?,
    })
}

/// RMS norm over the last dimension, times `w`.
fn rms_norm(x: &Tensor, w: &Tensor, eps: f32) -> Result<Tensor> {
    let ms = x.sqr()?.mean_keepdim(D::Minus1)?;
    let inv = (ms + eps as f64)?.sqrt()?.recip()?;
    Ok(x.broadcast_mul(&inv)?.broadcast_mul(w)?)
}

/// Key/value heads `[kv, t, hd]` repeated for the `group` query heads each serves:
/// `[kv * group, t, hd]` (query head `h` reads key head `h / group`).
fn repeat_kv(x: &Tensor, group: usize) -> Result<Tensor> {
    if group == 1 {
        return Ok(x.contiguous()?);
    }
    let (kv, t, hd) = x.dims3()?;
    Ok(x.unsqueeze(1)?
        .broadcast_as((kv, group, t, hd))?
        .reshape((kv * group, t, hd))?)
}

/// Rotary angles for positions `0..t`.
struct Rope {
    neox: bool,
    rope_dim: usize,
    /// `[t, 1, rope_dim / 2]`
    cos: Tensor,
    sin: Tensor,
}

impl Rope {
    fn new(c: &Config, t: usize) -> Result<Self> {
        let half = c.rope_dim / 2;
        // as the inference decoder (llama.cpp): theta_0 = p, theta_{i+1} = theta_i * base^(-2/d)
        let step = c.rope_base.powf(-2.0 / c.rope_dim as f32);
        let (mut cos, mut sin) = (Vec::with_capacity(t * half), Vec::with_capacity(t * half));
        for p in 0..t {
            let mut theta = p as f32;
            for _ in 0..half {
                cos.push(theta.cos());
                sin.push(theta.sin());
                theta *= step;
            }
        }
        Ok(Rope {
            neox: c.arch != Arch::Llama,
            rope_dim: c.rope_dim,
            cos: Tensor::from_vec(cos, (t, 1, half), &Device::Cpu)?,
            sin: Tensor::from_vec(sin, (t, 1, half), &Device::Cpu)?,
        })
    }

    /// Rotates `x` `[t, heads, hd]`: its first `rope_dim` dimensions of each head.
    fn apply(&self, x: &Tensor) -> Result<Tensor> {
        let (t, heads, hd) = x.dims3()?;
        let half = self.rope_dim / 2;
        let rotated = if self.neox {
            // pairs (i, i + half)
            let x0 = x.narrow(2, 0, half)?;
            let x1 = x.narrow(2, half, half)?;
            let (cos, sin) = (&self.cos, &self.sin);
            let r0 = (x0.broadcast_mul(cos)? - x1.broadcast_mul(sin)?)?;
            let r1 = (x0.broadcast_mul(sin)? + x1.broadcast_mul(cos)?)?;
            Tensor::cat(&[r0, r1], 2)?
        } else {
            // adjacent pairs (2i, 2i + 1)
            let pairs = x
                .narrow(2, 0, self.rope_dim)?
                .reshape((t, heads, half, 2))?;
            let x0 = pairs.narrow(3, 0, 1)?;
            let x1 = pairs.narrow(3, 1, 1)?;
            let cos = self.cos.unsqueeze(3)?;
            let sin = self.sin.unsqueeze(3)?;
            let r0 = (x0.broadcast_mul(&cos)? - x1.broadcast_mul(&sin)?)?;
            let r1 = (x0.broadcast_mul(&sin)? + x1.broadcast_mul(&cos)?)?;
            Tensor::cat(&[r0, r1], 3)?.reshape((t, heads, self.rope_dim))?
        };
        if self.rope_dim == hd {
            Ok(rotated)
        } else {
            let rest = x.narrow(2, self.rope_dim, hd - self.rope_dim)?;
            Ok(Tensor::cat(&[rotated, rest], 2)?)
        }
    }
}

/// Sets every B to seeded random values (tests: an adapter that changes the model).
#[cfg(test)]
pub(crate) fn randomize_b(model: &LoraModel, seed: u64, scale: f32) {
    let mut rng = Rng::new(seed);
    for (_, pair) in model.pairs() {
        let (o, r) = pair.b.dims2().unwrap();
        let v: Vec<f32> = (0..o * r).map(|_| rng.range(-scale, scale)).collect();
        pair.b
            .set(&Tensor::from_vec(v, (o, r), &Device::Cpu).unwrap())
            .unwrap();
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::llm::lora::adapter::merged_weight;
    use crate::llm::lora::tiny_gguf;
    use crate::llm::{CausalLm, GgufModel};
    use candle_core::quantized::GgmlDType;
    use std::path::PathBuf;

    /// Writes the tiny chat model of `arch` with f32 matrices into `dir`.
    pub(crate) fn tiny(arch: &str, dir: &std::path::Path) -> PathBuf {
        let path = dir.join(format!("tiny-chat-{arch}.gguf"));
        tiny_gguf::write_tiny_chat_model(arch, GgmlDType::F32, &path);
        path
    }

    /// The inference decoder's logits of the last of `tokens`.
    pub(crate) fn inference_logits(path: &std::path::Path, tokens: &[u32]) -> Vec<f32> {
        let mut file = GgufFile::open(path).unwrap();
        let mut lm = GgufModel::load(&mut file, &Device::Cpu).unwrap();
        lm.forward(tokens, 0).unwrap()
    }

    /// max |a - b| / max |b|
    pub(crate) fn relative(a: &[f32], b: &[f32]) -> f32 {
        let diff = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max);
        diff / b.iter().map(|y| y.abs()).fold(0.0, f32::max)
    }

    const TOKENS: [u32; 12] = [1, 40, 90, 100, 3, 200, 260, 7, 2, 150, 33, 66];

    /// Training logits with B = 0 are the inference decoder's, at the last position and (on
    /// the prefix) a middle one, for every architecture. Measured: 4.8e-7 relative at
    /// most (llama.cpp's exp and fused rotations against candle's exp and plain products); bound
    /// 1e-5.
    #[test]
    fn training_logits_are_the_inference_logits() {
        let dir = tempfile::tempdir().unwrap();
        for arch in tiny_gguf::ARCHITECTURES {
            let path = tiny(arch, dir.path());
            let model = LoraModel::open(&path, &LoraConfig::default(), 7).unwrap();
            let logits = model.forward(&TOKENS).unwrap();
            assert_eq!(logits.dims(), [TOKENS.len(), model.vocab_size()]);
            for pos in [TOKENS.len() - 1, 5] {
                let ours: Vec<f32> = logits.get(pos).unwrap().to_vec1().unwrap();
                let theirs = inference_logits(&path, &TOKENS[..=pos]);
                let r = relative(&ours, &theirs);
                assert!(r < 1e-5, "{arch} position {pos}: relative difference {r}");
            }
        }
    }

    /// With nonzero B the forward is the forward of the merged matrices W + scale B A.
    /// Measured: 5.0e-7 relative at most; bound 1e-5.
    #[test]
    fn lora_forward_is_the_merged_forward() {
        let dir = tempfile::tempdir().unwrap();
        for arch in tiny_gguf::ARCHITECTURES {
            let path = tiny(arch, dir.path());
            let lora = LoraConfig {
                rank: 4,
                alpha: 8.0,
                ..Default::default()
            };
            let model = LoraModel::open(&path, &lora, 3).unwrap();
            randomize_b(&model, 5, 0.05);
            let with_lora = model.forward(&TOKENS).unwrap();
            let mut merged = LoraModel::open(&path, &lora, 3).unwrap();
            for (l, m) in model.layers.iter().zip(merged.layers.iter_mut()) {
                for (p, q) in l.projections().into_iter().zip(m.projections_mut()) {
                    let pair = p.lora.as_ref().unwrap();
                    q.weight = merged_weight(
                        &p.weight,
                        pair.a.as_tensor(),
                        pair.b.as_tensor(),
                        lora.scale(),
                    )
                    .unwrap();
                    q.lora = None;
                }
            }
            let plain = merged.forward(&TOKENS).unwrap();
            let a: Vec<f32> = with_lora.flatten_all().unwrap().to_vec1().unwrap();
            let b: Vec<f32> = plain.flatten_all().unwrap().to_vec1().unwrap();
            let r = relative(&a, &b);
            assert!(r < 1e-5, "{arch}: relative difference {r}");
            // and the adapter does change the model
            let base = LoraModel::open(&path, &lora, 3)
                .unwrap()
                .forward(&TOKENS)
                .unwrap();
            let c: Vec<f32> = base.flatten_all().unwrap().to_vec1().unwrap();
            assert!(
                relative(&a, &c) > 1e-3,
                "{arch}: the adapter changes nothing"
            );
        }
    }

    /// The gradient of the loss in one B entry matches a central difference, and only the
    /// targeted projections have pairs.
    #[test]
    fn gradients_match_finite_differences() {
        let dir = tempfile::tempdir().unwrap();
        let path = tiny("qwen2", dir.path());
        let lora = LoraConfig {
            rank: 2,
            alpha: 2.0,
            targets: vec![Target::V, Target::Down],
        };
        let model = LoraModel::open(&path, &lora, 1).unwrap();
        assert_eq!(model.pairs().len(), 2 * tiny_gguf::LAYERS);
        randomize_b(&model, 2, 0.1);
        let (inputs, rows, targets) = (&TOKENS[..11], [3u32, 7, 10], [200u32, 2, 66]);
        let loss = model.nll_sum(inputs, &rows, &targets).unwrap();
        let grads = loss.backward().unwrap();
        for (name, var) in model.vars() {
            let g: Vec<f32> = grads
                .get(var.as_tensor())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            let values: Vec<f32> = var.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
            let k = g
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
                .unwrap()
                .0;
            let eps = 1e-2f32;
            let at = |delta: f32| {
                let mut v = values.clone();
                v[k] += delta;
                var.set(&Tensor::from_vec(v, var.shape(), &Device::Cpu).unwrap())
                    .unwrap();
                let l = model.nll_sum(inputs, &rows, &targets).unwrap();
                l.to_scalar::<f32>().unwrap() as f64
            };
            let numeric = (at(eps) - at(-eps)) / (2.0 * eps as f64);
            at(0.0);
            let analytic = g[k] as f64;
            assert!(
                (numeric - analytic).abs() <= 2e-2 * analytic.abs().max(1e-2),
                "{name}[{k}]: analytic {analytic}, numeric {numeric}"
            );
        }
    }
}
