//! The facial-region table: one source of truth for where to look and which Action Units
//! (AUs) move each region. Regions are defined on the 68-point scheme (iBUG 300-W, 0-based:
//! jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, mouth 48-67) so they follow any face.
//!
//! Sides are the subject's: the subject's right brow is points 17-21, on the image's left.
//!
//! Three levels:
//! - `Roi`: the 12 AUW-GCN regions of interest, small square patches centred on one landmark
//!   each (18, 19, 20, 23, 24, 25 brows; 28, 30 nose; 48, 51, 54, 57 mouth). AUW-GCN uses
//!   11x11 px patches; here a patch side is a fraction of the inter-ocular distance (IOD) so it
//!   scales with the face: 0.2 IOD is 11 px when the eyes are 55 px apart.
//! - `Fine`: MELLM-style regions (each eyelid, inner/outer brow, nostril wings, mouth corners,
//!   upper/lower lip, chin, cheeks), boxes around a few landmarks plus a margin.
//! - `Coarse`: upper/lower face and left/right halves.

use serde::Serialize;

use super::{FaceBox, Point};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Roi,
    Fine,
    Coarse,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Left,
    Right,
    /// On the midline or spanning both sides.
    Both,
}

/// How a region's box is built from the 68 landmarks.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// A square of side `side_iod` x IOD centred on the mean of `points`, shifted by
    /// `offset_iod` (x, y) x IOD: used for patches beside landmarks (cheeks, forehead).
    Patch {
        points: &'static [usize],
        side_iod: f32,
        offset_iod: [f32; 2],
    },
    /// The bounding box of `points`, grown by `margin_iod` x IOD on every side.
    Hull {
        points: &'static [usize],
        margin_iod: f32,
    },
}

/// One facial region.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Region {
    pub name: &'static str,
    pub level: Level,
    pub side: Side,
    pub shape: Shape,
    /// AUs whose movement shows in this region (FACS numbers).
    pub aus: &'static [u8],
    pub description: &'static str,
}

const fn roi(
    name: &'static str,
    side: Side,
    point: &'static [usize],
    aus: &'static [u8],
    description: &'static str,
) -> Region {
    Region {
        name,
        level: Level::Roi,
        side,
        shape: Shape::Patch {
            points: point,
            side_iod: 0.2,
            offset_iod: [0.0, 0.0],
        },
        aus,
        description,
    }
}

const fn fine(
    name: &'static str,
    side: Side,
    shape: Shape,
    aus: &'static [u8],
    description: &'static str,
) -> Region {
    Region {
        name,
        level: Level::Fine,
        side,
        shape,
        aus,
        description,
    }
}

const fn hull(points: &'static [usize], margin_iod: f32) -> Shape {
    Shape::Hull { points, margin_iod }
}

const fn patch(points: &'static [usize], side_iod: f32, offset_iod: [f32; 2]) -> Shape {
    Shape::Patch {
        points,
        side_iod,
        offset_iod,
    }
}

/// Every region, in a fixed order (ROIs, fine, coarse).
pub const REGIONS: &[Region] = &[
    // AUW-GCN ROIs.
    roi(
        "roi_r_brow_outer",
        Side::Right,
        &[18],
        &[2, 4],
        "right brow, outer part (point 18)",
    ),
    roi(
        "roi_r_brow_mid",
        Side::Right,
        &[19],
        &[1, 2, 4],
        "right brow, middle (point 19)",
    ),
    roi(
        "roi_r_brow_inner",
        Side::Right,
        &[20],
        &[1, 4],
        "right brow, inner part (point 20)",
    ),
    roi(
        "roi_l_brow_inner",
        Side::Left,
        &[23],
        &[1, 4],
        "left brow, inner part (point 23)",
    ),
    roi(
        "roi_l_brow_mid",
        Side::Left,
        &[24],
        &[1, 2, 4],
        "left brow, middle (point 24)",
    ),
    roi(
        "roi_l_brow_outer",
        Side::Left,
        &[25],
        &[2, 4],
        "left brow, outer part (point 25)",
    ),
    roi(
        "roi_nose_bridge",
        Side::Both,
        &[28],
        &[9],
        "nose bridge (point 28)",
    ),
    roi(
        "roi_nose_tip",
        Side::Both,
        &[30],
        &[9, 10],
        "nose tip (point 30), the head-motion reference",
    ),
    roi(
        "roi_r_mouth_corner",
        Side::Right,
        &[48],
        &[12, 14, 15, 20],
        "right mouth corner (point 48)",
    ),
    roi(
        "roi_upper_lip",
        Side::Both,
        &[51],
        &[10, 23, 25],
        "upper lip centre (point 51)",
    ),
    roi(
        "roi_l_mouth_corner",
        Side::Left,
        &[54],
        &[12, 14, 15, 20],
        "left mouth corner (point 54)",
    ),
    roi(
        "roi_lower_lip",
        Side::Both,
        &[57],
        &[16, 17, 23, 25, 26],
        "lower lip centre (point 57)",
    ),
    // MELLM-style fine regions.
    fine(
        "r_inner_brow",
        Side::Right,
        hull(&[20, 21], 0.12),
        &[1, 4],
        "right inner brow",
    ),
    fine(
        "l_inner_brow",
        Side::Left,
        hull(&[22, 23], 0.12),
        &[1, 4],
        "left inner brow",
    ),
    fine(
        "r_outer_brow",
        Side::Right,
        hull(&[17, 18], 0.12),
        &[2],
        "right outer brow",
    ),
    fine(
        "l_outer_brow",
        Side::Left,
        hull(&[25, 26], 0.12),
        &[2],
        "left outer brow",
    ),
    fine(
        "glabella",
        Side::Both,
        patch(&[21, 22], 0.35, [0.0, 0.05]),
        &[4],
        "between the brows",
    ),
    fine(
        "r_upper_eyelid",
        Side::Right,
        hull(&[37, 38], 0.1),
        &[5, 7, 43, 45, 46],
        "right upper eyelid",
    ),
    fine(
        "l_upper_eyelid",
        Side::Left,
        hull(&[43, 44], 0.1),
        &[5, 7, 43, 45, 46],
        "left upper eyelid",
    ),
    fine(
        "r_lower_eyelid",
        Side::Right,
        hull(&[40, 41], 0.1),
        &[6, 7],
        "right lower eyelid",
    ),
    fine(
        "l_lower_eyelid",
        Side::Left,
        hull(&[46, 47], 0.1),
        &[6, 7],
        "left lower eyelid",
    ),
    fine(
        "nose_root",
        Side::Both,
        hull(&[27, 28], 0.12),
        &[9],
        "nose root, where nose wrinkles show",
    ),
    fine(
        "r_nostril_wing",
        Side::Right,
        hull(&[31, 32], 0.1),
        &[9, 10],
        "right nostril wing",
    ),
    fine(
        "l_nostril_wing",
        Side::Left,
        hull(&[34, 35], 0.1),
        &[9, 10],
        "left nostril wing",
    ),
    fine(
        "r_cheek",
        Side::Right,
        patch(&[41, 48], 0.4, [-0.1, 0.0]),
        &[6, 11, 12],
        "right cheek, below the eye",
    ),
    fine(
        "l_cheek",
        Side::Left,
        patch(&[46, 54], 0.4, [0.1, 0.0]),
        &[6, 11, 12],
        "left cheek, below the eye",
    ),
    fine(
        "r_mouth_corner",
        Side::Right,
        patch(&[48], 0.3, [0.0, 0.0]),
        &[12, 14, 15, 20],
        "right mouth corner",
    ),
    fine(
        "l_mouth_corner",
        Side::Left,
        patch(&[54], 0.3, [0.0, 0.0]),
        &[12, 14, 15, 20],
        "left mouth corner",
    ),
    fine(
        "upper_lip",
        Side::Both,
        hull(&[49, 50, 51, 52, 53, 61, 62, 63], 0.06),
        &[10, 18, 22, 23, 24, 25, 28],
        "upper lip",
    ),
    fine(
        "lower_lip",
        Side::Both,
        hull(&[55, 56, 57, 58, 59, 65, 66, 67], 0.06),
        &[16, 18, 22, 23, 24, 25, 26, 27, 28],
        "lower lip",
    ),
    fine(
        "chin",
        Side::Both,
        hull(&[7, 8, 9, 57], 0.05),
        &[17, 26, 27],
        "chin",
    ),
    // Coarse regions.
    Region {
        name: "upper_face",
        level: Level::Coarse,
        side: Side::Both,
        shape: hull(
            &[17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 36, 39, 42, 45, 28],
            0.15,
        ),
        aus: &[1, 2, 4, 5, 6, 7, 43, 45],
        description: "brows, eyes and forehead",
    },
    Region {
        name: "lower_face",
        level: Level::Coarse,
        side: Side::Both,
        shape: hull(
            &[2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 31, 35, 33],
            0.05,
        ),
        aus: &[9, 10, 12, 14, 15, 16, 17, 20, 23, 24, 25, 26, 27, 28],
        description: "nose wings, cheeks, mouth and chin",
    },
    Region {
        name: "right_face",
        level: Level::Coarse,
        side: Side::Right,
        shape: hull(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 17, 18, 19, 20, 21, 27], 0.05),
        aus: &[],
        description: "the subject's right half (image left)",
    },
    Region {
        name: "left_face",
        level: Level::Coarse,
        side: Side::Left,
        shape: hull(
            &[8, 9, 10, 11, 12, 13, 14, 15, 16, 22, 23, 24, 25, 26, 27],
            0.05,
        ),
        aus: &[],
        description: "the subject's left half (image right)",
    },
];

/// A region by name.
pub fn region(name: &str) -> Option<&'static Region> {
    REGIONS.iter().find(|r| r.name == name)
}

/// Regions whose movement shows a given AU.
pub fn regions_for_au(au: u8) -> impl Iterator<Item = &'static Region> {
    REGIONS.iter().filter(move |r| r.aus.contains(&au))
}

/// Inter-ocular distance: between the eye centres (means of 36-41 and 42-47).
pub fn inter_ocular(landmarks68: &[Point]) -> f32 {
    let (r, l) = eye_centres(landmarks68);
    (l[0] - r[0]).hypot(l[1] - r[1])
}

/// The centres of the subject's right eye (image left) and left eye (image right).
pub fn eye_centres(landmarks68: &[Point]) -> (Point, Point) {
    (mean(&landmarks68[36..42]), mean(&landmarks68[42..48]))
}

fn mean(points: &[Point]) -> Point {
    let n = points.len() as f32;
    let s = points
        .iter()
        .fold([0.0, 0.0], |a, p| [a[0] + p[0], a[1] + p[1]]);
    [s[0] / n, s[1] / n]
}

impl Region {
    /// The region's box for a face with these 68 landmarks (in the landmarks' own space:
    /// image or aligned pixels).
    pub fn bbox(&self, landmarks68: &[Point]) -> FaceBox {
        assert_eq!(
            landmarks68.len(),
            68,
            "regions are defined on the 68-point scheme"
        );
        let iod = inter_ocular(landmarks68);
        match self.shape {
            Shape::Patch {
                points,
                side_iod,
                offset_iod,
            } => {
                let sel: Vec<Point> = points.iter().map(|&i| landmarks68[i]).collect();
                let c = mean(&sel);
                let (cx, cy) = (c[0] + offset_iod[0] * iod, c[1] + offset_iod[1] * iod);
                let h = side_iod * iod / 2.0;
                FaceBox {
                    x0: cx - h,
                    y0: cy - h,
                    x1: cx + h,
                    y1: cy + h,
                }
            }
            Shape::Hull { points, margin_iod } => {
                let m = margin_iod * iod;
                let mut b = FaceBox {
                    x0: f32::MAX,
                    y0: f32::MAX,
                    x1: f32::MIN,
                    y1: f32::MIN,
                };
                for &i in points {
                    let [x, y] = landmarks68[i];
                    b = FaceBox {
                        x0: b.x0.min(x),
                        y0: b.y0.min(y),
                        x1: b.x1.max(x),
                        y1: b.y1.max(y),
                    };
                }
                FaceBox {
                    x0: b.x0 - m,
                    y0: b.y0 - m,
                    x1: b.x1 + m,
                    y1: b.y1 + m,
                }
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A symmetric synthetic face: eye centres at x = 40 and 80 (IOD 40), brows at y = 45,
    /// mouth corners (48, 54) at (45, 110) and (75, 110), every other point at (60, 100).
    pub(crate) fn face() -> Vec<Point> {
        let mut p = vec![[60.0, 100.0]; 68];
        for (k, q) in p[36..42].iter_mut().enumerate() {
            *q = [40.0 + (k as f32 - 2.5), 60.0];
        }
        for (k, q) in p[42..48].iter_mut().enumerate() {
            *q = [80.0 + (k as f32 - 2.5), 60.0];
        }
        for (k, q) in p[17..22].iter_mut().enumerate() {
            *q = [30.0 + 5.0 * k as f32, 45.0];
        }
        for (k, q) in p[22..27].iter_mut().enumerate() {
            *q = [70.0 + 5.0 * k as f32, 45.0];
        }
        p[48] = [45.0, 110.0];
        p[54] = [75.0, 110.0];
        p
    }

    #[test]
    fn names_are_unique_and_indices_valid() {
        let mut names: Vec<&str> = REGIONS.iter().map(|r| r.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), REGIONS.len());
        for r in REGIONS {
            let (Shape::Patch { points, .. } | Shape::Hull { points, .. }) = r.shape;
            assert!(
                !points.is_empty() && points.iter().all(|&i| i < 68),
                "{}",
                r.name
            );
        }
        assert_eq!(REGIONS.iter().filter(|r| r.level == Level::Roi).count(), 12);
    }

    #[test]
    fn boxes_follow_the_landmarks() {
        let lm = face();
        assert!((inter_ocular(&lm) - 40.0).abs() < 1e-4);
        // An AUW-GCN patch is 0.2 IOD = 8 px wide, centred on its landmark.
        let b = region("roi_r_mouth_corner").unwrap().bbox(&lm);
        assert_eq!((b.x0, b.x1, b.y0, b.y1), (41.0, 49.0, 106.0, 114.0));
        // Sides are the subject's: the right brow is on the image's left.
        let r = region("r_inner_brow").unwrap().bbox(&lm);
        let l = region("l_inner_brow").unwrap().bbox(&lm);
        assert!(r.center()[0] < 60.0 && l.center()[0] > 60.0);
        assert!(
            region("upper_face").unwrap().bbox(&lm).center()[1]
                < region("lower_face").unwrap().bbox(&lm).center()[1]
        );
    }

    #[test]
    fn au_lookup() {
        let names: Vec<&str> = regions_for_au(12).map(|r| r.name).collect();
        assert!(names.contains(&"l_mouth_corner") && names.contains(&"r_cheek"));
        assert!(regions_for_au(1).all(|r| r.name.contains("brow") || r.name == "upper_face"));
    }
}
