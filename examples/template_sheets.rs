//! One contact sheet per SynthME template AU, for checking by eye that each template moves
//! the face where FACS says it does (onset, apex, magnified difference, ground-truth flow).
//!
//! cargo run --release --example template_sheets -- PHOTO OUT_DIR [INTENSITY]
//!
//! The photo's largest face is found with the project's detector and mesh; the frames are a
//! square crop round its 68 points (1.6 times their extent), at the photo's own resolution.
//! Every template AU is applied on both sides at INTENSITY (default 1, the template's apex);
//! AU46 (wink) on the subject's right eye only. Writes `OUT_DIR/auNN_sheet.png` and prints one
//! line per AU with the largest landmark motion, the largest flow and the forward-flow solve's
//! residual.

use std::path::PathBuf;

use actfer::face::pipeline::FacePipeline;
use actfer::face::Point;
use actfer::facs::au::{self, AuSide};
use actfer::flow::max_magnitude;
use actfer::media::{read_image, write_image, RgbImage};
use actfer::models::ModelStore;
use actfer::synth::templates::{face_frame, template_aus};
use actfer::synth::{
    contact_sheet, forward_flow, landmark_displacements, motion_field, render, Activation,
};
use candle_core::Device;

/// The crop side as a multiple of the 68 points' larger extent.
const CROP_MARGIN: f32 = 1.6;

/// The sub-image of `img` with top-left (`x0`, `y0`) and size `w x h` (inside `img`).
fn crop(img: &RgbImage, x0: u32, y0: u32, w: u32, h: u32) -> RgbImage {
    let mut out = RgbImage::new(w, h);
    for y in 0..h {
        let s = (((y0 + y) * img.width + x0) * 3) as usize;
        let d = (y * w * 3) as usize;
        out.data[d..d + 3 * w as usize].copy_from_slice(&img.data[s..s + 3 * w as usize]);
    }
    out
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(
        args.len() == 2 || args.len() == 3,
        "usage: template_sheets PHOTO OUT_DIR [INTENSITY]"
    );
    let photo = PathBuf::from(&args[0]);
    let out_dir = PathBuf::from(&args[1]);
    let intensity: f32 = match args.get(2) {
        Some(s) => s.parse()?,
        None => 1.0,
    };
    std::fs::create_dir_all(&out_dir)?;

    let image = read_image(&photo)?;
    let pipeline = FacePipeline::load(&ModelStore::from_env()?, &Device::Cpu)?;
    let faces = pipeline.faces(&image)?;
    let face = faces
        .first()
        .ok_or_else(|| anyhow::anyhow!("no face found in {}", photo.display()))?;

    // A square crop round the 68 points, clamped to the photo.
    let (mut lo, mut hi) = ([f32::MAX; 2], [f32::MIN; 2]);
    for p in &face.landmarks68 {
        for c in 0..2 {
            lo[c] = lo[c].min(p[c]);
            hi[c] = hi[c].max(p[c]);
        }
    }
    let side = (CROP_MARGIN * (hi[0] - lo[0]).max(hi[1] - lo[1]))
        .min(image.width.min(image.height) as f32) as u32;
    let centre = [(lo[0] + hi[0]) / 2.0, (lo[1] + hi[1]) / 2.0];
    let place = |c: f32, limit: u32| {
        (c - side as f32 / 2.0)
            .round()
            .clamp(0.0, (limit - side) as f32) as u32
    };
    let (x0, y0) = (
        place(centre[0], image.width),
        place(centre[1], image.height),
    );
    let onset = crop(&image, x0, y0, side, side);
    let mut landmarks: [Point; 68] = [[0.0; 2]; 68];
    for (q, p) in landmarks.iter_mut().zip(&face.landmarks68) {
        *q = [p[0] - x0 as f32, p[1] - y0 as f32];
    }
    let (_, _, iod) = face_frame(&landmarks)?;
    println!(
        "{}: face crop {side}x{side} at ({x0}, {y0}), inter-ocular distance {iod:.1} px, \
         intensity {intensity}",
        photo.display()
    );

    let (w, h) = (side as usize, side as usize);
    for number in template_aus() {
        let side = (number == 46).then_some(AuSide::Right);
        let activation = Activation {
            au: number,
            side,
            intensity,
        };
        let d = landmark_displacements(&landmarks, &[activation])?;
        let peak = d.iter().fold(0.0f32, |m, p| m.max(p[0].hypot(p[1])));
        let motion = motion_field(w, h, &landmarks, &d)?;
        let apex = render(&onset, &motion)?;
        let gt = forward_flow(&motion);
        let name = au::info(number).map_or("", |i| i.name);
        let side_note = side.map_or(String::new(), |s| format!(" ({s:?} side)"));
        let title = format!(
            "AU{number} {name}{side_note}, intensity {intensity}, max residual {:.1e} px",
            gt.max_residual
        );
        let sheet = contact_sheet(&onset, &apex, &gt.flow, &title)?;
        let path = out_dir.join(format!("au{number:02}_sheet.png"));
        write_image(&path, &sheet)?;
        println!(
            "AU{number:<2} {name:<24} landmark peak {peak:5.2} px ({:.3} IOD), \
             flow max {:5.2} px, residual {:.2e} px, {} iterations -> {}",
            peak / iod,
            max_magnitude(&gt.flow),
            gt.max_residual,
            gt.iterations,
            path.display()
        );
    }
    Ok(())
}
