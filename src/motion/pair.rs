//! One expression measured between two frames (onset -> apex): both frames aligned on the
//! onset face, the flow between them, head motion removed, the motion of every facial region,
//! and the AUs and emotion that motion shows.

use serde::Serialize;

use super::au::{self, MotionOptions, Unmixed};
use super::regions::{regions_motion, RegionMotion, DEFAULT_MOVING_PX};
use crate::error::Result;
use crate::eval::flow::Flow;
use crate::face::align::Alignment;
use crate::face::regions::{inter_ocular, Level, REGIONS};
use crate::face::Point;
use crate::facs::evidence::AuEvidence;
use crate::facs::inference::{infer, Inference};
use crate::flow::head::{remove_head_motion, HeadFit, HeadModel};
use crate::flow::FlowMethod;
use crate::media::RgbImage;

/// Side of the aligned face the flow is measured on: the eyes 58 px apart.
pub const ALIGNED_SIZE: u32 = 160;

/// The onset face, aligned.
#[derive(Debug, Clone)]
pub struct AlignedFace {
    pub alignment: Alignment,
    /// The 68 points in aligned pixels.
    pub landmarks68: Vec<Point>,
    /// Inter-ocular distance in aligned pixels.
    pub iod: f32,
}

impl AlignedFace {
    /// The alignment of a face with these image landmarks.
    pub fn new(landmarks68: &[Point], size: u32) -> Result<AlignedFace> {
        let alignment = Alignment::from_landmarks68(landmarks68, size)?;
        let landmarks68 = alignment.to_aligned(landmarks68);
        let iod = inter_ocular(&landmarks68);
        Ok(AlignedFace {
            alignment,
            landmarks68,
            iod,
        })
    }

    /// Per-pixel weights for the head-motion fit: 1 inside the landmarks' bounding box.
    pub fn face_weights(&self) -> Vec<f32> {
        let size = self.alignment.size as usize;
        let (mut x0, mut y0, mut x1, mut y1) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
        for p in &self.landmarks68 {
            x0 = x0.min(p[0]);
            y0 = y0.min(p[1]);
            x1 = x1.max(p[0]);
            y1 = y1.max(p[1]);
        }
        let mut w = vec![0.0f32; size * size];
        for y in 0..size {
            for x in 0..size {
                let (fx, fy) = (x as f32, y as f32);
                if fx >= x0 && fx <= x1 && fy >= y0 && fy <= y1 {
                    w[y * size + x] = 1.0;
                }
            }
        }
        w
    }
}

/// Facial motion between two aligned frames.
#[derive(Debug, Clone)]
pub struct PairMotion {
    /// Total flow in aligned pixels.
    pub flow: Flow,
    /// Flow with head motion removed.
    pub facial: Flow,
    pub head: HeadFit,
    /// Fine-level and ROI-level region statistics of the facial flow.
    pub regions: Vec<RegionMotion>,
}

/// Measures the motion from `a` to `b` (image frames) on the face aligned at `face`.
pub fn pair_motion(
    method: &dyn FlowMethod,
    face: &AlignedFace,
    a: &RgbImage,
    b: &RgbImage,
) -> Result<PairMotion> {
    let wa = face.alignment.warp(a)?;
    let wb = face.alignment.warp(b)?;
    let flow = method.estimate(&wa, &wb)?;
    let weights = face.face_weights();
    let (facial, head) = remove_head_motion(&flow, Some(&weights), HeadModel::default());
    let regions = regions_motion(
        &facial,
        &face.landmarks68,
        REGIONS.iter().filter(|r| r.level != Level::Coarse),
        DEFAULT_MOVING_PX,
    );
    Ok(PairMotion {
        flow,
        facial,
        head,
        regions,
    })
}

/// The region displacements the AU patterns read, in IOD.
pub fn displacements_iod(regions: &[RegionMotion], iod: f32) -> Vec<(String, [f32; 2])> {
    au::observed_regions()
        .into_iter()
        .filter_map(|name| {
            regions
                .iter()
                .find(|r| r.region == name && r.pixels > 0)
                .map(|r| (name, [r.mean[0] / iod, r.mean[1] / iod]))
        })
        .collect()
}

/// What one expression's motion shows.
#[derive(Debug, Clone, Serialize)]
pub struct Expression {
    /// Present AUs, strongest first.
    pub aus: Vec<AuEvidence>,
    pub inference: Inference,
    /// Every pattern's coefficients (present or not) and the unexplained remainder.
    pub unmixed: Unmixed,
    /// The AU detectors' `(au, probability)`, when the weights have detectors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detected: Option<Vec<(u8, f32)>>,
}

/// The expression AUs (blinks left out) scaled so the strongest is 1: the emotion is read from
/// the AUs' relative intensities, since a micro-expression's absolute intensity is small by
/// nature (prototype matching on raw micro intensities would call every one neutral).
fn relative(aus: &[AuEvidence]) -> Vec<AuEvidence> {
    let expressive: Vec<&AuEvidence> = aus.iter().filter(|e| e.au != au::BLINK_AU).collect();
    let peak = expressive.iter().map(|e| e.intensity).fold(0.0, f32::max);
    if peak <= 0.0 {
        return Vec::new();
    }
    expressive
        .into_iter()
        .map(|e| {
            let mut e = e.clone();
            e.intensity /= peak;
            e.right /= peak;
            e.left /= peak;
            e
        })
        .collect()
}

/// AUs and emotion from region motion.
pub fn expression(
    regions: &[RegionMotion],
    iod: f32,
    options: &MotionOptions,
    source: &str,
) -> Expression {
    expression_of(&displacements_iod(regions, iod), options, source)
}

/// AUs and emotion from region displacements (IOD), as [`displacements_iod`] gives them.
pub fn expression_of(
    displacements: &[(String, [f32; 2])],
    options: &MotionOptions,
    source: &str,
) -> Expression {
    let unmixed = au::unmix(displacements, options);
    let detected = au::detectors().map(|d| d.probabilities(displacements));
    let aus = au::evidence(&unmixed, detected.as_deref(), options, source);
    Expression {
        inference: infer(&relative(&aus)),
        aus,
        unmixed,
        detected,
    }
}
