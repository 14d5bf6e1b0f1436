//! RGB images and their conversion to and from OpenCV's BGR `Mat`s.

use std::path::Path;

use opencv::core::{Mat, Vector};
use opencv::prelude::*;
use opencv::{imgcodecs, imgproc};

use crate::error::{Error, Result};

/// An 8-bit RGB image, rows top to bottom, pixels interleaved `[r, g, b]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbImage {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

impl RgbImage {
    pub fn new(width: u32, height: u32) -> Self {
        RgbImage {
            width,
            height,
            data: vec![0; width as usize * height as usize * 3],
        }
    }

    /// The pixel at column `x`, row `y`.
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let i = (y as usize * self.width as usize + x as usize) * 3;
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }

    /// Converts a BGR (3-channel) or grey (1-channel) 8-bit `Mat` from OpenCV.
    pub fn from_bgr_mat(mat: &Mat) -> Result<Self> {
        let code = match mat.channels() {
            1 => imgproc::COLOR_GRAY2RGB,
            3 => imgproc::COLOR_BGR2RGB,
            4 => imgproc::COLOR_BGRA2RGB,
            n => {
                return Err(Error::Internal(format!(
                    "cannot convert a {n}-channel image to RGB"
                )))
            }
        };
        let mut rgb = Mat::default();
        imgproc::cvt_color(mat, &mut rgb, code, 0)?;
        let size = rgb.size()?;
        Ok(RgbImage {
            width: size.width as u32,
            height: size.height as u32,
            data: rgb.data_bytes()?.to_vec(),
        })
    }

    /// An OpenCV BGR `Mat` with the same pixels.
    pub fn to_bgr_mat(&self) -> Result<Mat> {
        let flat = Mat::from_slice(&self.data)?;
        let rgb = flat.reshape(3, self.height as i32)?;
        let mut bgr = Mat::default();
        imgproc::cvt_color(&rgb, &mut bgr, imgproc::COLOR_RGB2BGR, 0)?;
        Ok(bgr)
    }
}

/// Reads a still image (any format OpenCV decodes) as RGB.
pub fn read_image(path: &Path) -> Result<RgbImage> {
    if !path.exists() {
        return Err(Error::NotFound {
            path: path.to_path_buf(),
        });
    }
    let name = path
        .to_str()
        .ok_or_else(|| Error::bad_input(path, "the path is not valid UTF-8"))?;
    // the size its header declares, before a decode that could take gigabytes
    if let Some((w, h)) = super::header::declared_size(path) {
        super::check_side(path, w, h)?;
    }
    let mat = imgcodecs::imread(name, imgcodecs::IMREAD_COLOR)?;
    if mat.empty() {
        return Err(Error::bad_input(
            path,
            "cannot be decoded as an image (corrupt, truncated or not an image)",
        ));
    }
    let image = RgbImage::from_bgr_mat(&mat)?;
    super::check_side(path, image.width, image.height)?;
    Ok(image)
}

/// Writes an RGB image; the format follows the extension (PNG, JPEG, ...).
pub fn write_image(path: &Path, image: &RgbImage) -> Result<()> {
    let name = path
        .to_str()
        .ok_or_else(|| Error::bad_input(path, "the path is not valid UTF-8"))?;
    let ok = imgcodecs::imwrite(name, &image.to_bgr_mat()?, &Vector::new())?;
    if !ok {
        return Err(Error::bad_input(
            path,
            "could not write the image (unknown extension or unwritable folder)",
        ));
    }
    Ok(())
}
