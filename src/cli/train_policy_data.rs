//! `actfer train policy data`: the reasoner's training conversations, from SynthME train and
//! val folders through the real tools with the teacher policy.

use std::io::Write as _;
use std::path::PathBuf;

use actfer::agent::trajectories::{trajectories, DataOptions, DataReport};
use actfer::evidence::AppearanceModels;
use actfer::models::ModelStore;
use actfer::synth::labels::Labels;
use actfer::Error;
use candle_core::Device;
use clap::Args;

#[derive(Debug, Args)]
pub struct PolicyDataArgs {
    /// SynthME folders of the train or val split (`actfer synth --split train|val`); a
    /// test-split folder is refused. Repeat for several.
    #[arg(long, required = true)]
    pub data: Vec<PathBuf>,
    /// Where the conversations go, one JSON object a line (overwritten).
    #[arg(long)]
    pub out: PathBuf,
    /// Seed of the question and phrasing choices; the k-th --data folder (from 0) uses
    /// SEED + k.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Clips only: no image question on each clip's apex frame.
    #[arg(long)]
    pub no_images: bool,
    /// Flow method of the motion tools.
    #[arg(long, default_value = "dis")]
    pub method: String,
    /// At most N clips of each folder.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: PolicyDataArgs) -> anyhow::Result<()> {
    let store = ModelStore::from_env()?;
    let models = AppearanceModels::load(&store, &Device::Cpu)?;
    let mut options = DataOptions {
        seed: a.seed,
        images: !a.no_images,
        method: a.method.clone(),
        limit: a.limit,
        ..Default::default()
    };
    // written to a temporary name, renamed at the end: a cut run leaves no half file
    let tmp = a.out.with_extension("jsonl.part");
    let io = |e| Error::io(tmp.display().to_string(), e);
    let mut file = std::io::BufWriter::new(std::fs::File::create(&tmp).map_err(io)?);
    let mut total = DataReport::default();
    for (k, dir) in a.data.iter().enumerate() {
        options.seed = a.seed + k as u64;
        let labels = Labels::read(dir)?;
        let bar = actfer::progress::bar(labels.clips.len() as u64, "clips");
        let report = trajectories(
            dir,
            &labels,
            &models,
            &options,
            |c| {
                let line = serde_json::to_string(c)
                    .map_err(|e| Error::Internal(format!("conversation to JSON: {e}")))?;
                writeln!(file, "{line}").map_err(io)
            },
            |n, _| bar.set_position(n as u64),
        )?;
        bar.finish_and_clear();
        total.merge(&report);
    }
    file.flush().map_err(io)?;
    drop(file);
    std::fs::rename(&tmp, &a.out).map_err(|e| Error::io(a.out.display().to_string(), e))?;
    if a.json {
        super::print_json(&total)?;
    } else {
        eprintln!(
            "{} conversations of {} runs in {} (dropped: {} where the evidence did not allow \
             the gold emotion, {} failing the verifier, {} with a thought failing the words \
             checks, {} unanswered, {} with a refused step); {} explanations ({} dropped: the motion's emotion was \
             not the gold one, or nothing was spotted)",
            total.kept,
            total.runs,
            a.out.display(),
            total.other_emotion,
            total.verifier_failed,
            total.thought_words,
            total.unanswered,
            total.invalid_step,
            total.explanations,
            total.explanations_dropped
        );
    }
    Ok(())
}
