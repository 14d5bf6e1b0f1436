//! `actfer flow`: optical flow between two frames (two images, or two frames of a clip) with
//! any method, written as `.flo` and as a colour map.

use std::path::{Path, PathBuf};
use std::time::Instant;

use actfer::eval::flow::write_flo;
use actfer::face::align::Alignment;
use actfer::face::pipeline::{select, FacePipeline};
use actfer::flow::head::{remove_head_motion, HeadFit, HeadModel};
use actfer::flow::{colour_map_with_scale, max_magnitude, FlowMethod};
use actfer::media::{write_image, Media, OpenOptions, RgbImage};
use actfer::models::ModelStore;
use actfer::Error;
use candle_core::Device;
use clap::Args;
use serde::Serialize;

#[derive(Debug, Args)]
pub struct FlowArgs {
    /// First frame: an image, or a clip (video or frame folder) with --onset and --apex.
    pub a: PathBuf,
    /// Second frame (an image); leave out for a clip.
    pub b: Option<PathBuf>,
    /// Method: meflownet (the committed weights), tvl1 (Dual TV-L1), dis (medium preset),
    /// dis-fast, dis-ultrafast, farneback.
    #[arg(long, default_value = "tvl1")]
    pub method: String,
    /// In a clip: the first frame (0-based).
    #[arg(long)]
    pub onset: Option<usize>,
    /// In a clip: the second frame (0-based).
    #[arg(long)]
    pub apex: Option<usize>,
    /// Align each frame on its face first (eyes level, fixed inter-ocular distance) and remove
    /// the head motion the alignment leaves (a robust similarity fit of the flow, as motion
    /// analysis does), so the flow is the facial motion in aligned-face pixels.
    #[arg(long)]
    pub face: bool,
    /// Side of the aligned face with --face.
    #[arg(long, default_value_t = 256)]
    pub size: u32,
    /// Write the flow as Middlebury .flo.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write a colour map (hue direction, saturation magnitude, white still).
    #[arg(long)]
    pub png: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Report {
    method: String,
    a: String,
    b: String,
    width: usize,
    height: usize,
    aligned: bool,
    /// With --face: the head motion left after alignment and removed from the flow.
    #[serde(skip_serializing_if = "Option::is_none")]
    head_removed: Option<HeadFit>,
    ms: f64,
    mean_magnitude_px: f32,
    max_magnitude_px: f32,
    out: Option<PathBuf>,
    png: Option<PathBuf>,
}

/// A method by name.
pub fn method(name: &str) -> anyhow::Result<Box<dyn FlowMethod>> {
    Ok(actfer::flow::method::by_name(name)?)
}

/// Frame `index` of a clip, or an error naming the clip and its length.
fn frame_of(media: &Media, index: usize, flag: &str) -> anyhow::Result<RgbImage> {
    match media.frames()?.nth(index) {
        Some(f) => Ok(f?.image),
        None => Err(Error::BadInput {
            path: media.info().path.clone(),
            reason: format!(
                "{flag} {index} asked for, but the input has {} frame(s)",
                media.info().frames
            ),
        }
        .into()),
    }
}

fn frames(args: &FlowArgs) -> anyhow::Result<(RgbImage, RgbImage, String, String)> {
    let opts = OpenOptions::default();
    match &args.b {
        Some(b) => {
            let (ma, mb) = (Media::open(&args.a, &opts)?, Media::open(b, &opts)?);
            Ok((
                frame_of(&ma, 0, "frame")?,
                frame_of(&mb, 0, "frame")?,
                args.a.display().to_string(),
                b.display().to_string(),
            ))
        }
        None => {
            let (Some(i), Some(j)) = (args.onset, args.apex) else {
                return Err(Error::BadInput {
                    path: args.a.clone(),
                    reason: "one input needs --onset and --apex (frames of the clip); or give two images".into(),
                }
                .into());
            };
            let m = Media::open(&args.a, &opts)?;
            let name = args.a.display();
            Ok((
                frame_of(&m, i, "--onset")?,
                frame_of(&m, j, "--apex")?,
                format!("{name}@{i}"),
                format!("{name}@{j}"),
            ))
        }
    }
}

/// Each frame aligned on its own largest face.
fn align(
    a: &RgbImage,
    b: &RgbImage,
    size: u32,
    names: [&Path; 2],
) -> anyhow::Result<(RgbImage, RgbImage)> {
    let store = ModelStore::from_env()?;
    let pipeline = FacePipeline::load(&store, &Device::Cpu)?;
    let mut out = Vec::new();
    for (img, name) in [a, b].into_iter().zip(names) {
        let faces = pipeline.faces(img)?;
        let k = select(&faces, 0, name)?;
        out.push(Alignment::from_landmarks68(&faces[k].landmarks68, size)?.warp(img)?);
    }
    let b = out.pop().unwrap();
    Ok((out.pop().unwrap(), b))
}

/// The shortest side `actfer flow` takes.
const MIN_FLOW_SIDE: u32 = 16;

pub fn run(args: FlowArgs) -> anyhow::Result<()> {
    let m = method(&args.method)?;
    let (mut a, mut b, na, nb) = frames(&args)?;
    if (a.width, a.height) != (b.width, b.height) && !args.face {
        return Err(Error::BadInput {
            path: args.a.clone(),
            reason: format!(
                "frames are {}x{} and {}x{}; flow needs equal sizes (or --face to align both)",
                a.width, a.height, b.width, b.height
            ),
        }
        .into());
    }
    if args.face {
        let second = args.b.as_deref().unwrap_or(&args.a);
        (a, b) = align(&a, &b, args.size, [&args.a, second])?;
    }
    // the smallest frame every method takes (DIS wants a side of 12, the learned models 16)
    if a.width.min(a.height) < MIN_FLOW_SIDE {
        return Err(Error::BadInput {
            path: args.a.clone(),
            reason: format!(
                "the frames are {}x{}; optical flow needs at least {MIN_FLOW_SIDE}x{MIN_FLOW_SIDE} \
                 pixels (give larger frames, or --face to align a face into --size)",
                a.width, a.height
            ),
        }
        .into());
    }
    let t = Instant::now();
    let mut flow = m.estimate(&a, &b)?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    let mut head_removed = None;
    if args.face {
        let (facial, fit) = remove_head_motion(&flow, None, HeadModel::ROBUST_SIMILARITY);
        flow = facial;
        head_removed = Some(fit);
    }
    if let Some(p) = &args.out {
        write_flo(p, &flow)?;
    }
    if let Some(p) = &args.png {
        write_image(p, &colour_map_with_scale(&flow)?)?;
    }
    let mags: Vec<f32> = flow.uv.chunks_exact(2).map(|v| v[0].hypot(v[1])).collect();
    let report = Report {
        method: m.name().to_string(),
        a: na,
        b: nb,
        width: flow.width,
        height: flow.height,
        aligned: args.face,
        head_removed,
        ms,
        mean_magnitude_px: mags.iter().sum::<f32>() / mags.len().max(1) as f32,
        max_magnitude_px: max_magnitude(&flow),
        out: args.out.clone(),
        png: args.png.clone(),
    };
    if args.json {
        return super::print_json(&report);
    }
    println!(
        "{} -> {}: {} flow {}x{}{} in {:.1} ms; mean {:.3} px, max {:.3} px",
        report.a,
        report.b,
        report.method,
        report.width,
        report.height,
        if args.face {
            " (aligned faces, head motion removed)"
        } else {
            ""
        },
        ms,
        report.mean_magnitude_px,
        report.max_magnitude_px
    );
    for (what, p) in [("flow", &args.out), ("colour map", &args.png)] {
        if let Some(p) = p {
            println!("{what}: {}", p.display());
        }
    }
    Ok(())
}
