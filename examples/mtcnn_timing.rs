//! Times MTCNN on the first frames of a clip and prints JSON.
//!
//!     RAYON_NUM_THREADS=1 cargo run --release --example mtcnn_timing -- [CLIP] [FRAMES]
//!
//! CLIP defaults to `$ACTFER_HOME/testdata/WolfgangLanger_Pexels.mp4` (640x360). Each frame is
//! detected `reps` times after one warm-up run; the median per-frame time is reported.

use std::path::PathBuf;
use std::time::Instant;

use actfer::face::mtcnn::Mtcnn;
use actfer::media::{Media, OpenOptions};
use actfer::models::ModelStore;
use candle_core::Device;

fn main() -> anyhow::Result<()> {
    let store = ModelStore::from_env()?;
    let mut args = std::env::args().skip(1);
    let clip = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| store.home().join("testdata/WolfgangLanger_Pexels.mp4"));
    let frames: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(10);
    let mtcnn = Mtcnn::load(&store.require("mtcnn")?, &Device::Cpu)?;
    let media = Media::open(&clip, &OpenOptions::default())?;
    let images: Vec<_> = media
        .frames()?
        .take(frames)
        .map(|f| f.map(|f| f.image))
        .collect::<Result<_, _>>()?;
    let reps = 5;
    let mut times = Vec::new();
    let mut faces = Vec::new();
    for img in &images {
        mtcnn.detect(img)?;
        for _ in 0..reps {
            let t = Instant::now();
            let found = mtcnn.detect(img)?;
            times.push(t.elapsed().as_secs_f64() * 1e3);
            faces.push(found.len());
        }
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!(
        "{}",
        serde_json::json!({
            "clip": clip.display().to_string(),
            "width": images[0].width,
            "height": images[0].height,
            "frames": images.len(),
            "threads": candle_core::utils::get_num_threads(),
            "median_ms": median,
            "min_ms": times[0],
            "fps": 1e3 / median,
            "faces_first_frame": faces[0],
        })
    );
    Ok(())
}
