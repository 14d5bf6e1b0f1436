//! UC-GRPO rewards: score reasoning rollouts against gold labels, per term, per group.
//!
//! For rollout i of group G (same query q, same sample s with gold emotion e* and AUs A*):
//!
//! ```text
//! r_format, r_region, r_au, r_consistency, r_emotion      see [terms]
//! r_words                                                 see [writing]
//! R_task,i = w_f r_format + w_r r_region + w_a r_au + w_c r_consistency + w_e r_emotion
//!          + w_w r_words
//! U(q)     = mean(R_task | zoomed) - mean(R_task | not zoomed)      (undefined if a side is empty)
//! Uhat(q)  = alpha U(q) + (1 - alpha) Ubar_e*     or Ubar_e* when U(q) is undefined
//! Ubar_e  <- beta Ubar_e + (1 - beta) U(q)         after the batch, for each defined U(q)
//! r_utility,i = zoomed_i Uhat(q)
//! R_i      = R_task,i + w_u r_utility,i
//! A_i      = (R_i - mean_G R) / (std_G R + eps)   population std (divide by |G|)
//! ```
//!
//! The total is DESIGN.md's `R_i = R_task,i + w_u zoomed_i Uhat(q) + w_w words_i`; the words
//! term sits inside `R_task` so that the zoom utility compares how soundly the rollouts that
//! zoomed wrote too, not only what they answered.
//!
//! Weights and constants: [`config::RewardConfig`]; calibration state: [`calibration`];
//! completion formats: [`parse`]; input lines: [`io`]. A group's rollouts must share one sample.

pub mod calibration;
pub mod config;
pub mod io;
pub mod parse;
pub mod terms;
pub mod writing;

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

pub use calibration::CalibrationState;
pub use config::RewardConfig;
pub use io::{Problem, Rollout};
pub use terms::{Gold, Terms};

use crate::agent::words::Vocabulary;
use crate::facs::Emotion;

/// A rollout with its gold label, ready to score.
#[derive(Debug, Clone)]
pub struct Item {
    pub rollout: Rollout,
    pub gold: Gold,
}

/// One rollout's scores (an output line).
#[derive(Debug, Clone, Serialize)]
pub struct RolloutScore {
    pub id: String,
    pub group: String,
    pub sample: String,
    pub zoomed: bool,
    pub terms: Terms,
    pub task: f64,
    pub total: f64,
    pub advantage: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format_error: Option<String>,
    #[serde(skip)]
    pub gold: Emotion,
    #[serde(skip)]
    pub line: usize,
}

/// One group's utility and reward statistics.
#[derive(Debug, Clone, Serialize)]
pub struct GroupScore {
    pub group: String,
    pub sample: String,
    pub emotion: Emotion,
    pub rollouts: usize,
    pub zoomed: usize,
    /// U(q); null when every rollout zoomed or none did.
    pub utility: Option<f64>,
    /// Ubar of the gold class at the start of the batch.
    pub ubar: f64,
    pub uhat: f64,
    pub mean: f64,
    pub std: f64,
}

/// Scores one batch and folds its utilities into `state` (see the module docs). `vocab` is the
/// word list of the words term ([`Vocabulary::shared`]); without one that term is 0, so pass
/// one whenever its weight is not 0.
pub fn score_batch(
    items: Vec<Item>,
    cfg: &RewardConfig,
    state: &mut CalibrationState,
    vocab: Option<&Vocabulary>,
) -> (Vec<RolloutScore>, Vec<GroupScore>) {
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut members: Vec<Vec<usize>> = Vec::new();
    for (i, it) in items.iter().enumerate() {
        let g = *index.entry(it.rollout.group.as_str()).or_insert_with(|| {
            members.push(Vec::new());
            members.len() - 1
        });
        members[g].push(i);
    }
    let terms: Vec<Terms> = items
        .iter()
        .map(|it| {
            let answer = it.rollout.parsed.answer.as_ref().ok();
            let words = match (answer, vocab) {
                (Some(a), Some(v)) => {
                    writing::words_share(&it.rollout.parsed.writing, a.emotion, v)
                }
                _ => 0.0,
            };
            Terms {
                words,
                ..terms::score_answer(answer, &it.gold, cfg)
            }
        })
        .collect();
    let task: Vec<f64> = terms.iter().map(|t| t.task(cfg)).collect();
    let mut totals = vec![0.0; items.len()];
    let mut advantages = vec![0.0; items.len()];
    let mut groups = Vec::with_capacity(members.len());
    let mut defined = Vec::new();
    let mut utility = vec![0.0; items.len()];
    for m in &members {
        let first = &items[m[0]];
        let e = first.gold.emotion;
        let (mut sz, mut nz, mut sn, mut nn) = (0.0, 0usize, 0.0, 0usize);
        for &i in m {
            if items[i].rollout.parsed.zoomed {
                sz += task[i];
                nz += 1;
            } else {
                sn += task[i];
                nn += 1;
            }
        }
        let u = (nz > 0 && nn > 0).then(|| sz / nz as f64 - sn / nn as f64);
        let ubar = state.ubar(e);
        let alpha = cfg.calibration.alpha;
        let uhat = u.map_or(ubar, |u| alpha * u + (1.0 - alpha) * ubar);
        if let Some(u) = u {
            defined.push((e, u));
        }
        let group_totals: Vec<f64> = m
            .iter()
            .map(|&i| {
                utility[i] = if items[i].rollout.parsed.zoomed {
                    uhat
                } else {
                    0.0
                };
                task[i] + cfg.weights.utility * utility[i]
            })
            .collect();
        let (adv, mean, std) = terms::advantages(&group_totals, cfg.advantage.eps);
        for (k, &i) in m.iter().enumerate() {
            totals[i] = group_totals[k];
            advantages[i] = adv[k];
        }
        groups.push(GroupScore {
            group: first.rollout.group.clone(),
            sample: first.rollout.sample.clone(),
            emotion: e,
            rollouts: m.len(),
            zoomed: nz,
            utility: u,
            ubar,
            uhat,
            mean,
            std,
        });
    }
    state.apply_batch(&defined, cfg.calibration.beta);
    let scores = items
        .into_iter()
        .enumerate()
        .map(|(i, it)| {
            let r = it.rollout;
            RolloutScore {
                id: r.id,
                group: r.group,
                sample: r.sample,
                zoomed: r.parsed.zoomed,
                terms: Terms {
                    utility: utility[i],
                    ..terms[i]
                },
                task: task[i],
                total: totals[i],
                advantage: advantages[i],
                format_error: r.parsed.answer.err(),
                gold: it.gold.emotion,
                line: r.line,
            }
        })
        .collect();
    (scores, groups)
}

/// What a scoring run produced: scores, groups, problems, and a summary.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    #[serde(skip)]
    pub scores: Vec<RolloutScore>,
    #[serde(skip)]
    pub groups: Vec<GroupScore>,
    pub summary: Summary,
    pub problems: Vec<Problem>,
}

/// Means of every term.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Means {
    pub format: f64,
    pub region: f64,
    pub au: f64,
    pub consistency: f64,
    pub emotion: f64,
    pub utility: f64,
    pub words: f64,
    pub task: f64,
    pub total: f64,
}

impl Means {
    /// How many scores there are, and their means (all 0 for none).
    pub fn of<'a>(scores: impl Iterator<Item = &'a RolloutScore>) -> (usize, Means) {
        let mut m = Means::default();
        let mut n = 0;
        for s in scores {
            let t = &s.terms;
            for (acc, v) in [
                (&mut m.format, t.format),
                (&mut m.region, t.region),
                (&mut m.au, t.au),
                (&mut m.consistency, t.consistency),
                (&mut m.emotion, t.emotion),
                (&mut m.utility, t.utility),
                (&mut m.words, t.words),
                (&mut m.task, s.task),
                (&mut m.total, s.total),
            ] {
                *acc += v;
            }
            n += 1;
        }
        if n > 0 {
            let k = n as f64;
            for acc in [
                &mut m.format,
                &mut m.region,
                &mut m.au,
                &mut m.consistency,
                &mut m.emotion,
                &mut m.utility,
                &mut m.words,
                &mut m.task,
                &mut m.total,
            ] {
                *acc /= k;
            }
        }
        (n, m)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct EmotionSummary {
    pub rollouts: usize,
    pub means: Means,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub rollouts: usize,
    pub groups: usize,
    /// Groups whose U(q) was defined (some rollouts zoomed, some did not).
    pub groups_with_utility: usize,
    /// Rollouts whose answer failed the format check (scored, with zeros).
    pub format_failures: usize,
    /// Input rollout and label lines skipped for a problem.
    pub skipped_rollouts: usize,
    pub skipped_labels: usize,
    pub means: Means,
    /// Per gold emotion.
    pub per_emotion: BTreeMap<Emotion, EmotionSummary>,
    pub state: CalibrationState,
}

/// Whether the first problem stops the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnProblem {
    Skip,
    Fail,
}

/// The sources of one scoring run: labels and rollouts as (line number, parse result), each
/// with the name its problems cite.
pub struct Inputs<L, R> {
    pub labels: L,
    pub labels_source: String,
    pub rollouts: R,
    pub rollouts_source: String,
}

/// Reads labels and rollouts (any record source), checks them, scores, and summarises.
/// `Err(problem)` is returned at the first problem under [`OnProblem::Fail`], and problems are
/// collected under `Skip`. `vocab` as in [`score_batch`].
pub fn run<L, R>(
    inputs: Inputs<L, R>,
    cfg: &RewardConfig,
    state: &mut CalibrationState,
    vocab: Option<&Vocabulary>,
    on_problem: OnProblem,
) -> Result<Report, Problem>
where
    L: Iterator<Item = (usize, Result<(String, Gold), String>)>,
    R: Iterator<Item = (usize, Result<Rollout, String>)>,
{
    let Inputs {
        labels,
        labels_source,
        rollouts,
        rollouts_source,
    } = inputs;
    let (labels_source, rollouts_source) = (labels_source.as_str(), rollouts_source.as_str());
    let mut problems = Vec::new();
    let mut report = |source: &str, line: usize, reason: String| -> Result<(), Problem> {
        let p = Problem {
            source: source.to_string(),
            line,
            reason,
        };
        match on_problem {
            OnProblem::Fail => Err(p),
            OnProblem::Skip => {
                problems.push(p);
                Ok(())
            }
        }
    };
    let mut gold: HashMap<String, (Gold, usize)> = HashMap::new();
    let mut skipped_labels = 0;
    let mut bad_labels: HashMap<String, usize> = HashMap::new();
    for (line, l) in labels {
        match l {
            Ok((sample, g)) => {
                if let Some((_, first)) = gold.get(&sample) {
                    skipped_labels += 1;
                    report(
                        labels_source,
                        line,
                        format!("sample {sample:?} is labelled twice (first on line {first})"),
                    )?;
                } else {
                    gold.insert(sample, (g, line));
                }
            }
            Err(reason) => {
                skipped_labels += 1;
                if let Some(s) = sample_of(&reason) {
                    bad_labels.insert(s, line);
                }
                report(labels_source, line, reason)?;
            }
        }
    }
    let mut items = Vec::new();
    let mut skipped_rollouts = 0;
    let mut group_sample: HashMap<String, (String, usize)> = HashMap::new();
    let mut group_lines: Vec<(String, usize)> = Vec::new();
    for (line, r) in rollouts {
        let r = match r {
            Ok(r) => r,
            Err(reason) => {
                skipped_rollouts += 1;
                report(rollouts_source, line, reason)?;
                continue;
            }
        };
        if !group_sample.contains_key(&r.group) {
            group_sample.insert(r.group.clone(), (r.sample.clone(), line));
            group_lines.push((r.group.clone(), line));
        }
        let (first_sample, first_line) = &group_sample[&r.group];
        if *first_sample != r.sample {
            skipped_rollouts += 1;
            let reason = format!("rollout {:?}: group {:?} holds sample {:?} (line {first_line}) and {:?}; a group is one query on one sample", r.id, r.group, first_sample, r.sample);
            report(rollouts_source, line, reason)?;
            continue;
        }
        let Some((g, _)) = gold.get(&r.sample) else {
            skipped_rollouts += 1;
            let why = match bad_labels.get(&r.sample) {
                Some(l) => format!(" (its label on {labels_source} line {l} was skipped)"),
                None => String::new(),
            };
            report(
                rollouts_source,
                line,
                format!(
                    "rollout {:?}: no label for sample {:?}{why}",
                    r.id, r.sample
                ),
            )?;
            continue;
        };
        items.push(Item {
            gold: *g,
            rollout: r,
        });
    }
    let (scores, groups) = score_batch(items, cfg, state, vocab);
    let scored: std::collections::HashSet<&str> = groups.iter().map(|g| g.group.as_str()).collect();
    let empty: Vec<(String, usize)> = group_lines
        .into_iter()
        .filter(|(g, _)| !scored.contains(g.as_str()))
        .collect();
    for (g, line) in empty {
        report(
            rollouts_source,
            line,
            format!("group {g:?} has no rollout left to score (every one was skipped)"),
        )?;
    }
    let (n, means) = Means::of(scores.iter());
    let mut per_emotion = BTreeMap::new();
    for e in Emotion::ALL {
        let (k, m) = Means::of(scores.iter().filter(|s| s.gold == e));
        if k > 0 {
            per_emotion.insert(
                e,
                EmotionSummary {
                    rollouts: k,
                    means: m,
                },
            );
        }
    }
    let summary = Summary {
        rollouts: n,
        groups: groups.len(),
        groups_with_utility: groups.iter().filter(|g| g.utility.is_some()).count(),
        format_failures: scores.iter().filter(|s| s.format_error.is_some()).count(),
        skipped_rollouts,
        skipped_labels,
        means,
        per_emotion,
        state: state.clone(),
    };
    Ok(Report {
        scores,
        groups,
        summary,
        problems,
    })
}

/// The sample named in a label error, when the line got that far (`label "s1": ...`).
fn sample_of(reason: &str) -> Option<String> {
    let rest = reason.strip_prefix("label \"")?;
    Some(rest[..rest.find('"')?].to_string())
}

#[cfg(test)]
mod tests;
