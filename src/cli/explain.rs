//! `actfer explain`: micro-expression explanations for a clip or a dataset, one JSON line per
//! clip, resumable.

use std::path::PathBuf;

use actfer::agent::explain::{append, clips_of, done_ids, explain_clip, Explainer};
use actfer::evidence::AppearanceModels;
use actfer::llm::{TextModel, DEFAULT_MODEL};
use actfer::models::ModelStore;
use actfer::Error;
use candle_core::Device;
use clap::Args;

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// A clip (video or frame folder), a SynthME folder, or a folder of clips.
    pub input: PathBuf,
    /// Results, one JSON line per clip; clips already in it are not done again.
    #[arg(long, default_value = "results.jsonl")]
    pub out: PathBuf,
    /// Model: a GGUF file, a default model name, or a Hugging Face `owner/repo:file.gguf`.
    #[arg(long, default_value = DEFAULT_MODEL)]
    pub model: String,
    /// Explain at most this many clips in this run.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Tokens per explanation.
    #[arg(long, default_value_t = 96)]
    pub max_tokens: usize,
    #[command(flatten)]
    pub motion: super::spot::MotionArgs,
}

pub fn run(a: ExplainArgs) -> anyhow::Result<()> {
    if a.max_tokens == 0 {
        return Err(Error::bad_input(&a.input, "--max-tokens must be at least 1").into());
    }
    let clips = clips_of(&a.input)?;
    let done = done_ids(&a.out)?;
    let already = clips.iter().filter(|c| done.contains(&c.id)).count();
    let todo: Vec<_> = clips
        .iter()
        .filter(|c| !done.contains(&c.id))
        .take(a.limit.unwrap_or(usize::MAX))
        .collect();
    eprintln!(
        "{} clip(s) in {}: {} already in {}, {} to explain now",
        clips.len(),
        a.input.display(),
        already,
        a.out.display(),
        todo.len()
    );
    if todo.is_empty() {
        return Ok(());
    }
    let store = ModelStore::from_env()?;
    let models = AppearanceModels::load(&store, &Device::Cpu)?;
    let mut explainer = Explainer::new(TextModel::load_spec(&a.model)?)?;
    explainer.max_tokens = a.max_tokens;
    let method = super::flow::method(&a.motion.method)?;
    // each clip's own frame rate replaces this one (explain_clip)
    let options = a.motion.options_at(actfer::media::DEFAULT_FOLDER_FPS)?;
    let bar = actfer::progress::bar(todo.len() as u64, "clips");
    let mut failed = 0;
    for clip in todo {
        match explain_clip(clip, &models, method.as_ref(), &options, &mut explainer) {
            Ok(result) => append(&a.out, &result)?,
            // one bad clip (unreadable, no face, one frame) does not stop the dataset
            Err(e) => {
                tracing::warn!("{}: {e}", clip.path.display());
                failed += 1;
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    println!("{}", a.out.display());
    if failed > 0 {
        return Err(Error::Internal(format!(
            "{failed} clip(s) could not be explained (warnings above); the others are in {}",
            a.out.display()
        ))
        .into());
    }
    Ok(())
}
