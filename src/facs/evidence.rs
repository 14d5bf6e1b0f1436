//! AU evidence: what the tools say about each Action Unit, with an intensity, a side and the
//! cue that said so. Appearance ([`super::appearance`]) produces it from one image; motion
//! produces it from flow. The same type feeds emotion inference ([`super::inference`]), the
//! agent's observations and the trace.

use serde::Serialize;

use super::au::{info, intensity_letter};
use crate::face::regions::Side;

/// Intensity from which an AU counts as present (FACS A starts above 0; below this value the
/// cues are within their noise on faces at rest).
pub const PRESENT: f32 = 0.15;

/// One cue's reading for one AU on one side.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cue {
    /// Where the reading comes from: `blendshape:mouthSmileLeft`, `geometry:eye_opening`.
    pub source: String,
    /// The subject's side the cue looks at; `both` for a midline or two-sided cue.
    pub side: Side,
    /// The cue's raw value (a blendshape score, a geometric ratio).
    pub value: f32,
    /// The intensity the cue implies, 0-1.
    pub intensity: f32,
}

/// Everything known about one AU in one face.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuEvidence {
    /// FACS number.
    pub au: u8,
    pub name: &'static str,
    /// 0-1: the larger side's intensity.
    pub intensity: f32,
    /// FACS intensity letter A-E of `intensity`.
    pub letter: Option<char>,
    /// `left` or `right` when only that side is active (one-sided AUs only), else `both`.
    pub side: Side,
    /// Intensity on the subject's right and left (equal for AUs FACS does not score by side).
    pub right: f32,
    pub left: f32,
    /// The cue that gave the reported intensity.
    pub source: String,
    /// Every cue read for this AU.
    pub cues: Vec<Cue>,
}

impl AuEvidence {
    /// Combines the cues of one AU: each side takes its strongest cue (a cue that covers
    /// `both` counts for each side), since every cue is evidence on its own and weak cues
    /// must not dilute strong ones. A one-sided AU is reported on one side when that side is
    /// present and the other is under half of it.
    pub fn from_cues(au: u8, cues: Vec<Cue>) -> AuEvidence {
        let strongest = |side: Side| {
            cues.iter()
                .filter(|c| c.side == side || c.side == Side::Both)
                .max_by(|a, b| a.intensity.total_cmp(&b.intensity))
        };
        let (r, l) = (strongest(Side::Right), strongest(Side::Left));
        let value = |c: Option<&Cue>| c.map_or(0.0, |c| c.intensity);
        let (right, left) = (value(r), value(l));
        let one_sided = info(au).is_some_and(|a| a.one_sided);
        let (hi, lo) = (right.max(left), right.min(left));
        let side = if one_sided && hi >= PRESENT && lo < 0.5 * hi {
            if right > left {
                Side::Right
            } else {
                Side::Left
            }
        } else {
            Side::Both
        };
        let best = if right >= left { r } else { l };
        AuEvidence {
            au,
            name: info(au).map_or("", |a| a.name),
            intensity: hi,
            letter: intensity_letter(hi),
            side,
            right,
            left,
            source: best.map_or_else(String::new, |c| c.source.clone()),
            cues,
        }
    }

    pub fn present(&self) -> bool {
        self.intensity >= PRESENT
    }

    /// `AU12`, or `R12` / `L12` when one side only.
    pub fn code(&self) -> String {
        match self.side {
            Side::Right => format!("R{}", self.au),
            Side::Left => format!("L{}", self.au),
            Side::Both => format!("AU{}", self.au),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cue(source: &str, side: Side, intensity: f32) -> Cue {
        Cue {
            source: source.into(),
            side,
            value: intensity,
            intensity,
        }
    }

    #[test]
    fn strongest_cue_per_side() {
        let e = AuEvidence::from_cues(
            12,
            vec![
                cue("a", Side::Right, 0.7),
                cue("b", Side::Left, 0.6),
                cue("c", Side::Both, 0.2),
            ],
        );
        assert_eq!((e.right, e.left, e.intensity), (0.7, 0.6, 0.7));
        assert_eq!(e.side, Side::Both);
        assert_eq!(e.source, "a");
        assert_eq!(e.letter, Some('D'));
        assert_eq!(e.code(), "AU12");
    }

    #[test]
    fn one_side_only_when_the_other_is_under_half() {
        let e = AuEvidence::from_cues(
            12,
            vec![cue("r", Side::Right, 0.1), cue("l", Side::Left, 0.5)],
        );
        assert_eq!(e.side, Side::Left);
        assert_eq!(e.code(), "L12");
        // AU26 cannot be one-sided.
        let e = AuEvidence::from_cues(
            26,
            vec![cue("r", Side::Right, 0.1), cue("l", Side::Left, 0.5)],
        );
        assert_eq!(e.side, Side::Both);
        // Too weak to be present: no side.
        let e = AuEvidence::from_cues(
            12,
            vec![cue("r", Side::Right, 0.0), cue("l", Side::Left, 0.1)],
        );
        assert_eq!(e.side, Side::Both);
        assert!(!e.present());
    }
}
