//! Draws the 478-point mesh (small dots) and the 68-point scheme (numbered) on a photo, prints
//! the head pose and the network's speed.
//!
//! cargo run --release --example mesh_overlay -- PHOTO OUT.png [CX CY SIZE ANGLE_RAD]
//!
//! Without crop parameters the crop is the largest centred square of the photo.

use std::path::PathBuf;
use std::time::Instant;

use actfer::face::landmarks68::{self, head_pose};
use actfer::face::mesh::{warp_crop, CropSpec, FaceMesh, MODEL_NAME};
use actfer::media::{read_image, RgbImage};
use actfer::models::ModelStore;
use candle_core::Device;
use opencv::core::{Point, Scalar};
use opencv::imgproc;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(
        args.len() == 2 || args.len() == 6,
        "usage: mesh_overlay PHOTO OUT.png [CX CY SIZE ANGLE_RAD]"
    );
    let image = read_image(&PathBuf::from(&args[0]))?;
    let spec = if args.len() == 6 {
        let f = |i: usize| args[i].parse::<f32>();
        CropSpec {
            center: [f(2)?, f(3)?],
            size: f(4)?,
            angle: f(5)?,
        }
    } else {
        let (w, h) = (image.width as f32, image.height as f32);
        CropSpec {
            center: [(w - 1.0) / 2.0, (h - 1.0) / 2.0],
            size: w.min(h),
            angle: 0.0,
        }
    };
    let model = FaceMesh::load(&ModelStore::from_env()?.require(MODEL_NAME)?, &Device::Cpu)?;
    let mesh = model.landmarks_in(&image, &spec)?;
    let pose = head_pose(&mesh.points);
    println!(
        "presence {:.4}, yaw {:.1}, pitch {:.1}, roll {:.1} (degrees)",
        mesh.presence, pose.yaw, pose.pitch, pose.roll
    );

    let mut mat = image.to_bgr_mat()?;
    let px = |p: [f32; 2]| Point::new(p[0].round() as i32, p[1].round() as i32);
    for p in &mesh.points {
        imgproc::circle(
            &mut mat,
            px([p[0], p[1]]),
            1,
            Scalar::new(200.0, 200.0, 0.0, 0.0),
            -1,
            imgproc::LINE_AA,
            0,
        )?;
    }
    for (i, p) in landmarks68::from_mesh(&mesh.points).iter().enumerate() {
        imgproc::circle(
            &mut mat,
            px(*p),
            3,
            Scalar::new(0.0, 0.0, 255.0, 0.0),
            -1,
            imgproc::LINE_AA,
            0,
        )?;
        let at = px([p[0] + 3.0, p[1] - 3.0]);
        imgproc::put_text(
            &mut mat,
            &i.to_string(),
            at,
            imgproc::FONT_HERSHEY_SIMPLEX,
            0.3,
            Scalar::new(0.0, 255.0, 0.0, 0.0),
            1,
            imgproc::LINE_AA,
            false,
        )?;
    }
    actfer::media::write_image(&PathBuf::from(&args[1]), &RgbImage::from_bgr_mat(&mat)?)?;

    let (crop, _) = warp_crop(&image, &spec)?;
    for batch in [1usize, 8] {
        let crops = vec![crop.clone(); batch];
        model.run_crops(&crops)?; // warm-up
        let runs = 40 / batch.min(4);
        let t = Instant::now();
        for _ in 0..runs {
            model.run_crops(&crops)?;
        }
        let ms = t.elapsed().as_secs_f64() * 1e3 / (runs * batch) as f64;
        println!(
            "batch {batch}: {ms:.2} ms per face ({:.0} faces/s)",
            1e3 / ms
        );
    }
    Ok(())
}
