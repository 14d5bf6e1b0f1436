//! AdamW over the LoRA variables with its moments in the open, so a checkpoint holds them and
//! a resumed run continues bit for bit; and the learning-rate schedule (linear warm-up, then
//! cosine decay to a floor).
//!
//! Update of each value `w` with gradient `g` at step `t` (from 1):
//! `m = b1 m + (1 - b1) g`, `v = b2 v + (1 - b2) g^2`,
//! `w -= lr (m / (1 - b1^t) / (sqrt(v / (1 - b2^t)) + eps) + wd w)` (decoupled weight decay).
//!
//! The trainers keep gradients on the host, one flat `Vec<f32>` per variable
//! ([`add_grads`]), and write the updated values back into the variables ([`step_vars`]).

use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::Result;

/// AdamW's constants.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdamWParams {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

/// AdamW's state for a list of parameter tensors (flat f32 values each).
#[derive(Debug, Clone, PartialEq)]
pub struct AdamW {
    pub params: AdamWParams,
    /// Steps taken.
    pub t: u64,
    pub m: Vec<Vec<f32>>,
    pub v: Vec<Vec<f32>>,
}

impl AdamW {
    /// Zero moments for parameters of `sizes` values.
    pub fn new(params: AdamWParams, sizes: &[usize]) -> Self {
        AdamW {
            params,
            t: 0,
            m: sizes.iter().map(|&n| vec![0.0; n]).collect(),
            v: sizes.iter().map(|&n| vec![0.0; n]).collect(),
        }
    }

    /// One update of `weights` with `grads` (same layout) at learning rate `lr`.
    pub fn step(&mut self, weights: &mut [Vec<f32>], grads: &[Vec<f32>], lr: f64) {
        self.t += 1;
        let p = self.params;
        let c1 = 1.0 - p.beta1.powi(self.t as i32);
        let c2 = 1.0 - p.beta2.powi(self.t as i32);
        for (((w, g), m), v) in weights
            .iter_mut()
            .zip(grads)
            .zip(&mut self.m)
            .zip(&mut self.v)
        {
            for (((w, &g), m), v) in w.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                let g = g as f64;
                let m1 = p.beta1 * *m as f64 + (1.0 - p.beta1) * g;
                let v1 = p.beta2 * *v as f64 + (1.0 - p.beta2) * g * g;
                *m = m1 as f32;
                *v = v1 as f32;
                let update = (m1 / c1) / ((v1 / c2).sqrt() + p.eps) + p.weight_decay * *w as f64;
                *w = (*w as f64 - lr * update) as f32;
            }
        }
    }
}

/// Adds the gradients of `vars` in `store` to `acc` (flat, same order); a variable the loss does
/// not reach adds nothing.
pub fn add_grads(acc: &mut [Vec<f32>], vars: &[(String, Var)], store: &GradStore) -> Result<()> {
    for ((_, var), acc) in vars.iter().zip(acc) {
        if let Some(g) = store.get(var.as_tensor()) {
            for (a, g) in acc.iter_mut().zip(g.flatten_all()?.to_vec1::<f32>()?) {
                *a += g;
            }
        }
    }
    Ok(())
}

/// Zero gradients for `vars`.
pub fn zero_grads(vars: &[(String, Var)]) -> Vec<Vec<f32>> {
    vars.iter()
        .map(|(_, v)| vec![0.0; v.elem_count()])
        .collect()
}

/// One AdamW update of `vars` with `grads` at learning rate `lr`.
pub fn step_vars(
    adam: &mut AdamW,
    vars: &[(String, Var)],
    grads: &[Vec<f32>],
    lr: f64,
) -> Result<()> {
    let mut weights: Vec<Vec<f32>> = vars
        .iter()
        .map(|(_, v)| v.as_tensor().flatten_all()?.to_vec1())
        .collect::<candle_core::Result<_>>()?;
    adam.step(&mut weights, grads, lr);
    for ((_, var), w) in vars.iter().zip(weights) {
        var.set(&Tensor::from_vec(w, var.shape(), &Device::Cpu)?)?;
    }
    Ok(())
}

/// Scales `grads` so their global L2 norm is at most `max_norm` (0: no clipping); returns the
/// norm before.
pub fn clip_grad_norm(grads: &mut [Vec<f32>], max_norm: f64) -> f64 {
    let norm = grads
        .iter()
        .flatten()
        .map(|&g| (g as f64) * (g as f64))
        .sum::<f64>()
        .sqrt();
    if max_norm > 0.0 && norm > max_norm {
        let s = (max_norm / norm) as f32;
        grads.iter_mut().flatten().for_each(|g| *g *= s);
    }
    norm
}

/// The learning rate of step `step` (from 0) of `total`: linear warm-up from `peak / warmup`
/// to `peak` over `warmup` steps, then cosine decay to `floor * peak` at the last step.
pub fn learning_rate(step: usize, total: usize, warmup: usize, peak: f64, floor: f64) -> f64 {
    if step < warmup {
        return peak * (step + 1) as f64 / warmup as f64;
    }
    let span = total.saturating_sub(warmup + 1).max(1);
    let progress = ((step - warmup) as f64 / span as f64).min(1.0);
    let low = floor * peak;
    low + (peak - low) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: AdamWParams = AdamWParams {
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.1,
    };

    #[test]
    fn adamw_first_steps_by_hand() {
        let mut opt = AdamW::new(P, &[2]);
        let mut w = vec![vec![1.0f32, -2.0]];
        opt.step(&mut w, &[vec![0.5, -4.0]], 0.01);
        // step 1: m/c1 = g, v/c2 = g^2, so the update is sign(g) (+ eps) plus decay
        let want = [1.0 - 0.01 * (1.0 + 0.1), -2.0 - 0.01 * (-1.0 + 0.1 * -2.0)];
        for (a, b) in w[0].iter().zip(want) {
            assert!((*a as f64 - b).abs() < 1e-6, "{a} {b}");
        }
        assert!((opt.m[0][0] - 0.05).abs() < 1e-7 && (opt.v[0][1] - 0.016).abs() < 1e-7);
        // step 2 with g = 0: m = 0.045, v = 0.00024975 (first value)
        let before = w[0][0] as f64;
        opt.step(&mut w, &[vec![0.0, 0.0]], 0.01);
        let (c1, c2) = (1.0 - 0.9f64.powi(2), 1.0 - 0.999f64.powi(2));
        let m = 0.9 * 0.05;
        let v = 0.999 * 0.025 * 0.01;
        let want = before - 0.01 * ((m / c1) / ((v / c2).sqrt() + 1e-8) + 0.1 * before);
        assert!((w[0][0] as f64 - want).abs() < 1e-6, "{} {want}", w[0][0]);
        assert_eq!(opt.t, 2);
    }

    #[test]
    fn clipping_bounds_the_global_norm() {
        let mut g = vec![vec![3.0f32], vec![4.0]];
        assert_eq!(clip_grad_norm(&mut g, 1.0), 5.0);
        assert!((g[0][0] - 0.6).abs() < 1e-7 && (g[1][0] - 0.8).abs() < 1e-7);
        let mut g = vec![vec![0.3f32]];
        clip_grad_norm(&mut g, 1.0);
        assert_eq!(g[0][0], 0.3);
    }

    #[test]
    fn schedule_warms_up_then_decays_to_the_floor() {
        let lr = |s| learning_rate(s, 110, 10, 1e-3, 0.1);
        assert!((lr(0) - 1e-4).abs() < 1e-12);
        assert!((lr(9) - 1e-3).abs() < 1e-12);
        assert!((lr(10) - 1e-3).abs() < 1e-12, "decay starts at the peak");
        assert!(
            (lr(109) - 1e-4).abs() < 1e-12,
            "the last step is at the floor"
        );
        assert!(lr(60) < lr(30) && lr(30) < lr(10));
        // no warm-up, one step
        assert!((learning_rate(0, 1, 0, 1e-3, 0.1) - 1e-3).abs() < 1e-12);
    }
}
