//! A step's rollouts scored with the UC-GRPO rewards (one group per query, the calibration
//! carried from step to step), and the step's figures for the log.

use serde::Serialize;

use super::rollout::Rollout;
use crate::agent::eval::first_passed;
use crate::agent::words::Vocabulary;
use crate::error::{Error, Result};
use crate::reward::{
    self, parse::parse_trace, CalibrationState, GroupScore, Item, Means, RewardConfig, RolloutScore,
};

/// One query's rollouts with what the rewards need to know of it.
pub struct Group<'a> {
    /// The group's name in the scores (one per query of the run).
    pub name: String,
    /// The clip's id.
    pub sample: String,
    pub gold: reward::Gold,
    pub rollouts: &'a [Rollout],
}

/// Scores one step's groups (see [`reward::score_batch`]); scores come back in the order of
/// the groups and their rollouts.
pub fn score_step(
    groups: &[Group<'_>],
    cfg: &RewardConfig,
    state: &mut CalibrationState,
    vocab: Option<&Vocabulary>,
) -> Result<(Vec<RolloutScore>, Vec<GroupScore>)> {
    let mut items = Vec::new();
    for g in groups {
        for (k, r) in g.rollouts.iter().enumerate() {
            let doc = serde_json::to_value(&r.trace)
                .map_err(|e| Error::Internal(format!("trace to JSON: {e}")))?;
            items.push(Item {
                rollout: reward::Rollout {
                    id: format!("{}/{k}", g.name),
                    group: g.name.clone(),
                    sample: g.sample.clone(),
                    parsed: parse_trace(&doc),
                    line: k + 1,
                },
                gold: g.gold,
            });
        }
    }
    Ok(reward::score_batch(items, cfg, state, vocab))
}

/// A step's rewards as the log shows them.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct StepRewards {
    /// Means of every term, the task reward and the total over the step's rollouts.
    pub means: Means,
    /// Share of rollouts that zoomed.
    pub zoom_rate: f64,
    /// Mean `U(q)` over the groups where it was defined; `None` when it was in none.
    pub utility_q: Option<f64>,
    /// Share of rollouts whose first answer passed every verifier check.
    pub first_pass: f64,
}

/// The figures of a step's scores and rollouts (same order).
pub fn step_rewards(
    scores: &[RolloutScore],
    groups: &[GroupScore],
    rollouts: &[&Rollout],
) -> StepRewards {
    let (n, means) = Means::of(scores.iter());
    let share = |k: usize| k as f64 / n.max(1) as f64;
    let defined: Vec<f64> = groups.iter().filter_map(|g| g.utility).collect();
    StepRewards {
        means,
        zoom_rate: share(scores.iter().filter(|s| s.zoomed).count()),
        utility_q: (!defined.is_empty())
            .then(|| defined.iter().sum::<f64>() / defined.len() as f64),
        first_pass: share(rollouts.iter().filter(|r| first_passed(&r.trace)).count()),
    }
}
