//! Motion analysis speed: frames/s of `actfer spot` (track, align, flow, head removal,
//! region statistics, AU curves, spotting) on a 640x360 clip with each flow method, DIS
//! (medium) the baseline in the same run:
//!
//!     cargo bench --bench motion
//!
//! The clip is WolfgangLanger_Pexels.mp4 from the test data (set-up fetches it); its first
//! `ACTFER_BENCH_N` frames (default 96) are measured.
//!
//! The build is portable (the kernels pick their code at run time);
//! `RUSTFLAGS="-C target-cpu=native" cargo bench --bench motion` builds for this CPU only.

use std::time::Instant;

use actfer::face::pipeline::FacePipeline;
use actfer::flow::meflownet::MeFlowMethod;
use actfer::flow::{Classical, DisPreset, FlowMethod};
use actfer::media::{Media, OpenOptions};
use actfer::models::ModelStore;
use actfer::motion::clip::{spot_clip, ClipOptions};
use candle_core::Device;

fn main() -> anyhow::Result<()> {
    let n: usize = std::env::var("ACTFER_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(96);
    let store = ModelStore::from_env()?;
    let pipeline = FacePipeline::load(&store, &Device::Cpu)?;
    let path = store.home().join("testdata/WolfgangLanger_Pexels.mp4");
    let media = Media::open(&path, &OpenOptions::default())?;
    let info = media.info();
    let mut options = ClipOptions::default();
    options.series.max_frames = n;
    options.spotting.fps = info.fps.unwrap_or(30.0) as f32;
    println!(
        "{}: first {n} frames of {}x{}",
        path.display(),
        info.width,
        info.height
    );
    let methods: Vec<Box<dyn FlowMethod>> = vec![
        Box::new(Classical::Dis(DisPreset::Medium)),
        Box::new(Classical::Dis(DisPreset::Ultrafast)),
        Box::new(Classical::Farneback),
        Box::new(Classical::Tvl1),
        Box::new(MeFlowMethod::committed()?),
    ];
    println!("{:<16} {:>9} {:>12}", "method", "frames/s", "vs dis");
    let mut baseline = None;
    for m in &methods {
        let start = Instant::now();
        let spotted = spot_clip(&media, &pipeline, m.as_ref(), &options, |_| {})?;
        let fps = spotted.series.frames.len() as f64 / start.elapsed().as_secs_f64();
        let base = *baseline.get_or_insert(fps);
        println!("{:<16} {fps:>9.2} {:>11.2}x", m.name(), fps / base);
    }
    Ok(())
}
