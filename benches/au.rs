//! `actfer au` speed on one image, end to end (detection, mesh, blendshapes, measures, AU
//! evidence, fer classifier, prototype inference), against the face pipeline alone (detection
//! and mesh) as the baseline in the same run:
//!
//!     cargo bench --bench au
//!
//! Prints faces/s for both and their ratio. `ACTFER_BENCH_N` sets the repetitions (default
//! 30).
//!
//! The build is portable (the kernels pick their code at run time);
//! `RUSTFLAGS="-C target-cpu=native" cargo bench --bench au` builds for this CPU only.

use std::time::Instant;

use actfer::evidence::AppearanceModels;
use actfer::media::read_image;
use actfer::models::ModelStore;
use candle_core::Device;

fn main() -> anyhow::Result<()> {
    let n: usize = std::env::var("ACTFER_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let store = ModelStore::from_env()?;
    let photo = store.home().join("testdata/single_face.jpg");
    let image = read_image(&photo)?;
    let models = AppearanceModels::load(&store, &Device::Cpu)?;
    println!(
        "{} ({}x{}), {n} runs each",
        photo.display(),
        image.width,
        image.height
    );

    // Warm-up, and the face count both rows divide by.
    let faces = models.analyse(&image)?.len();
    anyhow::ensure!(faces > 0, "no face in {}", photo.display());

    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(models.faces.faces(&image)?);
    }
    let pipeline = (n * faces) as f64 / t.elapsed().as_secs_f64();

    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(models.analyse(&image)?);
    }
    let au = (n * faces) as f64 / t.elapsed().as_secs_f64();

    println!("{:<44} {:>8}", "stage", "faces/s");
    println!(
        "{:<44} {:>8.1}",
        "face pipeline (MTCNN + mesh), baseline", pipeline
    );
    println!(
        "{:<44} {:>8.1}",
        "au end to end (+ blendshapes, fer, AUs)", au
    );
    println!("au / baseline speed ratio: {:.2}", au / pipeline);
    Ok(())
}
