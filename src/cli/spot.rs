//! `actfer spot`: expression intervals in a video (onset, apex, offset, micro or macro),
//! blinks apart, and the motion curves drawn with the intervals marked.

use std::fmt::Write as _;
use std::path::PathBuf;

use actfer::face::pipeline::FacePipeline;
use actfer::flow::FlowMethod;
use actfer::media::{write_image, Media, OpenOptions};
use actfer::models::ModelStore;
use actfer::motion::clip::{spot_clip, ClipOptions, Spotted};
use actfer::motion::plot::plot_spotting;
use actfer::Error;
use candle_core::Device;
use clap::Args;
use serde::Serialize;

/// Options every motion command shares.
#[derive(Debug, Args)]
pub struct MotionArgs {
    /// Flow method (see `actfer flow --help`).
    #[arg(long, default_value = "dis")]
    pub method: String,
    /// Seconds between anchor frames (each frame's flow is measured from the last anchor).
    #[arg(long, default_value_t = 1.0)]
    pub anchor: f32,
    /// Measure at most this many frames.
    #[arg(long, default_value_t = 216_000)]
    pub max_frames: usize,
    /// An AU is present from this displacement, in inter-ocular distances.
    #[arg(long, default_value_t = actfer::motion::au::MotionOptions::default().min_displacement_iod)]
    pub min_displacement: f32,
}

impl MotionArgs {
    pub fn options(&self, media: &Media) -> anyhow::Result<ClipOptions> {
        self.options_at(
            media
                .info()
                .fps
                .unwrap_or(actfer::media::DEFAULT_FOLDER_FPS),
        )
    }

    /// The options for a clip at `fps` frames per second.
    pub fn options_at(&self, fps: f64) -> anyhow::Result<ClipOptions> {
        if !(self.anchor > 0.0 && self.anchor <= 10.0) {
            return Err(Error::Limit {
                what: format!("--anchor {}", self.anchor),
                reason: "must be above 0 and at most 10 seconds".into(),
            }
            .into());
        }
        let mut o = ClipOptions::default();
        o.series.anchor_s = self.anchor;
        o.series.max_frames = self.max_frames;
        o.motion.min_displacement_iod = self.min_displacement;
        o.spotting.fps = fps as f32;
        Ok(o)
    }
}

#[derive(Debug, Args)]
pub struct SpotArgs {
    /// A video or a frame folder.
    pub video: PathBuf,
    #[command(flatten)]
    pub common: MotionArgs,
    /// Draw the curves with the intervals marked into this PNG.
    #[arg(long)]
    pub png: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Spots a clip with a progress bar over its frames.
pub fn spot_with_progress(
    media: &Media,
    pipeline: &FacePipeline,
    method: &dyn FlowMethod,
    options: &ClipOptions,
) -> anyhow::Result<Spotted> {
    let bar = actfer::progress::bar(media.info().frames as u64, "frames");
    let spotted = spot_clip(media, pipeline, method, options, |n| {
        bar.set_position(n as u64)
    })?;
    bar.finish_and_clear();
    Ok(spotted)
}

#[derive(Serialize)]
struct Report<'a> {
    video: String,
    method: String,
    fps: f32,
    frames: usize,
    face_frames: usize,
    #[serde(flatten)]
    spotted: &'a Spotted,
    notes: &'a [String],
    png: Option<&'a PathBuf>,
}

pub fn run(a: SpotArgs) -> anyhow::Result<()> {
    let media = Media::open(&a.video, &OpenOptions::default())?;
    let method = super::flow::method(&a.common.method)?;
    let store = ModelStore::from_env()?;
    let pipeline = FacePipeline::load(&store, &Device::Cpu)?;
    let options = a.common.options(&media)?;
    let spotted = spot_with_progress(&media, &pipeline, method.as_ref(), &options)?;
    let series = &spotted.series;
    for n in &series.notes {
        tracing::warn!("{}: {n}", a.video.display());
    }
    if let Some(png) = &a.png {
        let mut curves = spotted.curves.clone();
        curves.push(spotted.blink.clone());
        let img = plot_spotting(&curves, &spotted.spotting, series.fps, 1400, 700)?;
        write_image(png, &img)?;
    }
    if a.json {
        return super::print_json(&Report {
            video: a.video.display().to_string(),
            method: method.name().to_string(),
            fps: series.fps,
            frames: series.frames.len(),
            face_frames: series.face_frames(),
            spotted: &spotted,
            notes: &series.notes,
            png: a.png.as_ref(),
        });
    }
    let mut t = format!(
        "{}: {} frames ({} with a face) at {:.2} fps, flow {}\n",
        a.video.display(),
        series.frames.len(),
        series.face_frames(),
        series.fps,
        method.name()
    );
    let s = &spotted.spotting;
    let _ = writeln!(
        t,
        "{} expression(s), {} blink(s); noise {:.3} px",
        s.spots.len(),
        s.blinks.len(),
        s.noise
    );
    let when = |f: usize| format!("{f} ({:.2} s)", f as f32 / series.fps);
    for (what, list) in [("expression", &s.spots), ("blink", &s.blinks)] {
        for sp in list {
            let _ = writeln!(
                t,
                "{what:<10} {:?}: onset {} apex {} offset {}; peak {:.2} px on {}, score {:.1}",
                sp.kind,
                when(sp.onset),
                when(sp.apex),
                when(sp.offset),
                sp.peak,
                sp.curve,
                sp.score
            );
        }
    }
    if let Some(p) = &a.png {
        let _ = writeln!(t, "curves: {}", p.display());
    }
    print!("{t}");
    Ok(())
}
