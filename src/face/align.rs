//! Alignment to a canonical frontal template: a similarity transform (rotation, uniform
//! scale, translation) that puts the eye centres level at fixed positions, so an aligned face
//! of a given size always has the same inter-ocular distance.

use serde::Serialize;

use super::geometry::{similarity_from_pairs, warp_image, Interpolation};
use super::{Affine2, Detection, Point};
use crate::error::{Error, Result};
use crate::media::RgbImage;

/// Where the eye centres sit in the aligned face, as fractions of its side: the subject's
/// right eye (image left) first. 0.36 of the side apart, a third of the way down: the brows,
/// both cheeks and the chin fit inside the square.
pub const TEMPLATE_EYES: [Point; 2] = [[0.32, 0.36], [0.68, 0.36]];

/// Default side of the aligned face in pixels.
pub const DEFAULT_ALIGNED_SIZE: u32 = 256;

/// A face's alignment: the transforms between image pixels and aligned pixels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Alignment {
    /// Side of the square aligned face in pixels.
    pub size: u32,
    pub aligned_from_image: Affine2,
    pub image_from_aligned: Affine2,
}

impl Alignment {
    /// The alignment that puts these eye centres (image pixels; image-left eye first) on the
    /// template.
    pub fn from_eyes(image_left_eye: Point, image_right_eye: Point, size: u32) -> Result<Self> {
        let s = size as f32;
        let dst = TEMPLATE_EYES.map(|[x, y]| [x * s, y * s]);
        let aligned_from_image = similarity_from_pairs([image_left_eye, image_right_eye], dst)
            .ok_or_else(|| {
                Error::Internal("cannot align a face whose two eye centres coincide".into())
            })?;
        let image_from_aligned = aligned_from_image
            .inverse()
            .expect("a similarity with non-zero scale inverts");
        Ok(Alignment {
            size,
            aligned_from_image,
            image_from_aligned,
        })
    }

    /// From a detector's five landmarks (eyes only).
    pub fn from_detection(det: &Detection, size: u32) -> Result<Self> {
        Self::from_eyes(det.landmarks5[0], det.landmarks5[1], size)
    }

    /// From 68 landmarks: eye centres are the means of points 36-41 and 42-47.
    pub fn from_landmarks68(landmarks68: &[Point], size: u32) -> Result<Self> {
        let (r, l) = super::regions::eye_centres(landmarks68);
        Self::from_eyes(r, l, size)
    }

    /// The aligned face, resampled bilinearly.
    pub fn warp(&self, image: &RgbImage) -> Result<RgbImage> {
        warp_image(
            image,
            &self.aligned_from_image,
            self.size,
            self.size,
            Interpolation::Bilinear,
        )
    }

    /// Image points to aligned points.
    pub fn to_aligned(&self, points: &[Point]) -> Vec<Point> {
        points
            .iter()
            .map(|&p| self.aligned_from_image.apply(p))
            .collect()
    }

    /// Aligned points to image points.
    pub fn to_image(&self, points: &[Point]) -> Vec<Point> {
        points
            .iter()
            .map(|&p| self.image_from_aligned.apply(p))
            .collect()
    }

    /// Inter-ocular distance in aligned pixels (fixed by the template).
    pub fn aligned_iod(&self) -> f32 {
        (TEMPLATE_EYES[1][0] - TEMPLATE_EYES[0][0]) * self.size as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eyes_land_on_the_template_and_map_back() {
        // A tilted face: eyes at (100, 120) and (150, 100).
        let a = Alignment::from_eyes([100.0, 120.0], [150.0, 100.0], 200).unwrap();
        let aligned = a.to_aligned(&[[100.0, 120.0], [150.0, 100.0]]);
        assert!((aligned[0][0] - 64.0).abs() < 1e-3 && (aligned[0][1] - 72.0).abs() < 1e-3);
        assert!((aligned[1][0] - 136.0).abs() < 1e-3 && (aligned[1][1] - 72.0).abs() < 1e-3);
        let back = a.to_image(&aligned);
        assert!((back[1][0] - 150.0).abs() < 1e-3 && (back[1][1] - 100.0).abs() < 1e-3);
        assert!((a.aligned_iod() - 72.0).abs() < 1e-4);
    }
}
