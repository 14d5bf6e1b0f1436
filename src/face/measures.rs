//! Geometric measures of a face's configuration, read off the 478-point mesh in the face's own
//! scale, for AU evidence that the blendshape network sees poorly (eye aperture, nose wrinkle,
//! lips apart, jaw drop).
//!
//! Every measure is a ratio of 3-D distances between mesh vertices (x, y in image pixels, z in
//! the same scale), so it does not change with the face's size in the image and changes little
//! with head rotation. The unit of length is the inter-ocular distance (IOD) between the outer
//! eye corners (vertices 33 and 263) unless a measure says otherwise.
//!
//! Sides are the subject's: index 0 is the subject's right (the image's left, vertex 33's
//! side), index 1 the subject's left.
//!
//! Mesh vertices used (MediaPipe's canonical face mesh numbering, as in
//! [`super::landmarks68::MESH_68`]):
//! - eyes: outer corners 33 / 263, inner corners 133 / 362, upper lid middles 159 / 386,
//!   lower lid middles 145 / 374;
//! - brows: inner ends 107 / 336, outer ends 70 / 300;
//! - nose: alar bases (nostril wings) 98 / 327, tip 4;
//! - mouth: outer corners 61 / 291, inner lip middles 13 (upper) and 14 (lower);
//! - chin: 152.

use serde::Serialize;

use super::mesh::NUM_POINTS;

/// Per side: `[subject's right, subject's left]`.
pub type Sides = [f32; 2];

/// The measures of one face.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FaceMeasures {
    /// Lid gap (upper to lower lid middle) over eye width (corner to corner). About 0.2-0.3
    /// for open eyes at rest, near 0 for closed ones, larger when the upper lid is raised.
    pub eye_opening: Sides,
    /// Inner brow end to inner eye corner, in IOD.
    pub inner_brow_height: Sides,
    /// Outer brow end to outer eye corner, in IOD.
    pub outer_brow_height: Sides,
    /// Nostril wing (alar base) to inner eye corner, in IOD: shortens when the nose wrinkles
    /// (AU9 lifts the wings and pulls the skin between the brows down).
    pub nose_to_eye: Sides,
    /// Inner lip gap (13 to 14) over mouth width (61 to 291): 0 with closed lips.
    pub lip_gap: f32,
    /// Nose tip (4) to chin (152), in IOD: grows when the jaw drops.
    pub nose_to_chin: f32,
}

/// Vertices of one side: `(outer eye corner, inner eye corner, upper lid, lower lid,
/// inner brow, outer brow, alar base)`.
const SIDES: [[usize; 7]; 2] = [
    [33, 133, 159, 145, 107, 70, 98],
    [263, 362, 386, 374, 336, 300, 327],
];
const MOUTH_CORNERS: [usize; 2] = [61, 291];
const INNER_LIPS: [usize; 2] = [13, 14];
const NOSE_TIP: usize = 4;
const CHIN: usize = 152;

impl FaceMeasures {
    /// Measures a mesh of [`NUM_POINTS`] points. Returns `None` for a mesh of another length
    /// or a degenerate one (eye corners on top of each other).
    pub fn from_mesh(points: &[[f32; 3]]) -> Option<FaceMeasures> {
        if points.len() != NUM_POINTS {
            return None;
        }
        let dist = |a: usize, b: usize| -> f32 {
            let (p, q) = (points[a], points[b]);
            ((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2) + (p[2] - q[2]).powi(2)).sqrt()
        };
        let iod = dist(SIDES[0][0], SIDES[1][0]);
        let mouth_width = dist(MOUTH_CORNERS[0], MOUTH_CORNERS[1]);
        if !(iod > 1e-3 && mouth_width > 1e-3) {
            return None;
        }
        let per_side = |f: &dyn Fn(&[usize; 7]) -> f32| [f(&SIDES[0]), f(&SIDES[1])];
        Some(FaceMeasures {
            eye_opening: per_side(&|s| dist(s[2], s[3]) / dist(s[0], s[1]).max(1e-3)),
            inner_brow_height: per_side(&|s| dist(s[4], s[1]) / iod),
            outer_brow_height: per_side(&|s| dist(s[5], s[0]) / iod),
            nose_to_eye: per_side(&|s| dist(s[6], s[1]) / iod),
            lip_gap: dist(INNER_LIPS[0], INNER_LIPS[1]) / mouth_width,
            nose_to_chin: dist(NOSE_TIP, CHIN) / iod,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A flat mesh: eyes 100 px apart, everything else where the test puts it.
    fn mesh(extra: &[(usize, [f32; 3])]) -> Vec<[f32; 3]> {
        let mut p = vec![[0.0f32; 3]; NUM_POINTS];
        for (i, v) in [
            (33, [0.0, 0.0, 0.0]),
            (263, [100.0, 0.0, 0.0]),
            (133, [30.0, 0.0, 0.0]),
            (362, [70.0, 0.0, 0.0]),
            (159, [15.0, -4.0, 0.0]),
            (145, [15.0, 4.0, 0.0]),
            (386, [85.0, -1.0, 0.0]),
            (374, [85.0, 1.0, 0.0]),
            (61, [25.0, 80.0, 0.0]),
            (291, [75.0, 80.0, 0.0]),
            (13, [50.0, 78.0, 0.0]),
            (14, [50.0, 83.0, 0.0]),
            (4, [50.0, 50.0, 0.0]),
            (152, [50.0, 150.0, 0.0]),
        ]
        .into_iter()
        .chain(extra.iter().copied())
        {
            p[i] = v;
        }
        p
    }

    #[test]
    fn ratios_in_the_face_scale() {
        let m = FaceMeasures::from_mesh(&mesh(&[])).unwrap();
        assert!((m.eye_opening[0] - 8.0 / 30.0).abs() < 1e-6);
        assert!((m.eye_opening[1] - 2.0 / 30.0).abs() < 1e-6);
        assert!((m.lip_gap - 5.0 / 50.0).abs() < 1e-6);
        assert!((m.nose_to_chin - 1.0).abs() < 1e-6);
        // Doubling the whole face changes nothing.
        let big: Vec<[f32; 3]> = mesh(&[])
            .iter()
            .map(|p| [p[0] * 2.0, p[1] * 2.0, p[2] * 2.0])
            .collect();
        assert_eq!(FaceMeasures::from_mesh(&big).unwrap(), m);
    }

    #[test]
    fn depth_counts() {
        // The lower lid 6 px deeper: the lid gap is the 3-D distance.
        let m = FaceMeasures::from_mesh(&mesh(&[(145, [15.0, 4.0, 6.0])])).unwrap();
        assert!((m.eye_opening[0] - 10.0 / 30.0).abs() < 1e-6);
    }

    #[test]
    fn refuses_bad_meshes() {
        assert!(FaceMeasures::from_mesh(&[[0.0; 3]; 68]).is_none());
        assert!(FaceMeasures::from_mesh(&vec![[1.0; 3]; NUM_POINTS]).is_none());
    }
}
