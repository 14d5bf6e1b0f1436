//! The per-rollout reward terms and the group-relative advantage.
//!
//! - `r_format` = 1 when the answer parses ([`super::parse`]), else 0. A rollout whose answer
//!   does not parse scores 0 on every term: no partial credit for a malformed answer.
//! - `r_au` = F1 between the predicted and gold AU numbers (sides ignored):
//!   `2 |P ∩ G| / (|P| + |G|)`.
//! - `r_region` = the same F1 over the face regions the AUs touch, taken from the region table
//!   ([`crate::face::regions`]) at its `Fine` and `Coarse` levels (the 12 AUW-GCN ROIs are
//!   left out: they repeat the fine regions). An AU touches every region whose AU list holds
//!   it; a one-sided AU (`R12`) touches only the regions of its side and the midline ones.
//! - `r_consistency` = 1 when the predicted emotion is compatible with the predicted AUs
//!   ([`Emotion::compatible_with`](crate::facs::Emotion::compatible_with)), else 0.
//! - `r_emotion` = 1 when the predicted emotion equals the gold one (or, with
//!   `emotion_level = "me3"`, falls in the same positive/negative/surprise class).
//! - `r_words` = the share of the rollout's texts that pass the words checks
//!   ([`super::writing`]); it needs the word list, so [`super::score_batch`] scores it.
//!
//! Both F1s take two empty sets as a perfect match (1) and one empty set against a non-empty
//! one as 0 (so "neutral, no AUs" against a neutral gold label scores 1).

use std::sync::OnceLock;

use serde::Serialize;

use super::config::{EmotionLevel, RewardConfig};
use super::parse::Answer;
use crate::face::regions::{Level, Side, REGIONS};
use crate::facs::AuSet;

/// A gold label: emotion and AU set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gold {
    pub emotion: crate::facs::Emotion,
    pub aus: AuSet,
}

/// Every term of one rollout, unweighted. `utility` is `zoomed * Uhat(q)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Terms {
    pub format: f64,
    pub region: f64,
    pub au: f64,
    pub consistency: f64,
    pub emotion: f64,
    pub utility: f64,
    pub words: f64,
}

impl Terms {
    /// The task reward: the weighted sum of every term but utility.
    pub fn task(&self, cfg: &RewardConfig) -> f64 {
        let w = &cfg.weights;
        w.format * self.format
            + w.region * self.region
            + w.au * self.au
            + w.consistency * self.consistency
            + w.emotion * self.emotion
            + w.words * self.words
    }
}

/// The terms of one answer (`None`: the format check failed) against its gold label; every
/// term but `words` (0 here) and `utility`.
pub fn score_answer(answer: Option<&Answer>, gold: &Gold, cfg: &RewardConfig) -> Terms {
    let Some(a) = answer else {
        return Terms::default();
    };
    let emotion = match cfg.emotion_level {
        EmotionLevel::Basic => a.emotion == gold.emotion,
        EmotionLevel::Me3 => a.emotion.me_class() == gold.emotion.me_class(),
    };
    Terms {
        format: 1.0,
        region: f1(region_mask(&a.aus), region_mask(&gold.aus)),
        au: f1(a.aus.numbers(), gold.aus.numbers()),
        consistency: f64::from(u8::from(a.emotion.compatible_with(a.aus.numbers()))),
        emotion: f64::from(u8::from(emotion)),
        utility: 0.0,
        words: 0.0,
    }
}

/// F1 between two sets given as bit masks; two empty sets score 1.
pub fn f1(pred: u64, gold: u64) -> f64 {
    let denom = pred.count_ones() + gold.count_ones();
    if denom == 0 {
        return 1.0;
    }
    2.0 * f64::from((pred & gold).count_ones()) / f64::from(denom)
}

/// Per AU number, the regions (bit = index in [`REGIONS`]) an AU touches on both sides, on the
/// subject's left only, and on the right only.
struct RegionTable {
    both: [u64; 64],
    left: [u64; 64],
    right: [u64; 64],
}

fn region_table() -> &'static RegionTable {
    static TABLE: OnceLock<RegionTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        assert!(REGIONS.len() <= 64, "the region mask holds 64 regions");
        let mut t = RegionTable {
            both: [0; 64],
            left: [0; 64],
            right: [0; 64],
        };
        for au in 0..64u8 {
            for r in crate::face::regions::regions_for_au(au)
                .filter(|r| matches!(r.level, Level::Fine | Level::Coarse))
            {
                let bit = 1u64
                    << REGIONS
                        .iter()
                        .position(|q| q.name == r.name)
                        .expect("region in table");
                t.both[au as usize] |= bit;
                if r.side != Side::Right {
                    t.left[au as usize] |= bit;
                }
                if r.side != Side::Left {
                    t.right[au as usize] |= bit;
                }
            }
        }
        t
    })
}

/// The regions (bits over [`REGIONS`]) an AU set touches.
pub fn region_mask(aus: &AuSet) -> u64 {
    let t = region_table();
    let mut m = 0;
    for (bits, table) in [
        (aus.both, &t.both),
        (aus.left, &t.left),
        (aus.right, &t.right),
    ] {
        let mut b = bits;
        while b != 0 {
            let n = b.trailing_zeros() as usize;
            m |= table[n];
            b &= b - 1;
        }
    }
    m
}

/// The names of the regions in a mask (for reports and tests).
pub fn region_names(mask: u64) -> Vec<&'static str> {
    REGIONS
        .iter()
        .enumerate()
        .filter(|(i, _)| mask >> i & 1 == 1)
        .map(|(_, r)| r.name)
        .collect()
}

/// GRPO advantages of one group: `A_i = (R_i - mean R) / (std R + eps)`, with the population
/// standard deviation (divide by n). Returns the advantages, the mean and the std.
pub fn advantages(totals: &[f64], eps: f64) -> (Vec<f64>, f64, f64) {
    if totals.is_empty() {
        return (Vec::new(), 0.0, 0.0);
    }
    let n = totals.len() as f64;
    let mean = totals.iter().sum::<f64>() / n;
    let std = (totals.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n).sqrt();
    (
        totals.iter().map(|r| (r - mean) / (std + eps)).collect(),
        mean,
        std,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facs::au::mask;
    use crate::facs::{AuCode, Emotion};

    fn set(codes: &[&str]) -> AuSet {
        AuSet::from_codes(
            &codes
                .iter()
                .map(|c| AuCode::parse(c).unwrap())
                .collect::<Vec<_>>(),
        )
        .unwrap()
    }

    #[test]
    fn f1_conventions() {
        assert_eq!(f1(0, 0), 1.0);
        assert_eq!(f1(mask(&[12]), 0), 0.0);
        // P = {6, 12, 25}, G = {6, 12}: 2*2 / (3+2) = 0.8
        assert_eq!(f1(mask(&[6, 12, 25]), mask(&[6, 12])), 0.8);
    }

    #[test]
    fn regions_of_aus() {
        // AU12 (fine + coarse): both cheeks, both mouth corners, lower_face.
        let m12 = region_mask(&set(&["AU12"]));
        assert_eq!(
            region_names(m12),
            [
                "r_cheek",
                "l_cheek",
                "r_mouth_corner",
                "l_mouth_corner",
                "lower_face"
            ]
        );
        // R12: the subject's right side and the midline region only.
        assert_eq!(
            region_names(region_mask(&set(&["R12"]))),
            ["r_cheek", "r_mouth_corner", "lower_face"]
        );
        // AU6: both lower eyelids, both cheeks, upper_face.
        assert_eq!(region_mask(&set(&["AU6"])).count_ones(), 5);
        // No ROI level: AU9 touches nose_root, both nostril wings, lower_face (not the ROIs).
        assert_eq!(
            region_names(region_mask(&set(&["AU9"]))),
            [
                "nose_root",
                "r_nostril_wing",
                "l_nostril_wing",
                "lower_face"
            ]
        );
    }

    #[test]
    fn terms_by_hand() {
        let cfg = RewardConfig::default();
        let gold = Gold {
            emotion: Emotion::Happiness,
            aus: set(&["AU6", "AU12"]),
        };
        // Predicted: happiness with AU12 only.
        // r_au = 2*1/(1+2) = 2/3.
        // regions: P = {r_cheek, l_cheek, r_mouth_corner, l_mouth_corner, lower_face} (5),
        // G = P ∪ {r_lower_eyelid, l_lower_eyelid, upper_face} (8): 2*5/13 = 10/13.
        // consistency: 12 covers 1 of {6, 12} (half) -> 1. emotion -> 1.
        let a = Answer {
            emotion: Emotion::Happiness,
            aus: set(&["AU12"]),
        };
        let t = score_answer(Some(&a), &gold, &cfg);
        assert_eq!(t.format, 1.0);
        assert!((t.au - 2.0 / 3.0).abs() < 1e-12);
        assert!((t.region - 10.0 / 13.0).abs() < 1e-12);
        assert_eq!((t.consistency, t.emotion, t.utility), (1.0, 1.0, 0.0));
        // task with defaults: 0.5*1 + 0.5*10/13 + 1*2/3 + 0.5*1 + 1*1
        let want = 0.5 + 0.5 * 10.0 / 13.0 + 2.0 / 3.0 + 0.5 + 1.0;
        assert!((t.task(&cfg) - want).abs() < 1e-12);
        // Sadness with AUs {1, 2}: no AU or region in common with gold... except none:
        // AU1/AU2 touch brows + upper_face; gold touches upper_face too: regions
        // P = {r_inner_brow, l_inner_brow, r_outer_brow, l_outer_brow, upper_face} (5),
        // G (8): overlap {upper_face} -> 2*1/13. Sadness {1,4,15}: covers 1 of 3 -> 0.
        let b = Answer {
            emotion: Emotion::Sadness,
            aus: set(&["AU1", "AU2"]),
        };
        let t = score_answer(Some(&b), &gold, &cfg);
        assert_eq!((t.au, t.consistency, t.emotion), (0.0, 0.0, 0.0));
        assert!((t.region - 2.0 / 13.0).abs() < 1e-12);
        assert_eq!(score_answer(None, &gold, &cfg), Terms::default());
        // me3: contempt vs gold sadness are both negative.
        let me3 = RewardConfig {
            emotion_level: EmotionLevel::Me3,
            ..cfg
        };
        let sad = Gold {
            emotion: Emotion::Sadness,
            aus: set(&["AU1", "AU4", "AU15"]),
        };
        let c = Answer {
            emotion: Emotion::Contempt,
            aus: set(&["R12", "R14"]),
        };
        assert_eq!(score_answer(Some(&c), &sad, &me3).emotion, 1.0);
        assert_eq!(score_answer(Some(&c), &sad, &cfg).emotion, 0.0);
    }

    #[test]
    fn advantage_by_hand() {
        // R = [1, 2, 3]: mean 2, population std sqrt(2/3) = 0.816496...;
        // A = [-1, 0, 1] / (0.816496... + 1e-6)
        let (a, mean, std) = advantages(&[1.0, 2.0, 3.0], 1e-6);
        assert_eq!(mean, 2.0);
        assert!((std - (2.0f64 / 3.0).sqrt()).abs() < 1e-15);
        assert!((a[0] + 1.0 / (0.816_496_580_927_726 + 1e-6)).abs() < 1e-12);
        assert_eq!(a[1], 0.0);
        // A group of equal rewards (or of one) has zero advantages, not NaN.
        assert_eq!(advantages(&[0.7, 0.7], 1e-6).0, [0.0, 0.0]);
    }
}
