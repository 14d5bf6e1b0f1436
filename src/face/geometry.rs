//! 2-D points and affine transforms. Name transforms after the spaces they map between:
//! `image_from_crop.apply(p_crop)` gives the image point of a crop point.

use opencv::core::{Mat, Scalar, Size, BORDER_REPLICATE};
use opencv::imgproc;
use serde::Serialize;

use crate::error::Result;
use crate::media::RgbImage;

/// A point `[x, y]` in pixels.
pub type Point = [f32; 2];

/// A 2-D affine map `p' = A p + t`, stored as the 2x3 matrix `[[a, b, tx], [c, d, ty]]`
/// (the layout OpenCV's `warpAffine` takes).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Affine2 {
    pub m: [[f32; 3]; 2],
}

impl Affine2 {
    pub const IDENTITY: Affine2 = Affine2 {
        m: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]],
    };

    /// Rotation by `angle` radians (counter-clockwise in a y-up frame; clockwise on screen,
    /// where y points down), uniform scale `scale`, then translation `t`.
    pub fn similarity(scale: f32, angle: f32, t: Point) -> Self {
        let (s, c) = angle.sin_cos();
        Affine2 {
            m: [[scale * c, -scale * s, t[0]], [scale * s, scale * c, t[1]]],
        }
    }

    pub fn apply(&self, p: Point) -> Point {
        let m = &self.m;
        [
            m[0][0] * p[0] + m[0][1] * p[1] + m[0][2],
            m[1][0] * p[0] + m[1][1] * p[1] + m[1][2],
        ]
    }

    /// The inverse map; `None` when the matrix is singular.
    pub fn inverse(&self) -> Option<Self> {
        let [[a, b, tx], [c, d, ty]] = self.m;
        let det = a * d - b * c;
        if det.abs() < 1e-12 {
            return None;
        }
        let (ia, ib, ic, id) = (d / det, -b / det, -c / det, a / det);
        Some(Affine2 {
            m: [
                [ia, ib, -(ia * tx + ib * ty)],
                [ic, id, -(ic * tx + id * ty)],
            ],
        })
    }

    /// `self ∘ inner`: first `inner`, then `self`. With names,
    /// `image_from_crop.then_from(crop_from_aligned)` is `image_from_aligned`.
    pub fn then_from(&self, inner: &Affine2) -> Self {
        let (a, b) = (&self.m, &inner.m);
        let mut m = [[0.0; 3]; 2];
        for r in 0..2 {
            for c in 0..3 {
                m[r][c] =
                    a[r][0] * b[0][c] + a[r][1] * b[1][c] + if c == 2 { a[r][2] } else { 0.0 };
            }
        }
        Affine2 { m }
    }

    /// The uniform scale of a similarity transform (length of the first column).
    pub fn scale(&self) -> f32 {
        self.m[0][0].hypot(self.m[1][0])
    }
}

/// How [`warp_image`] samples the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interpolation {
    Bilinear,
    /// Sharper when enlarging (zoom).
    Bicubic,
}

/// Resamples `src` into a `width` x `height` image through `dst_from_src`; pixels that fall
/// outside the source repeat its border.
pub fn warp_image(
    src: &RgbImage,
    dst_from_src: &Affine2,
    width: u32,
    height: u32,
    interp: Interpolation,
) -> Result<RgbImage> {
    warp_image_f64(
        src,
        &dst_from_src.m.map(|row| row.map(f64::from)),
        width,
        height,
        interp,
    )
}

/// [`warp_image`] with the 2x3 matrix in f64, for callers that must match a reference warp
/// to the last bit (the mesh crop).
pub fn warp_image_f64(
    src: &RgbImage,
    dst_from_src: &[[f64; 3]; 2],
    width: u32,
    height: u32,
    interp: Interpolation,
) -> Result<RgbImage> {
    let m = Mat::from_slice_2d(dst_from_src)?;
    let flags = match interp {
        Interpolation::Bilinear => imgproc::INTER_LINEAR,
        Interpolation::Bicubic => imgproc::INTER_CUBIC,
    };
    let mut out = Mat::default();
    imgproc::warp_affine(
        &src.to_bgr_mat()?,
        &mut out,
        &m,
        Size::new(width as i32, height as i32),
        flags,
        BORDER_REPLICATE,
        Scalar::default(),
    )?;
    RgbImage::from_bgr_mat(&out)
}

/// The similarity that maps `src[0] -> dst[0]` and `src[1] -> dst[1]` exactly.
pub fn similarity_from_pairs(src: [Point; 2], dst: [Point; 2]) -> Option<Affine2> {
    // In complex numbers: z' = a z + b with a = (d1 - d0) / (s1 - s0).
    let (sx, sy) = (src[1][0] - src[0][0], src[1][1] - src[0][1]);
    let (dx, dy) = (dst[1][0] - dst[0][0], dst[1][1] - dst[0][1]);
    let n = sx * sx + sy * sy;
    if n < 1e-12 {
        return None;
    }
    let (ar, ai) = ((dx * sx + dy * sy) / n, (dy * sx - dx * sy) / n);
    let t = [
        dst[0][0] - (ar * src[0][0] - ai * src[0][1]),
        dst[0][1] - (ai * src[0][0] + ar * src[0][1]),
    ];
    Some(Affine2 {
        m: [[ar, -ai, t[0]], [ai, ar, t[1]]],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: Point, b: Point) -> bool {
        (a[0] - b[0]).abs() < 1e-4 && (a[1] - b[1]).abs() < 1e-4
    }

    #[test]
    fn inverse_and_composition_round_trip() {
        let crop_from_image = Affine2::similarity(0.5, 0.3, [10.0, -4.0]);
        let image_from_crop = crop_from_image.inverse().unwrap();
        let p = [123.0, 45.0];
        assert!(close(image_from_crop.apply(crop_from_image.apply(p)), p));
        let identity = image_from_crop.then_from(&crop_from_image);
        assert!(close(identity.apply(p), p));
        assert!((crop_from_image.scale() - 0.5).abs() < 1e-6);
    }

    #[test]
    fn similarity_from_two_pairs_is_exact() {
        let src = [[100.0, 120.0], [160.0, 100.0]];
        let dst = [[82.0, 92.0], [174.0, 92.0]];
        let t = similarity_from_pairs(src, dst).unwrap();
        assert!(close(t.apply(src[0]), dst[0]) && close(t.apply(src[1]), dst[1]));
        assert!(similarity_from_pairs([[1.0, 1.0], [1.0, 1.0]], dst).is_none());
    }

    #[test]
    fn warp_moves_pixels_where_the_transform_says() {
        let mut src = RgbImage::new(40, 30);
        let i = (10 * 40 + 20) * 3;
        src.data[i..i + 3].copy_from_slice(&[255, 0, 0]);
        // Shift by (+5, +3): the red pixel moves from (20, 10) to (25, 13).
        let shift = Affine2 {
            m: [[1.0, 0.0, 5.0], [0.0, 1.0, 3.0]],
        };
        let out = warp_image(&src, &shift, 40, 30, Interpolation::Bilinear).unwrap();
        assert_eq!(out.pixel(25, 13), [255, 0, 0]);
        assert_eq!(out.pixel(20, 10), [0, 0, 0]);
    }

    #[test]
    fn similarity_rotates_clockwise_on_screen() {
        // +90 degrees maps the x axis onto +y, which is downwards on screen.
        let r = Affine2::similarity(1.0, std::f32::consts::FRAC_PI_2, [0.0, 0.0]);
        assert!(close(r.apply([1.0, 0.0]), [0.0, 1.0]));
    }
}
