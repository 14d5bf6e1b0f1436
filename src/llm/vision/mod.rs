//! A multimodal model: Qwen3-VL through candle-transformers (`models::qwen3_vl`), loaded from
//! a folder of Hugging Face files (`config.json`, `*.safetensors`, optionally `tokenizer.json`
//! and `preprocessor_config.json`) or from a Hugging Face repo id.
//!
//! ```no_run
//! use std::sync::Arc;
//! use actfer::llm::vision::VisionModel;
//! let model = Arc::new(VisionModel::load_spec("Qwen/Qwen3-VL-2B-Instruct")?);
//! let image = actfer::media::read_image("face.png".as_ref())?;
//! let out = model.generate(&image, "Which action units are active?", 64)?;
//! println!("{}", out.text.unwrap_or_default());
//! # Ok::<(), actfer::Error>(())
//! ```
//!
//! The prompt is `before + <|vision_start|> + <|image_pad|> x n + <|vision_end|> + after`,
//! with `n` the number of merged patches ([`ImagePatches::num_tokens`]); the model puts the
//! vision tower's output in place of the placeholders.
//!
//! What candle-transformers 0.11.1's `qwen3_vl` does differently from the reference model:
//! text positions are 1-D (no multimodal rotary sections), and a forward pass of more than one
//! token gets no causal mask. [`VisionModel::generate_ids`] therefore feeds the text one token
//! at a time and only the image placeholders as one block, so text stays causal and the image
//! tokens see each other both ways.

pub mod pixels;
pub mod session;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::qwen3_vl::{Config, Qwen3VLModel};

pub use pixels::{ImagePatches, ImageProcessor};
pub use session::VisionSession;

use crate::error::{Error, Result};
use crate::llm::tokenizer::Tokenizer;
use crate::media::RgbImage;

/// The `model_type` of a Qwen3-VL `config.json`.
pub const QWEN3_VL_MODEL_TYPE: &str = "qwen3_vl";

/// Qwen's chat format around one user turn that starts with the image.
const USER_START: &str = "<|im_start|>user\n";
const USER_END_ASSISTANT_START: &str = "<|im_end|>\n<|im_start|>assistant\n";

/// A loaded Qwen3-VL model on the CPU. The weights are held in f32; each generation builds a
/// fresh candle model over them (candle's model has no way to clear its KV cache).
pub struct VisionModel {
    pub dir: PathBuf,
    pub config: Config,
    pub processor: ImageProcessor,
    /// `None` when the folder has no `tokenizer.json`: [`VisionModel::generate_ids`] still
    /// works on token ids.
    pub tokenizer: Option<Tokenizer>,
    weights: HashMap<String, Tensor>,
    device: Device,
}

impl std::fmt::Debug for VisionModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VisionModel")
            .field("dir", &self.dir)
            .field("tensors", &self.weights.len())
            .field("tokenizer", &self.tokenizer.is_some())
            .finish_non_exhaustive()
    }
}

/// One generation: the prompt as fed, the tokens chosen, and the logits of the first step.
#[derive(Debug, Clone)]
pub struct VisionGeneration {
    pub prompt_tokens: Vec<u32>,
    pub tokens: Vec<u32>,
    /// The decoded `tokens`, when the model has a tokenizer.
    pub text: Option<String>,
    /// Logits after the whole prompt, before the first generated token.
    pub first_logits: Vec<f32>,
}

/// Whether `dir` holds a Qwen3-VL model: a `config.json` with `model_type` `qwen3_vl`.
pub fn is_vision_dir(dir: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(dir.join("config.json")) else {
        return false;
    };
    serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| {
            v.get("model_type")?
                .as_str()
                .map(|t| t == QWEN3_VL_MODEL_TYPE)
        })
        .unwrap_or(false)
}

/// Whether a `--model` value names a Qwen3-VL model: a folder that [`is_vision_dir`], or no
/// existing path but a Hugging Face repo id (`owner/name`, no `:file` part; GGUF text models
/// are named `owner/name:file.gguf`).
pub fn is_vision_spec(spec: &str) -> bool {
    let path = Path::new(spec);
    if path.exists() {
        return path.is_dir() && is_vision_dir(path);
    }
    match spec.split_once('/') {
        Some((owner, name)) => {
            !owner.is_empty()
                && !name.is_empty()
                && !name.contains('/')
                && !spec.contains(':')
                && !spec.ends_with(".gguf")
        }
        None => false,
    }
}

impl VisionModel {
    /// Loads a folder, or, when `spec` is no existing path but looks like `owner/repo`, the
    /// Hugging Face repo of that id (from the hf-hub cache, downloading what is missing).
    pub fn load_spec(spec: &str) -> Result<Self> {
        let path = Path::new(spec);
        if path.exists() {
            return Self::load_dir(path);
        }
        match spec.split_once('/') {
            Some((owner, name)) if !owner.is_empty() && !name.is_empty() && !name.contains('/') => {
                Self::load_hub(spec)
            }
            _ => Err(Error::NotFound {
                path: path.to_path_buf(),
            }),
        }
    }

    /// Fetches a Qwen3-VL repo's files through hf-hub and loads its snapshot folder.
    pub fn load_hub(repo: &str) -> Result<Self> {
        let config = crate::models::hf_file(repo, "config.json")?;
        match crate::models::hf_file(repo, "model.safetensors.index.json") {
            Ok(index) => {
                for file in index_files(&index)? {
                    crate::models::hf_file(repo, &file)?;
                }
            }
            Err(_) => {
                crate::models::hf_file(repo, "model.safetensors")?;
            }
        }
        for optional in ["tokenizer.json", "preprocessor_config.json"] {
            if let Err(e) = crate::models::hf_file(repo, optional) {
                tracing::warn!(repo, file = optional, "not fetched: {e}");
            }
        }
        let dir = config
            .parent()
            .expect("a fetched file lies in a snapshot folder");
        Self::load_dir(dir)
    }

    /// Loads `config.json`, every `*.safetensors`, and `tokenizer.json` and
    /// `preprocessor_config.json` when present, from a folder.
    pub fn load_dir(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            return Err(Error::NotFound {
                path: dir.to_path_buf(),
            });
        }
        let config_path = dir.join("config.json");
        let config = read_config(&config_path)?;
        let device = Device::Cpu;

        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| Error::io(format!("listing {}", dir.display()), e))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(Error::BadInput {
                path: dir.to_path_buf(),
                reason: "no *.safetensors weights in this folder; put the model's weight files \
                         beside its config.json"
                    .into(),
            });
        }
        let mut weights = HashMap::new();
        for file in &files {
            let tensors = candle_core::safetensors::load(file, &device)
                .map_err(|e| Error::bad_input(file, format!("not readable safetensors: {e}")))?;
            for (name, tensor) in tensors {
                weights.insert(name, tensor.to_dtype(DType::F32)?);
            }
        }

        let tokenizer_path = dir.join("tokenizer.json");
        let tokenizer = if tokenizer_path.is_file() {
            Some(Tokenizer::from_tokenizer_json_alone(&tokenizer_path)?)
        } else {
            None
        };
        let preprocessor = dir.join("preprocessor_config.json");
        let processor = ImageProcessor::new(
            &config.vision_config,
            preprocessor.is_file().then_some(preprocessor.as_path()),
        )?;

        let model = VisionModel {
            dir: dir.to_path_buf(),
            config,
            processor,
            tokenizer,
            weights,
            device,
        };
        // build once so that missing or misshapen tensors are reported at load time
        model.build()?;
        tracing::info!(dir = %dir.display(), tensors = model.weights.len(), "vision model loaded");
        Ok(model)
    }

    /// A fresh candle model (empty KV cache) over the loaded weights.
    pub(crate) fn build(&self) -> Result<Qwen3VLModel> {
        let vb = VarBuilder::from_tensors(self.weights.clone(), DType::F32, &self.device);
        Qwen3VLModel::new(&self.config, vb).map_err(|e| Error::BadModel {
            name: QWEN3_VL_MODEL_TYPE.into(),
            path: self.dir.clone(),
            reason: format!("the weights do not fit config.json ({e})"),
        })
    }

    /// The prompt around an image for `generate_ids`: `before` and `after` token ids with
    /// the vision markers and `num_tokens` placeholders between them.
    pub fn prompt_tokens(&self, before: &[u32], num_tokens: usize, after: &[u32]) -> Vec<u32> {
        let mut ids = before.to_vec();
        ids.push(self.config.vision_start_token_id);
        ids.extend(std::iter::repeat_n(self.config.image_token_id, num_tokens));
        ids.push(self.config.vision_end_token_id);
        ids.extend_from_slice(after);
        ids
    }

    /// The tokenizer, or an error naming the missing `tokenizer.json`.
    pub fn require_tokenizer(&self) -> Result<&Tokenizer> {
        self.tokenizer.as_ref().ok_or_else(|| {
            Error::bad_input(
                self.dir.join("tokenizer.json"),
                "missing; text prompts need the model's tokenizer.json beside its config.json",
            )
        })
    }

    /// Greedy decoding of `max_tokens` tokens after `before`, the image and `after` (token
    /// ids). Stops early at an end token when the model has a tokenizer.
    pub fn generate_ids(
        self: &Arc<Self>,
        image: &RgbImage,
        before: &[u32],
        after: &[u32],
        max_tokens: usize,
    ) -> Result<VisionGeneration> {
        let mut session = VisionSession::new(Arc::clone(self))?;
        session.append_tokens(before);
        let n = session.append_image(image)?;
        session.append_tokens(after);
        let prompt = self.prompt_tokens(before, n, after);
        let first_logits = session.logits()?.to_vec();

        let ends = self
            .tokenizer
            .as_ref()
            .map_or(&[][..], |t| t.end_of_generation());
        let mut tokens = Vec::with_capacity(max_tokens);
        let mut current = first_logits.clone();
        while tokens.len() < max_tokens {
            let next = argmax(&current);
            tokens.push(next);
            if ends.contains(&next) || tokens.len() == max_tokens {
                break;
            }
            session.append_tokens(&[next]);
            current = session.logits()?.to_vec();
        }
        let text = self.tokenizer.as_ref().map(|t| {
            let kept: Vec<u32> = tokens
                .iter()
                .copied()
                .filter(|&id| !t.is_special(id))
                .collect();
            t.decode(&kept)
        });
        Ok(VisionGeneration {
            prompt_tokens: prompt,
            tokens,
            text,
            first_logits,
        })
    }

    /// Greedy decoding after a user turn of the image and `prompt` in Qwen's chat format.
    /// Needs the model's `tokenizer.json`.
    pub fn generate(
        self: &Arc<Self>,
        image: &RgbImage,
        prompt: &str,
        max_tokens: usize,
    ) -> Result<VisionGeneration> {
        let tokenizer = self.require_tokenizer()?;
        let before = tokenizer.encode(USER_START, false, true)?;
        let after =
            tokenizer.encode(&format!("{prompt}{USER_END_ASSISTANT_START}"), false, true)?;
        self.generate_ids(image, &before, &after, max_tokens)
    }
}

/// Reads a Qwen3-VL `config.json`. Checkpoints keep `tie_word_embeddings` at the top level;
/// candle wants it in `text_config`, so it is copied there when missing.
pub fn read_config(path: &Path) -> Result<Config> {
    let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::bad_input(
            path,
            "missing; a Qwen3-VL model folder needs the config.json of its Hugging Face repo",
        ),
        _ => Error::io(format!("reading {}", path.display()), e),
    })?;
    let mut value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::bad_input(path, format!("not JSON: {e}")))?;
    let tie = value.get("tie_word_embeddings").cloned();
    if let (Some(tie), Some(text_config)) = (tie, value.get_mut("text_config")) {
        if let Some(obj) = text_config.as_object_mut() {
            obj.entry("tie_word_embeddings").or_insert(tie);
        }
    }
    serde_json::from_value(value)
        .map_err(|e| Error::bad_input(path, format!("not a Qwen3-VL config: {e}")))
}

/// The weight files a `model.safetensors.index.json` names.
fn index_files(index: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(index)
        .map_err(|e| Error::io(format!("reading {}", index.display()), e))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::bad_input(index, format!("not JSON: {e}")))?;
    let map = value
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| Error::bad_input(index, "no weight_map"))?;
    let mut files: Vec<String> = map
        .values()
        .filter_map(|v| v.as_str().map(String::from))
        .collect();
    files.sort();
    files.dedup();
    Ok(files)
}

/// The index of the largest value (the first on ties).
fn argmax(values: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best as u32
}
