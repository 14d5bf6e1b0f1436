//! `actfer explain`: micro-expression explanations for a clip or a dataset, one JSON line per
//! clip, resumable.

use std::path::PathBuf;

use actfer::agent::explain::{
    append, clips_of, done_ids, explain_clip, explain_system_for, Explainer,
};
use actfer::agent::sampling_for;
use actfer::agent::words::WordsTally;
use actfer::evidence::AppearanceModels;
use actfer::llm::TextModel;
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
    #[command(flatten)]
    pub model: super::model_choice::ModelChoice,
    /// Explain at most this many clips in this run.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Tokens per explanation.
    #[arg(long, default_value_t = 128)]
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
    let spec = a.model.spec();
    let mut explainer = Explainer::new(
        TextModel::load_spec(spec)?,
        explain_system_for(spec),
        sampling_for(spec).repeat_penalty,
    )?;
    explainer.max_tokens = a.max_tokens;
    let method = super::flow::method(&a.motion.method)?;
    // each clip's own frame rate replaces this one (explain_clip)
    let options = a.motion.options_at(actfer::media::DEFAULT_FOLDER_FPS)?;
    let bar = actfer::progress::bar(todo.len() as u64, "clips");
    let mut failed = 0;
    // whether a failure was ours (exit 1) rather than the clips' (exit 2)
    let mut internal = false;
    let mut words = WordsTally::default();
    for clip in todo {
        match explain_clip(clip, &models, method.as_ref(), &options, &mut explainer) {
            Ok(result) => {
                result.intervals.iter().for_each(|i| words.add(&i.words));
                append(&a.out, &result)?
            }
            // one bad clip (unreadable, no face, one frame) does not stop the dataset
            Err(e) => {
                tracing::warn!("{}: {e}", clip.path.display());
                failed += 1;
                internal |= e.exit_code() == 1;
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    // what the words checks found in this run's explanations (each line's `words`)
    eprintln!(
        "{} explanation(s); {} with a words problem: {} naming another emotion, {} naming \
         something outside the catalogue, {} citing an AU or frame not in the evidence, {} with \
         a non-word",
        words.texts,
        words.failed,
        words.other_emotion,
        words.outside_catalogue,
        words.unsupported,
        words.non_words
    );
    println!("{}", a.out.display());
    if failed > 0 {
        let what = format!(
            "{failed} clip(s) could not be explained (warnings above); the others are in {}",
            a.out.display()
        );
        return Err(if internal {
            Error::Internal(what)
        } else {
            Error::bad_input(&a.input, what)
        }
        .into());
    }
    Ok(())
}
