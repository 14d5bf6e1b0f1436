//! SynthME identities: real faces from the test data that set-up fetches (MODELS.md), split
//! by person so that a test identity never appears in training. One person can have several
//! looks (photos or frames); all of a person's looks share the person's split.
//!
//! A look is prepared once per dataset: the face is found with the project's own detector
//! and mesh, and its 68 points are kept. Each clip then renders its base image from the look
//! through an alignment that puts the eyes on the aligned template
//! ([`crate::face::align::TEMPLATE_EYES`]), with the clip's augmentation (mirror, scale,
//! colour) folded in.

use std::path::{Path, PathBuf};

use opencv::core::{Mat, Size};
use opencv::imgproc;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::face::align::TEMPLATE_EYES;
use crate::face::geometry::{similarity_from_pairs, Affine2};
use crate::face::pipeline::{select, FacePipeline};
use crate::face::{regions, Point};
use crate::media::{Media, OpenOptions, RgbImage};

/// A dataset split.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Val,
    Test,
}

impl Split {
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
        }
    }
}

/// One look of a person: a file under the test-data folder, the frame (clips) and the face
/// (0 = largest).
#[derive(Debug, Clone, Copy)]
pub struct LookSource {
    pub person: &'static str,
    pub split: Split,
    pub file: &'static str,
    pub frame: usize,
    pub face: usize,
}

const fn look(
    person: &'static str,
    split: Split,
    file: &'static str,
    frame: usize,
    face: usize,
) -> LookSource {
    LookSource {
        person,
        split,
        file,
        frame,
        face,
    }
}

/// The identity table: 10 people, 12 looks. Test: 3 people, val: 1, train: 6. Subject 0 of
/// the posed photos has two of them (same person, same split); single_face.mp4 is kept with
/// single_face.jpg in case they show the same person.
pub const LOOKS: &[LookSource] = &[
    look("pyfeat-0", Split::Train, "0-f1-su-ph.jpg", 0, 0),
    look("pyfeat-0", Split::Train, "0-f15-hao-ph.jpg", 0, 0),
    look("pyfeat-45", Split::Train, "45-m7-di-ph.jpg", 0, 0),
    look("single", Split::Train, "single_face.jpg", 0, 0),
    look("single", Split::Train, "single_face.mp4", 0, 0),
    look("group-0", Split::Train, "multi_face.jpg", 0, 0),
    look("group-1", Split::Train, "multi_face.jpg", 0, 1),
    look("group-3", Split::Train, "multi_face.jpg", 0, 3),
    look("group-4", Split::Val, "multi_face.jpg", 0, 4),
    look("pyfeat-15", Split::Test, "15-f13-anc-ph.jpg", 0, 0),
    look("group-2", Split::Test, "multi_face.jpg", 0, 2),
    look("wolfgang", Split::Test, "WolfgangLanger_Pexels.mp4", 0, 0),
];

/// A prepared look: the source image and its face's 68 points (image pixels).
#[derive(Debug, Clone)]
pub struct Look {
    pub source: LookSource,
    pub image: RgbImage,
    pub landmarks: [Point; 68],
}

impl Look {
    /// A name for labels: `file#face` (and `@frame` for clips).
    pub fn name(&self) -> String {
        let s = &self.source;
        if s.frame > 0 {
            format!("{}@{}#{}", s.file, s.frame, s.face)
        } else {
            format!("{}#{}", s.file, s.face)
        }
    }
}

/// Loads and fits every look of `splits` (all when empty) from `testdata`.
pub fn load_looks(pipeline: &FacePipeline, testdata: &Path, splits: &[Split]) -> Result<Vec<Look>> {
    LOOKS
        .iter()
        .filter(|s| splits.is_empty() || splits.contains(&s.split))
        .map(|s| load_look(pipeline, &testdata.join(s.file), *s))
        .collect()
}

fn load_look(pipeline: &FacePipeline, path: &Path, source: LookSource) -> Result<Look> {
    let media = Media::open(path, &OpenOptions::default()).map_err(|e| match e {
        Error::NotFound { .. } => Error::bad_input(
            path,
            "SynthME identity photo missing; run tools/setup to fetch the test data",
        ),
        other => other,
    })?;
    let frame = media
        .frames()?
        .nth(source.frame)
        .ok_or_else(|| Error::bad_input(path, format!("has no frame {}", source.frame)))??;
    let faces = pipeline.faces(&frame.image)?;
    let i = select(&faces, source.face, path)?;
    let lm = &faces[i].landmarks68;
    let mut landmarks = [[0.0f32; 2]; 68];
    landmarks.copy_from_slice(&lm[..68]);
    Ok(Look {
        source,
        image: frame.image,
        landmarks,
    })
}

/// Where the 68 points go under a left-right mirror: point `i` of the mirrored face is point
/// `MIRROR[i]` of the original, mirrored (iBUG order: the jaw reverses, right and left brows,
/// eyes, nostrils and lip points swap, midline points stay).
pub const MIRROR: [usize; 68] = {
    let mut m = [0usize; 68];
    let mut i = 0;
    while i < 68 {
        m[i] = i;
        i += 1;
    }
    let pairs: [(usize, usize); 28] = [
        (0, 16),
        (1, 15),
        (2, 14),
        (3, 13),
        (4, 12),
        (5, 11),
        (6, 10),
        (7, 9),
        (17, 26),
        (18, 25),
        (19, 24),
        (20, 23),
        (21, 22),
        (31, 35),
        (32, 34),
        (36, 45),
        (37, 44),
        (38, 43),
        (39, 42),
        (40, 47),
        (41, 46),
        (48, 54),
        (49, 53),
        (50, 52),
        (55, 59),
        (56, 58),
        (60, 64),
        (61, 63),
    ];
    let mut k = 0;
    while k < pairs.len() {
        m[pairs[k].0] = pairs[k].1;
        m[pairs[k].1] = pairs[k].0;
        k += 1;
    }
    // 65 <-> 67 (inner lower lip).
    m[65] = 67;
    m[67] = 65;
    m
};

/// A clip's augmentation of its look: applied inside the look's split only.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Augment {
    /// Left-right mirror.
    pub mirror: bool,
    /// Face size relative to the aligned template (1 = eyes exactly on the template).
    pub scale: f32,
    /// Per-channel gains (R, G, B).
    pub colour: [f32; 3],
}

impl Augment {
    pub const NONE: Augment = Augment {
        mirror: false,
        scale: 1.0,
        colour: [1.0; 3],
    };
}

/// A clip's base: the look rendered into a square canvas of side `size + 2 margin`, the face
/// aligned on the template of a `size` frame and offset by `margin` (room for head motion).
#[derive(Debug, Clone)]
pub struct Base {
    pub image: RgbImage,
    /// The 68 points in canvas pixels (after mirroring, re-indexed so the subject's right
    /// stays points 0-7, 17-21, 36-41, ...).
    pub landmarks: [Point; 68],
    pub margin: u32,
}

/// Renders `look` for a clip with frames of side `size`.
pub fn base_image(look: &Look, size: u32, margin: u32, augment: &Augment) -> Result<Base> {
    let side = size + 2 * margin;
    let (img, mut lm) = if augment.mirror {
        mirrored(&look.image, &look.landmarks)
    } else {
        (look.image.clone(), look.landmarks)
    };
    // The canvas transform: eyes onto the template of the `size` frame, scaled about the
    // template's eye midpoint, shifted by the margin.
    let s = size as f32;
    let mid = [
        0.5 * (TEMPLATE_EYES[0][0] + TEMPLATE_EYES[1][0]) * s,
        TEMPLATE_EYES[0][1] * s,
    ];
    let dst = TEMPLATE_EYES.map(|[x, y]| {
        let p = [x * s, y * s];
        [
            mid[0] + augment.scale * (p[0] - mid[0]) + margin as f32,
            mid[1] + augment.scale * (p[1] - mid[1]) + margin as f32,
        ]
    });
    let (right, left) = regions::eye_centres(&lm);
    let canvas_from_image = similarity_from_pairs([right, left], dst)
        .ok_or_else(|| Error::Internal("identity eye centres coincide".into()))?;
    let image = resample(&img, &canvas_from_image, side)?;
    for p in lm.iter_mut() {
        *p = canvas_from_image.apply(*p);
    }
    let image = colour_gain(image, augment.colour);
    Ok(Base {
        image,
        landmarks: lm,
        margin,
    })
}

/// The image mirrored left-right and its 68 points re-indexed ([`MIRROR`]).
fn mirrored(image: &RgbImage, lm: &[Point; 68]) -> (RgbImage, [Point; 68]) {
    let (w, h) = (image.width as usize, image.height as usize);
    let mut out = RgbImage::new(image.width, image.height);
    for y in 0..h {
        for x in 0..w {
            let (s, d) = ((y * w + x) * 3, (y * w + (w - 1 - x)) * 3);
            out.data[d..d + 3].copy_from_slice(&image.data[s..s + 3]);
        }
    }
    let flip = |p: Point| [(w - 1) as f32 - p[0], p[1]];
    let m = std::array::from_fn(|i| flip(lm[MIRROR[i]]));
    (out, m)
}

/// Resamples through `dst_from_src` into a `side` square. When the transform shrinks, the
/// source is first reduced by area averaging so the result does not alias.
fn resample(src: &RgbImage, dst_from_src: &Affine2, side: u32) -> Result<RgbImage> {
    use crate::face::geometry::{warp_image, Interpolation};
    let scale = dst_from_src.scale();
    if scale >= 0.8 {
        return warp_image(src, dst_from_src, side, side, Interpolation::Bilinear);
    }
    let (w, h) = (
        ((src.width as f32 * scale).round() as i32).max(1),
        ((src.height as f32 * scale).round() as i32).max(1),
    );
    let mut small = Mat::default();
    imgproc::resize(
        &src.to_bgr_mat()?,
        &mut small,
        Size::new(w, h),
        0.0,
        0.0,
        imgproc::INTER_AREA,
    )?;
    let small = RgbImage::from_bgr_mat(&small)?;
    // small pixel centres: x_small + 0.5 = (x + 0.5) * sx.
    let (sx, sy) = (w as f32 / src.width as f32, h as f32 / src.height as f32);
    let src_from_small = Affine2 {
        m: [
            [1.0 / sx, 0.0, 0.5 / sx - 0.5],
            [0.0, 1.0 / sy, 0.5 / sy - 0.5],
        ],
    };
    warp_image(
        &small,
        &dst_from_src.then_from(&src_from_small),
        side,
        side,
        Interpolation::Bilinear,
    )
}

fn colour_gain(mut image: RgbImage, gain: [f32; 3]) -> RgbImage {
    if gain == [1.0; 3] {
        return image;
    }
    for px in image.data.chunks_exact_mut(3) {
        for (v, g) in px.iter_mut().zip(gain) {
            *v = (*v as f32 * g).round().clamp(0.0, 255.0) as u8;
        }
    }
    image
}

/// The test-data folder of the model store.
pub fn testdata_dir(home: &Path) -> PathBuf {
    home.join("testdata")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_is_an_involution_that_swaps_sides() {
        for i in 0..68 {
            assert_eq!(MIRROR[MIRROR[i]], i, "point {i}");
        }
        assert_eq!(MIRROR[0], 16);
        assert_eq!(MIRROR[8], 8);
        assert_eq!(MIRROR[36], 45);
        assert_eq!(MIRROR[48], 54);
        assert_eq!(MIRROR[66], 66);
        assert_eq!(MIRROR[30], 30);
    }

    #[test]
    fn splits_never_share_a_person() {
        for a in LOOKS {
            for b in LOOKS {
                if a.person == b.person {
                    assert_eq!(a.split, b.split, "{} in two splits", a.person);
                }
            }
        }
        let count = |s: Split| {
            let mut p: Vec<_> = LOOKS
                .iter()
                .filter(|l| l.split == s)
                .map(|l| l.person)
                .collect();
            p.dedup();
            p.len()
        };
        assert_eq!(
            (count(Split::Train), count(Split::Val), count(Split::Test)),
            (6, 1, 3)
        );
    }

    #[test]
    fn mirrored_points_follow_the_pixels() {
        let mut img = RgbImage::new(10, 4);
        img.data[(2 * 10 + 1) * 3] = 200; // red pixel at (1, 2)
        let mut lm = [[0.0f32; 2]; 68];
        lm[36] = [1.0, 2.0];
        let (m, p) = mirrored(&img, &lm);
        assert_eq!(m.pixel(8, 2)[0], 200);
        // The original point 36 becomes point 45 of the mirrored face, at x = 9 - 1.
        assert_eq!(p[45], [8.0, 2.0]);
    }
}
