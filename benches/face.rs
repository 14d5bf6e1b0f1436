//! Face perception speed on 640x360 frames of the demo clip, one run, with the classic
//! OpenCV Haar cascade as the baseline:
//!
//!     cargo bench --bench face
//!
//! Prints MTCNN frames/s, Haar frames/s and their ratio, and mesh ms per face.
//!
//! The build is portable (the kernels pick their code at run time);
//! `RUSTFLAGS="-C target-cpu=native" cargo bench --bench face` builds for this CPU only.

use std::time::Instant;

use actfer::face::mesh::FaceMesh;
use actfer::face::mtcnn::Mtcnn;
use actfer::media::{Media, OpenOptions, RgbImage};
use actfer::models::ModelStore;
use candle_core::Device;
use opencv::core::{Mat, Size, Vector};
use opencv::imgproc;
use opencv::objdetect::CascadeClassifier;
use opencv::prelude::*;

const FRAMES: usize = 48;
const HAAR: &str = "/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml";

fn main() -> anyhow::Result<()> {
    let store = ModelStore::from_env()?;
    let clip = store.home().join("testdata/WolfgangLanger_Pexels.mp4");
    let media = Media::open(&clip, &OpenOptions::default())?;
    let frames: Vec<RgbImage> = media
        .frames()?
        .take(FRAMES)
        .map(|f| f.map(|f| f.image))
        .collect::<Result<_, _>>()?;
    let (w, h) = (frames[0].width, frames[0].height);
    println!(
        "{} frames of {} ({w}x{h}), {} threads",
        frames.len(),
        clip.display(),
        rayon_threads()
    );

    // Baseline: OpenCV's Haar cascade with its usual settings.
    let mut haar = CascadeClassifier::new(HAAR)?;
    let greys: Vec<Mat> = frames
        .iter()
        .map(|f| {
            let mut g = Mat::default();
            imgproc::cvt_color(&f.to_bgr_mat().unwrap(), &mut g, imgproc::COLOR_BGR2GRAY, 0)
                .unwrap();
            g
        })
        .collect();
    let t = Instant::now();
    let mut haar_faces = 0;
    for g in &greys {
        let mut found = Vector::<opencv::core::Rect>::new();
        haar.detect_multi_scale(g, &mut found, 1.1, 3, 0, Size::new(20, 20), Size::default())?;
        haar_faces += found.len();
    }
    let haar_fps = frames.len() as f64 / t.elapsed().as_secs_f64();

    let device = Device::Cpu;
    let mtcnn = Mtcnn::load(&store.require("mtcnn")?, &device)?;
    mtcnn.detect(&frames[0])?; // warm-up
    let t = Instant::now();
    let mut detections = Vec::new();
    for f in &frames {
        detections.push(mtcnn.detect(f)?);
    }
    let mtcnn_fps = frames.len() as f64 / t.elapsed().as_secs_f64();
    let mtcnn_faces: usize = detections.iter().map(Vec::len).sum();

    let mesh = FaceMesh::load(&store.require("face-landmarker")?, &device)?;
    let pairs: Vec<(&RgbImage, _)> = frames
        .iter()
        .zip(&detections)
        .filter_map(|(f, d)| d.first().map(|d| (f, d.clone())))
        .collect();
    mesh.landmarks(pairs[0].0, &pairs[0].1)?; // warm-up
    let t = Instant::now();
    for (f, d) in &pairs {
        mesh.landmarks(f, d)?;
    }
    let mesh_ms = t.elapsed().as_secs_f64() * 1000.0 / pairs.len() as f64;

    println!("{:<28} {:>10} {:>8}", "method", "frames/s", "faces");
    println!(
        "{:<28} {:>10.1} {:>8}",
        "OpenCV Haar cascade", haar_fps, haar_faces
    );
    println!(
        "{:<28} {:>10.1} {:>8}",
        "MTCNN (candle)", mtcnn_fps, mtcnn_faces
    );
    println!("MTCNN / Haar speed ratio: {:.2}", mtcnn_fps / haar_fps);
    println!(
        "mesh: {mesh_ms:.2} ms per face ({:.1} faces/s) over {} faces",
        1000.0 / mesh_ms,
        pairs.len()
    );
    Ok(())
}

fn rayon_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
