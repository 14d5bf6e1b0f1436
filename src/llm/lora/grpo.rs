//! The policy update of UC-GRPO (DESIGN.md, "Training the reasoner"): rollouts already scored
//! (each with its group-relative advantage `A_i`) move the LoRA pairs up the clipped,
//! KL-regularised objective
//!
//! ```text
//! J = mean_i (1/|o_i|) sum_t [ min(rho_it A_i, clip(rho_it, 1-e, 1+e) A_i) - beta KL_it ]
//! rho_it = pi(o_it | ...) / pi_old(o_it | ...)
//! KL_it  = pi_ref/pi - log(pi_ref/pi) - 1          (the k3 estimator, on o_it)
//! ```
//!
//! where `o_i` is the tokens rollout i generated, `pi_old` the policy that generated them (the
//! model before this batch's first update, so `rho = 1` on the first pass and the clip matters
//! only from the second, `updates > 1`) and `pi_ref` the reference policy (the SFT adapter).
//! The loss is `-J`. Per token its gradient in `log pi(o_it)` is
//!
//! ```text
//! w_it = 1/(N |o_i|) [ -A_i rho_it [the unclipped side is the min] + beta (1 - pi_ref/pi) ]
//! ```
//!
//! so each rollout needs one forward ([`LoraModel::token_logprobs`]) and one backward of
//! `sum_t w_it log pi(o_it)` with the weights held fixed: the same gradient as the loss's, with
//! no clip or minimum in the graph. `N` counts every rollout of the batch, those left out of
//! the update (a group whose rewards were all equal has zero advantages) included, so their
//! absence does not scale the others' gradient up.

use std::collections::BTreeMap;

use candle_core::{Device, Tensor, Var};
use serde::{Deserialize, Serialize};

use super::data::Example;
use super::model::LoraModel;
use super::optim::{add_grads, clip_grad_norm, step_vars, zero_grads, AdamW};
use crate::{Error, Result};

/// The objective's constants.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GrpoParams {
    /// The ratio's clip range `e`: `rho` in `[1 - e, 1 + e]`.
    pub clip: f64,
    /// The KL penalty's weight.
    pub beta: f64,
}

/// One rollout to learn from: its tokens (the generated ones marked as trained) and advantage.
#[derive(Debug, Clone)]
pub struct Sample {
    pub example: Example,
    pub advantage: f64,
    /// `log pi_ref` of each trained token; empty when `beta` is 0.
    pub reference: Vec<f32>,
    /// `log pi_old` of each trained token, set by the first pass of [`update`].
    pub old: Option<Vec<f32>>,
}

/// One rollout's part of the loss: its value, its KL summed over tokens, and the gradient
/// weights `w_t` of its tokens' log-probabilities.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenTerms {
    pub loss: f64,
    pub kl_sum: f64,
    pub weights: Vec<f32>,
    /// Tokens whose ratio the clip held.
    pub clipped: usize,
}

/// The loss terms of one rollout of `|o| = logp.len()` tokens, scaled by `1 / (n |o|)` (see the
/// module docs); `reference` empty when `beta` is 0.
pub fn token_terms(
    logp: &[f32],
    old: &[f32],
    reference: &[f32],
    advantage: f64,
    p: &GrpoParams,
    n: usize,
) -> TokenTerms {
    let scale = 1.0 / (n.max(1) * logp.len().max(1)) as f64;
    let (mut loss, mut kl_sum, mut clipped) = (0.0, 0.0, 0);
    let mut weights = Vec::with_capacity(logp.len());
    for (t, &lp) in logp.iter().enumerate() {
        let lp = lp as f64;
        let rho = (lp - old[t] as f64).exp();
        let held = rho.clamp(1.0 - p.clip, 1.0 + p.clip);
        // the min picks the clipped side, a constant in log pi, when it is strictly lower
        let clip_wins = held * advantage < rho * advantage;
        clipped += usize::from(clip_wins);
        let surrogate = if clip_wins { held } else { rho } * advantage;
        let mut w = if clip_wins { 0.0 } else { -advantage * rho };
        let mut term = -surrogate;
        if p.beta != 0.0 {
            let r = reference[t] as f64 - lp; // log(pi_ref / pi)
            let kl = r.exp() - r - 1.0;
            kl_sum += kl;
            term += p.beta * kl;
            w += p.beta * (1.0 - r.exp());
        }
        loss += scale * term;
        weights.push((scale * w) as f32);
    }
    TokenTerms {
        loss,
        kl_sum,
        weights,
        clipped,
    }
}

/// What one update did, summed over its passes' first one (the batch as it was generated).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct UpdateStats {
    /// The loss `-J` over the updated rollouts (the first pass).
    pub loss: f64,
    /// Mean KL per token against the reference (the first pass; 0 when `beta` is 0).
    pub kl: f64,
    /// Trained tokens.
    pub tokens: usize,
    /// Token ratios the clip held, over every pass.
    pub clipped: usize,
    /// The gradient norm before clipping, of the last pass.
    pub grad_norm: f64,
}

/// How to update.
#[derive(Debug, Clone, Copy)]
pub struct UpdateOptions {
    pub params: GrpoParams,
    /// Rollouts in the batch (`N`), those not in `samples` included.
    pub batch_rollouts: usize,
    pub lr: f64,
    /// Global gradient-norm clip (0: none).
    pub max_grad_norm: f64,
    /// Passes over the samples (each one AdamW step).
    pub updates: usize,
}

/// Runs `opts.updates` AdamW steps of the objective on `samples` (see the module docs). The
/// first pass records each sample's `log pi_old`.
pub fn update(
    model: &LoraModel,
    vars: &[(String, Var)],
    adam: &mut AdamW,
    samples: &mut [Sample],
    opts: &UpdateOptions,
) -> Result<UpdateStats> {
    let mut stats = UpdateStats::default();
    for pass in 0..opts.updates.max(1) {
        let mut grads = zero_grads(vars);
        for s in samples.iter_mut() {
            let ex = &s.example;
            let logp = model.token_logprobs(ex.inputs(), &ex.rows(), &ex.targets())?;
            let values: Vec<f32> = logp.to_vec1()?;
            let old = s.old.get_or_insert_with(|| values.clone());
            let terms = token_terms(
                &values,
                old,
                &s.reference,
                s.advantage,
                &opts.params,
                opts.batch_rollouts,
            );
            if !terms.loss.is_finite() {
                return Err(Error::Internal(format!(
                    "the GRPO loss of {} is not finite; lower --lr",
                    ex.id
                )));
            }
            let w = Tensor::from_vec(terms.weights, values.len(), &Device::Cpu)?;
            let surrogate = (logp * w)?.sum_all()?;
            add_grads(&mut grads, vars, &surrogate.backward()?)?;
            stats.clipped += terms.clipped;
            if pass == 0 {
                stats.loss += terms.loss;
                stats.kl += terms.kl_sum;
                stats.tokens += values.len();
            }
        }
        stats.grad_norm = clip_grad_norm(&mut grads, opts.max_grad_norm);
        step_vars(adam, vars, &grads, opts.lr)?;
    }
    stats.kl /= stats.tokens.max(1) as f64;
    Ok(stats)
}

/// `log pi_ref` of the trained tokens of each example: `reference` (adapter tensors) swapped
/// into the model for the forward passes, the model's own tensors swapped back after.
pub fn reference_logprobs(
    model: &LoraModel,
    reference: &BTreeMap<String, Tensor>,
    examples: &[&Example],
) -> Result<Vec<Vec<f32>>> {
    let own = model.lora_tensors()?;
    model.set_lora(reference)?;
    let out = examples
        .iter()
        .map(|ex| -> Result<Vec<f32>> {
            let lp = model.token_logprobs(ex.inputs(), &ex.rows(), &ex.targets())?;
            Ok(lp.detach().to_vec1()?)
        })
        .collect::<Result<Vec<_>>>();
    // the model's own tensors come back whatever the forwards did
    model.set_lora(&own)?;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: GrpoParams = GrpoParams {
        clip: 0.2,
        beta: 0.0,
    };

    #[test]
    fn first_pass_terms_by_hand() {
        // rho = 1: loss = -A / n per rollout, weights -A / (n |o|)
        let lp = [-1.0f32, -2.0];
        let t = token_terms(&lp, &lp, &[], 0.5, &P, 4);
        assert!((t.loss + 0.5 / 4.0).abs() < 1e-12, "{}", t.loss);
        assert_eq!(t.weights, [-0.0625f32, -0.0625]);
        assert_eq!((t.kl_sum, t.clipped), (0.0, 0));
    }

    #[test]
    fn the_clip_holds_ratios_past_its_range() {
        // rho = e^0.5 = 1.6487 > 1.2: with A > 0 the clipped side is the min (no gradient);
        // with A < 0 the unclipped side is (gradient -A rho)
        let (lp, old) = ([-1.0f32], [-1.5f32]);
        let up = token_terms(&lp, &old, &[], 1.0, &P, 1);
        assert_eq!((up.weights[0], up.clipped), (0.0, 1));
        assert!((up.loss + 1.2).abs() < 1e-12);
        let down = token_terms(&lp, &old, &[], -1.0, &P, 1);
        let rho = 0.5f64.exp();
        assert!((down.weights[0] as f64 - rho).abs() < 1e-6);
        assert!((down.loss - rho).abs() < 1e-9);
        // rho = e^-0.5 = 0.6065 < 0.8: A < 0 is held at 0.8, A > 0 is not
        let low = token_terms(&old, &lp, &[], -1.0, &P, 1);
        assert_eq!((low.weights[0], low.clipped), (0.0, 1));
        assert!((low.loss - 0.8).abs() < 1e-12);
    }

    #[test]
    fn k3_by_hand() {
        // log pi = -1, log pi_ref = -2: r = -1, KL = e^-1 + 1 - 1 = 0.367879...;
        // d KL / d log pi = 1 - e^-1 = 0.632120...
        let p = GrpoParams {
            clip: 0.2,
            beta: 0.5,
        };
        let t = token_terms(&[-1.0], &[-1.0], &[-2.0], 0.0, &p, 1);
        let e = (-1.0f64).exp();
        assert!((t.kl_sum - e).abs() < 1e-7);
        assert!((t.loss - 0.5 * e).abs() < 1e-7);
        assert!((t.weights[0] as f64 - 0.5 * (1.0 - e)).abs() < 1e-7);
        // the same policy as the reference: no KL, no pull
        let same = token_terms(&[-1.0], &[-1.0], &[-1.0], 0.0, &p, 1);
        assert_eq!((same.kl_sum, same.weights[0]), (0.0, 0.0));
    }
}
