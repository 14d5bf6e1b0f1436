//! `actfer generate`: one prompt in, the model's continuation streamed to stdout.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use actfer::llm::constrain::{validate, ConstraintVocab, JsonConstraint};
use actfer::llm::vision::{is_vision_spec, VisionModel};
use actfer::llm::{
    GenerateOptions, Message, SamplingParams, Session, StopReason, TextModel, DEFAULT_MODEL,
};
use actfer::media::read_image;
use actfer::Error;
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
            ..Default::default()
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
    /// Write one JSON value that this JSON Schema file accepts (constrained decoding); the
    /// generation ends when the value is complete.
    #[arg(long, value_name = "FILE")]
    pub json_schema: Option<PathBuf>,
    /// An image the prompt is about (greedy decoding; needs a Qwen3-VL model for --model: a
    /// folder with config.json and *.safetensors, or a Hugging Face repo id).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["json_schema", "raw", "system"])]
    pub image: Option<PathBuf>,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// Print one JSON object (text, tokens, stop reason, speeds) instead of streaming.
    #[arg(long)]
    pub json: bool,
}

/// The schema of `--json-schema`, the model's token table for constraints, and a constraint
/// for the schema (checked to compile).
pub(super) fn constraint(
    path: &PathBuf,
    model: &TextModel,
) -> actfer::Result<(serde_json::Value, Arc<ConstraintVocab>, JsonConstraint)> {
    let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::NotFound { path: path.clone() },
        _ => Error::io(format!("reading {}", path.display()), e),
    })?;
    let schema: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::bad_input(path, format!("not JSON: {e}")))?;
    let start = std::time::Instant::now();
    let vocab = Arc::new(ConstraintVocab::new(&model.tokenizer)?);
    let constraint = JsonConstraint::new(&vocab, &schema).map_err(|e| match e {
        Error::Limit { reason, .. } => Error::bad_input(
            path,
            format!("cannot be used for constrained decoding: {reason}"),
        ),
        e => e,
    })?;
    tracing::info!(
        seconds = format!("{:.3}", start.elapsed().as_secs_f64()),
        "token table and schema compiled"
    );
    Ok((schema, vocab, constraint))
}

pub fn run(args: GenerateArgs) -> anyhow::Result<()> {
    if let Some(image) = &args.image {
        return run_with_image(&args, image);
    }
    let model = TextModel::load_spec(&args.sampling.model)?;
    let mut constrained = match &args.json_schema {
        Some(path) => Some(constraint(path, &model)?),
        None => None,
    };
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
    let mut on_text = |piece: &str| {
        if !json {
            let mut out = stdout.lock();
            // a closed stdout ends the generation
            return out
                .write_all(piece.as_bytes())
                .and_then(|_| out.flush())
                .is_ok();
        }
        true
    };
    let generation = match &mut constrained {
        Some((_, _, c)) => session.generate_constrained(&opts, c, &mut on_text)?,
        None => session.generate(&opts, &mut on_text)?,
    };
    let value = match &constrained {
        Some((schema, _, _)) => Some(checked_value(&generation.text, generation.stop, schema)?),
        None => None,
    };
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
            "value": value,
            "stats": {
                "masks": generation.masks,
                "mask_ms_per_token": generation.mask_ms_per_token(),
                "decode_ms_per_token_without_mask": generation.unmasked_decode_ms_per_token(),
            },
        }))
    } else {
        println!();
        Ok(())
    }
}

/// `generate --image`: the image and the prompt as one user turn to a Qwen3-VL model.
fn run_with_image(args: &GenerateArgs, image: &Path) -> anyhow::Result<()> {
    let spec = &args.sampling.model;
    if args.sampling.temperature != 0.0 {
        return Err(Error::bad_input(
            image,
            "--image decodes greedily only; drop --temperature (or set it to 0)",
        )
        .into());
    }
    if !is_vision_spec(spec) {
        return Err(Error::bad_input(
            Path::new(spec),
            "is not a Qwen3-VL model; --image needs --model set to a folder with config.json \
             (model_type qwen3_vl) and *.safetensors, or a Hugging Face repo id such as \
             Qwen/Qwen3-VL-2B-Instruct",
        )
        .into());
    }
    let picture = read_image(image)?;
    let model = std::sync::Arc::new(VisionModel::load_spec(spec)?);
    let start = std::time::Instant::now();
    let generation = model.generate(&picture, &args.prompt, args.sampling.max_tokens)?;
    let seconds = start.elapsed().as_secs_f64();
    let image_tokens = generation
        .prompt_tokens
        .iter()
        .filter(|&&t| t == model.config.image_token_id)
        .count();
    let text = generation.text.unwrap_or_default();
    if args.json {
        print_json(&serde_json::json!({
            "text": text,
            "tokens": generation.tokens,
            "prompt_tokens": generation.prompt_tokens.len(),
            "image_tokens": image_tokens,
            "image": image,
            "seconds": seconds,
        }))
    } else {
        println!("{text}");
        Ok(())
    }
}

/// The constrained generation's value, checked against the schema. A value cut off by
/// `--max-tokens` is an error that says so.
pub(super) fn checked_value(
    text: &str,
    stop: StopReason,
    schema: &serde_json::Value,
) -> actfer::Result<serde_json::Value> {
    let limit = |reason: String| Error::Limit {
        what: "constrained generation".into(),
        reason,
    };
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        limit(match stop {
            StopReason::MaxTokens => {
                format!("the JSON value was not complete at --max-tokens ({e}); raise it")
            }
            _ => format!("the text is not JSON ({e}): {text}"),
        })
    })?;
    validate(&value, schema).map_err(|e| limit(format!("the value breaks the schema: {e}")))?;
    Ok(value)
}
