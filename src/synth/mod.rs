//! SynthME motion model: per-AU landmark displacement templates ([`templates`]), made dense
//! by a thin-plate spline ([`field`]), scaled over time by an onset -> apex -> offset profile
//! ([`profile`]), and applied to a photo by bilinear warping with a matching ground-truth
//! optical flow ([`warp`]); [`sheet`] lays a pair and its flow out for checking by eye.
//!
//! The dataset generator on top: real identities split by person ([`identity`]), clips drawn
//! from a seed ([`rng`], [`spec`]), rendered with nuisances and exact ground-truth flow
//! ([`clip`]), written with one labels file ([`labels`], [`generate`]).

pub mod clip;
pub mod field;
pub mod generate;
pub mod identity;
pub mod labels;
pub mod profile;
pub mod rng;
pub mod sheet;
pub mod spec;
pub mod templates;
pub mod warp;

pub use field::{motion_field, Tps};
pub use profile::Profile;
pub use sheet::contact_sheet;
pub use templates::{landmark_displacements, Activation};
pub use warp::{forward_flow, render, warp_backward, ForwardFlow};

/// A synthetic frontal 68-point face for tests: iBUG order, the subject's right side on the
/// image's left, centred at (`cx`, `cy`), inter-ocular distance (between eye centres) `iod`.
#[cfg(test)]
pub(crate) fn test_face(cx: f32, cy: f32, iod: f32) -> [crate::face::Point; 68] {
    use std::f32::consts::PI;
    let s = iod / 2.0;
    let mut p = [[0.0f32; 2]; 68];
    let at = |x: f32, y: f32| [cx + x * s, cy + y * s];
    // Jaw 0-16: lower half ellipse from the right temple (image-left) to the left one.
    for (i, q) in p.iter_mut().enumerate().take(17) {
        let a = PI * (i as f32) / 16.0;
        *q = at(-1.9 * a.cos(), -0.2 + 2.1 * a.sin());
    }
    // Brows 17-21 and 22-26: arcs above the eyes.
    for k in 0..5 {
        let t = k as f32 / 4.0;
        p[17 + k] = at(-1.8 + 1.45 * t, -0.95 - 0.25 * (PI * t).sin());
        p[26 - k] = at(1.8 - 1.45 * t, -0.95 - 0.25 * (PI * t).sin());
    }
    // Nose bridge 27-30, base 31-35.
    for k in 0..4 {
        p[27 + k] = at(0.0, -0.55 + 0.3 * k as f32);
    }
    for k in 0..5 {
        p[31 + k] = at(
            -0.4 + 0.2 * k as f32,
            0.55 + 0.08 * (1.0 - (k as f32 - 2.0).abs() / 2.0),
        );
    }
    // Eyes 36-41 (right, image-left) and 42-47, six points round an ellipse each.
    let eye = |c: f32, first: usize, p: &mut [[f32; 2]; 68]| {
        for k in 0..6 {
            let a = PI + PI * k as f32 / 3.0;
            p[first + k] = at(c + 0.45 * a.cos(), 0.22 * a.sin());
        }
    };
    eye(-1.0, 36, &mut p);
    eye(1.0, 42, &mut p);
    // Outer lip 48-59 and inner lip 60-67, ellipses round the mouth centre.
    for k in 0..12 {
        let a = PI + 2.0 * PI * k as f32 / 12.0;
        p[48 + k] = at(0.85 * a.cos(), 1.2 + 0.35 * a.sin());
    }
    for k in 0..8 {
        let a = PI + 2.0 * PI * k as f32 / 8.0;
        p[60 + k] = at(0.65 * a.cos(), 1.2 + 0.12 * a.sin());
    }
    p
}
