//! A multimodal model: Qwen3-VL through candle-transformers (`models::qwen3_vl`), loaded from
//! a folder of Hugging Face files (`config.json`, `*.safetensors`, optionally `tokenizer.json`
//! and `preprocessor_config.json`) or from a Hugging Face repo id.
//!
//! ```no_run
//! use actfer::llm::vision::VisionModel;
//! let model = VisionModel::load_spec("Qwen/Qwen3-VL-2B-Instruct")?;
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

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, IndexOp, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::qwen3_vl::{Config, Qwen3VLModel};

pub use pixels::{ImagePatches, ImageProcessor};

use crate::error::{Error, Result};
use crate::media::RgbImage;

/// The `model_type` of a Qwen3-VL `config.json`.
pub const QWEN3_VL_MODEL_TYPE: &str = "qwen3_vl";

/// Qwen's chat format around one user turn that starts with the image.
const USER_START: &str = "<|im_start|>user\n";
const USER_END_ASSISTANT_START: &str = "<|im_end|>\n<|im_start|>assistant\n";
/// Tokens that end a Qwen answer.
const END_TOKENS: [&str; 2] = ["<|im_end|>", "<|endoftext|>"];

/// A loaded Qwen3-VL model on the CPU. The weights are held in f32; each generation builds a
/// fresh candle model over them (candle's model has no way to clear its KV cache).
pub struct VisionModel {
    pub dir: PathBuf,
    pub config: Config,
    pub processor: ImageProcessor,
    /// `None` when the folder has no `tokenizer.json`: [`VisionModel::generate_ids`] still
    /// works on token ids.
    pub tokenizer: Option<tokenizers::Tokenizer>,
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
            Some(
                tokenizers::Tokenizer::from_file(&tokenizer_path)
                    .map_err(|e| Error::bad_input(&tokenizer_path, e.to_string()))?,
            )
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
    fn build(&self) -> Result<Qwen3VLModel> {
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

    /// Greedy decoding of `max_tokens` tokens after `before`, the image and `after` (token
    /// ids). Stops early at an end token when the model has a tokenizer.
    pub fn generate_ids(
        &self,
        image: &RgbImage,
        before: &[u32],
        after: &[u32],
        max_tokens: usize,
    ) -> Result<VisionGeneration> {
        let patches = self.processor.patches(image, &self.device)?;
        let [t, h, w] = patches.grid_thw.map(|v| v as u32);
        let grid_thw = Tensor::new(&[[t, h, w]], &self.device)?;
        let prompt = self.prompt_tokens(before, patches.num_tokens, after);
        let model = self.build()?;

        // the text one token at a time, the image placeholders as one block (module docs)
        let mut position = 0;
        let mut logits = None;
        for &id in before.iter().chain([&self.config.vision_start_token_id]) {
            logits = Some(self.step(&model, &[id], position)?);
            position += 1;
        }
        let n = patches.num_tokens;
        let pads = vec![self.config.image_token_id; n];
        let input = Tensor::new(pads.as_slice(), &self.device)?.unsqueeze(0)?; // [1, n]
        model.forward(
            &input,
            Some(patches.pixel_values.clone()),
            None,
            Some(grid_thw),
            None,
            vec![n],
            vec![vec![(0, n)]],
            vec![],
            &[position],
        )?;
        position += n;
        for &id in [&self.config.vision_end_token_id].into_iter().chain(after) {
            logits = Some(self.step(&model, &[id], position)?);
            position += 1;
        }
        let first_logits = logits.expect("the prompt ends with the vision end token");

        let ends = self.end_tokens();
        let mut tokens = Vec::with_capacity(max_tokens);
        let mut current = first_logits.clone();
        while tokens.len() < max_tokens {
            let next = argmax(&current);
            tokens.push(next);
            if ends.contains(&next) || tokens.len() == max_tokens {
                break;
            }
            current = self.step(&model, &[next], position)?;
            position += 1;
        }
        let text = self
            .tokenizer
            .as_ref()
            .map(|t| t.decode(&tokens, true))
            .transpose()
            .map_err(|e| Error::Internal(format!("decoding the answer: {e}")))?;
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
        &self,
        image: &RgbImage,
        prompt: &str,
        max_tokens: usize,
    ) -> Result<VisionGeneration> {
        let Some(tokenizer) = &self.tokenizer else {
            return Err(Error::bad_input(
                self.dir.join("tokenizer.json"),
                "missing; text prompts need the model's tokenizer.json beside its config.json",
            ));
        };
        let encode = |text: &str| -> Result<Vec<u32>> {
            Ok(tokenizer
                .encode(text, false)
                .map_err(|e| Error::Internal(format!("tokenizing the prompt: {e}")))?
                .get_ids()
                .to_vec())
        };
        let before = encode(USER_START)?;
        let after = encode(&format!("{prompt}{USER_END_ASSISTANT_START}"))?;
        self.generate_ids(image, &before, &after, max_tokens)
    }

    /// One forward pass of text tokens at `position`; the logits of the last one.
    fn step(&self, model: &Qwen3VLModel, ids: &[u32], position: usize) -> Result<Vec<f32>> {
        let input = Tensor::new(ids, &self.device)?.unsqueeze(0)?; // [1, len]
        let logits = model.forward(
            &input,
            None,
            None,
            None,
            None,
            vec![ids.len()],
            vec![],
            vec![],
            &[position],
        )?; // [1, vocab]
        Ok(logits.i(0)?.to_dtype(DType::F32)?.to_vec1()?)
    }

    fn end_tokens(&self) -> Vec<u32> {
        self.tokenizer
            .as_ref()
            .map(|t| END_TOKENS.iter().filter_map(|s| t.token_to_id(s)).collect())
            .unwrap_or_default()
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
