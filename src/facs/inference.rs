//! AU -> emotion inference by prototype matching: how well the measured AU intensities fit
//! each emotion's FACS prototype ([`Emotion::prototype`]), as a distribution over the seven
//! emotions and neutral, and over the three micro-expression classes.
//!
//! The match of emotion `e` with prototype `P` is a fuzzy Jaccard similarity between the
//! intensity vector `I` and the prototype's indicator vector:
//!
//! ```text
//! match(e) = sum_{a in P} I_a / (|P| + EXTRA_WEIGHT * sum_{a not in P} I_a)
//! ```
//!
//! so missing prototype AUs and extra AUs both lower it. Extra AUs weigh half
//! ([`EXTRA_WEIGHT`]): real expressions often carry AUs outside the textbook prototype (anger
//! with AU17 or AU24), so a missing prototype AU says more than an extra one. AUs that
//! accompany many expressions without telling them apart ([`ACCOMPANYING`]: lips part, eye
//! closures) are left out of the sums. Contempt is
//! the one-sided R12+R14: its AU12 and AU14 count by their asymmetry `|right - left|`, and
//! the symmetric part of AU12/AU14 counts as extra. Neutral matches `(1 - max_a I_a)^2`: a face
//! is neutral while no AU is clearly present, and the square makes that fall fast once one AU
//! passes its lower range.
//!
//! The distribution is a softmax of the matches with temperature [`TEMPERATURE`]. The
//! micro-expression classes take the emotions' probabilities renormalised without neutral:
//! positive = happiness, surprise = surprise, negative = the other five.

use serde::Serialize;

use super::emotion::{Emotion, MeClass, ACCOMPANYING};
use super::evidence::AuEvidence;

/// Softmax temperature over matches: a match 0.1 higher weighs e (2.7) times more.
pub const TEMPERATURE: f32 = 0.1;

/// Weight of AUs outside a prototype in its match (see the module docs).
pub const EXTRA_WEIGHT: f32 = 0.5;

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EmotionScore {
    pub emotion: Emotion,
    /// The prototype match, 0-1.
    #[serde(rename = "match")]
    pub match_: f32,
    pub probability: f32,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MeScore {
    pub class: MeClass,
    pub probability: f32,
}

/// The inference's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Inference {
    /// Every label, most probable first.
    pub emotions: Vec<EmotionScore>,
    /// The three ME classes, most probable first.
    pub me: Vec<MeScore>,
}

impl Inference {
    pub fn top(&self) -> Emotion {
        self.emotions[0].emotion
    }

    pub fn top_me(&self) -> MeClass {
        self.me[0].class
    }

    pub fn probability(&self, e: Emotion) -> f32 {
        self.emotions
            .iter()
            .find(|s| s.emotion == e)
            .map_or(0.0, |s| s.probability)
    }
}

/// The prototype match of every label (see the module docs).
pub fn matches(evidence: &[AuEvidence]) -> Vec<(Emotion, f32)> {
    let informative: Vec<&AuEvidence> = evidence
        .iter()
        .filter(|e| !ACCOMPANYING.contains(&e.au))
        .collect();
    let strongest = informative.iter().map(|e| e.intensity).fold(0.0, f32::max);
    Emotion::ALL
        .iter()
        .map(|&emotion| {
            if emotion == Emotion::Neutral {
                return (emotion, (1.0 - strongest).powi(2));
            }
            let proto = emotion.prototype();
            let (mut inside, mut extra) = (0.0f32, 0.0f32);
            for e in &informative {
                let (fit, rest) = if emotion == Emotion::Contempt && proto.contains(&e.au) {
                    let asym = (e.right - e.left).abs();
                    (asym, e.intensity - asym)
                } else if proto.contains(&e.au) {
                    (e.intensity, 0.0)
                } else {
                    (0.0, e.intensity)
                };
                inside += fit;
                extra += rest;
            }
            (
                emotion,
                inside / (proto.len() as f32 + EXTRA_WEIGHT * extra),
            )
        })
        .collect()
}

/// The distributions of the module docs.
pub fn infer(evidence: &[AuEvidence]) -> Inference {
    let m = matches(evidence);
    let peak = m.iter().map(|(_, v)| *v).fold(f32::MIN, f32::max);
    let weights: Vec<f32> = m
        .iter()
        .map(|(_, v)| ((v - peak) / TEMPERATURE).exp())
        .collect();
    let total: f32 = weights.iter().sum();
    let mut emotions: Vec<EmotionScore> = m
        .iter()
        .zip(&weights)
        .map(|(&(emotion, match_), w)| EmotionScore {
            emotion,
            match_,
            probability: w / total,
        })
        .collect();
    let mut me: Vec<MeScore> = [MeClass::Positive, MeClass::Negative, MeClass::Surprise]
        .into_iter()
        .map(|class| MeScore {
            class,
            probability: emotions
                .iter()
                .filter(|s| s.emotion.me_class() == Some(class))
                .map(|s| s.probability)
                .sum(),
        })
        .collect();
    let expressive: f32 = me.iter().map(|s| s.probability).sum();
    for s in &mut me {
        s.probability /= expressive.max(f32::MIN_POSITIVE);
    }
    emotions.sort_by(|a, b| b.probability.total_cmp(&a.probability));
    me.sort_by(|a, b| b.probability.total_cmp(&a.probability));
    Inference { emotions, me }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::face::regions::Side;
    use crate::facs::evidence::Cue;

    /// Evidence with the given `(au, right, left)` intensities.
    fn ev(aus: &[(u8, f32, f32)]) -> Vec<AuEvidence> {
        aus.iter()
            .map(|&(au, r, l)| {
                let cue = |side, intensity| Cue {
                    source: "test".into(),
                    side,
                    value: intensity,
                    intensity,
                };
                AuEvidence::from_cues(au, vec![cue(Side::Right, r), cue(Side::Left, l)])
            })
            .collect()
    }

    #[test]
    fn prototypes_win() {
        type Case = (&'static [(u8, f32, f32)], Emotion);
        let cases: &[Case] = &[
            (
                &[(6, 0.7, 0.7), (12, 0.9, 0.9), (25, 0.8, 0.8)],
                Emotion::Happiness,
            ),
            (
                &[(1, 0.8, 0.8), (2, 0.7, 0.7), (5, 0.5, 0.5), (26, 0.8, 0.8)],
                Emotion::Surprise,
            ),
            (
                &[(4, 0.8, 0.8), (7, 0.6, 0.6), (23, 0.4, 0.4)],
                Emotion::Anger,
            ),
            (
                &[(9, 0.7, 0.7), (15, 0.4, 0.4), (16, 0.3, 0.3)],
                Emotion::Disgust,
            ),
            (
                &[(1, 0.6, 0.6), (4, 0.5, 0.5), (15, 0.6, 0.6)],
                Emotion::Sadness,
            ),
            (&[(12, 0.8, 0.0), (14, 0.6, 0.0)], Emotion::Contempt),
            (&[(43, 1.0, 1.0), (12, 0.05, 0.05)], Emotion::Neutral),
        ];
        for (aus, want) in cases {
            let inf = infer(&ev(aus));
            assert_eq!(inf.top(), *want, "{aus:?}: {:?}", inf.emotions);
            let total: f32 = inf.emotions.iter().map(|s| s.probability).sum();
            assert!((total - 1.0).abs() < 1e-5);
        }
    }

    #[test]
    fn a_symmetric_smile_is_not_contempt() {
        let inf = infer(&ev(&[(12, 0.8, 0.8), (14, 0.5, 0.5)]));
        assert!(inf.probability(Emotion::Happiness) > inf.probability(Emotion::Contempt));
        assert_eq!(inf.top_me(), MeClass::Positive);
    }

    #[test]
    fn me_classes_sum_to_one() {
        let inf = infer(&ev(&[(1, 0.8, 0.8), (2, 0.7, 0.7), (26, 0.8, 0.8)]));
        assert_eq!(inf.top_me(), MeClass::Surprise);
        let total: f32 = inf.me.iter().map(|s| s.probability).sum();
        assert!((total - 1.0).abs() < 1e-5);
    }
}
