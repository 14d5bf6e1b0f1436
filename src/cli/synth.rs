//! `actfer synth`: a SynthME dataset (labelled synthetic micro-expression clips with
//! ground-truth flow) from real identities and a seed.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use actfer::face::pipeline::FacePipeline;
use actfer::models::ModelStore;
use actfer::synth::generate::{generate, FlowOutput, Settings, GENERATOR_VERSION};
use actfer::synth::identity::{load_looks, testdata_dir, Split};
use actfer::synth::labels::{Kind, SCHEMA};
use actfer::synth::spec::Switches;
use candle_core::Device;
use clap::Args;

#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Dataset folder: created, or completed when it holds an interrupted run with the same
    /// settings.
    #[arg(long)]
    pub out: PathBuf,
    /// Random seed: the same seed and settings give the same bytes.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Number of clips.
    #[arg(long, default_value_t = 10)]
    pub clips: usize,
    /// Use only the identities of this split (people never cross splits); default: all.
    #[arg(long, value_enum)]
    pub split: Option<Split>,
    /// Long videos (20-60 s, 0-5 micro and macro expressions, blinks) for spotting.
    #[arg(long)]
    pub long: bool,
    /// Frame rate.
    #[arg(long, default_value_t = 30.0)]
    pub fps: f32,
    /// Frame side in pixels (frames are square, the face aligned in them).
    #[arg(long, default_value_t = 128)]
    pub size: u32,
    /// Ground-truth flows to write.
    #[arg(long, value_enum, default_value_t = FlowOutput::All)]
    pub flow: FlowOutput,
    /// Write each clip as an mp4 (lossy) instead of a folder of PNG frames.
    #[arg(long)]
    pub video: bool,
    /// No head motion.
    #[arg(long)]
    pub no_head: bool,
    /// No illumination drift.
    #[arg(long)]
    pub no_light: bool,
    /// No sensor noise.
    #[arg(long)]
    pub no_noise: bool,
    /// No JPEG compression.
    #[arg(long)]
    pub no_jpeg: bool,
    /// No eye blinks.
    #[arg(long)]
    pub no_blinks: bool,
    /// No clips without expression.
    #[arg(long)]
    pub no_neutral: bool,
    /// Write a contact sheet per expression: onset, apex, magnified difference, ground-truth
    /// flow colour map (clips/ID/sheet_K.png).
    #[arg(long)]
    pub sheets: bool,
    /// Print the labels as JSON on stdout when done.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: SynthArgs) -> anyhow::Result<()> {
    let settings = Settings {
        schema: SCHEMA.to_string(),
        version: GENERATOR_VERSION,
        seed: args.seed,
        clips: args.clips,
        split: args.split,
        long: args.long,
        fps: args.fps,
        size: args.size,
        flow: args.flow,
        video: args.video,
        switches: Switches {
            head: !args.no_head,
            light: !args.no_light,
            noise: !args.no_noise,
            jpeg: !args.no_jpeg,
            blinks: !args.no_blinks,
            neutral: !args.no_neutral,
        },
        sheets: args.sheets,
    };
    settings.check()?;
    let store = ModelStore::from_env()?;
    let pipeline = FacePipeline::load(&store, &Device::Cpu)?;
    let splits: Vec<Split> = args.split.into_iter().collect();
    let looks = load_looks(&pipeline, &testdata_dir(store.home()), &splits)?;
    let bar = actfer::progress::bar(args.clips as u64, "synth");
    let done = AtomicUsize::new(0);
    let labels = generate(&args.out, &settings, &looks, &|| {
        done.fetch_add(1, Ordering::Relaxed);
        bar.inc(1);
    })?;
    bar.finish_and_clear();
    if args.json {
        return super::print_json(&labels);
    }
    let count = |k: Kind| labels.clips.iter().filter(|c| c.kind == k).count();
    let events: usize = labels.clips.iter().map(|c| c.events.len()).sum();
    let frames: usize = labels.clips.iter().map(|c| c.frames).sum();
    println!(
        "{}: {} clips ({} micro, {} macro, {} none, {} long), {} expressions, {} frames at {} fps, {}x{} px; labels in {}",
        args.out.display(),
        labels.clips.len(),
        count(Kind::Micro),
        count(Kind::Macro),
        count(Kind::None),
        count(Kind::Long),
        events,
        frames,
        args.fps,
        args.size,
        args.size,
        args.out.join("labels.json").display()
    );
    Ok(())
}
