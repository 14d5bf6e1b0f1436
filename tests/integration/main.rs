//! The integration tests, one module per area, built as one test binary: each binary links the
//! whole library, so one binary instead of fifteen saves most of the test command's link time.
//! Run one area with `cargo test --release --test integration synth::`.
//!
//! The LLM tests (tests/llm_tests.rs) stay a binary of their own: they pin candle to one
//! thread for the whole process.

mod common;
/// The tiny random chat models of the LoRA tests (policy, grpo).
#[path = "../support/tiny_gguf.rs"]
mod tiny_gguf;

mod agent;
mod au;
mod blendshape;
mod detect;
mod eval;
mod expression;
mod facs;
mod flow;
mod grpo;
mod media;
mod meflownet;
mod mesh;
mod models;
mod motion;
mod mtcnn;
mod parsers;
mod policy;
mod python_reward;
mod reasoner;
mod reliability;
mod report;
mod reward;
mod synth;
mod vision;
mod vision_agent;
