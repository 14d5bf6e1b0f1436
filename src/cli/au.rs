//! `actfer au`: AU evidence from one image (or one frame of a clip), per face: AUs with
//! intensity, FACS letter, side and the cue that said so; the fer classifier's distribution;
//! the prototype inference over the AUs.

use std::path::PathBuf;

use actfer::evidence::{AppearanceModels, FaceAppearance};
use actfer::face::pipeline::select;
use actfer::media::{Media, MediaInfo, OpenOptions};
use actfer::models::ModelStore;
use candle_core::Device;
use clap::Args;
use serde::Serialize;

#[derive(Debug, Args)]
pub struct AuArgs {
    /// Image, video, or folder of frames.
    pub input: PathBuf,
    /// Print JSON (every AU of the cue table with its cues, the 52 blendshapes, the measures,
    /// the mesh).
    #[arg(long)]
    pub json: bool,
    /// Report only this face (0 = largest); default: every face.
    #[arg(long)]
    pub face: Option<usize>,
    /// In a clip, the frame to read (0-based); default: the first frame with a face.
    #[arg(long)]
    pub frame: Option<usize>,
    /// Also list AUs below the presence threshold.
    #[arg(long)]
    pub all: bool,
    /// Frame rate of a folder of frames.
    #[arg(long)]
    pub fps: Option<f64>,
    /// Refuse clips longer than this many frames.
    #[arg(long, default_value_t = 100_000)]
    pub max_frames: usize,
}

#[derive(Serialize)]
struct Report<'a> {
    input: &'a MediaInfo,
    frame: usize,
    faces: &'a [FaceAppearance],
}

pub fn run(args: AuArgs) -> anyhow::Result<()> {
    let media = Media::open(
        &args.input,
        &OpenOptions {
            fps: args.fps,
            max_frames: Some(args.max_frames),
        },
    )?;
    let store = ModelStore::from_env()?;
    let models = AppearanceModels::load(&store, &Device::Cpu)?;
    let frame = super::subject_frame(&media, &models, &args.input, args.frame)?;
    let mut faces = models.faces.faces(&frame.image)?;
    if let Some(k) = args.face {
        let k = select(&faces, k, &args.input)?;
        faces = vec![faces.swap_remove(k)];
    } else {
        select(&faces, 0, &args.input)?;
    }
    let report = models.analyse_faces(&frame.image, faces)?;
    if args.json {
        return super::print_json(&Report {
            input: media.info(),
            frame: frame.index,
            faces: &report,
        });
    }
    for (i, f) in report.iter().enumerate() {
        let k = args.face.unwrap_or(i);
        print_face(k, f, args.all);
    }
    Ok(())
}

fn print_face(k: usize, f: &FaceAppearance, all: bool) {
    let b = &f.face.bbox;
    println!(
        "face #{k}: box ({:.0}, {:.0})-({:.0}, {:.0}), yaw {:.0} pitch {:.0} roll {:.0}",
        b.x0, b.y0, b.x1, b.y1, f.face.pose.yaw, f.face.pose.pitch, f.face.pose.roll
    );
    println!("  AUs{}:", if all { "" } else { " present" });
    let shown: Vec<_> = f.aus.iter().filter(|a| all || a.present()).collect();
    if shown.is_empty() {
        println!("    none");
    }
    for a in shown {
        println!(
            "    {:<5} {:<21} {:.2} {}  {:<5}  {}",
            a.code(),
            a.name,
            a.intensity,
            a.letter.unwrap_or('-'),
            format!("{:?}", a.side).to_lowercase(),
            a.source
        );
    }
    let mut fer: Vec<_> = f
        .classifier
        .labels
        .iter()
        .zip(&f.classifier.probabilities)
        .collect();
    fer.sort_by(|a, b| b.1.total_cmp(a.1));
    let fer: Vec<String> = fer
        .iter()
        .take(3)
        .map(|(l, p)| format!("{l} {p:.2}"))
        .collect();
    println!("  classifier (fer mini-Xception): {}", fer.join(", "));
    let proto: Vec<String> = f
        .inference
        .emotions
        .iter()
        .take(3)
        .map(|s| format!("{} {:.2}", s.emotion, s.probability))
        .collect();
    let me: Vec<String> = f
        .inference
        .me
        .iter()
        .map(|s| format!("{} {:.2}", s.class.name(), s.probability))
        .collect();
    println!("  prototype inference from AUs: {}", proto.join(", "));
    println!("  micro-expression classes: {}", me.join(", "));
}
