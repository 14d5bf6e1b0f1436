//! Explicit head-motion removal: the head flow is a global parametric fit of the flow, the
//! facial flow is what remains.
//!
//! Two motion models ([`Motion`]), both linear in their parameters and written as an
//! [`AffineFlow`]:
//! - `Affine`, 6 parameters: `u = a0 + a1 x + a2 y`, `v = b0 + b1 x + b2 y`;
//! - `Similarity`, 4 parameters (translation, rotation, isotropic scale): a head that turns by
//!   `theta` and scales by `s` about any point moves pixels by `(s R(theta) - I) x + t`, so
//!   `u = tx + c x - d y`, `v = ty + d x + c y` with `c = s cos(theta) - 1`, `d = s sin(theta)`.
//!   Exact, not a small-angle approximation.
//!
//! Two fits ([`Fit`]):
//! - `LeastSquares`: weighted least squares over the pixels (weights all 1, or the caller's
//!   per-pixel prior such as a face mask);
//! - `Robust`: iteratively reweighted least squares (IRLS) on the residual vector length `r`:
//!   [`HUBER_ITERS`] Huber iterations from the least-squares start, then Tukey biweight up to
//!   [`ROBUST_ITERS`] in all, each pixel's weight multiplied by its prior. The scale is
//!   `sigma = median(r) / 1.1774` (the median of a 2-D isotropic Gaussian residual's length is
//!   `sqrt(2 ln 2) sigma`), recomputed every iteration and floored at [`MIN_SCALE_PX`].
//!   Localized expression motion (a smile moving a quarter of the face) gets weight 0 and no
//!   longer pulls the head estimate.
//!
//! The prior: with a still background (a camera on a tripod) only the face carries head
//! motion, so pass the face mask; SynthME moves its whole canvas with the head, where the
//! unweighted fit does best (README, "Head-motion removal", has the measurements).
//!
//! Coordinates are pixel indices (x right, y down), centred on the frame inside the solver
//! for conditioning. Pixels with non-finite flow or a prior weight <= 0 are left out of the fit
//! (their facial flow is still `flow - head`).

use serde::Serialize;

use crate::eval::flow::Flow;

/// IRLS iterations of the robust fit, Huber and Tukey together.
pub const ROBUST_ITERS: usize = 10;
/// Huber iterations at the start of the robust fit: convex, so they move the least-squares
/// start near the head motion before the redescending Tukey weight cuts outliers off.
pub const HUBER_ITERS: usize = 3;
/// Huber threshold, in units of the residual scale sigma (95 % Gaussian efficiency).
pub const HUBER_K: f64 = 1.345;
/// Tukey biweight cut-off, in units of sigma (95 % Gaussian efficiency): residuals beyond
/// it get weight 0.
pub const TUKEY_C: f64 = 4.685;
/// The smallest residual scale, px, so that an exact fit does not divide by zero.
pub const MIN_SCALE_PX: f64 = 1e-3;
/// IRLS stops once the head flow changes by less than this anywhere in the frame, px.
const CONVERGED_PX: f64 = 1e-5;
/// `median(|r|) / sigma` for a 2-D isotropic Gaussian residual: `sqrt(2 ln 2)`.
const RAYLEIGH_MEDIAN: f64 = 1.177_410_022_515_474_8;

/// The parametric model of the head flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Motion {
    /// Translation, rotation and isotropic scale (4 parameters).
    Similarity,
    /// A general affine flow (6 parameters).
    Affine,
}

/// How the model is fitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fit {
    /// Weighted least squares.
    LeastSquares,
    /// IRLS with Huber then Tukey biweight weights.
    Robust,
}

/// A head-motion model: what is fitted and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct HeadModel {
    pub motion: Motion,
    pub fit: Fit,
}

impl HeadModel {
    /// Least-squares affine: follows the flow everywhere, expression included.
    pub const PLAIN_AFFINE: HeadModel = HeadModel {
        motion: Motion::Affine,
        fit: Fit::LeastSquares,
    };
    /// Robust similarity: rigid small head motion, expression motion rejected.
    pub const ROBUST_SIMILARITY: HeadModel = HeadModel {
        motion: Motion::Similarity,
        fit: Fit::Robust,
    };
    /// Robust affine.
    pub const ROBUST_AFFINE: HeadModel = HeadModel {
        motion: Motion::Affine,
        fit: Fit::Robust,
    };
    /// Every model, in the order evaluations print them.
    pub const ALL: [HeadModel; 4] = [
        HeadModel::PLAIN_AFFINE,
        HeadModel {
            motion: Motion::Similarity,
            fit: Fit::LeastSquares,
        },
        HeadModel::ROBUST_SIMILARITY,
        HeadModel::ROBUST_AFFINE,
    ];

    /// A short name: `affine`, `similarity`, `robust_affine`, `robust_similarity`.
    pub fn name(&self) -> &'static str {
        match (self.fit, self.motion) {
            (Fit::LeastSquares, Motion::Affine) => "affine",
            (Fit::LeastSquares, Motion::Similarity) => "similarity",
            (Fit::Robust, Motion::Affine) => "robust_affine",
            (Fit::Robust, Motion::Similarity) => "robust_similarity",
        }
    }
}

impl Default for HeadModel {
    /// Robust similarity: the lowest facial-flow error on SynthME's micro events, with and
    /// without the mask prior, for the ground-truth total flow, DIS and MEFlowNet
    /// (`examples/head_motion_eval.rs`).
    fn default() -> Self {
        HeadModel::ROBUST_SIMILARITY
    }
}

/// A global affine flow: `u = u[0] + u[1] x + u[2] y`, `v` the same.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AffineFlow {
    pub u: [f64; 3],
    pub v: [f64; 3],
}

impl AffineFlow {
    pub fn at(&self, x: f64, y: f64) -> (f64, f64) {
        (
            self.u[0] + self.u[1] * x + self.u[2] * y,
            self.v[0] + self.v[1] * x + self.v[2] * y,
        )
    }

    /// The dense field on a `width x height` grid.
    pub fn field(&self, width: usize, height: usize) -> Flow {
        let mut f = Flow::zeros(width, height);
        for y in 0..height {
            for x in 0..width {
                let (u, v) = self.at(x as f64, y as f64);
                let i = 2 * (y * width + x);
                f.uv[i] = u as f32;
                f.uv[i + 1] = v as f32;
            }
        }
        f
    }

    /// `flow` minus this field.
    pub fn subtract_from(&self, flow: &Flow) -> Flow {
        let mut out = flow.clone();
        for y in 0..flow.height {
            for x in 0..flow.width {
                let (u, v) = self.at(x as f64, y as f64);
                let i = 2 * (y * flow.width + x);
                out.uv[i] -= u as f32;
                out.uv[i + 1] -= v as f32;
            }
        }
        out
    }
}

/// A fitted head flow.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HeadFit {
    pub model: HeadModel,
    pub head: AffineFlow,
    /// IRLS iterations run (0 for least squares).
    pub iterations: usize,
    /// Median residual vector length over the fitted pixels, px.
    pub median_residual_px: f32,
}

/// Fits the head flow of `flow` with `model`; `weights` (one per pixel, all 1 when `None`) is
/// a prior such as a face mask. Too few weighted pixels for the model gives their weighted
/// mean translation (zero flow when no pixel is weighted).
///
/// # Panics
/// When `weights` is not one per pixel.
pub fn fit_head(flow: &Flow, weights: Option<&[f32]>, model: HeadModel) -> HeadFit {
    let n = flow.width * flow.height;
    if let Some(w) = weights {
        assert_eq!(w.len(), n, "one weight per pixel");
    }
    let prior: Vec<f64> = (0..n)
        .map(|k| {
            let w = weights.map_or(1.0, |w| w[k] as f64);
            let finite = flow.uv[2 * k].is_finite() && flow.uv[2 * k + 1].is_finite();
            if finite && w > 0.0 {
                w
            } else {
                0.0
            }
        })
        .collect();
    let mut head = solve_weighted(flow, &prior, model.motion);
    let mut residuals = residual_lengths(flow, &head);
    let mut iterations = 0;
    if model.fit == Fit::Robust {
        let mut w = vec![0f64; n];
        for it in 0..ROBUST_ITERS {
            let sigma = (median_where(&residuals, &prior) / RAYLEIGH_MEDIAN).max(MIN_SCALE_PX);
            for k in 0..n {
                let r = residuals[k] / sigma;
                let robust = if it < HUBER_ITERS {
                    if r <= HUBER_K {
                        1.0
                    } else {
                        HUBER_K / r
                    }
                } else if r < TUKEY_C {
                    let t = 1.0 - (r / TUKEY_C).powi(2);
                    t * t
                } else {
                    0.0
                };
                w[k] = prior[k] * robust;
            }
            let next = solve_weighted(flow, &w, model.motion);
            iterations = it + 1;
            let change = max_difference(&head, &next, flow.width, flow.height);
            head = next;
            residuals = residual_lengths(flow, &head);
            if change < CONVERGED_PX {
                break;
            }
        }
    }
    HeadFit {
        model,
        head,
        iterations,
        median_residual_px: median_where(&residuals, &prior) as f32,
    }
}

/// Splits a flow into (facial, head fit): the head is [`fit_head`], facial = flow - head.
pub fn remove_head_motion(
    flow: &Flow,
    weights: Option<&[f32]>,
    model: HeadModel,
) -> (Flow, HeadFit) {
    let fit = fit_head(flow, weights, model);
    (fit.head.subtract_from(flow), fit)
}

/// The weighted least-squares fit of `motion`; pixels of weight 0 are left out.
fn solve_weighted(flow: &Flow, w: &[f64], motion: Motion) -> AffineFlow {
    // Centred coordinates condition the normal equations.
    let (cx, cy) = (
        (flow.width as f64 - 1.0) / 2.0,
        (flow.height as f64 - 1.0) / 2.0,
    );
    let p = match motion {
        Motion::Similarity => 4,
        Motion::Affine => 6,
    };
    let mut ata = [[0f64; 6]; 6];
    let mut atb = [0f64; 6];
    let (mut sw, mut su, mut sv) = (0f64, 0f64, 0f64);
    for y in 0..flow.height {
        for x in 0..flow.width {
            let k = y * flow.width + x;
            let wk = w[k];
            if wk <= 0.0 {
                continue;
            }
            let (u, v) = (flow.uv[2 * k] as f64, flow.uv[2 * k + 1] as f64);
            let (xc, yc) = (x as f64 - cx, y as f64 - cy);
            // One row per equation: u then v.
            let (ru, rv) = match motion {
                Motion::Similarity => ([1.0, 0.0, xc, -yc, 0.0, 0.0], [0.0, 1.0, yc, xc, 0.0, 0.0]),
                Motion::Affine => ([1.0, xc, yc, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0, xc, yc]),
            };
            for (row, b) in [(ru, u), (rv, v)] {
                for i in 0..p {
                    for j in 0..p {
                        ata[i][j] += wk * row[i] * row[j];
                    }
                    atb[i] += wk * row[i] * b;
                }
            }
            sw += wk;
            su += wk * u;
            sv += wk * v;
        }
    }
    // In centred coordinates: u = a + bx xc + by yc, v = d + ex xc + ey yc.
    let centred = solve(&ata, &atb, p).map(|s| match motion {
        Motion::Similarity => ([s[0], s[2], -s[3]], [s[1], s[3], s[2]]),
        Motion::Affine => ([s[0], s[1], s[2]], [s[3], s[4], s[5]]),
    });
    let (cu, cv) = centred.unwrap_or_else(|| {
        let s = sw.max(1e-300);
        ([su / s, 0.0, 0.0], [sv / s, 0.0, 0.0])
    });
    let uncentre = |c: [f64; 3]| [c[0] - c[1] * cx - c[2] * cy, c[1], c[2]];
    AffineFlow {
        u: uncentre(cu),
        v: uncentre(cv),
    }
}

/// Solves the leading `p x p` block of `a x = b` by Gaussian elimination with partial
/// pivoting; `None` when (near) singular.
fn solve(a: &[[f64; 6]; 6], b: &[f64; 6], p: usize) -> Option<[f64; 6]> {
    let (mut m, mut r) = (*a, *b);
    let scale = (0..p).fold(0f64, |s, i| s.max(m[i][i].abs()));
    if scale <= 0.0 {
        return None;
    }
    for c in 0..p {
        let piv = (c..p).max_by(|&i, &j| m[i][c].abs().total_cmp(&m[j][c].abs()))?;
        if m[piv][c].abs() <= 1e-12 * scale {
            return None;
        }
        m.swap(c, piv);
        r.swap(c, piv);
        let (pivot_row, rc) = (m[c], r[c]);
        for i in c + 1..p {
            let f = m[i][c] / pivot_row[c];
            for (mij, mcj) in m[i][c..p].iter_mut().zip(&pivot_row[c..p]) {
                *mij -= f * mcj;
            }
            r[i] -= f * rc;
        }
    }
    let mut x = [0f64; 6];
    for i in (0..p).rev() {
        let s: f64 = (i + 1..p).map(|j| m[i][j] * x[j]).sum();
        x[i] = (r[i] - s) / m[i][i];
    }
    Some(x)
}

/// Per pixel, the length of `flow - head`.
fn residual_lengths(flow: &Flow, head: &AffineFlow) -> Vec<f64> {
    let mut out = Vec::with_capacity(flow.width * flow.height);
    for y in 0..flow.height {
        for x in 0..flow.width {
            let (hu, hv) = head.at(x as f64, y as f64);
            let (u, v) = flow.at(x, y);
            out.push((u as f64 - hu).hypot(v as f64 - hv));
        }
    }
    out
}

/// The median of `values` where `weight > 0` (0 when there is none).
fn median_where(values: &[f64], weight: &[f64]) -> f64 {
    let mut sel: Vec<f64> = values
        .iter()
        .zip(weight)
        .filter(|(_, w)| **w > 0.0)
        .map(|(v, _)| *v)
        .collect();
    if sel.is_empty() {
        return 0.0;
    }
    let mid = sel.len() / 2;
    *sel.select_nth_unstable_by(mid, f64::total_cmp).1
}

/// The largest difference of two affine flows over a `width x height` frame (at its corners,
/// where a difference of affine fields peaks).
fn max_difference(a: &AffineFlow, b: &AffineFlow, width: usize, height: usize) -> f64 {
    let (xm, ym) = (
        width.saturating_sub(1) as f64,
        height.saturating_sub(1) as f64,
    );
    [(0.0, 0.0), (xm, 0.0), (0.0, ym), (xm, ym)]
        .iter()
        .map(|&(x, y)| {
            let (au, av) = a.at(x, y);
            let (bu, bv) = b.at(x, y);
            (au - bu).abs().max((av - bv).abs())
        })
        .fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The flow of a similarity: rotation `deg` and scale `s` about `(px, py)`, then a shift.
    fn similarity(deg: f64, s: f64, (px, py): (f64, f64), (tx, ty): (f64, f64)) -> AffineFlow {
        let (c, d) = (s * deg.to_radians().cos() - 1.0, s * deg.to_radians().sin());
        // x' = s R (x - p) + p + t, flow = x' - x = (sR - I) x - (sR - I) p + t.
        AffineFlow {
            u: [tx - (c * px - d * py), c, -d],
            v: [ty - (d * px + c * py), d, c],
        }
    }

    fn max_error(fit: &AffineFlow, gold: &AffineFlow, w: usize, h: usize) -> f64 {
        max_difference(fit, gold, w, h)
    }

    #[test]
    fn an_exact_similarity_is_recovered_by_every_model() {
        let (w, h) = (128, 128);
        let gold = similarity(1.0, 1.005, (40.0, 90.0), (0.7, -0.4));
        let flow = gold.field(w, h);
        for model in HeadModel::ALL {
            let (facial, fit) = remove_head_motion(&flow, None, model);
            let err = max_error(&fit.head, &gold, w, h);
            assert!(err < 1e-3, "{}: {err}", model.name());
            assert!(facial.uv.iter().all(|v| v.abs() < 1e-3), "{}", model.name());
        }
    }

    /// A similarity head plus a 2-px bump (up and right) over a 64x64 block: 25 % of the
    /// pixels of a 128x128 frame.
    fn head_and_bump() -> (Flow, AffineFlow, Vec<f32>) {
        let (w, h) = (128, 128);
        let gold = similarity(1.0, 1.005, (40.0, 90.0), (0.7, -0.4));
        let mut flow = gold.field(w, h);
        let mut bump = vec![0f32; w * h];
        for y in 60..124 {
            for x in 30..94 {
                let k = y * w + x;
                flow.uv[2 * k] += 1.2;
                flow.uv[2 * k + 1] -= 1.6;
                bump[k] = 1.0;
            }
        }
        (flow, gold, bump)
    }

    #[test]
    fn the_robust_fit_ignores_a_bump_over_a_quarter_of_the_face() {
        let (flow, gold, bump) = head_and_bump();
        let (w, h) = (flow.width, flow.height);
        for model in [HeadModel::ROBUST_SIMILARITY, HeadModel::ROBUST_AFFINE] {
            let (facial, fit) = remove_head_motion(&flow, None, model);
            let err = max_error(&fit.head, &gold, w, h);
            assert!(err < 0.02, "{}: {err}", model.name());
            let (u, v) = facial.at(60, 90);
            assert!((u - 1.2).abs() < 0.02 && (v + 1.6).abs() < 0.02, "{u} {v}");
        }
        for model in [HeadModel::PLAIN_AFFINE, HeadModel::ALL[1]] {
            let fit = fit_head(&flow, None, model);
            let err = max_error(&fit.head, &gold, w, h);
            assert!(err > 0.3, "{}: {err}", model.name());
        }
        // A prior that weights the bump out makes even least squares exact.
        let prior: Vec<f32> = bump.iter().map(|b| 1.0 - b).collect();
        let fit = fit_head(&flow, Some(&prior), HeadModel::PLAIN_AFFINE);
        assert!(max_error(&fit.head, &gold, w, h) < 1e-4);
    }

    #[test]
    fn noise_does_not_stop_the_robust_fit() {
        let (mut flow, gold, _) = head_and_bump();
        // Deterministic +-0.05 px noise everywhere.
        let mut s = 12345u64;
        for v in flow.uv.iter_mut() {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            *v += ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.1;
        }
        let fit = fit_head(&flow, None, HeadModel::ROBUST_SIMILARITY);
        assert!(max_error(&fit.head, &gold, flow.width, flow.height) < 0.02);
        assert!(fit.iterations > HUBER_ITERS && fit.median_residual_px < 0.05);
    }

    #[test]
    fn degenerate_weights_give_a_translation() {
        let gold = similarity(0.0, 1.0, (0.0, 0.0), (0.5, -0.25));
        let flow = gold.field(20, 10);
        // One weighted pixel cannot fix a rotation: its flow is the translation.
        let mut prior = vec![0f32; 200];
        prior[55] = 1.0;
        for model in HeadModel::ALL {
            let fit = fit_head(&flow, Some(&prior), model);
            assert_eq!(fit.head.u[1..], [0.0, 0.0]);
            assert!((fit.head.u[0] - 0.5).abs() < 1e-6 && (fit.head.v[0] + 0.25).abs() < 1e-6);
        }
        // No weighted pixel: zero head flow.
        let fit = fit_head(&flow, Some(&[0.0; 200]), HeadModel::ROBUST_AFFINE);
        assert_eq!(fit.head.field(20, 10), Flow::zeros(20, 10));
    }
}
