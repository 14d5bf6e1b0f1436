//! actfer: agentic facial-expression reasoning.
//!
//! The library holds every capability; the `actfer` binary and the agent's tools are thin
//! layers over it. Modules follow the data flow: [`media`] decodes inputs, [`models`] finds
//! the weights, [`face`] finds and aligns faces, [`facs`] holds the AU catalogue and the
//! emotion labels, [`reward`] scores UC-GRPO rollouts, [`flow`] draws flow fields for people,
//! [`eval`] holds the evaluation protocols (spotting, recognition, AUs, flow), [`synth`]
//! generates labelled synthetic expressions (SynthME) with ground-truth flow, [`llm`] hosts
//! the language model (GGUF in candle: tokenizer, chat template, sampling, KV-cached sessions),
//! [`motion`] turns a clip's flow into region statistics, AU evidence and spotted intervals,
//! [`agent`] runs the language model's tool loop and writes its trace, [`report`] renders a
//! trace as one self-contained HTML page.

pub mod agent;
pub mod error;
pub mod eval;
pub mod evidence;
pub mod face;
pub mod facs;
pub mod flow;
pub mod llm;
pub mod media;
pub mod models;
pub mod motion;
pub mod progress;
pub mod report;
pub mod reward;
pub mod synth;
#[cfg(test)]
pub(crate) mod testing;

pub use error::{Error, Result};
