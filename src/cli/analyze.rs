//! `actfer analyze`: a clip's expressions measured from motion: for each spotted interval
//! (or the one given with --onset/--apex), the AUs with their evidence, the emotion
//! distribution, and the region statistics.

use std::fmt::Write as _;
use std::path::PathBuf;

use actfer::face::pipeline::FacePipeline;
use actfer::media::{Media, OpenOptions};
use actfer::models::ModelStore;
use actfer::motion::clip::{analyze_intervals, ClipOptions, IntervalAnalysis};
use actfer::motion::spotting::Spot;
use actfer::Error;
use candle_core::Device;
use clap::Args;
use serde::Serialize;

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// A video or a frame folder.
    pub clip: PathBuf,
    /// Analyse this interval only: onset frame (0-based); needs --apex. Without both, the
    /// clip's expressions are spotted first.
    #[arg(long, requires = "apex")]
    pub onset: Option<usize>,
    /// The apex frame (0-based), with --onset.
    #[arg(long, requires = "onset")]
    pub apex: Option<usize>,
    #[command(flatten)]
    pub common: super::spot::MotionArgs,
    /// Region statistics to print per interval (the most moving first; JSON has all).
    #[arg(long, default_value_t = 6)]
    pub regions: usize,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Report<'a> {
    clip: String,
    method: String,
    /// Spotted intervals (absent with --onset/--apex).
    #[serde(skip_serializing_if = "Option::is_none")]
    spots: Option<&'a [Spot]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    blinks: Option<&'a [Spot]>,
    intervals: &'a [IntervalAnalysis],
    notes: &'a [String],
}

pub fn run(a: AnalyzeArgs) -> anyhow::Result<()> {
    let media = Media::open(&a.clip, &OpenOptions::default())?;
    let method = super::flow::method(&a.common.method)?;
    let store = ModelStore::from_env()?;
    let pipeline = FacePipeline::load(&store, &Device::Cpu)?;
    let options: ClipOptions = a.common.options(&media)?;
    let (spotted, pairs) = match (a.onset, a.apex) {
        (Some(onset), Some(apex)) => {
            let n = media.info().frames;
            if onset >= n || apex >= n {
                return Err(Error::bad_input(
                    &a.clip,
                    format!("--onset {onset} / --apex {apex}: the clip has {n} frame(s), numbered from 0"),
                )
                .into());
            }
            (None, vec![(onset, apex)])
        }
        _ => {
            let spotted =
                super::spot::spot_with_progress(&media, &pipeline, method.as_ref(), &options)?;
            let pairs = spotted
                .spotting
                .spots
                .iter()
                .map(|s| (s.onset, s.apex))
                .collect();
            (Some(spotted), pairs)
        }
    };
    let intervals = analyze_intervals(&media, &pipeline, method.as_ref(), &pairs, &options.motion)?;
    let notes = spotted.as_ref().map_or(&[][..], |s| &s.series.notes[..]);
    for n in notes {
        tracing::warn!("{}: {n}", a.clip.display());
    }
    if a.json {
        return super::print_json(&Report {
            clip: a.clip.display().to_string(),
            method: method.name().to_string(),
            spots: spotted.as_ref().map(|s| &s.spotting.spots[..]),
            blinks: spotted.as_ref().map(|s| &s.spotting.blinks[..]),
            intervals: &intervals,
            notes,
        });
    }
    let mut t = String::new();
    if let Some(s) = &spotted {
        let _ = writeln!(
            t,
            "{}: {} frames, {} expression(s) spotted, {} blink(s); flow {}",
            a.clip.display(),
            s.series.frames.len(),
            s.spotting.spots.len(),
            s.spotting.blinks.len(),
            method.name()
        );
    }
    let fps = media
        .info()
        .fps
        .unwrap_or(actfer::media::DEFAULT_FOLDER_FPS);
    for (k, iv) in intervals.iter().enumerate() {
        let spot = spotted.as_ref().map(|s| &s.spotting.spots[k]);
        write_interval(&mut t, iv, spot, fps, a.regions);
    }
    if intervals.is_empty() {
        let _ = writeln!(t, "no expression found");
    }
    print!("{t}");
    Ok(())
}

fn write_interval(
    t: &mut String,
    iv: &IntervalAnalysis,
    spot: Option<&Spot>,
    fps: f64,
    regions: usize,
) {
    let when = |f: usize| format!("{f} ({:.2} s)", f as f64 / fps);
    let _ = write!(t, "\nonset {} -> apex {}", when(iv.onset), when(iv.apex));
    if let Some(s) = spot {
        let _ = write!(
            t,
            " -> offset {}; {:?}, peak {:.2} px on {}",
            when(s.offset),
            s.kind,
            s.peak,
            s.curve
        );
    }
    let _ = writeln!(t);
    let inf = &iv.expression.inference;
    let top: Vec<String> = inf
        .emotions
        .iter()
        .take(3)
        .map(|e| format!("{} {:.2}", e.emotion.name(), e.probability))
        .collect();
    let _ = writeln!(
        t,
        "  emotion: {} | ME class: {}",
        top.join(", "),
        inf.me
            .iter()
            .map(|m| format!("{} {:.2}", m.class.name(), m.probability))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if iv.expression.aus.is_empty() {
        let _ = writeln!(t, "  AUs: none above the motion threshold");
    }
    for e in &iv.expression.aus {
        let _ = writeln!(
            t,
            "  {:<5} {:<22} intensity {:.2}{} (right {:.2}, left {:.2})",
            e.code(),
            e.name,
            e.intensity,
            e.letter.map_or(String::new(), |l| format!(" [{l}]")),
            e.right,
            e.left
        );
    }
    let mut moving: Vec<_> = iv.regions.iter().filter(|r| r.pixels > 0).collect();
    moving.sort_by(|a, b| b.mean_magnitude.total_cmp(&a.mean_magnitude));
    let _ = writeln!(
        t,
        "  regions (facial flow, aligned px; IOD {:.1} px):",
        iv.iod_px
    );
    for r in moving.iter().take(regions) {
        let _ = writeln!(
            t,
            "    {:<18} mean {:.2} px toward {:>4.0} deg, max {:.2} px, {:>3.0}% moving",
            r.region,
            r.mean[0].hypot(r.mean[1]),
            r.direction_deg,
            r.max_magnitude,
            100.0 * r.moving_share
        );
    }
}
