//! Quantized text models from GGUF files, dispatched on `general.architecture` to
//! candle-transformers' quantized families (llama, qwen2, qwen3) or to [`super::gemma3`]
//! (candle's `quantized_gemma3` runs a SiLU feed-forward where Gemma has GELU).
//!
//! Every family keeps its own KV cache: `forward(tokens, pos)` appends the keys and values of
//! `tokens` at positions `pos..pos + tokens.len()` and returns the logits of the last one;
//! `pos == 0` starts a new sequence.

use candle_core::{DType, Device, Tensor};
use candle_transformers::models::{quantized_llama, quantized_qwen2, quantized_qwen3};

use super::gemma3::Gemma3;
use super::gguf::GgufFile;
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
    /// The longest sequence the model handles.
    fn context_length(&self) -> usize;
}

enum Family {
    Llama(quantized_llama::ModelWeights),
    Qwen2(quantized_qwen2::ModelWeights),
    Qwen3(quantized_qwen3::ModelWeights),
    Gemma3(Box<Gemma3>),
}

/// A quantized GGUF text model.
pub struct GgufModel {
    family: Family,
    architecture: String,
    context_length: usize,
    device: Device,
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
        if architecture == "gemma3" {
            let family = Family::Gemma3(Box::new(Gemma3::load(file, device)?));
            return Ok(GgufModel {
                family,
                architecture,
                context_length: if declared == 0 { 4096 } else { declared },
                device: device.clone(),
            });
        }
        let path = file.path.clone();
        let empty = empty_content(&file.content);
        let content = std::mem::replace(&mut file.content, empty);
        let reader = &mut file.reader;
        let wrap = |e: candle_core::Error| {
            Error::bad_input(
                &path,
                format!("cannot load the {architecture} weights ({e}); the file may be damaged or from an unsupported variant"),
            )
        };
        let (family, cap) = match architecture.as_str() {
            "llama" => (
                Family::Llama(
                    quantized_llama::ModelWeights::from_gguf(content, reader, device)
                        .map_err(wrap)?,
                ),
                quantized_llama::MAX_SEQ_LEN,
            ),
            "qwen2" => (
                Family::Qwen2(
                    quantized_qwen2::ModelWeights::from_gguf(content, reader, device)
                        .map_err(wrap)?,
                ),
                usize::MAX,
            ),
            "qwen3" => (
                Family::Qwen3(
                    quantized_qwen3::ModelWeights::from_gguf(
                        with_f32_rotary_tables(content),
                        reader,
                        device,
                    )
                    .map_err(wrap)?,
                ),
                usize::MAX,
            ),
            other => {
                return Err(Error::Unsupported {
                    path,
                    what: format!("architecture {other:?}"),
                    supported: SUPPORTED_ARCHITECTURES.join(", "),
                })
            }
        };
        let context_length = match declared {
            0 => cap.min(4096),
            n => n.min(cap),
        };
        Ok(GgufModel {
            family,
            architecture,
            context_length,
            device: device.clone(),
        })
    }

    pub fn architecture(&self) -> &str {
        &self.architecture
    }
}

/// candle-transformers' `quantized_qwen3` builds its rotary tables (positions times
/// frequencies, their cosines and sines) in the dtype that `general.dtype` names, f16 when the
/// key is absent, as it is from every GGUF file here (llama.cpp's converter records the weight
/// type as `general.file_type`). The attention itself runs in f32 on the CPU, so f16 only rounds the
/// tables: on a tiny random qwen3 with f32 weights this put the top-5 logits up to 1.9e-3 away
/// from llama.cpp's (which computes the angles in f32), growing with the position; with f32
/// tables they are within 4e-6, as qwen2's and llama's are (tests/llm_tests.rs,
/// `qwen2_and_qwen3_match_llama_cpp`). `general.dtype = 0` asks for f32 tables; on the CPU
/// nothing else reads the key.
fn with_f32_rotary_tables(
    mut content: candle_core::quantized::gguf_file::Content,
) -> candle_core::quantized::gguf_file::Content {
    content.metadata.insert(
        "general.dtype".to_string(),
        candle_core::quantized::gguf_file::Value::U32(0),
    );
    content
}

/// `Content` is not `Clone`; loading consumes it, so the file keeps an empty table with the
/// same magic and data offset.
fn empty_content(
    c: &candle_core::quantized::gguf_file::Content,
) -> candle_core::quantized::gguf_file::Content {
    candle_core::quantized::gguf_file::Content {
        magic: c.magic,
        metadata: Default::default(),
        tensor_infos: Default::default(),
        tensor_data_offset: c.tensor_data_offset,
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
        if pos == 0 {
            self.clear();
        }
        let input = Tensor::new(tokens, &self.device)?.unsqueeze(0)?; // [1, n]
        let logits = match &mut self.family {
            Family::Llama(m) => m.forward(&input, pos)?,
            Family::Qwen2(m) => m.forward(&input, pos)?,
            Family::Qwen3(m) => m.forward(&input, pos)?,
            Family::Gemma3(m) => return Ok(m.forward(tokens, pos)?.to_vec1()?),
        };
        // [1, vocab]
        Ok(logits.squeeze(0)?.to_dtype(DType::F32)?.to_vec1()?)
    }

    fn clear(&mut self) {
        match &mut self.family {
            Family::Llama(m) => m.clear_kv_cache(),
            Family::Qwen2(m) => m.clear_kv_cache(),
            Family::Qwen3(m) => m.clear_kv_cache(),
            Family::Gemma3(m) => m.clear(),
        }
    }

    fn context_length(&self) -> usize {
        self.context_length
    }
}
