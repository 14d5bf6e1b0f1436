//! Per-AU displacement templates on the 68-point landmarks (iBUG order, 0-based).
//!
//! Each template lists which landmarks move at apex intensity 1 and by how much, in a face
//! frame: `out` is the component away from the face's vertical midline (towards the
//! landmark's own side; negative is towards the midline), `down` the component towards the
//! chin. Both are fractions of the inter-ocular distance (IOD, between the two eye centres).
//! The face frame follows the eyes: x runs from the subject's right eye centre (image-left)
//! to the subject's left one, y is x turned 90° clockwise on screen, so a rolled head moves
//! its features along its own axes.
//!
//! Sides are the subject's: the subject's right brow is points 17-21, on the image's left.

use serde::Serialize;

use crate::error::{Error, Result};
use crate::face::landmarks68::groups;
use crate::face::Point;
use crate::facs::au::{self, AuSide};

/// Which side of the face a landmark lies on: the subject's right (image-left), the
/// subject's left (image-right), or the midline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Right,
    Mid,
    Left,
}

/// The side of each of the 68 landmarks.
fn side(i: usize) -> Side {
    match i {
        8 | 27..=30 | 33 | 51 | 57 | 62 | 66 => Side::Mid,
        0..=7 | 17..=21 | 31 | 32 | 36..=41 | 48..=50 | 58..=61 | 67 => Side::Right,
        _ => Side::Left,
    }
}

/// How one landmark moves at apex intensity 1.
#[derive(Debug, Clone, Copy)]
enum Motion {
    /// A fixed displacement in the face frame, IOD fractions: (`out`, `down`).
    Shift(f32, f32),
    /// Towards landmark `.0`, by the fraction `.1` of the gap between the two (lids).
    Onto(usize, f32),
}

use Motion::{Onto, Shift};

/// One AU's template: the landmarks that move and how.
struct Template {
    au: u8,
    moves: &'static [(usize, Motion)],
}

/// The template table. Magnitudes put the largest landmark motion of an AU at 0.04-0.10 IOD
/// at intensity 1 (3-6 px on a 128-px-wide face), in the range of posed macro-expressions;
/// micro-expressions use intensities well below 1.
const TEMPLATES: &[Template] = &[
    // AU1 Inner Brow Raiser: the inner brow ends rise, the brows turn oblique.
    Template {
        au: 1,
        moves: &[
            (21, Shift(0.0, -0.08)),
            (22, Shift(0.0, -0.08)),
            (20, Shift(0.0, -0.06)),
            (23, Shift(0.0, -0.06)),
            (19, Shift(0.0, -0.03)),
            (24, Shift(0.0, -0.03)),
        ],
    },
    // AU2 Outer Brow Raiser: the lateral brows rise, arching them.
    Template {
        au: 2,
        moves: &[
            (17, Shift(0.0, -0.08)),
            (26, Shift(0.0, -0.08)),
            (18, Shift(0.0, -0.08)),
            (25, Shift(0.0, -0.08)),
            (19, Shift(0.0, -0.04)),
            (24, Shift(0.0, -0.04)),
        ],
    },
    // AU4 Brow Lowerer: the brows lower and their inner ends draw together.
    Template {
        au: 4,
        moves: &[
            (17, Shift(0.0, 0.03)),
            (26, Shift(0.0, 0.03)),
            (18, Shift(0.0, 0.04)),
            (25, Shift(0.0, 0.04)),
            (19, Shift(-0.01, 0.05)),
            (24, Shift(-0.01, 0.05)),
            (20, Shift(-0.03, 0.06)),
            (23, Shift(-0.03, 0.06)),
            (21, Shift(-0.04, 0.06)),
            (22, Shift(-0.04, 0.06)),
        ],
    },
    // AU5 Upper Lid Raiser: the upper lids rise, widening the eye opening.
    Template {
        au: 5,
        moves: &[
            (37, Shift(0.0, -0.04)),
            (38, Shift(0.0, -0.04)),
            (43, Shift(0.0, -0.04)),
            (44, Shift(0.0, -0.04)),
        ],
    },
    // AU6 Cheek Raiser: the cheeks lift, pushing the lower lids up and narrowing the eyes
    // from below; crow's feet at the outer corners.
    Template {
        au: 6,
        moves: &[
            (40, Shift(0.0, -0.03)),
            (41, Shift(0.0, -0.03)),
            (46, Shift(0.0, -0.03)),
            (47, Shift(0.0, -0.03)),
            (36, Shift(0.0, -0.01)),
            (45, Shift(0.0, -0.01)),
            (31, Shift(0.0, -0.01)),
            (35, Shift(0.0, -0.01)),
        ],
    },
    // AU7 Lid Tightener: the lids tighten, the lower lid rises and straightens, the upper lid
    // drops a little. `Onto` scales the motion by the subject's own eye opening (a quarter of
    // it for the lower lid, a tenth for the upper), so an already narrow eye narrows without
    // the lids crossing; fixed shifts folded the warp on a smiling face whose lids were 8 px
    // apart.
    Template {
        au: 7,
        moves: &[
            (41, Onto(37, 0.25)),
            (40, Onto(38, 0.25)),
            (47, Onto(43, 0.25)),
            (46, Onto(44, 0.25)),
            (37, Onto(41, 0.1)),
            (38, Onto(40, 0.1)),
            (43, Onto(47, 0.1)),
            (44, Onto(46, 0.1)),
        ],
    },
    // AU9 Nose Wrinkler: the nose sides and nostril wings rise, the inner brows are pulled
    // down, the upper lip rises a little.
    Template {
        au: 9,
        moves: &[
            (31, Shift(0.0, -0.04)),
            (35, Shift(0.0, -0.04)),
            (32, Shift(0.0, -0.03)),
            (34, Shift(0.0, -0.03)),
            (33, Shift(0.0, -0.02)),
            (21, Shift(0.0, 0.02)),
            (22, Shift(0.0, 0.02)),
            (50, Shift(0.0, -0.02)),
            (51, Shift(0.0, -0.02)),
            (52, Shift(0.0, -0.02)),
        ],
    },
    // AU10 Upper Lip Raiser: the upper lip rises, the nostril wings lift a little.
    Template {
        au: 10,
        moves: &[
            (49, Shift(0.0, -0.05)),
            (50, Shift(0.0, -0.06)),
            (51, Shift(0.0, -0.06)),
            (52, Shift(0.0, -0.06)),
            (53, Shift(0.0, -0.05)),
            (61, Shift(0.0, -0.05)),
            (62, Shift(0.0, -0.05)),
            (63, Shift(0.0, -0.05)),
            (31, Shift(0.0, -0.02)),
            (35, Shift(0.0, -0.02)),
        ],
    },
    // AU11 Nasolabial Deepener (zygomaticus minor, inserting into the upper lip between the
    // lip raiser and zygomaticus major): the skin of the upper lip's lateral part is pulled
    // up and a little outwards, deepening the middle of the nasolabial furrow; the corners
    // follow only slightly (less than in AU12), the lower lip stays.
    Template {
        au: 11,
        moves: &[
            (49, Shift(0.02, -0.045)),
            (53, Shift(0.02, -0.045)),
            (50, Shift(0.01, -0.025)),
            (52, Shift(0.01, -0.025)),
            (61, Shift(0.01, -0.03)),
            (63, Shift(0.01, -0.03)),
            (48, Shift(0.01, -0.015)),
            (54, Shift(0.01, -0.015)),
        ],
    },
    // AU12 Lip Corner Puller: the lip corners are pulled up and outwards (obliquely).
    Template {
        au: 12,
        moves: &[
            (48, Shift(0.06, -0.06)),
            (54, Shift(0.06, -0.06)),
            (60, Shift(0.05, -0.05)),
            (64, Shift(0.05, -0.05)),
            (49, Shift(0.02, -0.03)),
            (53, Shift(0.02, -0.03)),
            (59, Shift(0.02, -0.02)),
            (55, Shift(0.02, -0.02)),
        ],
    },
    // AU14 Dimpler: the lip corners tighten and are drawn into the cheek, slightly outwards.
    Template {
        au: 14,
        moves: &[
            (48, Shift(0.03, -0.01)),
            (54, Shift(0.03, -0.01)),
            (60, Shift(0.03, -0.01)),
            (64, Shift(0.03, -0.01)),
        ],
    },
    // AU15 Lip Corner Depressor: the lip corners are pulled down.
    Template {
        au: 15,
        moves: &[
            (48, Shift(0.01, 0.05)),
            (54, Shift(0.01, 0.05)),
            (60, Shift(0.01, 0.04)),
            (64, Shift(0.01, 0.04)),
            (59, Shift(0.0, 0.02)),
            (55, Shift(0.0, 0.02)),
        ],
    },
    // AU16 Lower Lip Depressor (depressor labii inferioris, from the mandible to the lower
    // lip): the lower lip is pulled down and laterally, its middle parts most; the lip
    // stretches sideways, the chin and the upper lip stay. The inner lower lip follows less
    // than the outer so the lower lip's red shows more.
    Template {
        au: 16,
        moves: &[
            (56, Shift(0.02, 0.06)),
            (58, Shift(0.02, 0.06)),
            (57, Shift(0.0, 0.06)),
            (55, Shift(0.025, 0.04)),
            (59, Shift(0.025, 0.04)),
            (65, Shift(0.01, 0.03)),
            (67, Shift(0.01, 0.03)),
            (66, Shift(0.0, 0.03)),
        ],
    },
    // AU17 Chin Raiser: the chin boss and the lower lip are pushed up.
    Template {
        au: 17,
        moves: &[
            (7, Shift(0.0, -0.03)),
            (8, Shift(0.0, -0.04)),
            (9, Shift(0.0, -0.03)),
            (56, Shift(0.0, -0.04)),
            (57, Shift(0.0, -0.04)),
            (58, Shift(0.0, -0.04)),
            (65, Shift(0.0, -0.03)),
            (66, Shift(0.0, -0.03)),
            (67, Shift(0.0, -0.03)),
        ],
    },
    // AU18 Lip Pucker (incisivii labii): the lip corners are drawn towards the midline and
    // the lips pushed forward, so the mouth narrows and its outline rounds; seen from the
    // front the lips move inwards, the corners most, the lip centres not at all.
    Template {
        au: 18,
        moves: &[
            (48, Shift(-0.08, 0.0)),
            (54, Shift(-0.08, 0.0)),
            (60, Shift(-0.07, 0.0)),
            (64, Shift(-0.07, 0.0)),
            (49, Shift(-0.045, -0.005)),
            (53, Shift(-0.045, -0.005)),
            (59, Shift(-0.045, 0.005)),
            (55, Shift(-0.045, 0.005)),
            (61, Shift(-0.035, 0.0)),
            (63, Shift(-0.035, 0.0)),
            (67, Shift(-0.035, 0.0)),
            (65, Shift(-0.035, 0.0)),
            (50, Shift(-0.015, 0.0)),
            (52, Shift(-0.015, 0.0)),
            (58, Shift(-0.015, 0.0)),
            (56, Shift(-0.015, 0.0)),
        ],
    },
    // AU20 Lip Stretcher: the lip corners are pulled sideways, the mouth lengthens and
    // flattens.
    Template {
        au: 20,
        moves: &[
            (48, Shift(0.07, 0.01)),
            (54, Shift(0.07, 0.01)),
            (60, Shift(0.06, 0.01)),
            (64, Shift(0.06, 0.01)),
            (49, Shift(0.03, 0.0)),
            (53, Shift(0.03, 0.0)),
            (59, Shift(0.03, 0.0)),
            (55, Shift(0.03, 0.0)),
        ],
    },
    // AU22 Lip Funneler (orbicularis oris): the lips flare outwards into a funnel, the
    // corners drawn in a little; the upper lip everts upwards, the lower lip downwards, so
    // the lips part into a rounded opening and their red shows more.
    Template {
        au: 22,
        moves: &[
            (48, Shift(-0.05, 0.0)),
            (54, Shift(-0.05, 0.0)),
            (60, Shift(-0.045, 0.0)),
            (64, Shift(-0.045, 0.0)),
            (49, Shift(-0.02, -0.02)),
            (53, Shift(-0.02, -0.02)),
            (50, Shift(0.0, -0.03)),
            (51, Shift(0.0, -0.03)),
            (52, Shift(0.0, -0.03)),
            (59, Shift(-0.02, 0.02)),
            (55, Shift(-0.02, 0.02)),
            (58, Shift(0.0, 0.03)),
            (57, Shift(0.0, 0.03)),
            (56, Shift(0.0, 0.03)),
            (61, Shift(-0.01, -0.02)),
            (62, Shift(0.0, -0.02)),
            (63, Shift(-0.01, -0.02)),
            (67, Shift(-0.01, 0.02)),
            (66, Shift(0.0, 0.02)),
            (65, Shift(-0.01, 0.02)),
        ],
    },
    // AU23 Lip Tightener: the lips tighten and narrow, the red parts thin.
    Template {
        au: 23,
        moves: &[
            (48, Shift(-0.02, 0.0)),
            (54, Shift(-0.02, 0.0)),
            (60, Shift(-0.015, 0.0)),
            (64, Shift(-0.015, 0.0)),
            (50, Shift(0.0, 0.015)),
            (51, Shift(0.0, 0.015)),
            (52, Shift(0.0, 0.015)),
            (56, Shift(0.0, -0.015)),
            (57, Shift(0.0, -0.015)),
            (58, Shift(0.0, -0.015)),
        ],
    },
    // AU24 Lip Pressor: the lips press together, the upper lip down, the lower up.
    Template {
        au: 24,
        moves: &[
            (49, Shift(0.0, 0.02)),
            (50, Shift(0.0, 0.03)),
            (51, Shift(0.0, 0.03)),
            (52, Shift(0.0, 0.03)),
            (53, Shift(0.0, 0.02)),
            (55, Shift(0.0, -0.02)),
            (56, Shift(0.0, -0.03)),
            (57, Shift(0.0, -0.03)),
            (58, Shift(0.0, -0.03)),
            (59, Shift(0.0, -0.02)),
            (61, Shift(0.0, 0.01)),
            (62, Shift(0.0, 0.01)),
            (63, Shift(0.0, 0.01)),
            (65, Shift(0.0, -0.01)),
            (66, Shift(0.0, -0.01)),
            (67, Shift(0.0, -0.01)),
        ],
    },
    // AU25 Lips Part: the lips separate, the lower lip drops a little.
    Template {
        au: 25,
        moves: &[
            (55, Shift(0.0, 0.02)),
            (56, Shift(0.0, 0.03)),
            (57, Shift(0.0, 0.03)),
            (58, Shift(0.0, 0.03)),
            (59, Shift(0.0, 0.02)),
            (65, Shift(0.0, 0.04)),
            (66, Shift(0.0, 0.04)),
            (67, Shift(0.0, 0.04)),
            (61, Shift(0.0, -0.01)),
            (62, Shift(0.0, -0.01)),
            (63, Shift(0.0, -0.01)),
        ],
    },
    // AU26 Jaw Drop: the mandible lowers, taking the chin and the lower lip with it.
    Template {
        au: 26,
        moves: &[
            (6, Shift(0.0, 0.05)),
            (10, Shift(0.0, 0.05)),
            (7, Shift(0.0, 0.08)),
            (9, Shift(0.0, 0.08)),
            (8, Shift(0.0, 0.10)),
            (55, Shift(0.0, 0.06)),
            (59, Shift(0.0, 0.06)),
            (56, Shift(0.0, 0.08)),
            (57, Shift(0.0, 0.09)),
            (58, Shift(0.0, 0.08)),
            (65, Shift(0.0, 0.08)),
            (66, Shift(0.0, 0.08)),
            (67, Shift(0.0, 0.08)),
        ],
    },
    // AU27 Mouth Stretch (pterygoids, digastric): the jaw is pulled wide open, beyond a
    // relaxed drop (AU26): the chin and lower lip drop as far as AU26's at the table's
    // largest magnitude, the jaw's sides drop further up towards the ears, the upper inner
    // lip is stretched up, and the corners are drawn in and down as the mouth becomes a tall
    // oval; the mouth opening grows by half as much again as AU26's.
    Template {
        au: 27,
        moves: &[
            (5, Shift(0.0, 0.03)),
            (11, Shift(0.0, 0.03)),
            (6, Shift(0.0, 0.06)),
            (10, Shift(0.0, 0.06)),
            (7, Shift(0.0, 0.09)),
            (9, Shift(0.0, 0.09)),
            (8, Shift(0.0, 0.10)),
            (55, Shift(-0.01, 0.07)),
            (59, Shift(-0.01, 0.07)),
            (56, Shift(0.0, 0.09)),
            (57, Shift(0.0, 0.10)),
            (58, Shift(0.0, 0.09)),
            (65, Shift(-0.01, 0.09)),
            (66, Shift(0.0, 0.10)),
            (67, Shift(-0.01, 0.09)),
            (61, Shift(0.0, -0.02)),
            (62, Shift(0.0, -0.02)),
            (63, Shift(0.0, -0.02)),
            (48, Shift(-0.03, 0.03)),
            (54, Shift(-0.03, 0.03)),
            (60, Shift(-0.03, 0.035)),
            (64, Shift(-0.03, 0.035)),
        ],
    },
    // AU28 Lip Suck (orbicularis oris): the lips are rolled into the mouth over the teeth;
    // the red of both lips thins as its outer edge moves towards the line where the lips
    // meet. `Onto` scales the motion by each subject's own lip thickness: the lip centres
    // travel 40 % of the way. A gap that shrinks by a fraction f has a motion-field slope of
    // f / (1 - f) on the generated frame, and the warp folds at slope 1; 60 % folded it.
    Template {
        au: 28,
        moves: &[
            (50, Onto(61, 0.3)),
            (51, Onto(62, 0.4)),
            (52, Onto(63, 0.3)),
            (58, Onto(67, 0.3)),
            (57, Onto(66, 0.4)),
            (56, Onto(65, 0.3)),
            (49, Onto(61, 0.2)),
            (53, Onto(63, 0.2)),
            (59, Onto(67, 0.2)),
            (55, Onto(65, 0.2)),
            (48, Shift(-0.01, 0.0)),
            (54, Shift(-0.01, 0.0)),
        ],
    },
    // AU43 Eyes Closed: the upper lids drop onto the lower lids (held closed).
    Template {
        au: 43,
        moves: EYES_CLOSING,
    },
    // AU45 Blink: the upper lids drop onto the lower lids and reopen (the profile gives the
    // timing).
    Template {
        au: 45,
        moves: EYES_CLOSING,
    },
    // AU46 Wink: one eye closes (apply with a side).
    Template {
        au: 46,
        moves: EYES_CLOSING,
    },
];

/// Closing the eyes: the upper lid points 37, 38 / 43, 44 travel 85 % of the way to the lower
/// lid points below them (41, 40 / 47, 46), which rise 10 %; a 5 % gap stays so the warp
/// does not fold.
const EYES_CLOSING: &[(usize, Motion)] = &[
    (37, Onto(41, 0.85)),
    (38, Onto(40, 0.85)),
    (43, Onto(47, 0.85)),
    (44, Onto(46, 0.85)),
    (41, Onto(37, 0.10)),
    (40, Onto(38, 0.10)),
    (47, Onto(43, 0.10)),
    (46, Onto(44, 0.10)),
];

/// The AUs that have a template, in FACS order.
pub fn template_aus() -> Vec<u8> {
    TEMPLATES.iter().map(|t| t.au).collect()
}

/// One AU at one moment: its number, the side for a one-sided application (`None` for both
/// sides), and its intensity (1 is the template's apex).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Activation {
    pub au: u8,
    pub side: Option<AuSide>,
    pub intensity: f32,
}

/// The face frame of a 68-point set: the unit x axis (subject's right eye centre to the
/// left one), the unit y axis (x turned 90° clockwise on screen, towards the chin) and the
/// inter-ocular distance in pixels.
pub fn face_frame(landmarks: &[Point; 68]) -> Result<([f32; 2], [f32; 2], f32)> {
    let centre = |r: std::ops::Range<usize>| {
        let n = r.len() as f32;
        let (mut x, mut y) = (0.0, 0.0);
        for i in r {
            x += landmarks[i][0];
            y += landmarks[i][1];
        }
        [x / n, y / n]
    };
    let right = centre(groups::EYE_LEFT);
    let left = centre(groups::EYE_RIGHT);
    let (dx, dy) = (left[0] - right[0], left[1] - right[1]);
    let iod = (dx * dx + dy * dy).sqrt();
    if !iod.is_finite() || iod < 1.0 {
        return Err(Error::Internal(format!(
            "landmarks give an inter-ocular distance of {iod} px; \
             pass a detected 68-point set of a visible face"
        )));
    }
    let ex = [dx / iod, dy / iod];
    Ok((ex, [-ex[1], ex[0]], iod))
}

/// The pixel displacement of each of the 68 landmarks for a set of AU activations, summed
/// over the AUs (templates combine additively). A one-sided activation moves only the
/// landmarks on that side, and the midline landmarks by half.
///
/// Errors: an AU without a template, a side on an AU that FACS scores on both sides only,
/// or a non-finite intensity.
pub fn landmark_displacements(
    landmarks: &[Point; 68],
    activations: &[Activation],
) -> Result<[Point; 68]> {
    let (ex, ey, iod) = face_frame(landmarks)?;
    let mut d = [[0.0f32; 2]; 68];
    // Lid closures (`Onto`) act on the lids where the other AUs put them, so a blink during
    // a cheek raise closes the narrowed eye without the lids crossing: shifts first, then
    // every `Onto` from the shifted positions.
    let mut onto: Vec<(usize, usize, f32)> = Vec::new();
    for a in activations {
        let template = TEMPLATES.iter().find(|t| t.au == a.au).ok_or_else(|| {
            Error::Internal(format!(
                "AU{} has no SynthME template; use one of {:?}",
                a.au,
                template_aus()
            ))
        })?;
        if !a.intensity.is_finite() {
            return Err(Error::Internal(format!(
                "AU{} intensity {} is not a finite number",
                a.au, a.intensity
            )));
        }
        if let Some(s) = a.side {
            let one_sided = au::info(a.au).is_some_and(|i| i.one_sided);
            if !one_sided {
                return Err(Error::Internal(format!(
                    "AU{} cannot be applied on one side ({s:?}); FACS scores it on both sides",
                    a.au
                )));
            }
        }
        for &(i, motion) in template.moves {
            let weight = match (a.side, side(i)) {
                (None, _) => 1.0,
                (Some(_), Side::Mid) => 0.5,
                (Some(AuSide::Right), Side::Right) | (Some(AuSide::Left), Side::Left) => 1.0,
                (Some(_), _) => 0.0,
            };
            let k = weight * a.intensity;
            if k == 0.0 {
                continue;
            }
            let (px, py) = match motion {
                Shift(out, down) => {
                    let sign = match side(i) {
                        Side::Right => -1.0,
                        Side::Left => 1.0,
                        Side::Mid => 0.0,
                    };
                    let o = out * sign * iod;
                    let w = down * iod;
                    (o * ex[0] + w * ey[0], o * ex[1] + w * ey[1])
                }
                Onto(j, frac) => {
                    onto.push((i, j, k * frac));
                    continue;
                }
            };
            d[i][0] += k * px;
            d[i][1] += k * py;
        }
    }
    let shifted: [Point; 68] =
        std::array::from_fn(|i| [landmarks[i][0] + d[i][0], landmarks[i][1] + d[i][1]]);
    for (i, j, f) in onto {
        d[i][0] += f * (shifted[j][0] - shifted[i][0]);
        d[i][1] += f * (shifted[j][1] - shifted[i][1]);
    }
    Ok(d)
}

/// The landmarks of the jaw line (0-16) that `displacements` leaves still: the ones a field
/// pins at zero so the motion stays inside the face.
pub fn still_jaw_points(displacements: &[Point; 68]) -> Vec<usize> {
    groups::JAW
        .filter(|&i| displacements[i] == [0.0, 0.0])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::test_face;

    fn act(au: u8, side: Option<AuSide>) -> Activation {
        Activation {
            au,
            side,
            intensity: 1.0,
        }
    }

    #[test]
    fn every_template_au_is_in_the_catalogue_and_points_are_valid() {
        for t in TEMPLATES {
            assert!(au::info(t.au).is_some(), "AU{} not in catalogue", t.au);
            for &(i, m) in t.moves {
                assert!(i < 68);
                if let Shift(out, _) = m {
                    assert!(side(i) != Side::Mid || out == 0.0, "AU{} point {i}", t.au);
                }
            }
        }
        for n in [
            1, 2, 4, 5, 6, 7, 9, 10, 11, 12, 14, 15, 16, 17, 18, 20, 22, 23, 24, 25, 26, 27, 28,
            43, 45, 46,
        ] {
            assert!(template_aus().contains(&n), "AU{n} missing");
        }
    }

    #[test]
    fn au12_lifts_mouth_corners_outwards_and_keeps_brows_still() {
        let face = test_face(100.0, 100.0, 60.0);
        let d = landmark_displacements(&face, &[act(12, None)]).unwrap();
        // 48 is on the image-left: outwards is -x; 54 on the image-right: +x.
        assert!(d[48][1] < -1.0 && d[54][1] < -1.0);
        assert!(d[48][0] < -1.0 && d[54][0] > 1.0);
        assert!(
            d[17..27].iter().all(|p| *p == [0.0, 0.0]),
            "{:?}",
            &d[17..27]
        );
    }

    #[test]
    fn au4_lowers_brows_and_draws_inner_ends_together() {
        let face = test_face(100.0, 100.0, 60.0);
        let d = landmark_displacements(&face, &[act(4, None)]).unwrap();
        for (i, p) in d.iter().enumerate().take(27).skip(17) {
            assert!(p[1] > 0.5, "brow point {i} not lowered: {p:?}");
        }
        assert!(d[21][0] > 1.0 && d[22][0] < -1.0);
    }

    #[test]
    fn brows_jaw_and_lip_corners_move_as_facs_describes() {
        let face = test_face(100.0, 100.0, 60.0);
        let d = |au| landmark_displacements(&face, &[act(au, None)]).unwrap();
        let (au1, au2, au15, au26) = (d(1), d(2), d(15), d(26));
        // AU1 raises the inner brow ends more than the outer; AU2 the other way round.
        assert!(au1[21][1] < -1.0 && au1[22][1] < -1.0 && au1[17][1] == 0.0);
        assert!(au2[17][1] < -1.0 && au2[26][1] < -1.0 && au2[21][1] == 0.0);
        assert!(au15[48][1] > 1.0 && au15[54][1] > 1.0);
        for i in [6, 7, 8, 9, 10, 57, 66] {
            assert!(au26[i][1] > 1.0, "AU26 point {i}: {:?}", au26[i]);
        }
        assert_eq!(au26[5], [0.0, 0.0]);
    }

    #[test]
    fn a_rolled_face_moves_along_its_own_axes() {
        // The face turned 90° clockwise on screen: its "down" is the image's -x.
        let upright = test_face(0.0, 0.0, 60.0);
        let rolled = upright.map(|p| [-p[1], p[0]]);
        let d = landmark_displacements(&rolled, &[act(26, None)]).unwrap();
        assert!(d[8][0] < -1.0 && d[8][1].abs() < 1e-4, "{:?}", d[8]);
    }

    #[test]
    fn one_sided_au12_moves_only_that_side() {
        let face = test_face(100.0, 100.0, 60.0);
        let d = landmark_displacements(&face, &[act(12, Some(AuSide::Right))]).unwrap();
        // The subject's right mouth corner is 48, on the image's left.
        assert!(d[48][1] < -1.0);
        for i in [54, 64, 53, 55] {
            assert_eq!(d[i], [0.0, 0.0], "point {i}");
        }
        let l = landmark_displacements(&face, &[act(12, Some(AuSide::Left))]).unwrap();
        assert!(l[54][1] < -1.0 && l[48] == [0.0, 0.0]);
    }

    #[test]
    fn aus_add_and_bad_requests_fail() {
        let face = test_face(100.0, 100.0, 60.0);
        let a = landmark_displacements(&face, &[act(1, None)]).unwrap();
        let b = landmark_displacements(&face, &[act(2, None)]).unwrap();
        let ab = landmark_displacements(&face, &[act(1, None), act(2, None)]).unwrap();
        for i in 0..68 {
            assert!((ab[i][1] - a[i][1] - b[i][1]).abs() < 1e-5);
        }
        assert!(landmark_displacements(&face, &[act(9, Some(AuSide::Left))]).is_err());
        assert!(landmark_displacements(&face, &[act(3, None)]).is_err());
    }

    #[test]
    fn blink_closes_upper_lids_onto_lower() {
        let face = test_face(100.0, 100.0, 60.0);
        let d = landmark_displacements(&face, &[act(45, None)]).unwrap();
        let gap = |i: usize, j: usize| (face[j][1] + d[j][1]) - (face[i][1] + d[i][1]);
        let before = face[41][1] - face[37][1];
        assert!(gap(37, 41) > 0.0 && gap(37, 41) < 0.1 * before);
        assert_eq!(d[36], [0.0, 0.0]);
    }

    #[test]
    fn templates_are_in_facs_order_and_new_ones_in_the_magnitude_range() {
        let aus = template_aus();
        assert!(aus.windows(2).all(|w| w[0] < w[1]), "{aus:?}");
        let face = test_face(100.0, 100.0, 60.0);
        for au in [7, 11, 16, 18, 22, 27, 28] {
            let d = landmark_displacements(&face, &[act(au, None)]).unwrap();
            let peak = d.iter().fold(0.0f32, |m, p| m.max(p[0].hypot(p[1]))) / 60.0;
            assert!((0.04..=0.1001).contains(&peak), "AU{au} peak {peak} IOD");
        }
    }

    #[test]
    fn au11_raises_the_lateral_upper_lip_and_leaves_the_lower_lip() {
        let face = test_face(100.0, 100.0, 60.0);
        let d = landmark_displacements(&face, &[act(11, None)]).unwrap();
        // 49 on the image-left moves up and out (-x), 53 up and out (+x).
        assert!(d[49][1] < -2.0 && d[49][0] < -0.5, "{:?}", d[49]);
        assert!(d[53][1] < -2.0 && d[53][0] > 0.5, "{:?}", d[53]);
        // The lateral lip rises more than the corners (unlike AU12).
        assert!(d[49][1] < d[48][1] && d[53][1] < d[54][1]);
        for i in (55..60).chain(65..68) {
            assert_eq!(d[i], [0.0, 0.0], "lower lip point {i}");
        }
    }

    #[test]
    fn au16_pulls_the_lower_lip_down_and_sideways() {
        let face = test_face(100.0, 100.0, 60.0);
        let d = landmark_displacements(&face, &[act(16, None)]).unwrap();
        assert!(d[57][1] > 3.0 && d[57][0] == 0.0, "{:?}", d[57]);
        // 58 is on the image-left half of the lower lip: laterally is -x; 56 the other way.
        assert!(d[58][1] > 3.0 && d[58][0] < -1.0, "{:?}", d[58]);
        assert!(d[56][1] > 3.0 && d[56][0] > 1.0, "{:?}", d[56]);
        // The outer lower lip moves further than the inner: more red shows.
        assert!(d[57][1] > d[66][1] && d[66][1] > 0.0);
        for i in (8..9).chain(48..55).chain(60..65) {
            assert_eq!(d[i], [0.0, 0.0], "point {i} should stay");
        }
    }

    #[test]
    fn au18_and_au22_narrow_the_mouth_and_au22_opens_it() {
        let face = test_face(100.0, 100.0, 60.0);
        let width = |d: &[Point; 68]| (face[54][0] + d[54][0]) - (face[48][0] + d[48][0]);
        let opening = |d: &[Point; 68]| (face[66][1] + d[66][1]) - (face[62][1] + d[62][1]);
        let before = face[54][0] - face[48][0];
        let pucker = landmark_displacements(&face, &[act(18, None)]).unwrap();
        assert!(
            width(&pucker) < before - 8.0,
            "{} vs {before}",
            width(&pucker)
        );
        // The corners move towards the midline, the centres stay.
        assert!(pucker[48][0] > 4.0 && pucker[54][0] < -4.0);
        assert_eq!(pucker[51], [0.0, 0.0]);
        assert_eq!(pucker[57], [0.0, 0.0]);
        assert!((opening(&pucker) - opening(&[[0.0; 2]; 68])).abs() < 1e-4);
        let funnel = landmark_displacements(&face, &[act(22, None)]).unwrap();
        assert!(width(&funnel) < before - 4.0 && width(&funnel) > width(&pucker));
        assert!(funnel[51][1] < -1.0 && funnel[57][1] > 1.0);
        assert!(opening(&funnel) > face[66][1] - face[62][1] + 2.0);
    }

    #[test]
    fn au27_opens_the_mouth_further_than_au26_and_draws_the_corners_in() {
        let face = test_face(100.0, 100.0, 60.0);
        let au26 = landmark_displacements(&face, &[act(26, None)]).unwrap();
        let au27 = landmark_displacements(&face, &[act(27, None)]).unwrap();
        let opening = |d: &[Point; 68]| d[66][1] - d[62][1];
        assert!(opening(&au27) > 1.4 * opening(&au26));
        assert!(au27[8][1] >= au26[8][1] && au27[57][1] > au26[57][1]);
        // More of the jaw line moves: AU26 leaves 5 and 11 still, AU27 lowers them.
        assert_eq!(au26[5], [0.0, 0.0]);
        assert!(au27[5][1] > 1.0 && au27[11][1] > 1.0);
        // Corners in: 48 (image-left) moves +x, 54 -x; AU26 leaves them.
        assert!(au27[48][0] > 1.0 && au27[54][0] < -1.0);
        assert_eq!(au26[48], [0.0, 0.0]);
    }

    #[test]
    fn au28_thins_the_red_of_both_lips() {
        let face = test_face(100.0, 100.0, 60.0);
        let d = landmark_displacements(&face, &[act(28, None)]).unwrap();
        let gap = |i: usize, j: usize| ((face[j][1] + d[j][1]) - (face[i][1] + d[i][1])).abs();
        let upper = face[62][1] - face[51][1];
        let lower = face[57][1] - face[66][1];
        assert!((gap(51, 62) - 0.6 * upper).abs() < 1e-3, "{}", gap(51, 62));
        assert!((gap(66, 57) - 0.6 * lower).abs() < 1e-3, "{}", gap(66, 57));
        // The outer lip edges roll in: the upper moves down, the lower up; the inner line stays.
        assert!(d[51][1] > 2.0 && d[57][1] < -2.0);
        for (i, p) in d.iter().enumerate().skip(60) {
            assert_eq!(*p, [0.0, 0.0], "inner lip point {i}");
        }
    }

    #[test]
    fn au7_narrows_the_eye_by_a_share_of_its_own_opening() {
        let face = test_face(100.0, 100.0, 60.0);
        let d = landmark_displacements(&face, &[act(7, None)]).unwrap();
        let opening = |i: usize, j: usize| (face[j][1] + d[j][1]) - (face[i][1] + d[i][1]);
        for (upper, lower) in [(37, 41), (38, 40), (43, 47), (44, 46)] {
            let before = face[lower][1] - face[upper][1];
            // The lower lid rises, the upper drops, 35 % of the opening closes.
            assert!(d[lower][1] < -1.0 && d[upper][1] > 0.3);
            assert!((opening(upper, lower) - 0.65 * before).abs() < 1e-3);
        }
        assert_eq!(d[36], [0.0, 0.0]);
        assert_eq!(d[19], [0.0, 0.0]);
    }
}
