//! Choosing the next token from the logits: greedy, or temperature with top-k and top-p, after
//! a repetition penalty, from a seeded generator so a run can be repeated.
//!
//! The order is llama.cpp's default chain: penalty, top-k, top-p, temperature, draw.

use rand::distr::Distribution;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Sampling settings. `temperature <= 0` is greedy (the most likely token, always).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SamplingParams {
    pub temperature: f64,
    /// Keep only the k most likely tokens; 0 keeps all.
    pub top_k: usize,
    /// Keep the most likely tokens whose probabilities add up to p; 1 keeps all.
    pub top_p: f64,
    /// Divide positive logits (multiply negative ones) of recently seen tokens by this; 1 is
    /// off.
    pub repeat_penalty: f32,
    /// How many recent tokens the penalty looks at.
    pub repeat_last_n: usize,
    pub seed: u64,
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams {
            temperature: 0.0,
            top_k: 40,
            top_p: 0.95,
            repeat_penalty: 1.0,
            repeat_last_n: 64,
            seed: 299_792_458,
        }
    }
}

impl SamplingParams {
    pub fn greedy() -> Self {
        Self::default()
    }

    pub fn is_greedy(&self) -> bool {
        self.temperature <= 0.0
    }

    fn check(&self) -> Result<()> {
        let bad = |what: &str| {
            Err(Error::Limit {
                what: "sampling".into(),
                reason: what.into(),
            })
        };
        if !self.temperature.is_finite() {
            return bad("temperature must be a finite number (0 for greedy)");
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad("top-p must be in (0, 1]");
        }
        if !(self.repeat_penalty.is_finite() && self.repeat_penalty > 0.0) {
            return bad("repetition penalty must be positive (1 is off)");
        }
        Ok(())
    }
}

/// Which tokens the repetition penalty reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PenaltyScope {
    /// The last `repeat_last_n` tokens of the conversation, the prompt included.
    #[default]
    Recent,
    /// Only the tokens of the JSON string being written (a thought, an answer's text), so the
    /// JSON around it (keys, quotes, codes listed one after another) is never penalised.
    JsonString,
}

/// Draws tokens with fixed settings and its own random state.
#[derive(Debug)]
pub struct Sampler {
    params: SamplingParams,
    rng: rand::rngs::StdRng,
}

impl Sampler {
    pub fn new(params: SamplingParams) -> Result<Self> {
        params.check()?;
        let rng = rand::rngs::StdRng::seed_from_u64(params.seed);
        Ok(Sampler { params, rng })
    }

    pub fn params(&self) -> &SamplingParams {
        &self.params
    }

    /// The next token. `logits` is changed in place (penalty); `history` is the tokens so far
    /// (the penalty reads its tail). Tokens with logit `-inf` are never chosen.
    pub fn sample(&mut self, logits: &mut [f32], history: &[u32]) -> Result<u32> {
        if self.params.repeat_penalty != 1.0 {
            apply_repeat_penalty(
                logits,
                history,
                self.params.repeat_penalty,
                self.params.repeat_last_n,
            );
        }
        if self.params.is_greedy() {
            return argmax(logits).ok_or_else(no_candidate);
        }
        let mut candidates: Vec<(u32, f32)> = logits
            .iter()
            .enumerate()
            .filter(|(_, l)| l.is_finite())
            .map(|(i, &l)| (i as u32, l))
            .collect();
        if candidates.is_empty() {
            return Err(no_candidate());
        }
        candidates.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        if self.params.top_k > 0 {
            candidates.truncate(self.params.top_k);
        }
        if self.params.top_p < 1.0 {
            let probs = softmax(candidates.iter().map(|c| c.1), 1.0);
            let mut total = 0.0;
            let mut keep = candidates.len();
            for (i, p) in probs.iter().enumerate() {
                total += p;
                if total >= self.params.top_p as f32 {
                    keep = i + 1;
                    break;
                }
            }
            candidates.truncate(keep);
        }
        let probs = softmax(
            candidates.iter().map(|c| c.1),
            self.params.temperature as f32,
        );
        let dist = rand::distr::weighted::WeightedIndex::new(&probs)
            .map_err(|e| Error::Internal(format!("sampling: {e}")))?;
        Ok(candidates[dist.sample(&mut self.rng)].0)
    }
}

fn no_candidate() -> Error {
    Error::Internal("sampling: every token is excluded".into())
}

/// The index of the largest logit (the lowest index at a tie); `None` when all are `-inf`.
pub fn argmax(logits: &[f32]) -> Option<u32> {
    let mut best: Option<(usize, f32)> = None;
    for (i, &l) in logits.iter().enumerate() {
        if l > f32::NEG_INFINITY && best.is_none_or(|(_, b)| l > b) {
            best = Some((i, l));
        }
    }
    best.map(|(i, _)| i as u32)
}

/// Probabilities of `logits / temperature`.
fn softmax(logits: impl Iterator<Item = f32> + Clone, temperature: f32) -> Vec<f32> {
    let t = temperature.max(1e-6);
    let max = logits.clone().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f32> = logits.map(|l| ((l - max) / t).exp()).collect();
    let sum: f32 = exp.iter().sum();
    exp.into_iter().map(|e| e / sum).collect()
}

/// llama.cpp's repetition penalty: each distinct token of the last `last_n` has its logit
/// divided by `penalty` when positive, multiplied when negative.
pub fn apply_repeat_penalty(logits: &mut [f32], history: &[u32], penalty: f32, last_n: usize) {
    let start = history.len().saturating_sub(last_n);
    let mut seen = std::collections::HashSet::new();
    for &t in &history[start..] {
        if !seen.insert(t) {
            continue;
        }
        if let Some(l) = logits.get_mut(t as usize) {
            *l = if *l > 0.0 { *l / penalty } else { *l * penalty };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_takes_the_largest() {
        let mut s = Sampler::new(SamplingParams::greedy()).unwrap();
        let mut logits = vec![0.1, 2.0, -1.0, 1.9];
        assert_eq!(s.sample(&mut logits, &[]).unwrap(), 1);
    }

    #[test]
    fn penalty_changes_the_greedy_choice() {
        let params = SamplingParams {
            repeat_penalty: 1.1,
            ..SamplingParams::greedy()
        };
        let mut s = Sampler::new(params).unwrap();
        let mut logits = vec![0.1, 2.0, -1.0, 1.9];
        assert_eq!(s.sample(&mut logits, &[1]).unwrap(), 3);
        assert!((logits[1] - 2.0 / 1.1).abs() < 1e-6);
        let mut logits = vec![-1.0, -2.0];
        apply_repeat_penalty(&mut logits, &[1, 1], 2.0, 64);
        assert_eq!(logits, vec![-1.0, -4.0]);
    }

    #[test]
    fn top_k_one_is_greedy_and_seed_repeats() {
        let params = SamplingParams {
            temperature: 1.0,
            top_k: 1,
            ..Default::default()
        };
        let mut s = Sampler::new(params).unwrap();
        let mut logits = vec![0.0, 1.0, 3.0, 2.9];
        for _ in 0..20 {
            assert_eq!(s.sample(&mut logits.clone(), &[]).unwrap(), 2);
        }
        let draw = |seed, logits: &[f32]| {
            let params = SamplingParams {
                temperature: 1.0,
                top_k: 0,
                top_p: 1.0,
                seed,
                ..Default::default()
            };
            let mut s = Sampler::new(params).unwrap();
            (0..32)
                .map(|_| s.sample(&mut logits.to_vec(), &[]).unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(7, &logits), draw(7, &logits));
        assert_ne!(draw(7, &logits), draw(8, &logits));
        // near-tied tokens 2 and 3 both come up at temperature 1
        let d = draw(7, &logits);
        assert!(d.contains(&2) && d.contains(&3), "{d:?}");
        logits[1] = f32::NEG_INFINITY;
        assert!(!draw(9, &logits).contains(&1));
    }

    #[test]
    fn top_p_keeps_the_nucleus() {
        let params = SamplingParams {
            temperature: 1.0,
            top_k: 0,
            top_p: 0.5,
            ..Default::default()
        };
        let mut s = Sampler::new(params).unwrap();
        // token 0 alone holds > 50% of the mass
        let logits = vec![5.0, 1.0, 1.0, 1.0];
        for _ in 0..50 {
            assert_eq!(s.sample(&mut logits.clone(), &[]).unwrap(), 0);
        }
    }

    #[test]
    fn bad_settings_are_refused() {
        for p in [
            SamplingParams {
                top_p: 0.0,
                ..Default::default()
            },
            SamplingParams {
                temperature: f64::NAN,
                ..Default::default()
            },
        ] {
            assert!(Sampler::new(p).is_err());
        }
    }
}
