//! LoRA fine-tuning of the llama-shaped GGUF models (llama, qwen2, qwen3) on the CPU: the
//! supervised step of "Training the reasoner" (docs: DESIGN.md) and the policy update of its
//! reinforcement step (the rollouts and rewards: [`crate::agent::grpo`]).
//!
//! ```no_run
//! use actfer::llm::lora::{merge, train_sft, Adapter, SftOptions};
//! use candle_core::quantized::GgmlDType;
//! use std::path::Path;
//! let base = actfer::llm::resolve(actfer::llm::DEFAULT_MODEL)?;
//! let report = train_sft(&SftOptions::default(), &base, Path::new("sft.jsonl"), Path::new("run"))?;
//! let adapter = Adapter::load(&report.adapter)?;
//! merge(&base, &adapter, Path::new("tuned.gguf"), GgmlDType::Q8_0)?;
//! # Ok::<(), actfer::Error>(())
//! ```
//!
//! - [`model`]: the training forward ([`LoraModel`]): every weight dequantized to f32 and
//!   frozen, LoRA pairs on the chosen projections as candle `Var`s, logits of every position
//! - [`ops`]: the few custom ops the forward needs for a lean backward (a frozen matrix, the
//!   causal mask with the row shift of a softmax)
//! - [`adapter`]: [`LoraConfig`], the adapter file (safetensors, GGUF tensor names) and
//!   [`merge`] into a new GGUF that the inference path runs unchanged
//! - [`data`]: conversations (JSONL) rendered with the model's chat template and tokenized, the
//!   assistant turns marked as the trained tokens
//! - [`optim`]: AdamW with its moments in the open (checkpointed), the learning-rate schedule
//! - [`sft`]: [`train_sft`]: the loop, gradient accumulation, validation, resume, the CSV log
//! - [`grpo`]: the clipped, KL-regularised policy-gradient update on scored rollouts
//! - [`checkpoint`]: what a resumed run goes on from (LoRA tensors, AdamW's moments, the step)
//! - [`log`]: the per-step CSV logs

pub mod adapter;
pub mod checkpoint;
pub mod data;
pub mod grpo;
pub mod log;
pub mod model;
pub mod ops;
pub mod optim;
pub mod sft;

pub use adapter::{merge, Adapter, LoraConfig, MergeReport, Target};
pub use data::{Conversation, Example, Overflow, Split};
pub use model::LoraModel;
pub use sft::{train_sft, SftOptions, SftReport};

#[cfg(test)]
#[path = "../../../tests/support/tiny_gguf.rs"]
pub(crate) mod tiny_gguf;
