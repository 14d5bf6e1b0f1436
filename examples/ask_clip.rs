//! Ask the agent one question about a clip (or an image) through the library, the way
//! `actfer ask` does, and print the answer with the steps each AU cites.
//!
//!     cargo run --release --example ask_clip -- CLIP "What does this face express?" [TRACE_DIR]
//!
//! The trace (trace.json with crops, flow maps and charts) goes to TRACE_DIR, default
//! `ask_clip.trace`; `actfer report TRACE_DIR` turns it into a page.

use std::path::PathBuf;

use actfer::agent::tools::ClipMotion;
use actfer::agent::trace::InputInfo;
use actfer::agent::{run, sampling_for, system_prompt_for, Limits, LlmPolicy, Toolbox};
use actfer::evidence::AppearanceModels;
use actfer::llm::{TextModel, REASONER_MODEL};
use actfer::media::{Media, MediaKind, OpenOptions};
use actfer::models::ModelStore;
use actfer::motion::clip::ClipOptions;
use candle_core::Device;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(
        (2..=3).contains(&args.len()),
        "usage: ask_clip CLIP QUESTION [TRACE_DIR]"
    );
    let path = PathBuf::from(&args[0]);
    let trace_dir = PathBuf::from(args.get(2).map_or("ask_clip.trace", |s| s.as_str()));

    // The face models (detector, mesh, blendshapes, classifier) and the input.
    let store = ModelStore::from_env()?;
    let models = AppearanceModels::load(&store, &Device::Cpu)?;
    let media = Media::open(&path, &OpenOptions::default())?;
    let info = media.info().clone();
    let first = media
        .frames()?
        .next()
        .expect("Media::open refuses empty inputs")?;

    // The tools read the first frame's appearance; on a clip, its motion too.
    let mut toolbox = Toolbox::new(&models, first.image, Some(trace_dir.clone()));
    if info.kind != MediaKind::Image && info.frames >= 2 {
        let mut options = ClipOptions::default();
        options.spotting.fps = info.fps.unwrap_or(actfer::media::DEFAULT_FOLDER_FPS) as f32;
        let method = actfer::flow::method::by_name("dis")?;
        toolbox = toolbox.with_clip(ClipMotion::new(media, method, options));
    }

    // The language model picks the tools under the step schema.
    let model = TextModel::load_spec(REASONER_MODEL)?;
    let mut policy = LlmPolicy::new(
        model,
        system_prompt_for(REASONER_MODEL),
        sampling_for(REASONER_MODEL),
    )?;
    let input = InputInfo {
        path: path.display().to_string(),
        kind: format!("{:?}", info.kind).to_lowercase(),
        fps: info.fps,
        frames: info.frames,
        frame: 0,
        face_box: None,
    };
    let trace = run(
        &args[1],
        input,
        &mut toolbox,
        &mut policy,
        &Limits::default(),
    )?;
    trace.write(&trace_dir)?;

    for step in &trace.steps {
        println!("{}. {}: {}", step.id, step.tool.name, step.observation.text);
    }
    match &trace.answer {
        Some(answer) => {
            println!("emotion: {}", answer.emotion.label);
            for au in &answer.aus {
                println!(
                    "  {} {} {:.2}, steps {:?}",
                    au.au, au.name, au.intensity, au.evidence
                );
            }
        }
        None => println!("no answer: {}", trace.stop.describe()),
    }
    println!("trace: {}", trace_dir.display());
    Ok(())
}
