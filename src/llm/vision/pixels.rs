//! Image preprocessing for Qwen3-VL: an RGB image becomes the flat patch tensor the vision
//! tower reads, as Hugging Face's `Qwen2VLImageProcessor` builds it (which Qwen3-VL reuses).
//!
//! 1. Resize so that both sides are multiples of `patch_size * merge_size` and the area lies
//!    in `[min_pixels, max_pixels]` (`smart_resize`); OpenCV `INTER_CUBIC` stands in for PIL's
//!    bicubic.
//! 2. Normalise: `x = (pixel / 255 - mean) / std`, per channel.
//! 3. Repeat the image `temporal_patch_size` times (a still image is a clip of identical
//!    frames) and cut it into `patch_size` squares, ordered merge block by merge block so that
//!    the `merge_size x merge_size` patches the merger joins are adjacent rows.

use std::path::Path;

use candle_core::{Device, Tensor};
use candle_transformers::models::qwen3_vl::config::VisionConfig;
use opencv::core::{Mat, Size};
use opencv::imgproc;
use opencv::prelude::*;

use crate::error::{Error, Result};
use crate::media::RgbImage;

/// Defaults of Qwen3-VL's `preprocessor_config.json`, used for what the file leaves out.
const DEFAULT_MEAN: [f32; 3] = [0.5, 0.5, 0.5];
const DEFAULT_STD: [f32; 3] = [0.5, 0.5, 0.5];
const DEFAULT_MIN_PIXELS: usize = 65_536;
const DEFAULT_MAX_PIXELS: usize = 16_777_216;

/// How images are turned into patches for one model.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageProcessor {
    pub patch_size: usize,
    pub merge_size: usize,
    pub temporal_patch_size: usize,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    pub min_pixels: usize,
    pub max_pixels: usize,
}

/// The vision tower's input for one image.
#[derive(Debug, Clone)]
pub struct ImagePatches {
    /// `[t * h * w, 3 * temporal_patch_size * patch_size * patch_size]`, f32.
    pub pixel_values: Tensor,
    /// The grid in patches: `[t, h, w]`.
    pub grid_thw: [usize; 3],
    /// How many image placeholder tokens the prompt needs: `t * h * w / merge_size^2`.
    pub num_tokens: usize,
}

/// The parts of `preprocessor_config.json` read here; all optional.
#[derive(Debug, Default, serde::Deserialize)]
struct PreprocessorFile {
    image_mean: Option<[f32; 3]>,
    image_std: Option<[f32; 3]>,
    min_pixels: Option<usize>,
    max_pixels: Option<usize>,
    size: Option<SizeField>,
}

/// `size` in newer processor files: the pixel-count bounds under other names.
#[derive(Debug, Default, serde::Deserialize)]
struct SizeField {
    shortest_edge: Option<usize>,
    longest_edge: Option<usize>,
}

impl ImageProcessor {
    /// The processor for a model: patch geometry from its vision config, mean, std and pixel
    /// bounds from `preprocessor_config.json` when given (Qwen3-VL's defaults otherwise).
    pub fn new(vision: &VisionConfig, preprocessor: Option<&Path>) -> Result<Self> {
        let file = match preprocessor {
            None => PreprocessorFile::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
                serde_json::from_str(&text).map_err(|e| {
                    Error::bad_input(path, format!("not a preprocessor config: {e}"))
                })?
            }
        };
        let size = file.size.unwrap_or_default();
        Ok(ImageProcessor {
            patch_size: vision.patch_size,
            merge_size: vision.spatial_merge_size,
            temporal_patch_size: vision.temporal_patch_size,
            mean: file.image_mean.unwrap_or(DEFAULT_MEAN),
            std: file.image_std.unwrap_or(DEFAULT_STD),
            min_pixels: file
                .min_pixels
                .or(size.shortest_edge)
                .unwrap_or(DEFAULT_MIN_PIXELS),
            max_pixels: file
                .max_pixels
                .or(size.longest_edge)
                .unwrap_or(DEFAULT_MAX_PIXELS),
        })
    }

    /// The size `(width, height)` an image is resized to (Hugging Face's `smart_resize`):
    /// sides rounded to multiples of `patch_size * merge_size`, then scaled, keeping the aspect
    /// ratio, into the pixel bounds.
    pub fn target_size(&self, width: u32, height: u32) -> (u32, u32) {
        let factor = (self.patch_size * self.merge_size) as f64;
        let (w, h) = (width as f64, height as f64);
        let round = |v: f64| ((v / factor).round() * factor).max(factor);
        let (mut w_bar, mut h_bar) = (round(w), round(h));
        if h_bar * w_bar > self.max_pixels as f64 {
            let beta = (h * w / self.max_pixels as f64).sqrt();
            h_bar = ((h / beta / factor).floor() * factor).max(factor);
            w_bar = ((w / beta / factor).floor() * factor).max(factor);
        } else if h_bar * w_bar < self.min_pixels as f64 {
            let beta = (self.min_pixels as f64 / (h * w)).sqrt();
            h_bar = (h * beta / factor).ceil() * factor;
            w_bar = (w * beta / factor).ceil() * factor;
        }
        (w_bar as u32, h_bar as u32)
    }

    /// Resizes, normalises and cuts an image into the vision tower's patches.
    pub fn patches(&self, image: &RgbImage, device: &Device) -> Result<ImagePatches> {
        if image.width == 0 || image.height == 0 {
            return Err(Error::Internal("cannot describe an empty image".into()));
        }
        let (width, height) = self.target_size(image.width, image.height);
        let rgb = resize_cubic(image, width, height)?;
        let (ps, m, tps) = (self.patch_size, self.merge_size, self.temporal_patch_size);
        let (w, h) = (width as usize, height as usize);
        let (grid_h, grid_w) = (h / ps, w / ps);

        // channel-major normalised planes: [3, h, w]
        let mut planes = vec![0f32; 3 * h * w];
        for (i, px) in rgb.chunks_exact(3).enumerate() {
            for c in 0..3 {
                planes[c * h * w + i] = (px[c] as f32 / 255.0 - self.mean[c]) / self.std[c];
            }
        }

        // rows ordered (block_row, block_col, inner_row, inner_col); each row holds
        // (channel, frame, y, x) of one patch
        let row_len = 3 * tps * ps * ps;
        let mut values = Vec::with_capacity(grid_h * grid_w * row_len);
        for block_row in 0..grid_h / m {
            for block_col in 0..grid_w / m {
                for inner_row in 0..m {
                    for inner_col in 0..m {
                        let top = (block_row * m + inner_row) * ps;
                        let left = (block_col * m + inner_col) * ps;
                        for c in 0..3 {
                            let plane = &planes[c * h * w..(c + 1) * h * w];
                            for _frame in 0..tps {
                                for y in top..top + ps {
                                    values
                                        .extend_from_slice(&plane[y * w + left..y * w + left + ps]);
                                }
                            }
                        }
                    }
                }
            }
        }
        let rows = grid_h * grid_w;
        Ok(ImagePatches {
            pixel_values: Tensor::from_vec(values, (rows, row_len), device)?,
            grid_thw: [1, grid_h, grid_w],
            num_tokens: rows / (m * m),
        })
    }
}

/// The image's pixels resized with OpenCV `INTER_CUBIC`, interleaved RGB.
fn resize_cubic(image: &RgbImage, width: u32, height: u32) -> Result<Vec<u8>> {
    if (width, height) == (image.width, image.height) {
        return Ok(image.data.clone());
    }
    let flat = Mat::from_slice(&image.data)?;
    let src = flat.reshape(3, image.height as i32)?;
    let mut out = Mat::default();
    let size = Size::new(width as i32, height as i32);
    imgproc::resize(&src, &mut out, size, 0.0, 0.0, imgproc::INTER_CUBIC)?;
    Ok(out.data_bytes()?.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn processor() -> ImageProcessor {
        ImageProcessor {
            patch_size: 16,
            merge_size: 2,
            temporal_patch_size: 2,
            mean: DEFAULT_MEAN,
            std: DEFAULT_STD,
            min_pixels: 64 * 64,
            max_pixels: 256 * 256,
        }
    }

    #[test]
    fn sizes_are_multiples_of_the_merged_patch_within_bounds() {
        let p = processor();
        assert_eq!(p.target_size(64, 64), (64, 64));
        assert_eq!(p.target_size(100, 70), (96, 64));
        // too large: scaled down into max_pixels
        let (w, h) = p.target_size(1000, 500);
        assert!(w * h <= 256 * 256 && w % 32 == 0 && h % 32 == 0, "{w}x{h}");
        // too small: scaled up to min_pixels
        let (w, h) = p.target_size(10, 10);
        assert!(w * h >= 64 * 64 && w % 32 == 0, "{w}x{h}");
    }

    #[test]
    fn patches_follow_the_merge_block_order() {
        let mut p = processor();
        p.patch_size = 1;
        p.temporal_patch_size = 1;
        p.min_pixels = 1;
        // 4x2 image whose red channel is its column index * 10
        let mut image = RgbImage::new(4, 2);
        for y in 0..2 {
            for x in 0..4 {
                image.data[(y * 4 + x) * 3] = (x * 10) as u8;
            }
        }
        let patches = p.patches(&image, &Device::Cpu).unwrap();
        assert_eq!(patches.grid_thw, [1, 2, 4]);
        assert_eq!(patches.num_tokens, 2);
        let red: Vec<f32> = patches
            .pixel_values
            .to_vec2::<f32>()
            .unwrap()
            .iter()
            .map(|row| ((row[0] * 0.5 + 0.5) * 255.0).round())
            .collect();
        // block 0 holds columns 0, 1 of both rows, then block 1 columns 2, 3
        assert_eq!(red, [0.0, 10.0, 0.0, 10.0, 20.0, 30.0, 20.0, 30.0]);
    }
}
