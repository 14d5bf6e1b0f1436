//! AU evidence from motion: which Action Units explain a face's displacement.
//!
//! Each AU has a motion pattern: for each facial region it moves, the direction and size of
//! the movement at full intensity (FACS E), in inter-ocular distances (IOD), written as
//! `(out, down)`: `out` is away from the face's midline on the region's own side, `down` is
//! down the face. AU12 moves the mouth corners up and out and lifts the cheeks; AU4 pulls the
//! inner brows down and together; AU1 raises the inner brows ([`FACS_PATTERNS`]). Patterns
//! fitted to SynthME's training data ([`patterns`]) replace the hand-written ones where the
//! data covers the AU.
//!
//! The measured displacement of every region (its mean flow, head motion removed, in IOD) is
//! explained as a non-negative combination of the patterns, one coefficient per AU and side
//! (non-negative least squares with a small ridge). AUs whose patterns overlap (AU1 and AU4
//! on the inner brows, AU6 and AU7 on the lower lids, AU12, AU14 and AU20 on the mouth
//! corners) share the evidence by how well each explains every region together, rather than
//! each detector claiming the same movement.
//!
//! A coefficient is the AU's intensity on that side (0-1, FACS E = 1). Micro-expressions are
//! small by nature (intensities 0.05-0.4), so presence is decided on the movement itself: an
//! AU is present when the displacement it explains in its most moved region reaches
//! [`MotionOptions::min_displacement_iod`], above what flow noise makes at rest.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use super::detect::Detectors;
use crate::face::regions::Side;
use crate::facs::evidence::{AuEvidence, Cue};

/// One region's movement in an AU's pattern.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Part {
    /// Region name without its side prefix: `inner_brow` means `r_inner_brow` on the right
    /// and `l_inner_brow` on the left; midline regions ([`MIDLINE`]) have none.
    pub region: String,
    /// Movement at full intensity in IOD: away from the midline, and down.
    pub out: f32,
    pub down: f32,
}

/// An AU's motion pattern.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pattern {
    pub au: u8,
    pub parts: Vec<Part>,
}

/// Regions that lie on the midline (no side prefix).
pub const MIDLINE: &[&str] = &["glabella", "nose_root", "upper_lip", "lower_lip", "chin"];

/// Region parts (side prefix dropped) the patterns may move, in a fixed order.
pub const PARTS: &[&str] = &[
    "inner_brow",
    "outer_brow",
    "glabella",
    "upper_eyelid",
    "lower_eyelid",
    "nose_root",
    "nostril_wing",
    "cheek",
    "mouth_corner",
    "upper_lip",
    "lower_lip",
    "chin",
];

type Table = &'static [(u8, &'static [(&'static str, f32, f32)])];

/// Every AU that motion can show, with its pattern as FACS describes the movement (sizes are
/// typical full-intensity movements of the landmarks in each region, IOD): `(region part,
/// out, down)`. The learned patterns ([`LEARNED`]) replace these for the AUs they cover.
pub const FACS_PATTERNS: Table = &[
    // Inner brows rise; the skin between the brows follows.
    (
        1,
        &[
            ("inner_brow", 0.0, -0.12),
            ("outer_brow", 0.0, -0.04),
            ("glabella", 0.0, -0.06),
        ],
    ),
    // Outer brows rise.
    (2, &[("outer_brow", 0.0, -0.12), ("inner_brow", 0.0, -0.04)]),
    // Brows lowered and drawn together, the inner parts most.
    (
        4,
        &[
            ("inner_brow", -0.06, 0.10),
            ("outer_brow", 0.0, 0.05),
            ("glabella", 0.0, 0.06),
            ("upper_eyelid", 0.0, 0.02),
        ],
    ),
    // Upper lids rise.
    (5, &[("upper_eyelid", 0.0, -0.07)]),
    // Cheeks lift and push the lower lids up.
    (
        6,
        &[
            ("cheek", 0.0, -0.06),
            ("lower_eyelid", 0.0, -0.05),
            ("nostril_wing", 0.0, -0.015),
        ],
    ),
    // Lids tighten: the lower lid rises, the upper drops a little; the cheek stays.
    (
        7,
        &[("lower_eyelid", 0.0, -0.06), ("upper_eyelid", 0.0, 0.02)],
    ),
    // Nose wrinkles: the nostril wings and nose sides rise, the inner brows are pulled down,
    // the upper lip rises a little.
    (
        9,
        &[
            ("nostril_wing", 0.0, -0.08),
            ("nose_root", 0.0, -0.02),
            ("inner_brow", 0.0, 0.03),
            ("upper_lip", 0.0, -0.03),
        ],
    ),
    // The upper lip rises; the nostril wings lift a little.
    (
        10,
        &[
            ("upper_lip", 0.0, -0.10),
            ("nostril_wing", 0.0, -0.02),
            ("mouth_corner", 0.0, -0.03),
        ],
    ),
    // Lip corners pulled up and out; the cheeks lift.
    (
        12,
        &[
            ("mouth_corner", 0.09, -0.09),
            ("cheek", 0.02, -0.04),
            ("upper_lip", 0.0, -0.02),
        ],
    ),
    // Lip corners tightened and drawn back into the cheeks (sideways in a frontal view).
    (14, &[("mouth_corner", 0.05, -0.015)]),
    // Lip corners pulled down.
    (
        15,
        &[("mouth_corner", 0.015, 0.08), ("lower_lip", 0.0, 0.02)],
    ),
    // The lower lip pulled down; the chin stays.
    (
        16,
        &[("lower_lip", 0.0, 0.09), ("mouth_corner", 0.01, 0.01)],
    ),
    // The chin boss and the lower lip pushed up.
    (17, &[("chin", 0.0, -0.07), ("lower_lip", 0.0, -0.07)]),
    // Lip corners stretched sideways.
    (
        20,
        &[("mouth_corner", 0.11, 0.015), ("lower_lip", 0.0, 0.01)],
    ),
    // Lips tightened and narrowed: the corners drawn in, the lips' edges pulled together.
    (
        23,
        &[
            ("mouth_corner", -0.03, 0.0),
            ("upper_lip", 0.0, 0.02),
            ("lower_lip", 0.0, -0.02),
        ],
    ),
    // Lips pressed together.
    (24, &[("upper_lip", 0.0, 0.04), ("lower_lip", 0.0, -0.04)]),
    // Lips part: the lower lip drops from the upper.
    (25, &[("lower_lip", 0.0, 0.06), ("upper_lip", 0.0, -0.01)]),
    // The jaw drops: chin, lower lip and the corners follow.
    (
        26,
        &[
            ("chin", 0.0, 0.14),
            ("lower_lip", 0.0, 0.12),
            ("mouth_corner", 0.0, 0.04),
        ],
    ),
    // Blink: the upper lid drops over the eye.
    (
        45,
        &[("upper_eyelid", 0.0, 0.15), ("lower_eyelid", 0.0, -0.02)],
    ),
];

/// Patterns fitted on SynthME's training split (`actfer train motion`, model card in
/// `weights/AU_MOTION.md`).
const LEARNED: &str = include_str!("../../weights/au_motion.json");

/// A file of learned patterns.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LearnedPatterns {
    pub schema: String,
    /// How the file was made.
    pub command: String,
    /// Expressions fitted.
    pub samples: usize,
    /// Root-mean-square residual of the fit, IOD.
    pub residual_rms_iod: f32,
    pub patterns: Vec<Pattern>,
    /// The AU detectors ([`super::detect`]), when trained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detectors: Option<Detectors>,
}

/// The schema of a learned-patterns file.
pub const LEARNED_SCHEMA: &str = "actfer.au_motion/1";

/// The hand-written FACS patterns.
pub fn facs_patterns() -> Vec<Pattern> {
    FACS_PATTERNS
        .iter()
        .map(|(au, parts)| Pattern {
            au: *au,
            parts: parts
                .iter()
                .map(|(region, out, down)| Part {
                    region: region.to_string(),
                    out: *out,
                    down: *down,
                })
                .collect(),
        })
        .collect()
}

/// Environment variable naming a patterns file (`actfer train motion --out`) to use instead
/// of the built-in one.
pub const PATTERNS_ENV: &str = "ACTFER_AU_MOTION";

fn learned() -> &'static LearnedPatterns {
    static LEARNED_FILE: OnceLock<LearnedPatterns> = OnceLock::new();
    LEARNED_FILE.get_or_init(|| match std::env::var_os(PATTERNS_ENV) {
        None => serde_json::from_str(LEARNED).expect("weights/au_motion.json is valid"),
        Some(path) => {
            let read = std::fs::read_to_string(&path).map_err(|e| e.to_string());
            read.and_then(|text| serde_json::from_str(&text).map_err(|e| e.to_string()))
                .unwrap_or_else(|e| {
                    panic!(
                        "{PATTERNS_ENV}={}: {e}; point it at a file written by `actfer train \
                         motion`, or unset it to use the built-in patterns",
                        path.to_string_lossy()
                    )
                })
        }
    })
}

/// The learned AU detectors, if the weights file has them.
pub fn detectors() -> Option<&'static Detectors> {
    learned().detectors.as_ref()
}

/// The patterns in use: the learned ones, and the FACS ones for AUs the training data lacks.
pub fn patterns() -> &'static [Pattern] {
    static PATTERNS: OnceLock<Vec<Pattern>> = OnceLock::new();
    PATTERNS.get_or_init(|| {
        let learned = learned();
        facs_patterns()
            .into_iter()
            .map(|f| {
                learned
                    .patterns
                    .iter()
                    .find(|l| l.au == f.au)
                    .cloned()
                    .unwrap_or(f)
            })
            .collect()
    })
}

/// The AU that marks blinks: reported, never an expression.
pub const BLINK_AU: u8 = 45;

/// The regions the patterns read, in a fixed order (full names).
pub fn observed_regions() -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for pat in patterns() {
        for part in &pat.parts {
            for name in full_names(&part.region) {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
    }
    names
}

fn full_names(region: &str) -> Vec<String> {
    if MIDLINE.contains(&region) {
        vec![region.to_string()]
    } else {
        vec![format!("r_{region}"), format!("l_{region}")]
    }
}

/// The image-x sign of "out" on a side: the subject's right is the image's left.
fn out_sign(side: Side) -> f32 {
    match side {
        Side::Right => -1.0,
        _ => 1.0,
    }
}

/// How motion becomes evidence.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct MotionOptions {
    /// An AU is present when it explains at least this displacement (IOD) in its most moved
    /// region: about 0.12 px on a face whose eyes are 58 px apart.
    pub min_displacement_iod: f32,
    /// ... and at least this share of the displacement the strongest AU explains, so the
    /// spill of a large movement into neighbouring patterns is not read as more AUs.
    pub min_relative: f32,
    /// ... and an intensity (the pattern's coefficient) of at least this.
    pub min_intensity: f32,
    /// Ridge weight of the least squares (keeps overlapping patterns from trading large
    /// opposite coefficients).
    pub ridge: f32,
}

impl Default for MotionOptions {
    fn default() -> Self {
        MotionOptions {
            min_displacement_iod: 0.002,
            min_relative: 0.15,
            min_intensity: 0.05,
            ridge: 1e-4,
        }
    }
}

/// One unknown of the unmixing: an AU on one side (or on both, for midline-only patterns).
#[derive(Debug, Clone, Copy)]
struct Unknown {
    pattern: &'static Pattern,
    side: Side,
}

fn lateral(pat: &Pattern) -> bool {
    pat.parts
        .iter()
        .any(|pt| !MIDLINE.contains(&pt.region.as_str()))
}

fn unknowns() -> Vec<Unknown> {
    let mut out = Vec::new();
    for pat in patterns() {
        if lateral(pat) {
            out.push(Unknown {
                pattern: pat,
                side: Side::Right,
            });
            out.push(Unknown {
                pattern: pat,
                side: Side::Left,
            });
        } else {
            out.push(Unknown {
                pattern: pat,
                side: Side::Both,
            });
        }
    }
    out
}

/// The column of an unknown over `regions` (x and y per region, IOD). A one-sided unknown
/// moves its side's lateral regions fully and the midline regions by half, drawn towards its
/// side.
fn column(u: &Unknown, regions: &[String]) -> Vec<f32> {
    let mut col = vec![0.0; 2 * regions.len()];
    for part in &u.pattern.parts {
        let midline = MIDLINE.contains(&part.region.as_str());
        let targets: Vec<(String, Side, f32)> = match (midline, u.side) {
            (true, Side::Both) => vec![(part.region.clone(), Side::Both, 1.0)],
            (true, side) => vec![(part.region.clone(), side, 0.5)],
            (false, Side::Both) => vec![
                (format!("r_{}", part.region), Side::Right, 1.0),
                (format!("l_{}", part.region), Side::Left, 1.0),
            ],
            (false, Side::Right) => vec![(format!("r_{}", part.region), Side::Right, 1.0)],
            (false, Side::Left) => vec![(format!("l_{}", part.region), Side::Left, 1.0)],
        };
        for (name, side, weight) in targets {
            if let Some(k) = regions.iter().position(|r| *r == name) {
                let out = if side == Side::Both {
                    0.0
                } else {
                    part.out * out_sign(side)
                };
                col[2 * k] += weight * out;
                col[2 * k + 1] += weight * part.down;
            }
        }
    }
    col
}

/// Non-negative least squares with a ridge, by cyclic coordinate descent:
/// `min |A x - b|^2 + ridge |x|^2, x >= 0`, `A` given by columns.
fn nnls(cols: &[Vec<f32>], b: &[f32], ridge: f32) -> Vec<f32> {
    let n = cols.len();
    let mut x = vec![0.0f32; n];
    let mut residual: Vec<f32> = b.iter().map(|v| -v).collect(); // A x - b
    let norms: Vec<f32> = cols
        .iter()
        .map(|c| c.iter().map(|v| v * v).sum::<f32>() + ridge)
        .collect();
    for _ in 0..300 {
        let mut change = 0.0f32;
        for j in 0..n {
            let grad: f32 = cols[j]
                .iter()
                .zip(&residual)
                .map(|(a, r)| a * r)
                .sum::<f32>()
                + ridge * x[j];
            let new = (x[j] - grad / norms[j]).max(0.0);
            let d = new - x[j];
            if d != 0.0 {
                for (r, a) in residual.iter_mut().zip(&cols[j]) {
                    *r += d * a;
                }
                x[j] = new;
                change = change.max(d.abs());
            }
        }
        if change < 1e-6 {
            break;
        }
    }
    x
}

/// The unmixing of one displacement: every AU's coefficients on each side.
#[derive(Debug, Clone, Serialize)]
pub struct Unmixed {
    /// Per pattern, in [`patterns`] order: `(au, right, left)` intensities (equal on both
    /// sides for midline-only patterns).
    pub coefficients: Vec<(u8, f32, f32)>,
    /// Per pattern: the displacement (IOD) it explains in its most moved region, right and
    /// left.
    pub explained_iod: Vec<(f32, f32)>,
    /// Root-mean-square of what no pattern explains (IOD).
    pub residual_rms_iod: f32,
}

/// The largest movement of a pattern at intensity 1 (IOD).
fn pattern_peak(pat: &Pattern) -> f32 {
    pat.parts
        .iter()
        .map(|pt| pt.out.hypot(pt.down))
        .fold(0.0, f32::max)
}

/// Explains region displacements (`(region name, [dx, dy] in IOD)`, image axes) by the
/// patterns. Regions missing from `displacements` are left out of the fit.
pub fn unmix(displacements: &[(String, [f32; 2])], options: &MotionOptions) -> Unmixed {
    let regions: Vec<String> = displacements.iter().map(|(n, _)| n.clone()).collect();
    let b: Vec<f32> = displacements
        .iter()
        .flat_map(|(_, d)| [d[0], d[1]])
        .collect();
    let unknowns = unknowns();
    let cols: Vec<Vec<f32>> = unknowns.iter().map(|u| column(u, &regions)).collect();
    let x = nnls(&cols, &b, options.ridge);
    let mut fitted = vec![0.0f32; b.len()];
    for (c, xj) in cols.iter().zip(&x) {
        for (f, a) in fitted.iter_mut().zip(c) {
            *f += a * xj;
        }
    }
    let residual_rms_iod = (fitted
        .iter()
        .zip(&b)
        .map(|(f, v)| (f - v).powi(2))
        .sum::<f32>()
        / b.len().max(1) as f32)
        .sqrt();
    let mut coefficients = Vec::new();
    let mut explained_iod = Vec::new();
    for pat in patterns() {
        let of = |side: Side| {
            unknowns
                .iter()
                .zip(&x)
                .find(|(u, _)| u.pattern.au == pat.au && u.side == side)
                .map(|(_, v)| *v)
        };
        let (r, l) = match of(Side::Both) {
            Some(v) => (v, v),
            None => (
                of(Side::Right).unwrap_or(0.0),
                of(Side::Left).unwrap_or(0.0),
            ),
        };
        let peak = pattern_peak(pat);
        coefficients.push((pat.au, r, l));
        explained_iod.push((r * peak, l * peak));
    }
    Unmixed {
        coefficients,
        explained_iod,
        residual_rms_iod,
    }
}

/// Probability from which a detector ([`super::detect`]) calls its AU present.
pub const DETECTED_P: f32 = 0.5;

/// Motion evidence, strongest first. An AU with a learned detector is present when
/// `detected` (the detectors' `(au, probability)`) gives it at least [`DETECTED_P`]; any
/// other AU when its pattern explains enough displacement (see the module docs). Intensities
/// and sides are the unmixing's. `source` names the measurement (e.g. `motion:dis onset 5 ->
/// apex 12`).
pub fn evidence(
    unmixed: &Unmixed,
    detected: Option<&[(u8, f32)]>,
    options: &MotionOptions,
    source: &str,
) -> Vec<AuEvidence> {
    let strongest = unmixed
        .coefficients
        .iter()
        .zip(&unmixed.explained_iod)
        .filter(|((au, _, _), _)| *au != BLINK_AU)
        .map(|(_, (er, el))| er.max(*el))
        .fold(0.0, f32::max);
    let threshold = options
        .min_displacement_iod
        .max(options.min_relative * strongest);
    let decision = |au: u8| {
        detected
            .and_then(|d| d.iter().find(|(a, _)| *a == au))
            .map(|(_, p)| *p >= DETECTED_P)
    };
    let mut out: Vec<AuEvidence> = unmixed
        .coefficients
        .iter()
        .zip(&unmixed.explained_iod)
        .filter_map(|(&(au, r, l), &(er, el))| {
            // A detected AU shows on the side(s) that move at least half as much as the
            // other; a thresholded one on the side(s) over the threshold.
            // A detected AU reads at least `min_intensity` even where the unmixing gave its
            // pattern less.
            let (side_threshold, floor) = match decision(au) {
                Some(false) => return None,
                Some(true) => (0.5 * er.max(el), options.min_intensity),
                None if er.max(el) >= threshold && r.max(l) >= options.min_intensity => {
                    (threshold, 0.0)
                }
                None => return None,
            };
            let present = |e: f32, v: f32| {
                if e >= side_threshold {
                    v.max(floor)
                } else {
                    0.0
                }
            };
            let cue = |side: Side, value: f32, intensity: f32| Cue {
                source: format!("motion:{source}"),
                side,
                value,
                intensity: intensity.min(1.0),
            };
            let cues = if r == l {
                vec![cue(Side::Both, er, present(er, r))]
            } else {
                vec![
                    cue(Side::Right, er, present(er, r)),
                    cue(Side::Left, el, present(el, l)),
                ]
            };
            Some(AuEvidence::from_cues(au, cues))
        })
        .collect();
    out.sort_by(|a, b| b.intensity.total_cmp(&a.intensity));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The displacement a pattern makes at `right`/`left` intensities, as the fit reads it.
    fn render(au: u8, right: f32, left: f32) -> Vec<(String, [f32; 2])> {
        let regions = observed_regions();
        let pat = patterns().iter().find(|p| p.au == au).unwrap();
        let mut b = vec![0.0f32; 2 * regions.len()];
        let sides: Vec<(Side, f32)> = if lateral(pat) {
            vec![(Side::Right, right), (Side::Left, left)]
        } else {
            vec![(Side::Both, right)]
        };
        for (side, v) in sides {
            let col = column(&Unknown { pattern: pat, side }, &regions);
            for (x, c) in b.iter_mut().zip(col) {
                *x += v * c;
            }
        }
        regions
            .into_iter()
            .enumerate()
            .map(|(k, n)| (n, [b[2 * k], b[2 * k + 1]]))
            .collect()
    }

    #[test]
    fn every_pattern_alone_is_recovered_as_itself() {
        // Without the ridge, which shrinks the smallest patterns a little.
        let options = MotionOptions {
            ridge: 1e-9,
            ..MotionOptions::default()
        };
        for pat in patterns() {
            let ev = evidence(
                &unmix(&render(pat.au, 0.3, 0.3), &options),
                None,
                &options,
                "t",
            );
            assert_eq!(
                ev[0].au,
                pat.au,
                "{:?}",
                ev.iter().map(|e| e.au).collect::<Vec<_>>()
            );
            assert!(
                (ev[0].intensity - 0.3).abs() < 0.03,
                "AU{} {}",
                pat.au,
                ev[0].intensity
            );
        }
    }

    #[test]
    fn a_one_sided_smile_is_on_the_subjects_side() {
        let options = MotionOptions::default();
        let ev = evidence(&unmix(&render(12, 0.4, 0.0), &options), None, &options, "t");
        let au12 = ev.iter().find(|e| e.au == 12).unwrap();
        assert_eq!(au12.side, Side::Right);
        assert!(au12.right > 0.35 && au12.left < 0.05, "{au12:?}");
    }

    #[test]
    fn overlapping_patterns_are_told_apart_in_combination() {
        // Sadness's brows: AU1 + AU4 together.
        let options = MotionOptions::default();
        let mut d = render(1, 0.3, 0.3);
        for ((_, a), (_, b)) in d.iter_mut().zip(render(4, 0.3, 0.3)) {
            a[0] += b[0];
            a[1] += b[1];
        }
        let ev = evidence(&unmix(&d, &options), None, &options, "t");
        let aus: Vec<u8> = ev.iter().map(|e| e.au).collect();
        assert!(aus.contains(&1) && aus.contains(&4), "{aus:?}");
    }

    #[test]
    fn no_motion_no_evidence() {
        let options = MotionOptions::default();
        let still: Vec<(String, [f32; 2])> = observed_regions()
            .into_iter()
            .map(|n| (n, [0.0, 0.0]))
            .collect();
        assert!(evidence(&unmix(&still, &options), None, &options, "t").is_empty());
    }
}
