//! LoRA settings, the adapter file, and merging an adapter into a GGUF.
//!
//! An adapter is a safetensors file: per adapted matrix `W` `[out, in]` of GGUF name `NAME`
//! (e.g. `blk.0.attn_q.weight`), `NAME.lora_a` `[rank, in]` and `NAME.lora_b` `[out, rank]`,
//! f32; the metadata holds the [`LoraConfig`] as JSON, the base model's file name and its
//! sha256. The adapted matrix is `W + (alpha / rank) B A`.
//!
//! [`merge`] writes that matrix into a copy of the base GGUF (requantized, `Q8_0` by default),
//! every metadata entry and every other tensor kept, so the inference path runs the tuned model
//! as it runs any other.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::llm::gguf::GgufFile;
use crate::llm::quantize::{map_tensors, sorted_metadata, write_gguf};
use crate::{Error, Result};

/// Default LoRA rank.
pub const DEFAULT_RANK: usize = 16;
/// Default LoRA alpha (scale `alpha / rank`).
pub const DEFAULT_ALPHA: f64 = 32.0;

/// A projection LoRA can adapt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    Q,
    K,
    V,
    O,
    Gate,
    Up,
    Down,
}

impl Target {
    pub const ALL: [Target; 7] = [
        Target::Q,
        Target::K,
        Target::V,
        Target::O,
        Target::Gate,
        Target::Up,
        Target::Down,
    ];

    /// The short name: `q`, `k`, `v`, `o`, `gate`, `up`, `down`.
    pub fn name(self) -> &'static str {
        match self {
            Target::Q => "q",
            Target::K => "k",
            Target::V => "v",
            Target::O => "o",
            Target::Gate => "gate",
            Target::Up => "up",
            Target::Down => "down",
        }
    }

    /// The matrix's GGUF name in layer `layer`, e.g. `blk.3.attn_output.weight`.
    pub fn gguf_name(self, layer: usize) -> String {
        let t = match self {
            Target::Q => "attn_q",
            Target::K => "attn_k",
            Target::V => "attn_v",
            Target::O => "attn_output",
            Target::Gate => "ffn_gate",
            Target::Up => "ffn_up",
            Target::Down => "ffn_down",
        };
        format!("blk.{layer}.{t}.weight")
    }

    /// A short name (or `all`) to targets; `None` for an unknown name.
    pub fn parse(name: &str) -> Option<Vec<Target>> {
        let name = name.trim().to_ascii_lowercase();
        if name == "all" {
            return Some(Target::ALL.to_vec());
        }
        Target::ALL
            .into_iter()
            .find(|t| t.name() == name)
            .map(|t| vec![t])
    }
}

/// What LoRA adapts and how strongly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LoraConfig {
    pub rank: usize,
    pub alpha: f64,
    /// The adapted projections, in every layer.
    pub targets: Vec<Target>,
}

impl Default for LoraConfig {
    fn default() -> Self {
        LoraConfig {
            rank: DEFAULT_RANK,
            alpha: DEFAULT_ALPHA,
            targets: Target::ALL.to_vec(),
        }
    }
}

impl LoraConfig {
    /// The factor of `B A`: `alpha / rank`.
    pub fn scale(&self) -> f64 {
        self.alpha / self.rank as f64
    }

    /// Checks the settings; the targets come back sorted, each once.
    pub fn validated(mut self) -> std::result::Result<Self, String> {
        if self.rank == 0 {
            return Err("the LoRA rank must be at least 1".into());
        }
        if !self.alpha.is_finite() || self.alpha <= 0.0 {
            return Err(format!(
                "LoRA alpha {} must be a positive number",
                self.alpha
            ));
        }
        self.targets.sort();
        self.targets.dedup();
        if self.targets.is_empty() {
            return Err("no LoRA targets; name some of q, k, v, o, gate, up, down".into());
        }
        Ok(self)
    }
}

/// The metadata keys of an adapter file.
const KEY_CONFIG: &str = "actfer.lora.config";
const KEY_BASE: &str = "actfer.lora.base_model";
const KEY_BASE_SHA: &str = "actfer.lora.base_sha256";

/// The suffixes of a matrix's two LoRA tensors.
pub const SUFFIX_A: &str = ".lora_a";
pub const SUFFIX_B: &str = ".lora_b";

/// A LoRA adapter: its settings, what it was trained on, and its tensors by name
/// (`NAME.lora_a`, `NAME.lora_b`).
#[derive(Debug, Clone)]
pub struct Adapter {
    pub config: LoraConfig,
    /// The base model's file name.
    pub base_model: String,
    /// The base model's sha256 (lowercase hex).
    pub base_sha256: String,
    pub tensors: BTreeMap<String, Tensor>,
}

impl Adapter {
    /// The adapted matrices' GGUF names with their (A `[rank, in]`, B `[out, rank]`).
    pub fn pairs(&self) -> Result<Vec<(String, &Tensor, &Tensor)>> {
        let mut out = Vec::new();
        for (name, a) in &self.tensors {
            let Some(weight) = name.strip_suffix(SUFFIX_A) else {
                continue;
            };
            let b = self
                .tensors
                .get(&format!("{weight}{SUFFIX_B}"))
                .ok_or_else(|| {
                    Error::Internal(format!("adapter has {name} but no {weight}{SUFFIX_B}"))
                })?;
            out.push((weight.to_string(), a, b));
        }
        Ok(out)
    }

    /// Writes the adapter (beside `path` first, then renamed into place).
    pub fn save(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir.display().to_string(), e))?;
        }
        let meta = HashMap::from([
            (
                KEY_CONFIG.to_string(),
                serde_json::to_string(&self.config).expect("a LoRA config serialises"),
            ),
            (KEY_BASE.to_string(), self.base_model.clone()),
            (KEY_BASE_SHA.to_string(), self.base_sha256.clone()),
        ]);
        write_safetensors(path, &self.tensors, meta)
    }

    /// Reads an adapter written by [`Adapter::save`].
    pub fn load(path: &Path) -> Result<Self> {
        let (tensors, meta) = read_safetensors(path)?;
        let get = |key: &str| {
            meta.get(key).cloned().ok_or_else(|| {
                Error::bad_input(
                    path,
                    format!("no {key} in the metadata: not a LoRA adapter written by actfer"),
                )
            })
        };
        let config: LoraConfig = serde_json::from_str(&get(KEY_CONFIG)?)
            .map_err(|e| Error::bad_input(path, format!("{KEY_CONFIG}: {e}")))?;
        let config = config
            .validated()
            .map_err(|e| Error::bad_input(path, format!("{KEY_CONFIG}: {e}")))?;
        let adapter = Adapter {
            config,
            base_model: get(KEY_BASE)?,
            base_sha256: get(KEY_BASE_SHA)?,
            tensors: tensors.into_iter().collect(),
        };
        adapter
            .pairs()
            .map_err(|e| Error::bad_input(path, e.to_string()))?;
        Ok(adapter)
    }
}

/// Writes f32 `tensors` (sorted by name) with string `meta`, atomically.
pub(crate) fn write_safetensors(
    path: &Path,
    tensors: &BTreeMap<String, Tensor>,
    meta: HashMap<String, String>,
) -> Result<()> {
    let tmp = path.with_extension("safetensors.part");
    safetensors::serialize_to_file(tensors.iter().collect::<Vec<_>>(), Some(meta), &tmp)
        .map_err(|e| Error::Internal(format!("cannot write {}: {e}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path.display().to_string(), e))
}

/// The tensors and string metadata of a safetensors file.
pub(crate) fn read_safetensors(
    path: &Path,
) -> Result<(HashMap<String, Tensor>, HashMap<String, String>)> {
    if !path.exists() {
        return Err(Error::NotFound {
            path: path.to_path_buf(),
        });
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path.display().to_string(), e))?;
    let bad = |e: &dyn std::fmt::Display| {
        Error::bad_input(
            path,
            format!(
                "not a complete safetensors file ({} bytes: {e})",
                bytes.len()
            ),
        )
    };
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| bad(&e))?;
    let meta = header.metadata().clone().unwrap_or_default();
    let tensors =
        candle_core::safetensors::load_buffer(&bytes, &Device::Cpu).map_err(|e| bad(&e))?;
    Ok((tensors, meta))
}

/// The file name and sha256 of a base model, as an adapter records them.
pub fn base_identity(base: &Path) -> Result<(String, String)> {
    let name = base
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok((name, crate::models::sha256_file(base)?))
}

/// `W + scale * B A` for `w` `[out, in]`, `a` `[rank, in]`, `b` `[out, rank]`.
pub fn merged_weight(w: &Tensor, a: &Tensor, b: &Tensor, scale: f64) -> Result<Tensor> {
    Ok((w + (b.matmul(a)? * scale)?)?)
}

/// What [`merge`] did.
#[derive(Debug, Clone, Serialize)]
pub struct MergeReport {
    pub out: PathBuf,
    pub tensors: usize,
    /// Matrices with the adapter merged in.
    pub merged: usize,
    /// Whether the base's sha256 is the one the adapter was trained on.
    pub same_base: bool,
    pub bytes_out: u64,
}

/// Writes `out`: `base` with every adapted matrix replaced by `W + (alpha / rank) B A` in
/// `dtype`, every metadata entry and other tensor as they were. A base other than the one the
/// adapter was trained on (by sha256) is merged with a warning when the shapes fit.
pub fn merge(base: &Path, adapter: &Adapter, out: &Path, dtype: GgmlDType) -> Result<MergeReport> {
    let (_, sha) = base_identity(base)?;
    let same_base = sha == adapter.base_sha256;
    if !same_base {
        tracing::warn!(
            base = %base.display(),
            trained_on = adapter.base_model,
            "the adapter was trained on another file (sha256 differs); merging as the shapes fit"
        );
    }
    let mut pairs: HashMap<String, (&Tensor, &Tensor)> = adapter
        .pairs()?
        .into_iter()
        .map(|(n, a, b)| (n, (a, b)))
        .collect();
    let scale = adapter.config.scale();
    let mut file = GgufFile::open(base)?;
    let path = file.path.clone();
    let mut merged = 0;
    let tensors = map_tensors(&mut file, |name, q| {
        let Some((a, b)) = pairs.remove(name) else {
            return Ok(q);
        };
        let w = q.dequantize(&Device::Cpu)?;
        let (out_dim, in_dim) = w.dims2()?;
        if a.dims() != [adapter.config.rank, in_dim] || b.dims() != [out_dim, adapter.config.rank] {
            return Err(Error::bad_input(
                &path,
                format!(
                    "{name} is {out_dim}x{in_dim} but the adapter's A is {:?} and B {:?}: the adapter is for another model",
                    a.dims(),
                    b.dims()
                ),
            ));
        }
        if in_dim % dtype.block_size() != 0 {
            return Err(Error::bad_input(
                &path,
                format!(
                    "{name}: rows of {in_dim} do not split into {dtype:?} blocks; pass --type f32"
                ),
            ));
        }
        merged += 1;
        Ok(QTensor::quantize(&merged_weight(&w, a, b, scale)?, dtype)?)
    })?;
    if let Some(name) = pairs.keys().min() {
        return Err(Error::bad_input(
            base,
            format!("the adapter adapts {name}, which this model does not have"),
        ));
    }
    let bytes_out = write_gguf(out, &sorted_metadata(&file), &tensors)?;
    Ok(MergeReport {
        out: out.to_path_buf(),
        tensors: tensors.len(),
        merged,
        same_base,
        bytes_out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::lora::model::tests::{inference_logits, relative, tiny};
    use crate::llm::lora::model::{randomize_b, LoraModel};
    use crate::llm::lora::tiny_gguf;

    const TOKENS: [u32; 10] = [1, 77, 5, 260, 130, 2, 1, 99, 42, 8];

    fn trained_adapter(base: &Path, lora: &LoraConfig) -> (LoraModel, Adapter) {
        let model = LoraModel::open(base, lora, 11).unwrap();
        randomize_b(&model, 12, 0.05);
        let (base_model, base_sha256) = base_identity(base).unwrap();
        let adapter = Adapter {
            config: lora.clone(),
            base_model,
            base_sha256,
            tensors: model.lora_tensors().unwrap(),
        };
        (model, adapter)
    }

    #[test]
    fn adapter_files_round_trip_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let base = tiny("qwen3", dir.path());
        let lora = LoraConfig {
            rank: 3,
            alpha: 6.0,
            targets: vec![Target::K, Target::O, Target::Gate],
        };
        let (model, adapter) = trained_adapter(&base, &lora);
        let path = dir.path().join("a.safetensors");
        adapter.save(&path).unwrap();
        let back = Adapter::load(&path).unwrap();
        assert_eq!(back.config, lora);
        assert_eq!(back.base_model, "tiny-chat-qwen3.gguf");
        assert_eq!(back.base_sha256, crate::models::sha256_file(&base).unwrap());
        assert_eq!(back.tensors.len(), 2 * 3 * tiny_gguf::LAYERS);
        assert!(back.tensors.contains_key("blk.1.ffn_gate.weight.lora_b"));
        for (name, t) in &adapter.tensors {
            let a: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
            let b: Vec<f32> = back.tensors[name].flatten_all().unwrap().to_vec1().unwrap();
            assert_eq!(t.dims(), back.tensors[name].dims(), "{name}");
            assert!(
                a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()),
                "{name}"
            );
        }
        // loading it into a fresh model gives the same forward
        let fresh = LoraModel::open(&base, &lora, 99).unwrap();
        fresh.set_lora(&back.tensors).unwrap();
        let (x, y) = (
            model.forward(&TOKENS).unwrap(),
            fresh.forward(&TOKENS).unwrap(),
        );
        assert_eq!(crate::testing::max_abs_diff(&x, &y), 0.0);
        // a file without the metadata is refused
        let bare = dir.path().join("bare.safetensors");
        write_safetensors(&bare, &adapter.tensors, HashMap::new()).unwrap();
        let err = Adapter::load(&bare).unwrap_err();
        assert!(err.to_string().contains("not a LoRA adapter"), "{err}");
    }

    /// The merged f32 GGUF through the inference decoder gives the training forward's logits
    /// with the adapter. Measured: 4.8e-7 relative at most; bound 1e-5.
    #[test]
    fn merged_gguf_runs_the_adapted_model() {
        let dir = tempfile::tempdir().unwrap();
        for arch in tiny_gguf::ARCHITECTURES {
            let base = tiny(arch, dir.path());
            let (model, adapter) = trained_adapter(&base, &LoraConfig::default());
            let out = dir.path().join(format!("merged-{arch}.gguf"));
            let report = merge(&base, &adapter, &out, GgmlDType::F32).unwrap();
            assert_eq!(report.merged, 7 * tiny_gguf::LAYERS);
            assert!(report.same_base);
            let logits = model.forward(&TOKENS).unwrap();
            let mut worst = 0f32;
            for pos in [TOKENS.len() - 1, 4] {
                let ours: Vec<f32> = logits.get(pos).unwrap().to_vec1().unwrap();
                let merged = inference_logits(&out, &TOKENS[..=pos]);
                worst = worst.max(relative(&merged, &ours));
                let plain = inference_logits(&base, &TOKENS[..=pos]);
                assert!(
                    relative(&plain, &ours) > 1e-3,
                    "{arch}: the adapter changes nothing"
                );
            }
            assert!(worst < 1e-5, "{arch}: relative difference {worst}");
            // metadata and the other tensors are the base's
            let (a, b) = (
                GgufFile::open(&base).unwrap(),
                GgufFile::open(&out).unwrap(),
            );
            assert_eq!(a.content.metadata.len(), b.content.metadata.len());
            for (k, v) in &a.content.metadata {
                assert_eq!(
                    format!("{v:?}"),
                    format!("{:?}", b.content.metadata[k]),
                    "{k}"
                );
            }
            assert_eq!(a.content.tensor_infos.len(), b.content.tensor_infos.len());
        }
    }

    #[test]
    fn q8_0_merge_and_mismatched_adapters() {
        let dir = tempfile::tempdir().unwrap();
        let base = tiny("llama", dir.path());
        let (model, mut adapter) = trained_adapter(&base, &LoraConfig::default());
        let out = dir.path().join("merged.gguf");
        merge(&base, &adapter, &out, GgmlDType::Q8_0).unwrap();
        let file = GgufFile::open(&out).unwrap();
        let info = &file.content.tensor_infos;
        assert_eq!(info["blk.0.attn_q.weight"].ggml_dtype, GgmlDType::Q8_0);
        assert_eq!(info["blk.0.attn_norm.weight"].ggml_dtype, GgmlDType::F32);
        assert_eq!(info["token_embd.weight"].ggml_dtype, GgmlDType::F32);
        // within Q8_0's rounding of the adapted model (measured 1.1e-2 relative)
        let ours: Vec<f32> = model
            .forward(&TOKENS)
            .unwrap()
            .get(TOKENS.len() - 1)
            .unwrap()
            .to_vec1()
            .unwrap();
        let r = relative(&inference_logits(&out, &TOKENS), &ours);
        assert!(r < 3e-2, "{r}");
        // an adapter of other shapes, or for a matrix the model lacks, is refused
        let a = adapter.tensors["blk.0.attn_q.weight.lora_a"]
            .narrow(1, 0, 32)
            .unwrap();
        adapter
            .tensors
            .insert("blk.0.attn_q.weight.lora_a".into(), a);
        let err = merge(&base, &adapter, &out, GgmlDType::F32).unwrap_err();
        assert!(err.to_string().contains("another model"), "{err}");
        let (_, mut adapter) = trained_adapter(&base, &LoraConfig::default());
        for s in [SUFFIX_A, SUFFIX_B] {
            let t = adapter.tensors[&format!("blk.0.attn_q.weight{s}")].clone();
            adapter.tensors.insert(format!("blk.9.attn_q.weight{s}"), t);
        }
        let err = merge(&base, &adapter, &out, GgmlDType::F32).unwrap_err();
        assert!(err.to_string().contains("blk.9.attn_q.weight"), "{err}");
    }
}
