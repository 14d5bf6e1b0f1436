//! Explicit head-motion removal: the head flow is a least-squares global affine fit of the
//! flow (`u = a0 + a1 x + a2 y`, `v = b0 + b1 x + b2 y`, optionally weighted per pixel, e.g.
//! by a face mask); the facial flow is what remains. Micro-expressions move small local
//! regions, so the affine fit follows the rigid (small-angle) head motion.

use crate::eval::flow::Flow;

/// A global affine flow: `u = u[0] + u[1] x + u[2] y`, `v` the same.
#[derive(Debug, Clone, Copy, PartialEq)]
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
}

/// Least-squares affine fit of `flow`, pixels weighted by `weights` (one per pixel; all 1
/// when `None`). A degenerate system (fewer than 3 non-collinear weighted pixels) gives the
/// weighted mean translation.
pub fn fit_affine(flow: &Flow, weights: Option<&[f32]>) -> AffineFlow {
    let mut ata = [[0f64; 3]; 3];
    let mut atu = [0f64; 3];
    let mut atv = [0f64; 3];
    for y in 0..flow.height {
        for x in 0..flow.width {
            let k = y * flow.width + x;
            let wgt = weights.map_or(1.0, |w| w[k] as f64);
            if wgt <= 0.0 {
                continue;
            }
            let row = [1.0, x as f64, y as f64];
            let (u, v) = (flow.uv[2 * k] as f64, flow.uv[2 * k + 1] as f64);
            for i in 0..3 {
                for j in 0..3 {
                    ata[i][j] += wgt * row[i] * row[j];
                }
                atu[i] += wgt * row[i] * u;
                atv[i] += wgt * row[i] * v;
            }
        }
    }
    match (solve3(ata, atu), solve3(ata, atv)) {
        (Some(u), Some(v)) => AffineFlow { u, v },
        _ => {
            let s = ata[0][0].max(1e-12);
            AffineFlow {
                u: [atu[0] / s, 0.0, 0.0],
                v: [atv[0] / s, 0.0, 0.0],
            }
        }
    }
}

/// Splits a flow into (facial, head): head is [`fit_affine`], facial = flow - head.
pub fn remove_head_motion(flow: &Flow, weights: Option<&[f32]>) -> (Flow, AffineFlow) {
    let head = fit_affine(flow, weights);
    let mut facial = flow.clone();
    for y in 0..flow.height {
        for x in 0..flow.width {
            let (u, v) = head.at(x as f64, y as f64);
            let i = 2 * (y * flow.width + x);
            facial.uv[i] -= u as f32;
            facial.uv[i + 1] -= v as f32;
        }
    }
    (facial, head)
}

/// Solves a 3x3 system by Cramer's rule; `None` when (near) singular.
fn solve3(a: [[f64; 3]; 3], b: [f64; 3]) -> Option<[f64; 3]> {
    let det = |m: &[[f64; 3]; 3]| {
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
            - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    };
    let d = det(&a);
    let scale = a.iter().flatten().fold(0f64, |s, v| s.max(v.abs()));
    if d.abs() <= 1e-12 * scale.powi(3).max(1e-300) {
        return None;
    }
    let mut out = [0f64; 3];
    for (c, o) in out.iter_mut().enumerate() {
        let mut m = a;
        for r in 0..3 {
            m[r][c] = b[r];
        }
        *o = det(&m) / d;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_affine_head_plus_a_local_bump_splits_back() {
        let (w, h) = (40, 30);
        let head = AffineFlow {
            u: [0.8, 0.01, -0.02],
            v: [-0.5, 0.015, 0.005],
        };
        let mut flow = head.field(w, h);
        // A small local bump (an "expression") in a 4x4 patch.
        for y in 10..14 {
            for x in 20..24 {
                flow.uv[2 * (y * w + x) + 1] += 1.5;
            }
        }
        // Weighting the bump out recovers the head exactly.
        let weights: Vec<f32> = (0..w * h)
            .map(|k| {
                if (10..14).contains(&(k / w)) && (20..24).contains(&(k % w)) {
                    0.0
                } else {
                    1.0
                }
            })
            .collect();
        let (facial, fit) = remove_head_motion(&flow, Some(&weights));
        for i in 0..3 {
            assert!((fit.u[i] - head.u[i]).abs() < 1e-6);
            assert!((fit.v[i] - head.v[i]).abs() < 1e-6);
        }
        let (u, v) = facial.at(21, 11);
        assert!(u.abs() < 1e-5 && (v - 1.5).abs() < 1e-5);
        assert!(facial.at(3, 3).0.abs() < 1e-5);
        // Unweighted, the bump biases the fit only a little.
        let (facial, _) = remove_head_motion(&flow, None);
        assert!((facial.at(21, 11).1 - 1.5).abs() < 0.1);
    }
}
