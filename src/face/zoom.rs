//! Zoom: a region or box cut out of a frame or an aligned face and enlarged for inspection.

use std::path::Path;

use super::geometry::{warp_image, Interpolation};
use super::regions::{self, Region};
use super::{Affine2, FaceBox, Point};
use crate::error::{Error, Result};
use crate::media::{write_image, RgbImage};

/// Default width of a zoomed crop in pixels.
pub const DEFAULT_ZOOM_WIDTH: u32 = 256;

/// A zoomed crop and where it came from.
#[derive(Debug, Clone)]
pub struct Zoom {
    pub image: RgbImage,
    /// The box in the source's pixels.
    pub source_box: FaceBox,
    /// Crop pixels to source pixels.
    pub source_from_crop: Affine2,
}

impl Zoom {
    pub fn save_png(&self, path: &Path) -> Result<()> {
        write_image(path, &self.image)
    }
}

/// Cuts `bbox` out of `source` and scales it to `width` pixels wide (aspect kept). Parts of
/// the box outside the source repeat the border.
pub fn zoom_box(source: &RgbImage, bbox: &FaceBox, width: u32) -> Result<Zoom> {
    if !(bbox.width() > 0.0 && bbox.height() > 0.0) {
        return Err(Error::Internal(format!(
            "cannot zoom into an empty box {bbox:?}"
        )));
    }
    let scale = width as f32 / bbox.width();
    let height = (bbox.height() * scale).round().max(1.0) as u32;
    let crop_from_source = Affine2 {
        m: [
            [scale, 0.0, -bbox.x0 * scale],
            [0.0, scale, -bbox.y0 * scale],
        ],
    };
    let image = warp_image(
        source,
        &crop_from_source,
        width,
        height,
        Interpolation::Bicubic,
    )?;
    let source_from_crop = crop_from_source.inverse().expect("positive scale");
    Ok(Zoom {
        image,
        source_box: *bbox,
        source_from_crop,
    })
}

/// Zooms into a named region of the region table, located by the face's 68 landmarks (given
/// in `source`'s pixels: the frame or the aligned face).
pub fn zoom_region(
    source: &RgbImage,
    landmarks68: &[Point],
    region_name: &str,
    width: u32,
) -> Result<Zoom> {
    let region: &Region = regions::region(region_name).ok_or_else(|| {
        let names: Vec<&str> = regions::REGIONS.iter().map(|r| r.name).collect();
        Error::Internal(format!(
            "unknown region {region_name:?}; known regions: {}",
            names.join(", ")
        ))
    })?;
    zoom_box(source, &region.bbox(landmarks68), width)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zoom_enlarges_the_box_content() {
        let mut src = RgbImage::new(100, 80);
        // A white 10x10 square at (40..50, 30..40).
        for y in 30..40 {
            for x in 40..50 {
                let i = (y * 100 + x) * 3;
                src.data[i..i + 3].copy_from_slice(&[255, 255, 255]);
            }
        }
        let z = zoom_box(
            &src,
            &FaceBox {
                x0: 40.0,
                y0: 30.0,
                x1: 50.0,
                y1: 40.0,
            },
            40,
        )
        .unwrap();
        assert_eq!((z.image.width, z.image.height), (40, 40));
        assert_eq!(z.image.pixel(20, 20), [255, 255, 255]);
        let p = z.source_from_crop.apply([20.0, 20.0]);
        assert!((p[0] - 45.0).abs() < 1e-4 && (p[1] - 35.0).abs() < 1e-4);
    }
}
