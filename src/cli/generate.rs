//! `actfer generate`: one prompt in, the model's continuation streamed to stdout.

use std::io::Write;

use actfer::llm::{GenerateOptions, Message, SamplingParams, Session, TextModel, DEFAULT_MODEL};
use clap::Args;

use super::print_json;

/// Sampling flags shared by `generate` and `chat`.
#[derive(Debug, Args)]
pub struct SamplingArgs {
    /// Model: a GGUF file, a default model name, or a Hugging Face `owner/repo:file.gguf`.
    #[arg(long, default_value = DEFAULT_MODEL)]
    pub model: String,
    /// Most tokens to generate.
    #[arg(long, default_value_t = 256)]
    pub max_tokens: usize,
    /// 0 is greedy (always the most likely token).
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f64,
    /// Keep the k most likely tokens when sampling (0: all).
    #[arg(long, default_value_t = SamplingParams::default().top_k)]
    pub top_k: usize,
    /// Keep the most likely tokens up to this probability mass when sampling.
    #[arg(long, default_value_t = SamplingParams::default().top_p)]
    pub top_p: f64,
    /// Penalty on recently generated tokens (1: off).
    #[arg(long, default_value_t = 1.0)]
    pub repeat_penalty: f32,
    /// Random seed for sampling.
    #[arg(long, default_value_t = SamplingParams::default().seed)]
    pub seed: u64,
}

impl SamplingArgs {
    pub fn options(&self) -> GenerateOptions {
        GenerateOptions {
            max_tokens: self.max_tokens,
            sampling: SamplingParams {
                temperature: self.temperature,
                top_k: self.top_k,
                top_p: self.top_p,
                repeat_penalty: self.repeat_penalty,
                seed: self.seed,
                ..SamplingParams::default()
            },
        }
    }
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// The prompt: a user message in the model's chat template (or raw text with --raw).
    #[arg(long)]
    pub prompt: String,
    /// A system message before the prompt.
    #[arg(long, conflicts_with = "raw")]
    pub system: Option<String>,
    /// Feed the prompt as it is, without the chat template.
    #[arg(long)]
    pub raw: bool,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// Print one JSON object (text, tokens, stop reason, speeds) instead of streaming.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: GenerateArgs) -> anyhow::Result<()> {
    let model = TextModel::load_spec(&args.sampling.model)?;
    let text = match (&model.template, args.raw) {
        (Some(template), false) => {
            let mut messages = Vec::new();
            if let Some(system) = &args.system {
                messages.push(Message::system(system.clone()));
            }
            messages.push(Message::user(args.prompt.clone()));
            template.render(&messages, true)?
        }
        _ => args.prompt.clone(),
    };
    let mut session = Session::new(model);
    session.append_text(&text)?;
    let opts = args.sampling.options();
    let stdout = std::io::stdout();
    let json = args.json;
    let generation = session.generate(&opts, &mut |piece| {
        if !json {
            let mut out = stdout.lock();
            // a closed stdout ends the generation
            return out
                .write_all(piece.as_bytes())
                .and_then(|_| out.flush())
                .is_ok();
        }
        true
    })?;
    tracing::info!(
        prompt_tokens = generation.prompt_tokens,
        tokens = generation.tokens.len(),
        prefill_tok_s = format!("{:.1}", generation.prefill_tokens_per_second()),
        decode_tok_s = format!("{:.1}", generation.decode_tokens_per_second()),
        stop = ?generation.stop,
        "generation done"
    );
    if json {
        print_json(&serde_json::json!({
            "text": generation.text,
            "tokens": generation.tokens,
            "stop": generation.stop,
            "prompt_tokens": generation.prompt_tokens,
            "prefill_tokens_per_second": generation.prefill_tokens_per_second(),
            "decode_tokens_per_second": generation.decode_tokens_per_second(),
        }))
    } else {
        println!();
        Ok(())
    }
}
