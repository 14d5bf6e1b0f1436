//! Dense motion from sparse landmark displacements: a thin-plate spline (TPS) through the
//! moved landmarks, pinned at zero on the still jaw line and on a ring along the frame
//! border, so the motion stays on the face.
//!
//! The TPS interpolant is `f(p) = a0 + a1 x + a2 y + sum_i w_i U(|p - c_i|)` with
//! `U(r) = r^2 ln r` (`U(0) = 0`), one per component, with `sum w_i = sum w_i x_i =
//! sum w_i y_i = 0`; it passes through every control value exactly and minimises the bending
//! energy. The (n + 3)-square linear system is solved by Gaussian elimination with partial
//! pivoting, in f64, on coordinates centred and scaled to about unit size (which leaves the
//! interpolant unchanged and keeps the system well conditioned).

use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::eval::flow::Flow;
use crate::face::Point;

/// Control points closer than this (px) are merged into one, with the mean of their values:
/// coincident points with different values have no interpolant.
pub const MERGE_DISTANCE: f32 = 0.5;
/// Border anchors per image side (corners counted once), pinned at zero displacement.
pub const BORDER_ANCHORS_PER_SIDE: usize = 8;

/// A fitted 2-D thin-plate spline mapping a point to a 2-vector.
#[derive(Debug, Clone)]
pub struct Tps {
    origin: [f64; 2],
    scale: f64,
    /// Control points in normalised coordinates.
    centres: Vec<[f64; 2]>,
    /// Kernel weights per control point, one per component.
    weights: Vec<[f64; 2]>,
    /// Affine part `[a0, a1, a2]` per component.
    affine: [[f64; 2]; 3],
}

fn kernel(r2: f64) -> f64 {
    if r2 <= 0.0 {
        0.0
    } else {
        0.5 * r2 * r2.ln()
    }
}

impl Tps {
    /// Fits the spline through `values[i]` at `points[i]`. Needs at least 3 points not all
    /// on one line; fails when the system is singular (coincident or collinear points).
    pub fn fit(points: &[Point], values: &[Point]) -> Result<Tps> {
        if points.len() != values.len() {
            return Err(Error::Internal(format!(
                "TPS fit: {} points but {} values",
                points.len(),
                values.len()
            )));
        }
        let n = points.len();
        if n < 3 {
            return Err(Error::Internal(format!(
                "TPS fit needs at least 3 control points, got {n}"
            )));
        }
        let mut origin = [0.0f64; 2];
        for p in points {
            origin[0] += p[0] as f64 / n as f64;
            origin[1] += p[1] as f64 / n as f64;
        }
        let mut scale = 0.0f64;
        for p in points {
            scale = scale.max((p[0] as f64 - origin[0]).abs());
            scale = scale.max((p[1] as f64 - origin[1]).abs());
        }
        let scale = if scale > 0.0 { scale } else { 1.0 };
        let centres: Vec<[f64; 2]> = points
            .iter()
            .map(|p| {
                [
                    (p[0] as f64 - origin[0]) / scale,
                    (p[1] as f64 - origin[1]) / scale,
                ]
            })
            .collect();
        let m = n + 3;
        let mut a = vec![0.0f64; m * m];
        let mut b = vec![0.0f64; m * 2];
        for i in 0..n {
            for j in 0..n {
                let dx = centres[i][0] - centres[j][0];
                let dy = centres[i][1] - centres[j][1];
                a[i * m + j] = kernel(dx * dx + dy * dy);
            }
            let row = [1.0, centres[i][0], centres[i][1]];
            for (k, &v) in row.iter().enumerate() {
                a[i * m + n + k] = v;
                a[(n + k) * m + i] = v;
            }
            b[i * 2] = values[i][0] as f64;
            b[i * 2 + 1] = values[i][1] as f64;
        }
        let x = solve(&mut a, &mut b, m, 2).ok_or_else(|| {
            Error::Internal(format!(
                "TPS system with {n} control points is singular \
                 (points coincide or all lie on one line)"
            ))
        })?;
        let weights = (0..n).map(|i| [x[i * 2], x[i * 2 + 1]]).collect();
        let affine = [0, 1, 2].map(|k| [x[(n + k) * 2], x[(n + k) * 2 + 1]]);
        Ok(Tps {
            origin,
            scale,
            centres,
            weights,
            affine,
        })
    }

    /// The interpolated value at `p` (same pixels as the fit).
    pub fn eval(&self, p: Point) -> Point {
        let x = (p[0] as f64 - self.origin[0]) / self.scale;
        let y = (p[1] as f64 - self.origin[1]) / self.scale;
        let mut out = [
            self.affine[0][0] + self.affine[1][0] * x + self.affine[2][0] * y,
            self.affine[0][1] + self.affine[1][1] * x + self.affine[2][1] * y,
        ];
        for (c, w) in self.centres.iter().zip(&self.weights) {
            let (dx, dy) = (x - c[0], y - c[1]);
            let u = kernel(dx * dx + dy * dy);
            out[0] += w[0] * u;
            out[1] += w[1] * u;
        }
        [out[0] as f32, out[1] as f32]
    }
}

/// Solves `A X = B` in place for `A` `m x m` (row-major) and `B` `m x k`, by Gaussian
/// elimination with partial pivoting. Returns `X` (`m x k`, row-major), or `None` when a
/// pivot is below `1e-12` times the largest entry of `A`.
pub fn solve(a: &mut [f64], b: &mut [f64], m: usize, k: usize) -> Option<Vec<f64>> {
    let big = a.iter().fold(0.0f64, |acc, v| acc.max(v.abs()));
    let tiny = big * 1e-12;
    for col in 0..m {
        let pivot = (col..m).max_by(|&r, &s| {
            a[r * m + col]
                .abs()
                .partial_cmp(&a[s * m + col].abs())
                .unwrap_or(std::cmp::Ordering::Equal)
        })?;
        let magnitude = a[pivot * m + col].abs();
        if magnitude.is_nan() || magnitude <= tiny {
            return None;
        }
        if pivot != col {
            for j in 0..m {
                a.swap(col * m + j, pivot * m + j);
            }
            for j in 0..k {
                b.swap(col * k + j, pivot * k + j);
            }
        }
        let p = a[col * m + col];
        for r in col + 1..m {
            let f = a[r * m + col] / p;
            if f == 0.0 {
                continue;
            }
            for j in col..m {
                a[r * m + j] -= f * a[col * m + j];
            }
            for j in 0..k {
                b[r * k + j] -= f * b[col * k + j];
            }
        }
    }
    let mut x = vec![0.0f64; m * k];
    for r in (0..m).rev() {
        for j in 0..k {
            let mut s = b[r * k + j];
            for c in r + 1..m {
                s -= a[r * m + c] * x[c * k + j];
            }
            x[r * k + j] = s / a[r * m + r];
        }
    }
    Some(x)
}

/// Points along the border of a `width x height` frame, `per_side` to a side, corners once.
pub fn border_ring(width: usize, height: usize, per_side: usize) -> Vec<Point> {
    let (w, h) = ((width.max(1) - 1) as f32, (height.max(1) - 1) as f32);
    let n = per_side.max(2) - 1;
    let mut ring = Vec::with_capacity(4 * n);
    for k in 0..n {
        let t = k as f32 / n as f32;
        ring.push([t * w, 0.0]);
        ring.push([w, t * h]);
        ring.push([w - t * w, h]);
        ring.push([0.0, h - t * h]);
    }
    ring
}

/// Cheek tissue between landmarks far apart: each control point sits at the mean of its
/// landmarks and moves by the mean of their displacements. Without them the spline bends
/// freely across the cheek between the lower lid, the nose, the mouth corner and the jaw, and
/// overshoots: a closing upper lid lifted the cheek below by 3-6 px, more than the lid moved.
pub const TISSUE: &[&[usize]] = &[
    &[41, 48],
    &[40, 31],
    &[41, 2],
    &[36, 1],
    &[41, 31, 48],
    &[46, 54],
    &[47, 35],
    &[46, 14],
    &[45, 15],
    &[46, 35, 54],
];

/// The control points and values of a motion field: every landmark at its moved position
/// `p_i + d_i` with value `d_i` (still landmarks give zeros), the cheek [`TISSUE`] points,
/// the still jaw points and the border ring at zero; points closer than [`MERGE_DISTANCE`]
/// merged (mean value).
pub fn motion_controls(
    width: usize,
    height: usize,
    landmarks: &[Point; 68],
    displacements: &[Point; 68],
) -> (Vec<Point>, Vec<Point>) {
    let mut raw: Vec<(Point, Point)> = Vec::with_capacity(68 + 4 * BORDER_ANCHORS_PER_SIDE);
    for (p, d) in landmarks.iter().zip(displacements) {
        raw.push(([p[0] + d[0], p[1] + d[1]], *d));
    }
    for set in TISSUE {
        let n = set.len() as f32;
        let (mut p, mut d) = ([0.0f32; 2], [0.0f32; 2]);
        for &i in *set {
            p = [p[0] + landmarks[i][0] / n, p[1] + landmarks[i][1] / n];
            d = [
                d[0] + displacements[i][0] / n,
                d[1] + displacements[i][1] / n,
            ];
        }
        raw.push(([p[0] + d[0], p[1] + d[1]], d));
    }
    for q in border_ring(width, height, BORDER_ANCHORS_PER_SIDE) {
        raw.push((q, [0.0, 0.0]));
    }
    // Merge near-coincident points: (sum of positions, sum of values, count).
    let mut merged: Vec<(Point, Point, f32)> = Vec::with_capacity(raw.len());
    for (p, v) in raw {
        let near = merged.iter_mut().find(|(s, _, c)| {
            let (mx, my) = (s[0] / *c, s[1] / *c);
            (mx - p[0]).hypot(my - p[1]) < MERGE_DISTANCE
        });
        match near {
            Some((s, sv, c)) => {
                s[0] += p[0];
                s[1] += p[1];
                sv[0] += v[0];
                sv[1] += v[1];
                *c += 1.0;
            }
            None => merged.push((p, v, 1.0)),
        }
    }
    merged
        .into_iter()
        .map(|(s, v, c)| ([s[0] / c, s[1] / c], [v[0] / c, v[1] / c]))
        .unzip()
}

/// Gaussian smoothing of the dense field, standard deviation as a fraction of the
/// inter-ocular distance. Landmarks a pixel apart that move differently (the inner lips of a
/// closed mouth, lids of a narrow eye) make the interpolant steep enough to fold the warp;
/// smoothing over a few pixels keeps the field invertible while leaving the motion of the
/// features, which span tens of pixels, nearly as the templates set it.
pub const SMOOTHING_IOD: f32 = 0.04;

/// The dense motion field `D` of a `width x height` frame, in pixels, defined on the
/// *target* (moved) grid: the generated frame is `B(x) = A(x - D(x))` (see
/// [`super::warp::render`]): the thin-plate spline through the moved landmarks, smoothed by
/// [`SMOOTHING_IOD`]. A landmark `p_i` of `A` shows near `p_i + d_i` in `B`; still jaw points
/// and the frame border stay at (nearly) zero.
pub fn motion_field(
    width: usize,
    height: usize,
    landmarks: &[Point; 68],
    displacements: &[Point; 68],
) -> Result<Flow> {
    let (points, values) = motion_controls(width, height, landmarks, displacements);
    let tps = Tps::fit(&points, &values)?;
    let mut flow = Flow::zeros(width, height);
    flow.uv
        .par_chunks_mut(2 * width.max(1))
        .enumerate()
        .for_each(|(y, row)| {
            for (x, uv) in row.chunks_exact_mut(2).enumerate() {
                let d = tps.eval([x as f32, y as f32]);
                uv[0] = d[0];
                uv[1] = d[1];
            }
        });
    let (_, _, iod) = super::templates::face_frame(landmarks)?;
    gaussian_smooth(&mut flow, SMOOTHING_IOD * iod);
    Ok(flow)
}

/// Separable Gaussian blur of both components in place, borders repeated.
pub fn gaussian_smooth(flow: &mut Flow, sigma: f32) {
    if sigma <= 0.0 || flow.width == 0 {
        return;
    }
    let r = (3.0 * sigma).ceil() as isize;
    let mut k: Vec<f32> = (-r..=r)
        .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let sum: f32 = k.iter().sum();
    k.iter_mut().for_each(|v| *v /= sum);
    let (w, h) = (flow.width as isize, flow.height as isize);
    let pass = |src: &[f32], horizontal: bool| -> Vec<f32> {
        let mut out = vec![0.0f32; src.len()];
        out.par_chunks_mut(2 * w as usize)
            .enumerate()
            .for_each(|(y, row)| {
                for x in 0..w {
                    let (mut u, mut v) = (0.0, 0.0);
                    for (j, kv) in k.iter().enumerate() {
                        let o = j as isize - r;
                        let (sx, sy) = if horizontal {
                            ((x + o).clamp(0, w - 1), y as isize)
                        } else {
                            (x, (y as isize + o).clamp(0, h - 1))
                        };
                        let i = 2 * (sy * w + sx) as usize;
                        u += kv * src[i];
                        v += kv * src[i + 1];
                    }
                    row[2 * x as usize] = u;
                    row[2 * x as usize + 1] = v;
                }
            });
        out
    };
    let once = pass(&flow.uv, true);
    flow.uv = pass(&once, false);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facs::au::AuSide;
    use crate::synth::templates::{landmark_displacements, still_jaw_points, Activation};
    use crate::synth::test_face;

    #[test]
    fn solver_matches_a_known_system() {
        // [[0, 2, 1], [1, 1, 1], [2, 1, 0]] x = [5, 4, 4] has x = [1, 2, 1]; the zero first
        // pivot needs a row swap.
        let mut a = vec![0.0, 2.0, 1.0, 1.0, 1.0, 1.0, 2.0, 1.0, 0.0];
        let mut b = vec![5.0, 4.0, 4.0];
        let x = solve(&mut a, &mut b, 3, 1).unwrap();
        for (got, want) in x.iter().zip([1.0, 2.0, 1.0]) {
            assert!((got - want).abs() < 1e-12, "{x:?}");
        }
        let mut s = vec![1.0, 2.0, 2.0, 4.0];
        assert!(solve(&mut s, &mut [1.0, 2.0], 2, 1).is_none());
    }

    #[test]
    fn tps_reproduces_controls_and_is_zero_at_anchors() {
        let face = test_face(80.0, 70.0, 50.0);
        let acts = [
            Activation {
                au: 12,
                side: Some(AuSide::Left),
                intensity: 1.0,
            },
            Activation {
                au: 26,
                side: None,
                intensity: 1.0,
            },
            Activation {
                au: 4,
                side: None,
                intensity: 1.0,
            },
        ];
        let d = landmark_displacements(&face, &acts).unwrap();
        let (w, h) = (160, 160);
        let (points, values) = motion_controls(w, h, &face, &d);
        assert_eq!(
            points.len(),
            68 + TISSUE.len() + 4 * (BORDER_ANCHORS_PER_SIDE - 1)
        );
        let tps = Tps::fit(&points, &values).unwrap();
        for (p, v) in points.iter().zip(&values) {
            let got = tps.eval(*p);
            assert!(
                (got[0] - v[0]).abs() < 1e-3 && (got[1] - v[1]).abs() < 1e-3,
                "at {p:?}: {got:?} vs {v:?}"
            );
        }
        for i in still_jaw_points(&d) {
            let got = tps.eval(face[i]);
            assert!(
                got[0].abs() < 1e-3 && got[1].abs() < 1e-3,
                "jaw {i}: {got:?}"
            );
        }
        assert!(still_jaw_points(&d).len() == 12, "AU26 moves 6-10");
        let field = motion_field(w, h, &face, &d).unwrap();
        // The corner is an anchor; smoothing mixes in the spline's small wiggle between
        // border anchors.
        let (u, v) = field.at(0, 0);
        assert!(u.abs() < 0.05 && v.abs() < 0.05, "{u}, {v}");
        // Somewhere the field carries the mouth-corner motion (> 2 px at IOD 50).
        let big = field.uv.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        assert!(big > 2.0, "{big}");
    }
}
