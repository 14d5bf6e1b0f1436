//! 2-D points and affine transforms. Name transforms after the spaces they map between:
//! `image_from_crop.apply(p_crop)` gives the image point of a crop point.

use serde::Serialize;

/// A point `[x, y]` in pixels.
pub type Point = [f32; 2];

/// A 2-D affine map `p' = A p + t`, stored as the 2x3 matrix `[[a, b, tx], [c, d, ty]]`
/// (the layout OpenCV's `warpAffine` takes).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Affine2 {
    pub m: [[f32; 3]; 2],
}

impl Affine2 {
    pub const IDENTITY: Affine2 = Affine2 { m: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]] };

    /// Rotation by `angle` radians (counter-clockwise in a y-up frame; clockwise on screen,
    /// where y points down), uniform scale `scale`, then translation `t`.
    pub fn similarity(scale: f32, angle: f32, t: Point) -> Self {
        let (s, c) = angle.sin_cos();
        Affine2 { m: [[scale * c, -scale * s, t[0]], [scale * s, scale * c, t[1]]] }
    }

    pub fn apply(&self, p: Point) -> Point {
        let m = &self.m;
        [m[0][0] * p[0] + m[0][1] * p[1] + m[0][2], m[1][0] * p[0] + m[1][1] * p[1] + m[1][2]]
    }

    /// The inverse map; `None` when the matrix is singular.
    pub fn inverse(&self) -> Option<Self> {
        let [[a, b, tx], [c, d, ty]] = self.m;
        let det = a * d - b * c;
        if det.abs() < 1e-12 {
            return None;
        }
        let (ia, ib, ic, id) = (d / det, -b / det, -c / det, a / det);
        Some(Affine2 { m: [[ia, ib, -(ia * tx + ib * ty)], [ic, id, -(ic * tx + id * ty)]] })
    }

    /// `self ∘ inner`: first `inner`, then `self`. With names,
    /// `image_from_crop.then_from(crop_from_aligned)` is `image_from_aligned`.
    pub fn then_from(&self, inner: &Affine2) -> Self {
        let (a, b) = (&self.m, &inner.m);
        let mut m = [[0.0; 3]; 2];
        for r in 0..2 {
            for c in 0..3 {
                m[r][c] = a[r][0] * b[0][c] + a[r][1] * b[1][c] + if c == 2 { a[r][2] } else { 0.0 };
            }
        }
        Affine2 { m }
    }

    /// The uniform scale of a similarity transform (length of the first column).
    pub fn scale(&self) -> f32 {
        self.m[0][0].hypot(self.m[1][0])
    }
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
    fn similarity_rotates_clockwise_on_screen() {
        // +90 degrees maps the x axis onto +y, which is downwards on screen.
        let r = Affine2::similarity(1.0, std::f32::consts::FRAC_PI_2, [0.0, 0.0]);
        assert!(close(r.apply([1.0, 0.0]), [0.0, 1.0]));
    }
}
