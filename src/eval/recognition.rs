//! ME recognition: UF1 (the mean over classes of per-class F1) and UAR (the mean over classes
//! of per-class recall), with a confusion matrix.
//!
//! The classes are the labels present in gold, sorted. For class c over the gold samples:
//! `TP_c` = gold c predicted c, `FN_c` = gold c predicted anything else (another class, a label
//! outside the gold classes, or no prediction at all), `FP_c` = predicted c with another gold
//! label. `F1_c = 2 TP_c / (2 TP_c + FP_c + FN_c)`, `recall_c = TP_c / (TP_c + FN_c)`; both
//! denominators are positive since every class has a gold sample. A class never predicted has
//! precision 0. `UF1 = mean_c F1_c`, `UAR = mean_c recall_c`; `accuracy` is correct / gold
//! samples.
//!
//! A predicted label outside the gold classes is a miss for the gold class and adds no false
//! positive to any class (it has no column of its own in the UF1/UAR means); it is counted in
//! the confusion matrix's `other` column and listed in `other_labels`. A gold sample with no
//! prediction is counted in the `missing` column.
//!
//! Labels are compared after [`normalise`] (default on): surrounding spaces dropped, the
//! emotion spellings of [`crate::facs::Emotion::parse`] mapped to their canonical names
//! (`Happy` -> `happiness`), any other label lowercased (`Positive` -> `positive`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{Counts, Joined};
use crate::error::Result;
use crate::facs::Emotion;

#[derive(Deserialize)]
struct LabelLine {
    id: String,
    label: String,
}

/// Reads a recognition JSONL file (`{"id", "label"}` a line) as `(id, label)` pairs.
pub fn read_labels(path: &Path) -> Result<Vec<(String, String)>> {
    super::read_id_lines(path, |l: LabelLine| {
        if l.label.trim().is_empty() {
            return Err("\"label\" is empty".to_string());
        }
        Ok((l.id, l.label))
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RecognitionOptions {
    /// Compare labels after [`normalise`]; off: as written.
    pub normalise: bool,
}

impl Default for RecognitionOptions {
    fn default() -> Self {
        RecognitionOptions { normalise: true }
    }
}

/// The canonical spelling of a label: an emotion's name, or the trimmed label lowercased.
pub fn normalise(label: &str) -> String {
    match Emotion::parse(label) {
        Ok(e) => e.name().to_string(),
        Err(_) => label.trim().to_lowercase(),
    }
}

/// One class's row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassScore {
    pub label: String,
    /// Gold samples of the class.
    pub support: u64,
    #[serde(flatten)]
    pub counts: Counts,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecognitionReport {
    pub uf1: f64,
    pub uar: f64,
    pub accuracy: f64,
    /// Gold samples scored.
    pub samples: u64,
    pub classes: Vec<ClassScore>,
    /// `confusion[i][j]`: gold class i predicted as class j (classes in `classes` order).
    pub confusion: Vec<Vec<u64>>,
    /// Per gold class: predicted a label outside the gold classes.
    pub other: Vec<u64>,
    /// Per gold class: no prediction for the id.
    pub missing: Vec<u64>,
    /// Predicted labels outside the gold classes, sorted.
    pub other_labels: Vec<String>,
    /// Gold ids with no prediction, and predicted ids with no gold line.
    pub missing_ids: Vec<String>,
    pub unmatched_ids: Vec<String>,
}

/// Scores joined (gold, predicted) labels. Refuses an empty gold list (no class to average).
pub fn evaluate(
    joined: &Joined<String>,
    options: RecognitionOptions,
) -> std::result::Result<RecognitionReport, String> {
    if joined.pairs.is_empty() {
        return Err("the gold file holds no sample, so there is no class to score".into());
    }
    let norm = |l: &str| {
        if options.normalise {
            normalise(l)
        } else {
            l.to_string()
        }
    };
    let pairs: Vec<(String, Option<String>)> = joined
        .pairs
        .iter()
        .map(|(_, g, p)| (norm(g), p.as_deref().map(norm)))
        .collect();
    let classes: Vec<String> = pairs
        .iter()
        .map(|(g, _)| g.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let index: BTreeMap<&str, usize> = classes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i))
        .collect();
    let k = classes.len();
    let mut confusion = vec![vec![0u64; k]; k];
    let (mut other, mut missing) = (vec![0u64; k], vec![0u64; k]);
    let mut other_labels = BTreeSet::new();
    for (g, p) in &pairs {
        let gi = index[g.as_str()];
        match p {
            None => missing[gi] += 1,
            Some(p) => match index.get(p.as_str()) {
                Some(&pi) => confusion[gi][pi] += 1,
                None => {
                    other[gi] += 1;
                    other_labels.insert(p.clone());
                }
            },
        }
    }
    let scores: Vec<ClassScore> = (0..k)
        .map(|c| {
            let support = confusion[c].iter().sum::<u64>() + other[c] + missing[c];
            let tp = confusion[c][c];
            let fp = (0..k).map(|r| confusion[r][c]).sum::<u64>() - tp;
            ClassScore {
                label: classes[c].clone(),
                support,
                counts: Counts::new(tp, fp, support - tp),
            }
        })
        .collect();
    let correct: u64 = (0..k).map(|c| confusion[c][c]).sum();
    Ok(RecognitionReport {
        uf1: scores.iter().map(|s| s.counts.f1).sum::<f64>() / k as f64,
        uar: scores.iter().map(|s| s.counts.recall).sum::<f64>() / k as f64,
        accuracy: correct as f64 / pairs.len() as f64,
        samples: pairs.len() as u64,
        classes: scores,
        confusion,
        other,
        missing,
        other_labels: other_labels.into_iter().collect(),
        missing_ids: joined.missing.clone(),
        unmatched_ids: joined.unmatched.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::join_ids;

    fn list(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(i, l)| (i.to_string(), l.to_string()))
            .collect()
    }

    #[test]
    fn outside_labels_and_missing_ids_are_misses() {
        let gold = list(&[("1", "Happy"), ("2", "sad"), ("3", "sadness")]);
        let pred = list(&[("1", "joy"), ("2", "bored"), ("9", "sad")]);
        let r = evaluate(&join_ids(&gold, &pred).unwrap(), Default::default()).unwrap();
        let labels: Vec<&str> = r.classes.iter().map(|c| c.label.as_str()).collect();
        assert_eq!(labels, ["happiness", "sadness"]);
        assert_eq!(r.confusion, vec![vec![1, 0], vec![0, 0]]);
        assert_eq!(
            (r.other.clone(), r.missing.clone()),
            (vec![0, 1], vec![0, 1])
        );
        assert_eq!(r.other_labels, ["bored"]);
        assert_eq!(
            (r.missing_ids.clone(), r.unmatched_ids.clone()),
            (vec!["3".to_string()], vec!["9".to_string()])
        );
        // happiness F1 1, recall 1; sadness F1 0, recall 0.
        assert_eq!((r.uf1, r.uar), (0.5, 0.5));
        let raw = evaluate(
            &join_ids(&gold, &pred).unwrap(),
            RecognitionOptions { normalise: false },
        )
        .unwrap();
        assert_eq!(raw.classes.len(), 3);
        assert_eq!(raw.uf1, 0.0);
    }

    #[test]
    fn empty_gold_is_refused() {
        let j = join_ids::<String>(&[], &list(&[("1", "a")])).unwrap();
        assert!(evaluate(&j, Default::default()).is_err());
    }
}
