//! Write micro-expression explanations for a folder of clips (videos, frame folders, or a
//! SynthME folder) through the library, one JSON line per clip, skipping the clips a previous
//! run already wrote, as `actfer explain` does.
//!
//!     cargo run --release --example explain_folder -- DIR results.jsonl

use std::path::PathBuf;

use actfer::agent::explain::{
    append, clips_of, done_ids, explain_clip, explain_system_for, Explainer,
};
use actfer::evidence::AppearanceModels;
use actfer::llm::{TextModel, REASONER_MODEL};
use actfer::models::ModelStore;
use actfer::motion::clip::ClipOptions;
use candle_core::Device;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(args.len() == 2, "usage: explain_folder DIR OUT.jsonl");
    let (dir, out) = (PathBuf::from(&args[0]), PathBuf::from(&args[1]));

    let store = ModelStore::from_env()?;
    let models = AppearanceModels::load(&store, &Device::Cpu)?;
    let mut explainer = Explainer::new(
        TextModel::load_spec(REASONER_MODEL)?,
        explain_system_for(REASONER_MODEL),
        actfer::agent::sampling_for(REASONER_MODEL).repeat_penalty,
    )?;
    let method = actfer::flow::method::by_name("dis")?;

    let done = done_ids(&out)?;
    for clip in clips_of(&dir)?.iter().filter(|c| !done.contains(&c.id)) {
        // a clip that cannot be explained (no face, one frame) is reported and skipped
        match explain_clip(
            clip,
            &models,
            method.as_ref(),
            &ClipOptions::default(),
            &mut explainer,
        ) {
            Ok(result) => {
                for iv in &result.intervals {
                    println!(
                        "{} {}-{}: {}",
                        result.id, iv.onset, iv.offset, iv.explanation
                    );
                }
                append(&out, &result)?;
            }
            Err(e) => eprintln!("{}: {e}", clip.path.display()),
        }
    }
    println!("results: {}", out.display());
    Ok(())
}
