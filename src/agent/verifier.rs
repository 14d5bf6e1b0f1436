//! Checks of an answer against the run's evidence: every claimed AU shown present by a cited
//! step, the emotion compatible with the claimed AUs, evidence gathered before answering.

use super::trace::{Answer, Check, Step};
use crate::facs::au::mask;
use crate::facs::emotion::Emotion;
use crate::facs::evidence::PRESENT;

/// The checks, in a fixed order.
pub fn verify(answer: &Answer, steps: &[Step]) -> Vec<Check> {
    let unsupported: Vec<&str> = answer
        .aus
        .iter()
        .filter(|a| a.evidence.is_empty() || a.intensity < PRESENT)
        .map(|a| a.au.as_str())
        .collect();
    let numbers: Vec<u8> = answer
        .aus
        .iter()
        .filter_map(|a| a.au.trim_start_matches("AU").parse().ok())
        .collect();
    let emotion = Emotion::parse(&answer.emotion.label);
    let looked = steps.iter().filter(|s| super::run::is_evidence(s)).count();
    vec![
        Check {
            name: "aus_have_evidence".into(),
            passed: unsupported.is_empty(),
            detail: if unsupported.is_empty() {
                format!(
                    "each of the {} AU(s) is present (intensity >= {PRESENT}) in a cited step",
                    answer.aus.len()
                )
            } else {
                format!("no step shows {} present", unsupported.join(", "))
            },
        },
        Check {
            name: "emotion_fits_aus".into(),
            passed: emotion
                .as_ref()
                .is_ok_and(|e| e.compatible_with(mask(&numbers))),
            detail: match &emotion {
                Ok(e) => format!(
                    "{} needs at least half of its prototype ({}) among the claimed AUs",
                    e.name(),
                    e.prototype()
                        .iter()
                        .map(|n| format!("AU{n}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
                Err(e) => e.clone(),
            },
        },
        Check {
            name: "evidence_before_answer".into(),
            passed: looked > 0,
            detail: format!("{looked} evidence step(s) before the answer"),
        },
    ]
}
