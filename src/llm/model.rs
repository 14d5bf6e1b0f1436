//! Quantized text models from GGUF files, dispatched on `general.architecture` to
//! [`super::llama`] (llama, qwen2, qwen3) or to [`super::gemma3`].
//!
//! Every family keeps its own KV cache: `forward(tokens, pos)` appends the keys and values of
//! `tokens` at positions `pos..pos + tokens.len()` and returns the logits of the last one;
//! `pos == 0` starts a new sequence.

use candle_core::Device;

use super::gemma3::Gemma3;
use super::gguf::GgufFile;
use super::llama::{Arch, Llama};
use crate::{Error, Result};

/// The architectures (`general.architecture`) this build runs.
pub const SUPPORTED_ARCHITECTURES: &[&str] = &["llama", "qwen2", "qwen3", "gemma3"];

/// A causal language model the session drives: the one interface every backend implements
/// (the GGUF families here, a multimodal model later).
pub trait CausalLm {
    /// Runs `tokens` at positions `pos..pos + tokens.len()` and returns the logits of the last
    /// one, `[vocab]` f32. `pos == 0` drops whatever the cache held.
    fn forward(&mut self, tokens: &[u32], pos: usize) -> Result<Vec<f32>>;
    /// Forgets the KV cache.
    fn clear(&mut self);
    /// Keeps the first `len` cached positions and forgets the rest, so a conversation that
    /// shares a prefix with the cached one goes on from there; `false` when the backend cannot
    /// (the caller then starts over).
    fn truncate(&mut self, _len: usize) -> bool {
        false
    }
    /// The KV cache as one array ([`super::prompt_cache`]); `None` when the backend cannot
    /// give it.
    fn export_kv(&self) -> Option<Vec<f32>> {
        None
    }
    /// Replaces the KV cache with `kv`, an [`export_kv`](Self::export_kv) of `len` positions;
    /// `false` (the cache cleared) when it does not fit this model.
    fn import_kv(&mut self, _kv: &[f32], _len: usize) -> bool {
        false
    }
    /// The longest sequence the model handles.
    fn context_length(&self) -> usize;
}

enum Family {
    Llama(Box<Llama>),
    Gemma3(Box<Gemma3>),
}

/// A quantized GGUF text model.
pub struct GgufModel {
    family: Family,
    architecture: String,
    context_length: usize,
}

impl std::fmt::Debug for GgufModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufModel")
            .field("architecture", &self.architecture)
            .field("context_length", &self.context_length)
            .finish()
    }
}

impl GgufModel {
    /// Loads the weights of an opened GGUF file; an architecture outside
    /// [`SUPPORTED_ARCHITECTURES`] is [`Error::Unsupported`].
    pub fn load(file: &mut GgufFile, device: &Device) -> Result<Self> {
        let architecture = file.architecture()?;
        let ctx_key = format!("{architecture}.context_length");
        let declared = file.integer(&ctx_key)?.unwrap_or(0) as usize;
        let family = if architecture == "gemma3" {
            Family::Gemma3(Box::new(Gemma3::load(file, device)?))
        } else if let Some(arch) = Arch::from_name(&architecture) {
            Family::Llama(Box::new(Llama::load(file, arch)?))
        } else {
            return Err(Error::Unsupported {
                path: file.path.clone(),
                what: format!("architecture {architecture:?}"),
                supported: SUPPORTED_ARCHITECTURES.join(", "),
            });
        };
        Ok(GgufModel {
            family,
            architecture,
            context_length: if declared == 0 { 4096 } else { declared },
        })
    }

    pub fn architecture(&self) -> &str {
        &self.architecture
    }
}

impl CausalLm for GgufModel {
    fn forward(&mut self, tokens: &[u32], pos: usize) -> Result<Vec<f32>> {
        if tokens.is_empty() {
            return Err(Error::Internal("forward on no tokens".into()));
        }
        if pos + tokens.len() > self.context_length {
            return Err(Error::Limit {
                what: "context".into(),
                reason: format!(
                    "{} tokens exceed the model's context of {}; start a new conversation or shorten the prompt",
                    pos + tokens.len(),
                    self.context_length
                ),
            });
        }
        match &mut self.family {
            Family::Llama(m) => m.forward(tokens, pos),
            Family::Gemma3(m) => Ok(m.forward(tokens, pos)?.to_vec1()?),
        }
    }

    fn clear(&mut self) {
        match &mut self.family {
            Family::Llama(m) => m.clear(),
            Family::Gemma3(m) => m.clear(),
        }
    }

    fn truncate(&mut self, len: usize) -> bool {
        match &mut self.family {
            Family::Llama(m) => m.truncate(len),
            Family::Gemma3(m) => m.truncate(len),
        }
    }

    fn export_kv(&self) -> Option<Vec<f32>> {
        match &self.family {
            Family::Llama(m) => Some(m.export_kv()),
            Family::Gemma3(_) => None,
        }
    }

    fn import_kv(&mut self, kv: &[f32], len: usize) -> bool {
        match &mut self.family {
            Family::Llama(m) => m.import_kv(kv, len),
            Family::Gemma3(_) => false,
        }
    }

    fn context_length(&self) -> usize {
        self.context_length
    }
}
