//! The language model host: GGUF text models in candle, their tokenizer and chat template,
//! sampling, and sessions that keep the KV cache across the turns of a conversation.
//!
//! ```no_run
//! use actfer::llm::{Chat, GenerateOptions, Message, TextModel, DEFAULT_MODEL};
//! let model = TextModel::load_spec(DEFAULT_MODEL)?;
//! let mut chat = Chat::new(model)?;
//! let answer = chat.send(Message::user("Name a facial muscle."), &GenerateOptions::default(),
//!     &mut |piece| { print!("{piece}"); true })?;
//! # Ok::<(), actfer::Error>(())
//! ```
//!
//! - [`gguf`]: opening and checking a GGUF file (missing, not GGUF, truncated)
//! - [`model`]: the [`CausalLm`] interface and the families (llama, qwen2, qwen3 from
//!   [`llama`]; gemma3 from [`gemma3`]) chosen by `general.architecture`
//! - [`llama`]: llama-shaped decoders on f32 rows, with [`q8`] (tiled Q8_0 products) and
//!   [`numerics`] (llama.cpp's rounding of exp, softmax and dot products)
//! - [`gemma3`]: Gemma 3 from GGUF (GELU feed-forward, sliding-window layers)
//! - [`tokenizer`]: byte-level BPE from GGUF metadata with llama.cpp's pre-tokenizers,
//!   SentencePiece from GGUF metadata (`spm`, llama.cpp's merge order), or a
//!   `tokenizer.json` beside the model; streaming text
//! - [`template`]: the model's chat template, rendered with minijinja
//! - [`sampling`]: greedy, temperature, top-k, top-p, repetition penalty, seed
//! - [`constrain`]: generation under a JSON Schema (llguidance masks the logits)
//! - [`quantize`]: rewriting a GGUF in a faster quantization (Q4_1 -> Q8_0)
//! - [`lora`]: LoRA fine-tuning of llama-shaped models on the CPU, and merging an adapter
//!   into a new GGUF (the trained reasoner, [`REASONER_MODEL`])
//! - [`session`]: [`Session`] (tokens, KV cache reuse, generation) and [`Chat`] (messages)
//! - [`prompt_cache`]: a system prompt's keys and values on disk, for the next process
//! - [`vision`]: Qwen3-VL (image + text) from safetensors, greedy decoding

pub mod constrain;
pub mod gemma3;
pub mod gguf;
pub mod llama;
pub mod lora;
pub mod model;
pub mod numerics;
pub mod prompt_cache;
pub mod q8;
pub mod quantize;
pub mod sampling;
pub mod session;
mod spm;
pub mod template;
pub mod tokenizer;
pub mod vision;

use std::path::{Path, PathBuf};

use candle_core::Device;

pub use model::{CausalLm, GgufModel, SUPPORTED_ARCHITECTURES};
pub use sampling::{PenaltyScope, Sampler, SamplingParams};
pub use session::{Chat, GenerateOptions, Generation, Session, StopReason};
pub use template::{ChatTemplate, Message};
pub use tokenizer::{TextStream, Tokenizer};

use crate::models::ModelStore;
use crate::Result;

/// The model used when none is named: SmolLM2-135M-Instruct from the model store.
pub const DEFAULT_MODEL: &str = "smollm2-135m-instruct";

/// The Q8_0 copy of the default model that set-up writes beside the shipped Q4_1 file
/// (`actfer quantize`); it decodes 1.7x as fast ([`q8`]). [`TextModel::load_spec`] takes
/// it for [`DEFAULT_MODEL`] when present; `DEFAULT_MODEL:q4_1` names the shipped file.
pub const DEFAULT_MODEL_Q8_0: &str = "SmolLM2-135M-Instruct.Q8_0.gguf";

/// The trained reasoner, the agent's default: [`DEFAULT_MODEL`] with the committed LoRA
/// adapter ([`REASONER_ADAPTER`]) merged in by set-up as Q8_0 (`actfer train policy merge`;
/// weights/REASONER.md is its card).
pub const REASONER_MODEL: &str = "actfer-reasoner";

/// The merged reasoner's file in the model store's `models/` folder.
pub const REASONER_FILE: &str = "actfer-reasoner.Q8_0.gguf";

/// The committed adapter, relative to the repository.
pub const REASONER_ADAPTER: &str = "weights/reasoner.safetensors";

/// Where a model name leads: the store's resolution, with [`DEFAULT_MODEL`] going to its Q8_0
/// copy when set-up wrote one, and [`REASONER_MODEL`] to the merged reasoner. Every default
/// file is checked first: the store's against their pinned sha256, set-up's conversions
/// against the hash recorded when they were written ([`crate::models::check_written`]).
pub fn resolve(spec: &str) -> Result<PathBuf> {
    let store = ModelStore::from_env()?;
    if spec == REASONER_MODEL {
        let path = store.home().join("models").join(REASONER_FILE);
        if !path.is_file() {
            return Err(crate::Error::BadModel {
                name: REASONER_MODEL.into(),
                path,
                reason: format!(
                    "missing; tools/setup writes it from {REASONER_ADAPTER} (or pass --adapter none \
                     for the base model)"
                ),
            });
        }
        crate::models::check_written(REASONER_MODEL, &path)?;
        return Ok(path);
    }
    if let Some(base) = spec.strip_suffix(":q4_1") {
        if base == DEFAULT_MODEL {
            return store.require(DEFAULT_MODEL);
        }
    }
    let path = store.resolve(spec)?;
    if spec == DEFAULT_MODEL {
        let fast = path.with_file_name(DEFAULT_MODEL_Q8_0);
        if fast.is_file() {
            crate::models::check_written(DEFAULT_MODEL, &fast)?;
            return Ok(fast);
        }
    }
    Ok(path)
}

/// A loaded model: weights, tokenizer and chat template.
pub struct TextModel {
    pub path: PathBuf,
    pub architecture: String,
    pub lm: Box<dyn CausalLm + Send>,
    pub tokenizer: Tokenizer,
    /// `None` when the file carries no chat template.
    pub template: Option<ChatTemplate>,
}

impl std::fmt::Debug for TextModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextModel")
            .field("path", &self.path)
            .field("architecture", &self.architecture)
            .field("tokenizer", &self.tokenizer)
            .finish_non_exhaustive()
    }
}

impl TextModel {
    /// Loads a model named as [`resolve`] takes it: a file, a default model name, or a
    /// Hugging Face `owner/repo:file.gguf`.
    pub fn load_spec(spec: &str) -> Result<Self> {
        Self::load(&resolve(spec)?)
    }

    /// Loads a GGUF file on the CPU.
    pub fn load(path: &Path) -> Result<Self> {
        let mut file = gguf::GgufFile::open(path)?;
        let architecture = file.architecture()?;
        if !SUPPORTED_ARCHITECTURES.contains(&architecture.as_str()) {
            return Err(crate::Error::Unsupported {
                path: path.to_path_buf(),
                what: format!("architecture {architecture:?}"),
                supported: SUPPORTED_ARCHITECTURES.join(", "),
            });
        }
        let tokenizer = Tokenizer::for_model(&file)?;
        let template = match file.string("tokenizer.chat_template")? {
            None => None,
            Some(source) => {
                let text = |id: Option<u32>| {
                    id.map(|i| String::from_utf8_lossy(&tokenizer.token_bytes(i)).into_owned())
                        .unwrap_or_default()
                };
                Some(ChatTemplate::new(
                    &source,
                    &text(tokenizer.bos()),
                    &text(tokenizer.eos()),
                )?)
            }
        };
        let lm = GgufModel::load(&mut file, &Device::Cpu)?;
        tracing::info!(
            path = %path.display(),
            architecture,
            vocab = tokenizer.vocab_size(),
            "language model loaded"
        );
        Ok(TextModel {
            path: path.to_path_buf(),
            architecture,
            lm: Box::new(lm),
            tokenizer,
            template,
        })
    }
}
