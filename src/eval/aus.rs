//! AU detection: per-AU F1 and their mean over the AUs present in gold.
//!
//! Each sample has a gold and a predicted AU set. For AU a: `TP_a` = samples with a in both,
//! `FP_a` = a predicted but not in gold, `FN_a` = a in gold but not predicted;
//! `F1_a = 2 TP_a / (2 TP_a + FP_a + FN_a)` ([`super::Counts`]). `mean_f1` is the mean of `F1_a`
//! over the AUs that occur in at least one gold sample (so every denominator is positive).
//! Predicted AUs that occur in no gold sample are listed in `extra` with their false positives
//! and left out of the mean. A gold sample with no prediction scores as an empty prediction.
//!
//! Sides are ignored by default (`R12`, `L12` and `AU12` are all AU 12). With
//! [`AuOptions::count_sides`] an AU is its number and side: `R12`, `L12` and `AU12` (both
//! sides) are three different AUs, so gold `AU12` predicted as `R12` is one FN for `AU12` and
//! one FP for `R12`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{Counts, Joined};
use crate::error::Result;
use crate::facs::au::AuSide;
use crate::facs::{AuCode, AuSet};

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuOptions {
    /// Tell `R12`, `L12` and `AU12` apart.
    pub count_sides: bool,
}

/// One AU's row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuScore {
    /// `AU12`, or with sides counted `R12` / `L12` / `AU12`.
    pub au: AuCode,
    /// Gold samples with the AU.
    pub support: u64,
    #[serde(flatten)]
    pub counts: Counts,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuReport {
    /// Mean F1 over `aus`; 0 when gold holds no AU at all (then `aus` is empty).
    pub mean_f1: f64,
    /// Gold samples scored.
    pub samples: u64,
    /// The AUs present in gold, in AU-number order.
    pub aus: Vec<AuScore>,
    /// Predicted AUs present in no gold sample, with their false positives.
    pub extra: Vec<AuScore>,
    /// TP, FP, FN summed over `aus` (micro-averaged ratios).
    pub pooled: Counts,
    pub missing_ids: Vec<String>,
    pub unmatched_ids: Vec<String>,
}

#[derive(Deserialize)]
struct AuLine {
    id: String,
    aus: Vec<AuCode>,
}

/// Reads an AU JSONL file (`{"id", "aus"}` a line) as `(id, AU set)` pairs.
pub fn read_au_sets(path: &Path) -> Result<Vec<(String, AuSet)>> {
    super::read_id_lines(path, |l: AuLine| Ok((l.id, AuSet::from_codes(&l.aus)?)))
}

/// The key an AU is counted under: its number and, with sides counted, its side.
fn key(code: AuCode, count_sides: bool) -> (u8, u8) {
    let side = match (count_sides, code.side) {
        (false, _) | (true, None) => 0,
        (true, Some(AuSide::Left)) => 1,
        (true, Some(AuSide::Right)) => 2,
    };
    (code.number, side)
}

fn code((number, side): (u8, u8)) -> AuCode {
    let side = match side {
        1 => Some(AuSide::Left),
        2 => Some(AuSide::Right),
        _ => None,
    };
    AuCode { number, side }
}

/// Scores joined (gold, predicted) AU sets.
pub fn evaluate(joined: &Joined<AuSet>, options: AuOptions) -> AuReport {
    let keys = |set: &AuSet| -> BTreeSet<(u8, u8)> {
        set.codes()
            .into_iter()
            .map(|c| key(c, options.count_sides))
            .collect()
    };
    // [support, tp, fp]
    let mut table: BTreeMap<(u8, u8), [u64; 3]> = BTreeMap::new();
    for (_, g, p) in &joined.pairs {
        let g = keys(g);
        let p = p.as_ref().map(keys).unwrap_or_default();
        for k in &g {
            let row = table.entry(*k).or_default();
            row[0] += 1;
            row[1] += p.contains(k) as u64;
        }
        for k in p.difference(&g) {
            table.entry(*k).or_default()[2] += 1;
        }
    }
    let (mut aus, mut extra) = (Vec::new(), Vec::new());
    for (k, [support, tp, fp]) in table {
        let score = AuScore {
            au: code(k),
            support,
            counts: Counts::new(tp, fp, support - tp),
        };
        if support > 0 {
            aus.push(score);
        } else {
            extra.push(score);
        }
    }
    let mean_f1 = if aus.is_empty() {
        0.0
    } else {
        aus.iter().map(|a| a.counts.f1).sum::<f64>() / aus.len() as f64
    };
    let pooled = aus
        .iter()
        .fold(Counts::new(0, 0, 0), |acc, a| acc + a.counts);
    AuReport {
        mean_f1,
        samples: joined.pairs.len() as u64,
        aus,
        extra,
        pooled,
        missing_ids: joined.missing.clone(),
        unmatched_ids: joined.unmatched.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::join_ids;

    fn set(codes: &[&str]) -> AuSet {
        let codes: Vec<AuCode> = codes.iter().map(|c| AuCode::parse(c).unwrap()).collect();
        AuSet::from_codes(&codes).unwrap()
    }

    #[test]
    fn sides_count_only_when_asked() {
        let gold = vec![("1".to_string(), set(&["AU12"]))];
        let pred = vec![("1".to_string(), set(&["R12", "AU4"]))];
        let j = join_ids(&gold, &pred).unwrap();
        let r = evaluate(&j, AuOptions::default());
        assert_eq!(r.aus.len(), 1);
        assert_eq!((r.aus[0].counts.tp, r.mean_f1), (1, 1.0));
        assert_eq!((r.extra[0].au.number, r.extra[0].counts.fp), (4, 1));
        let r = evaluate(&j, AuOptions { count_sides: true });
        assert_eq!(r.aus[0].au.to_string(), "AU12");
        assert_eq!((r.aus[0].counts.tp, r.aus[0].counts.fn_), (0, 1));
        let extra: Vec<String> = r.extra.iter().map(|a| a.au.to_string()).collect();
        assert_eq!(extra, ["AU4", "R12"]);
        assert_eq!(r.mean_f1, 0.0);
    }

    #[test]
    fn missing_prediction_is_empty() {
        let gold = vec![
            ("1".to_string(), set(&["AU1"])),
            ("2".to_string(), set(&["AU1"])),
        ];
        let pred = vec![("1".to_string(), set(&["AU1"]))];
        let r = evaluate(&join_ids(&gold, &pred).unwrap(), AuOptions::default());
        // TP 1, FN 1: F1 = 2/(2+0+1).
        assert_eq!(r.aus[0].counts.f1, 2.0 / 3.0);
        assert_eq!(r.missing_ids, ["2"]);
    }
}
