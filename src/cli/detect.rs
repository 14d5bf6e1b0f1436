//! `actfer detect`: faces with box, score, 5 landmarks, 68 and 478 points and head pose, in an
//! image (every face, largest first) or through a clip (the subject, tracked).

use std::path::PathBuf;

use actfer::face::draw::{draw_faces, FaceMarks};
use actfer::face::pipeline::{select, Face, FacePipeline};
use actfer::face::track::{TrackConfig, TrackedFrame, Tracker};
use actfer::media::{write_image, Media, MediaInfo, MediaKind, OpenOptions};
use actfer::models::ModelStore;
use actfer::{progress, Error};
use candle_core::Device;
use clap::Args;
use serde::Serialize;

#[derive(Debug, Args)]
pub struct DetectArgs {
    /// Image, video, or folder of frames.
    pub input: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Draw boxes and landmarks on the image (for a clip: on the first frame with a face).
    #[arg(long, value_name = "OUT.png")]
    pub draw: Option<PathBuf>,
    /// In a clip, which of the first frame's faces to follow (0 = largest).
    #[arg(long, default_value_t = 0)]
    pub face: usize,
    /// Frame rate of a folder of frames.
    #[arg(long)]
    pub fps: Option<f64>,
    /// Refuse clips longer than this many frames.
    #[arg(long, default_value_t = 100_000)]
    pub max_frames: usize,
}

#[derive(Serialize)]
struct ImageReport<'a> {
    input: &'a MediaInfo,
    faces: &'a [Face],
}

#[derive(Serialize)]
struct ClipReport<'a> {
    input: &'a MediaInfo,
    frames_with_face: usize,
    frames: &'a [TrackedFrame],
}

pub fn run(args: DetectArgs) -> anyhow::Result<()> {
    let media = Media::open(
        &args.input,
        &OpenOptions {
            fps: args.fps,
            max_frames: Some(args.max_frames),
        },
    )?;
    let store = ModelStore::from_env()?;
    let pipeline = FacePipeline::load(&store, &Device::Cpu)?;
    if media.info().kind == MediaKind::Image {
        let frame = media.frames()?.next().expect("an image has one frame")?;
        let faces = pipeline.faces(&frame.image)?;
        if let Some(out) = &args.draw {
            draw(&frame.image, &faces, out)?;
        }
        select(&faces, 0, &args.input)?;
        if args.json {
            super::print_json(&ImageReport {
                input: media.info(),
                faces: &faces,
            })?;
        } else {
            println!(
                "{}: {} face{} (largest first)",
                args.input.display(),
                faces.len(),
                if faces.len() == 1 { "" } else { "s" }
            );
            for (i, f) in faces.iter().enumerate() {
                println!("  #{i} {}", describe(f));
            }
        }
        return Ok(());
    }

    let mut tracker = Tracker::new(
        &pipeline,
        TrackConfig {
            face: args.face,
            ..Default::default()
        },
    );
    let bar = progress::bar(media.info().frames as u64, "tracking");
    let mut frames = Vec::new();
    let mut drawn = args.draw.is_none();
    for frame in media.frames()? {
        let frame = frame?;
        let tracked = tracker.step(&frame)?;
        if let (false, Some(face), Some(out)) = (drawn, &tracked.face, &args.draw) {
            draw(&frame.image, std::slice::from_ref(face), out)?;
            drawn = true;
        }
        frames.push(tracked);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let with_face = frames.iter().filter(|f| f.face.is_some()).count();
    if with_face == 0 {
        return Err(Error::NoFace {
            path: args.input.clone(),
            detail: format!("no face found in any of its {} frames", frames.len()),
        }
        .into());
    }
    if args.json {
        super::print_json(&ClipReport {
            input: media.info(),
            frames_with_face: with_face,
            frames: &frames,
        })?;
    } else {
        let detected = frames
            .iter()
            .filter(|f| f.source == Some(actfer::face::track::Source::Detected))
            .count();
        println!(
            "{}: face in {with_face} of {} frames (detector ran on {detected}, tracked on the rest)",
            args.input.display(),
            frames.len()
        );
        if let Some(f) = frames
            .iter()
            .find_map(|f| f.face.as_ref().map(|face| (f.index, face)))
        {
            println!("  first face, frame {}: {}", f.0, describe(f.1));
        }
    }
    Ok(())
}

fn describe(f: &Face) -> String {
    format!(
        "box ({:.0}, {:.0})-({:.0}, {:.0}) {:.0}x{:.0} px, score {:.3}, presence {:.2}, yaw {:.1} pitch {:.1} roll {:.1}",
        f.bbox.x0,
        f.bbox.y0,
        f.bbox.x1,
        f.bbox.y1,
        f.bbox.width(),
        f.bbox.height(),
        f.score,
        f.presence,
        f.pose.yaw,
        f.pose.pitch,
        f.pose.roll
    )
}

fn draw(
    image: &actfer::media::RgbImage,
    faces: &[Face],
    out: &std::path::Path,
) -> anyhow::Result<()> {
    let meshes: Vec<Vec<[f32; 2]>> = faces.iter().map(Face::mesh_xy).collect();
    let marks: Vec<FaceMarks> = faces
        .iter()
        .zip(&meshes)
        .enumerate()
        .map(|(i, (f, mesh))| FaceMarks {
            bbox: Some(f.bbox),
            label: Some(format!("#{i} {:.2}", f.score)),
            landmarks5: &f.landmarks5,
            landmarks68: &f.landmarks68,
            mesh,
        })
        .collect();
    write_image(out, &draw_faces(image, &marks)?)?;
    Ok(())
}
