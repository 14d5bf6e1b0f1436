//! `log.csv`: one line per step (tools/reasoner/plot_grpo.py draws it).
//!
//! Columns: `step`; the step's mean of each reward term (`format`, `region`, `au`,
//! `consistency`, `emotion`, `utility` = zoomed * Uhat(q), `words`), of the task reward and of
//! the total; `zoom_rate` (share of rollouts that zoomed); `utility_q` (mean U(q) over the
//! groups where it was defined, empty where none was); `first_pass` (share of rollouts whose
//! first answer passed every verifier check); `rollouts` and `updated` (those in the update:
//! the groups whose rewards differed); `kl` (mean per token against the reference) and `loss`
//! (`-J` of the update's first pass), both empty when nothing was updated; `rollout_seconds`
//! (merging the policy, perception and generation) and `update_seconds` (scoring, encoding,
//! the reference's and the policy's passes).

use std::io::Write;
use std::path::Path;

use serde::Serialize;

use super::score::StepRewards;
use crate::error::{Error, Result};

pub const CSV_HEADER: &str = "step,format,region,au,consistency,emotion,utility,words,task,total,zoom_rate,utility_q,first_pass,rollouts,updated,kl,loss,rollout_seconds,update_seconds";

/// One step of the run.
#[derive(Debug, Clone, Serialize)]
pub struct StepRecord {
    pub step: usize,
    pub rewards: StepRewards,
    pub rollouts: usize,
    pub updated: usize,
    pub kl: Option<f64>,
    pub loss: Option<f64>,
    pub rollout_seconds: f64,
    pub update_seconds: f64,
}

impl StepRecord {
    /// The record as one CSV line (without the newline).
    pub fn csv_line(&self) -> String {
        let m = &self.rewards.means;
        let opt = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.6}"));
        let mut fields: Vec<String> = vec![self.step.to_string()];
        fields.extend(
            [
                m.format,
                m.region,
                m.au,
                m.consistency,
                m.emotion,
                m.utility,
                m.words,
                m.task,
                m.total,
                self.rewards.zoom_rate,
            ]
            .iter()
            .map(|v| format!("{v:.6}")),
        );
        fields.push(opt(self.rewards.utility_q));
        fields.push(format!("{:.6}", self.rewards.first_pass));
        fields.push(self.rollouts.to_string());
        fields.push(self.updated.to_string());
        fields.push(opt(self.kl));
        fields.push(opt(self.loss));
        fields.push(format!("{:.3}", self.rollout_seconds));
        fields.push(format!("{:.3}", self.update_seconds));
        fields.join(",")
    }
}

/// Appends `record` to the open log at `path`.
pub fn write_record(csv: &mut std::fs::File, path: &Path, record: &StepRecord) -> Result<()> {
    writeln!(csv, "{}", record.csv_line()).map_err(|e| Error::io(path.display().to_string(), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reward::Means;

    #[test]
    fn a_line_has_a_field_per_column() {
        let r = StepRecord {
            step: 3,
            rewards: StepRewards {
                means: Means {
                    total: 2.5,
                    ..Default::default()
                },
                zoom_rate: 0.25,
                utility_q: None,
                first_pass: 1.0,
            },
            rollouts: 16,
            updated: 8,
            kl: Some(0.001),
            loss: None,
            rollout_seconds: 12.0,
            update_seconds: 3.5,
        };
        let line = r.csv_line();
        let fields: Vec<&str> = line.split(',').collect();
        let columns: Vec<&str> = CSV_HEADER.split(',').collect();
        assert_eq!(fields.len(), columns.len());
        let at = |name: &str| fields[columns.iter().position(|c| *c == name).unwrap()];
        assert_eq!(
            (at("step"), at("total"), at("zoom_rate"), at("utility_q")),
            ("3", "2.500000", "0.250000", "")
        );
        assert_eq!((at("updated"), at("kl"), at("loss")), ("8", "0.001000", ""));
        assert_eq!(at("update_seconds"), "3.500");
    }
}
