//! The evaluation protocols of DESIGN.md, one file each, plain types in and out:
//! ME spotting ([`spotting`], MEGC F1 at IoU >= 0.5), ME recognition ([`recognition`], UF1
//! and UAR with a confusion matrix), AUs ([`aus`], per-AU F1 and their mean) and optical flow
//! ([`flow`], end-point error overall, inside a mask and per amplitude bin, and the Middlebury
//! `.flo` format). `actfer eval` is a thin layer over these functions.
//!
//! # File formats
//!
//! Predictions and gold labels are JSONL files: one JSON object a line, blank lines skipped,
//! line numbers 1-based. A line that does not parse, or breaks a rule below, is an error naming
//! the file and the line ([`read_jsonl`]); unknown keys are ignored.
//!
//! - spotting: `{"video": "v1", "onset": 12, "offset": 30, "kind": "micro"}`: frame numbers
//!   (non-negative integers, inclusive, `onset <= offset`), `kind` is `micro` or `macro`.
//!   A video with no interval in either file plays no part.
//! - recognition: `{"id": "s1", "label": "happiness"}`: one line per sample, ids unique in a
//!   file, labels non-empty strings (the crate's emotions, the ME classes
//!   positive/negative/surprise, or any other label set).
//! - AUs: `{"id": "s1", "aus": ["AU1", "R12"]}`: one line per sample, ids unique in a file,
//!   AUs as [`crate::facs::AuCode::parse`] reads them (`AU12`, `12`, `R12`, `L12`), each AU
//!   number at most once per line (`AU12` with `R12` is a duplicate); `[]` is a sample with no
//!   AU.
//! - flow: Middlebury `.flo` files ([`flow::read_flo`]); masks are images of the same size,
//!   a pixel is inside when any channel is non-zero.
//!
//! Recognition and AU lines are joined on `id`. A gold id with no prediction counts as a wrong
//! answer (recognition: a miss of its class; AUs: an empty prediction); a predicted id with no
//! gold line is ignored. Both kinds of id are listed in the report.
//!
//! # Ratios
//!
//! Every precision, recall and F1 is a ratio of counts, `precision = TP / (TP + FP)`,
//! `recall = TP / (TP + FN)`, `F1 = 2 TP / (2 TP + FP + FN)` (the harmonic mean of the two when
//! both are defined). When a denominator is 0 ([`Counts`]): with nothing to find and nothing
//! claimed (TP = FP = FN = 0) all three are 1; otherwise a 0/0 precision or recall is 0
//! (no predictions against some gold: precision 0; predictions against no gold: recall 0), and
//! F1 is then 0 as well.

pub mod aus;
pub mod flow;
pub mod recognition;
pub mod spotting;

use std::collections::HashMap;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};

/// True positives, false positives and false negatives, with the ratios of the module docs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Counts {
    pub tp: u64,
    pub fp: u64,
    #[serde(rename = "fn")]
    pub fn_: u64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

impl Counts {
    /// The counts with their ratios (the 0/0 rules of the module docs).
    pub fn new(tp: u64, fp: u64, fn_: u64) -> Counts {
        let none = tp + fp + fn_ == 0;
        let ratio = |num: u64, den: u64| match (den, none) {
            (0, true) => 1.0,
            (0, false) => 0.0,
            _ => num as f64 / den as f64,
        };
        Counts {
            tp,
            fp,
            fn_,
            precision: ratio(tp, tp + fp),
            recall: ratio(tp, tp + fn_),
            f1: ratio(2 * tp, 2 * tp + fp + fn_),
        }
    }
}

/// The sum of two sets of counts, ratios recomputed.
impl std::ops::Add for Counts {
    type Output = Counts;

    fn add(self, other: Counts) -> Counts {
        Counts::new(self.tp + other.tp, self.fp + other.fp, self.fn_ + other.fn_)
    }
}

/// Reads a JSONL file into records with their 1-based line numbers, blank lines skipped.
/// A line that is not valid JSON for `T` is a [`Error::BadInput`] naming the file, the line and
/// the column.
pub fn read_jsonl<T: DeserializeOwned>(path: &Path) -> Result<Vec<(usize, T)>> {
    if !path.exists() {
        return Err(Error::NotFound {
            path: path.to_path_buf(),
        });
    }
    let text = std::fs::read(path).map_err(|e| Error::io(format!("{}", path.display()), e))?;
    crate::reward::io::jsonl_lines(&text)
        .map(|(n, line)| {
            serde_json::from_slice(line).map(|v| (n, v)).map_err(|e| {
                // serde_json ends its message with the position inside the line; the file
                // position is the line number and the column.
                let text = e.to_string();
                let what = text
                    .rsplit_once(" at line ")
                    .map_or(text.as_str(), |(w, _)| w);
                Error::bad_input(path, format!("line {n}, column {}: {what}", e.column()))
            })
        })
        .collect()
}

/// Reads a JSONL file of records and checks each with `check`; a failed check is a
/// [`Error::BadInput`] naming the file and the line.
pub fn read_jsonl_checked<T: DeserializeOwned, U>(
    path: &Path,
    check: impl Fn(T) -> std::result::Result<U, String>,
) -> Result<Vec<(usize, U)>> {
    read_jsonl::<T>(path)?
        .into_iter()
        .map(|(n, v)| {
            check(v)
                .map(|u| (n, u))
                .map_err(|e| Error::bad_input(path, format!("line {n}: {e}")))
        })
        .collect()
}

/// Refuses an id seen on an earlier line of the same file.
fn refuse_repeated_ids<T>(path: &Path, lines: &[(usize, (String, T))]) -> Result<()> {
    let mut seen: HashMap<&str, usize> = HashMap::with_capacity(lines.len());
    for (n, (id, _)) in lines {
        if id.is_empty() {
            return Err(Error::bad_input(path, format!("line {n}: \"id\" is empty")));
        }
        if let Some(first) = seen.insert(id, *n) {
            return Err(Error::bad_input(
                path,
                format!("line {n}: id {id:?} already appears on line {first}"),
            ));
        }
    }
    Ok(())
}

/// Reads `(id, value)` records, ids unique and non-empty (the module docs).
pub fn read_id_lines<T: DeserializeOwned, U>(
    path: &Path,
    check: impl Fn(T) -> std::result::Result<(String, U), String>,
) -> Result<Vec<(String, U)>> {
    let lines = read_jsonl_checked(path, check)?;
    refuse_repeated_ids(path, &lines)?;
    Ok(lines.into_iter().map(|(_, r)| r).collect())
}

/// A record joined on its id, as read by [`join_ids`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Joined<T> {
    /// Gold id and value with the predicted value (`None`: no prediction for that id), in
    /// gold file order.
    pub pairs: Vec<(String, T, Option<T>)>,
    /// Gold ids with no prediction.
    pub missing: Vec<String>,
    /// Predicted ids with no gold line.
    pub unmatched: Vec<String>,
}

/// Joins gold and predicted `(id, value)` lists on the id. A repeated id within one list is an
/// error naming the id (the caller adds the file).
pub fn join_ids<T: Clone>(
    gold: &[(String, T)],
    pred: &[(String, T)],
) -> std::result::Result<Joined<T>, String> {
    fn index<'a, T>(
        list: &'a [(String, T)],
        side: &str,
    ) -> std::result::Result<HashMap<&'a str, usize>, String> {
        let mut map = HashMap::with_capacity(list.len());
        for (i, (id, _)) in list.iter().enumerate() {
            if map.insert(id.as_str(), i).is_some() {
                return Err(format!("{side} id {id:?} appears more than once"));
            }
        }
        Ok(map)
    }
    let gold_index = index(gold, "gold")?;
    let pred_index = index(pred, "predicted")?;
    let mut joined = Joined {
        pairs: Vec::with_capacity(gold.len()),
        missing: Vec::new(),
        unmatched: Vec::new(),
    };
    for (id, g) in gold {
        let p = pred_index.get(id.as_str()).map(|&i| pred[i].1.clone());
        if p.is_none() {
            joined.missing.push(id.clone());
        }
        joined.pairs.push((id.clone(), g.clone(), p));
    }
    joined.unmatched = pred
        .iter()
        .filter(|(id, _)| !gold_index.contains_key(id.as_str()))
        .map(|(id, _)| id.clone())
        .collect();
    Ok(joined)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_and_empty_cases() {
        let c = Counts::new(2, 1, 3);
        assert_eq!(c.precision, 2.0 / 3.0);
        assert_eq!(c.recall, 2.0 / 5.0);
        // 2PR/(P+R) = 2*(2/3)(2/5)/(2/3+2/5) = (8/15)/(16/15) = 0.5 = 4/8.
        assert_eq!(c.f1, 0.5);
        let both_empty = Counts::new(0, 0, 0);
        assert_eq!(
            (both_empty.precision, both_empty.recall, both_empty.f1),
            (1.0, 1.0, 1.0)
        );
        let no_pred = Counts::new(0, 0, 4);
        assert_eq!(
            (no_pred.precision, no_pred.recall, no_pred.f1),
            (0.0, 0.0, 0.0)
        );
        let no_gold = Counts::new(0, 4, 0);
        assert_eq!(
            (no_gold.precision, no_gold.recall, no_gold.f1),
            (0.0, 0.0, 0.0)
        );
    }

    #[test]
    fn join_reports_both_sides_and_refuses_repeats() {
        let gold = vec![("a".to_string(), 1), ("b".to_string(), 2)];
        let pred = vec![("b".to_string(), 2), ("c".to_string(), 3)];
        let j = join_ids(&gold, &pred).unwrap();
        assert_eq!(
            j.pairs,
            vec![("a".into(), 1, None), ("b".into(), 2, Some(2))]
        );
        assert_eq!(j.missing, vec!["a".to_string()]);
        assert_eq!(j.unmatched, vec!["c".to_string()]);
        let twice = vec![("a".to_string(), 1), ("a".to_string(), 1)];
        assert!(join_ids(&twice, &pred).unwrap_err().contains("\"a\""));
    }
}
