//! The language model a command runs: the trained reasoner by default, the base model with
//! `--adapter none`, or any model named with `--model`.

use actfer::llm::{DEFAULT_MODEL, REASONER_MODEL};
use clap::Args;

#[derive(Debug, Args)]
pub struct ModelChoice {
    /// Model: the trained reasoner (`actfer-reasoner`, the default model with the committed
    /// adapter, merged by set-up), a GGUF file, a default model name, or a Hugging Face
    /// `owner/repo:file.gguf`; `actfer ask` also takes a Qwen3-VL model (a folder of its
    /// Hugging Face files, or a repo id such as `Qwen/Qwen3-VL-2B-Instruct`), which also sees
    /// the crops and flow maps as images. Models other than the reasoner get the full prompt
    /// (tools, regions, examples).
    #[arg(long, default_value = REASONER_MODEL)]
    pub model: String,
    /// `none`: the base model (smollm2-135m-instruct) instead of the trained reasoner, with
    /// the full prompt.
    #[arg(long, default_value = "reasoner", value_parser = ["reasoner", "none"])]
    pub adapter: String,
}

impl ModelChoice {
    /// The model spec to load.
    pub fn spec(&self) -> &str {
        if self.adapter == "none" && self.model == REASONER_MODEL {
            DEFAULT_MODEL
        } else {
            &self.model
        }
    }
}
