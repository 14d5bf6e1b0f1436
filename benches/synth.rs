//! SynthME generation speed: clips/s at 30 fps for 128- and 256-px frames, with every
//! nuisance and all ground-truth flows, against the same clips with no flow written and no
//! nuisance as the baseline in the same run:
//!
//!     cargo bench --bench synth
//!
//! `ACTFER_BENCH_N` sets the clips per row (default 12). Identities are loaded once, outside
//! the timing.
//!
//! The build is portable (the kernels pick their code at run time);
//! `RUSTFLAGS="-C target-cpu=native" cargo bench --bench synth` builds for this CPU only.

use std::time::Instant;

use actfer::face::pipeline::FacePipeline;
use actfer::models::ModelStore;
use actfer::synth::generate::{generate, FlowOutput, Settings, GENERATOR_VERSION};
use actfer::synth::identity::{load_looks, testdata_dir};
use actfer::synth::labels::SCHEMA;
use actfer::synth::spec::Switches;
use candle_core::Device;

fn main() -> anyhow::Result<()> {
    let n: usize = std::env::var("ACTFER_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let store = ModelStore::from_env()?;
    let pipeline = FacePipeline::load(&store, &Device::Cpu)?;
    let looks = load_looks(&pipeline, &testdata_dir(store.home()), &[])?;
    let tmp = tempfile::tempdir()?;
    println!(
        "{n} short clips per row at 30 fps, {} identities",
        looks.len()
    );
    println!("{:<46} {:>8} {:>9}", "setting", "clips/s", "frames/s");
    for size in [128u32, 256] {
        let row = |name: &str, flow: FlowOutput, switches: Switches| -> anyhow::Result<f64> {
            let settings = Settings {
                schema: SCHEMA.to_string(),
                version: GENERATOR_VERSION,
                seed: 1,
                clips: n,
                split: None,
                long: false,
                fps: 30.0,
                size,
                flow,
                video: false,
                switches,
                sheets: false,
            };
            let out = tmp.path().join(format!("{name}-{size}"));
            let t = Instant::now();
            let labels = generate(&out, &settings, &looks, &|| {})?;
            let s = t.elapsed().as_secs_f64();
            let frames: usize = labels.clips.iter().map(|c| c.frames).sum();
            let clips_per_s = n as f64 / s;
            println!(
                "{:<46} {:>8.2} {:>9.1}",
                format!("{size} px, {name}"),
                clips_per_s,
                frames as f64 / s
            );
            Ok(clips_per_s)
        };
        let base = row(
            "baseline: no flow, no nuisance",
            FlowOutput::None,
            Switches::NONE,
        )?;
        let full = row("all flows, all nuisances", FlowOutput::All, Switches::ALL)?;
        println!("{size} px: full / baseline speed ratio {:.2}", full / base);
    }
    Ok(())
}
