//! ME spotting, MEGC protocol: a predicted interval is a true positive when its IoU with a
//! not-yet-matched gold interval of the same video (and, by default, the same kind) is at
//! least 0.5.
//!
//! Intervals are inclusive frame ranges, so `[onset, offset]` holds `offset - onset + 1`
//! frames, and
//!
//! `IoU(A, B) = |A ∩ B| / |A ∪ B|`, `|A ∩ B| = max(0, min(A.offset, B.offset) -
//! max(A.onset, B.onset) + 1)`, `|A ∪ B| = |A| + |B| - |A ∩ B|`.
//!
//! The threshold test is exact integer arithmetic, `2 |A ∩ B| >= |A ∪ B|`: gold 0..9 with a
//! prediction 5..14 has IoU 5/15 and is no match; gold 0..11 with 4..15 has IoU 8/16 = 0.5 and
//! is one.
//!
//! Matching, per video: every (prediction, gold) pair over the threshold is a candidate; the
//! candidates are taken in order of IoU, highest first (ties: the earlier gold interval in
//! file order, then the earlier prediction in file order), and a pair is kept when neither
//! side is matched yet. So each gold interval is matched at most once, and a second prediction
//! of an already matched interval is a false positive. Unmatched gold intervals are false
//! negatives.
//!
//! Counts per kind: a true positive and a false negative count under the gold interval's kind,
//! a false positive under the predicted kind; `overall` is the sum over kinds (MEGC's overall
//! F1 from summed counts). With [`SpottingOptions::match_kinds`] (the default) a prediction
//! only matches gold of its own kind; without it kinds play no part in the matching. The 0/0
//! cases follow [`super::Counts`]: no predictions and no gold gives precision, recall and F1 of
//! 1; no predictions against some gold gives 0.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::Counts;
use crate::error::Result;

/// Micro- or macro-expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Micro,
    Macro,
}

/// One interval of one video: inclusive frame numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interval {
    pub video: String,
    pub onset: u64,
    pub offset: u64,
    pub kind: Kind,
}

impl Interval {
    /// Refuses `onset > offset` and an empty video name.
    pub fn check(&self) -> Result<(), String> {
        if self.video.is_empty() {
            return Err("\"video\" is empty".into());
        }
        if self.onset > self.offset {
            return Err(format!(
                "onset {} is after offset {} (frames are inclusive: onset <= offset)",
                self.onset, self.offset
            ));
        }
        Ok(())
    }

    /// Frames in the interval (at least 1 once [`Interval::check`] passes).
    pub fn frames(&self) -> u64 {
        self.offset - self.onset + 1
    }
}

/// Reads a spotting JSONL file (`{"video", "onset", "offset", "kind"}` a line).
pub fn read_intervals(path: &Path) -> Result<Vec<Interval>> {
    let lines = super::read_jsonl_checked(path, |i: Interval| i.check().map(|_| i))?;
    Ok(lines.into_iter().map(|(_, i)| i).collect())
}

/// Frames shared by two inclusive intervals and frames in their union.
pub fn overlap(a: &Interval, b: &Interval) -> (u64, u64) {
    let lo = a.onset.max(b.onset);
    let hi = a.offset.min(b.offset);
    let inter = if hi >= lo { hi - lo + 1 } else { 0 };
    (inter, a.frames() + b.frames() - inter)
}

/// `|A ∩ B| / |A ∪ B|` over frame counts.
pub fn iou(a: &Interval, b: &Interval) -> f64 {
    let (inter, union) = overlap(a, b);
    inter as f64 / union as f64
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SpottingOptions {
    /// A prediction matches gold of its own kind only.
    pub match_kinds: bool,
}

impl Default for SpottingOptions {
    fn default() -> Self {
        SpottingOptions { match_kinds: true }
    }
}

/// One kept match: indices into the gold and predicted lists.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Match {
    pub gold: usize,
    pub pred: usize,
    pub iou: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpottingReport {
    pub micro: Counts,
    #[serde(rename = "macro")]
    pub macro_: Counts,
    pub overall: Counts,
    /// Gold and predicted intervals counted.
    pub gold: usize,
    pub predicted: usize,
    /// The kept matches, in gold order.
    pub matches: Vec<Match>,
}

impl SpottingReport {
    pub fn kind(&self, kind: Kind) -> &Counts {
        match kind {
            Kind::Micro => &self.micro,
            Kind::Macro => &self.macro_,
        }
    }
}

/// Scores predicted intervals against gold ones (the rules of the module docs).
pub fn evaluate(gold: &[Interval], pred: &[Interval], options: SpottingOptions) -> SpottingReport {
    let mut by_video: BTreeMap<&str, (Vec<usize>, Vec<usize>)> = BTreeMap::new();
    for (i, g) in gold.iter().enumerate() {
        by_video.entry(&g.video).or_default().0.push(i);
    }
    for (j, p) in pred.iter().enumerate() {
        by_video.entry(&p.video).or_default().1.push(j);
    }
    let mut matches = Vec::new();
    let mut gold_done = vec![false; gold.len()];
    let mut pred_done = vec![false; pred.len()];
    for (gs, ps) in by_video.values() {
        let mut candidates = Vec::new();
        for &i in gs {
            for &j in ps {
                if options.match_kinds && gold[i].kind != pred[j].kind {
                    continue;
                }
                let (inter, union) = overlap(&gold[i], &pred[j]);
                if 2 * inter >= union {
                    candidates.push((inter, union, i, j));
                }
            }
        }
        // Highest IoU first (a/b > c/d <=> a d > c b), then gold, then prediction order.
        candidates.sort_by(|a, b| {
            (b.0 as u128 * a.1 as u128)
                .cmp(&(a.0 as u128 * b.1 as u128))
                .then(a.2.cmp(&b.2))
                .then(a.3.cmp(&b.3))
        });
        for (inter, union, i, j) in candidates {
            if !gold_done[i] && !pred_done[j] {
                gold_done[i] = true;
                pred_done[j] = true;
                matches.push(Match {
                    gold: i,
                    pred: j,
                    iou: inter as f64 / union as f64,
                });
            }
        }
    }
    matches.sort_by_key(|m| m.gold);
    let tally = |kind: Kind| {
        let tp = matches.iter().filter(|m| gold[m.gold].kind == kind).count();
        let fn_ = gold
            .iter()
            .zip(&gold_done)
            .filter(|(g, done)| g.kind == kind && !**done)
            .count();
        let fp = pred
            .iter()
            .zip(&pred_done)
            .filter(|(p, done)| p.kind == kind && !**done)
            .count();
        Counts::new(tp as u64, fp as u64, fn_ as u64)
    };
    let (micro, macro_) = (tally(Kind::Micro), tally(Kind::Macro));
    SpottingReport {
        micro,
        macro_,
        overall: micro + macro_,
        gold: gold.len(),
        predicted: pred.len(),
        matches,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iv(video: &str, onset: u64, offset: u64, kind: Kind) -> Interval {
        Interval {
            video: video.into(),
            onset,
            offset,
            kind,
        }
    }

    #[test]
    fn iou_counts_inclusive_frames() {
        let g = iv("v", 0, 9, Kind::Micro);
        assert_eq!(overlap(&g, &iv("v", 5, 14, Kind::Micro)), (5, 15));
        assert_eq!(overlap(&g, &iv("v", 10, 19, Kind::Micro)), (0, 20));
        assert_eq!(overlap(&g, &iv("v", 9, 9, Kind::Micro)), (1, 10));
        assert_eq!(
            iou(&iv("v", 0, 11, Kind::Micro), &iv("v", 4, 15, Kind::Micro)),
            0.5
        );
    }

    #[test]
    fn best_iou_wins_the_gold_interval() {
        // Gold 0..9; prediction 0 is 0..14 (IoU 10/15), prediction 1 is 0..9 (IoU 1): the
        // exact one matches, the other is a false positive.
        let gold = [iv("v", 0, 9, Kind::Micro)];
        let pred = [iv("v", 0, 14, Kind::Micro), iv("v", 0, 9, Kind::Micro)];
        let r = evaluate(&gold, &pred, SpottingOptions::default());
        assert_eq!(
            r.matches,
            vec![Match {
                gold: 0,
                pred: 1,
                iou: 1.0
            }]
        );
        assert_eq!((r.micro.tp, r.micro.fp, r.micro.fn_), (1, 1, 0));
    }

    #[test]
    fn kinds_and_videos_keep_apart() {
        let gold = [iv("a", 0, 9, Kind::Micro), iv("b", 0, 99, Kind::Macro)];
        let pred = [iv("b", 0, 9, Kind::Micro), iv("a", 0, 9, Kind::Macro)];
        let r = evaluate(&gold, &pred, SpottingOptions::default());
        assert_eq!((r.micro.tp, r.micro.fp, r.micro.fn_), (0, 1, 1));
        assert_eq!((r.macro_.tp, r.macro_.fp, r.macro_.fn_), (0, 1, 1));
        // Across kinds, prediction 1 matches gold 0: TP under the gold's kind (micro), and the
        // unmatched micro prediction on video b (IoU 10/100) stays a micro false positive.
        let r = evaluate(&gold, &pred, SpottingOptions { match_kinds: false });
        assert_eq!((r.micro.tp, r.micro.fp, r.micro.fn_), (1, 1, 0));
        assert_eq!((r.macro_.tp, r.macro_.fp, r.macro_.fn_), (0, 0, 1));
        assert_eq!((r.overall.tp, r.overall.fp, r.overall.fn_), (1, 1, 1));
    }
}
