//! A clip analysed end to end: its motion series, per-AU curves, spotted intervals, and for
//! each interval (or one the caller names) the onset -> apex motion read as AUs and an emotion.

use std::collections::BTreeMap;

use serde::Serialize;

use super::au::{self, MotionOptions, BLINK_AU};
use super::detect::Detectors;
use super::pair::{expression, pair_motion, AlignedFace, Expression, ALIGNED_SIZE};
use super::regions::RegionMotion;
use super::series::{au_curves, eye_closure, motion_series, MotionSeries, SeriesOptions};
use super::spotting::{spot, Curve, Spot, SpotOptions, Spotting};
use crate::error::{Error, Result};
use crate::face::pipeline::{select, FacePipeline};
use crate::flow::head::HeadFit;
use crate::flow::FlowMethod;
use crate::media::{Media, RgbImage};

/// Everything that tunes a clip's analysis.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ClipOptions {
    pub series: SeriesOptions,
    pub motion: MotionOptions,
    pub spotting: SpotOptions,
}

/// The AU curve of blinks, left out of the expression curves (blinks are found on the
/// eye-closure curve instead).
pub const BLINK_CURVE: &str = "AU45";

/// A clip's series, curves and spotted intervals.
#[derive(Debug, Clone, Serialize)]
pub struct Spotted {
    #[serde(skip)]
    pub series: MotionSeries,
    /// Expression AU curves (the blink curve apart), pixels of the aligned face.
    pub curves: Vec<Curve>,
    /// The eye-closure curve that marks blinks ([`eye_closure`]).
    pub blink: Curve,
    pub spotting: Spotting,
}

/// Measures a clip and spots its expressions. A clip in which no frame shows a face is
/// [`Error::NoFace`].
pub fn spot_clip(
    media: &Media,
    pipeline: &FacePipeline,
    method: &dyn FlowMethod,
    options: &ClipOptions,
    progress: impl FnMut(usize),
) -> Result<Spotted> {
    let frames = media.info().frames;
    if frames < 2 {
        return Err(Error::bad_input(
            &media.info().path,
            format!("has {frames} frame(s); motion needs a clip of at least 2 frames (use `actfer au` for one image)"),
        ));
    }
    let series = motion_series(media, pipeline, method, &options.series, progress)?;
    if series.face_frames() == 0 {
        return Err(Error::NoFace {
            path: media.info().path.clone(),
            detail: format!("no face in any of its {} frames", series.frames.len()),
        });
    }
    spot_series(series, options)
}

/// Spots the expressions of a measured series (the cheap half of [`spot_clip`]: curves and
/// intervals, no flow).
pub fn spot_series(series: MotionSeries, options: &ClipOptions) -> Result<Spotted> {
    let detrend = options.spotting.detrend_window_s;
    let mut curves = au_curves(&series, &options.motion, detrend);
    curves.retain(|c| c.name != BLINK_CURVE);
    let blink = eye_closure(&series, detrend);
    let mut spotting = spot(&curves, Some(&blink.values), &options.spotting)?;
    if let Some(detectors) = au::detectors() {
        settle_blinks(&series, detectors, &mut spotting);
    }
    Ok(Spotted {
        series,
        curves,
        blink,
        spotting,
    })
}

/// A detector probability from which a candidate's motion is surely an expression.
pub const CONFIDENT_EXPRESSION_P: f32 = 0.8;

/// Second opinion on the blink calls, from the AU detectors on each candidate's motion
/// onset -> apex (the series' chained displacements): a candidate called a blink is an
/// expression when some expression AU's detector is confident
/// ([`CONFIDENT_EXPRESSION_P`]) and the blink detector (AU45) does not call it
/// ([`au::DETECTED_P`]); a candidate called an expression, micro or macro, is a blink when the
/// blink detector calls it and no expression AU's detector is confident. The curves alone
/// cannot tell an eyelid that a cheek raiser (AU6) lifts from one that blinks; the shape of
/// the whole face's motion can. AUs that show on the eyelids only ([`lid_only`]: AU5, AU7)
/// are no evidence either way, since a blink moves exactly those regions (on SynthME their
/// detectors fired on blinks).
pub fn settle_blinks(series: &MotionSeries, detectors: &Detectors, spotting: &mut Spotting) {
    // (the blink detector calls it, an expression detector is confident)
    let verdict = |s: &Spot| -> (bool, bool) {
        let (a, b) = (&series.frames[s.onset], &series.frames[s.apex]);
        if a.displacement.is_empty() || b.displacement.is_empty() {
            return (false, false);
        }
        let motion: Vec<(String, [f32; 2])> = series
            .regions
            .iter()
            .zip(a.displacement.iter().zip(&b.displacement))
            .map(|(name, (p, q))| (name.clone(), [q[0] - p[0], q[1] - p[1]]))
            .collect();
        let p = detectors.probabilities(&motion);
        let blink = p
            .iter()
            .any(|&(au, v)| au == BLINK_AU && v >= au::DETECTED_P);
        let expression = p
            .iter()
            .any(|&(au, v)| v >= CONFIDENT_EXPRESSION_P && !lid_only(au));
        (blink, expression)
    };
    let (mut spots, mut blinks) = (Vec::new(), Vec::new());
    for s in spotting.blinks.drain(..) {
        match verdict(&s) {
            (false, true) => spots.push(s),
            _ => blinks.push(s),
        }
    }
    for s in spotting.spots.drain(..) {
        match verdict(&s) {
            (true, false) => blinks.push(s),
            _ => spots.push(s),
        }
    }
    spots.sort_by_key(|s| s.onset);
    blinks.sort_by_key(|s| s.onset);
    spotting.spots = spots;
    spotting.blinks = blinks;
}

/// Whether an AU shows on the eyelids only (its fine regions in the region table are all
/// eyelids), which a blink moves too.
pub fn lid_only(au: u8) -> bool {
    use crate::face::regions::{regions_for_au, Level};
    let mut fine = regions_for_au(au)
        .filter(|r| r.level == Level::Fine)
        .peekable();
    fine.peek().is_some() && fine.all(|r| r.name.ends_with("eyelid"))
}

/// One expression of a clip, measured onset -> apex.
#[derive(Debug, Clone, Serialize)]
pub struct IntervalAnalysis {
    pub onset: usize,
    pub apex: usize,
    /// The region statistics of the facial flow onset -> apex (aligned face pixels).
    pub regions: Vec<RegionMotion>,
    /// The head motion removed.
    pub head: HeadFit,
    /// The aligned face's inter-ocular distance, pixels.
    pub iod_px: f32,
    #[serde(flatten)]
    pub expression: Expression,
}

impl IntervalAnalysis {
    /// The summed intensity of its present AUs.
    pub fn au_evidence(&self) -> f32 {
        self.expression
            .aus
            .iter()
            .filter(|a| a.present())
            .map(|a| a.intensity)
            .sum()
    }
}

/// The interval with the most AU evidence ([`IntervalAnalysis::au_evidence`]): the clip's
/// main expression.
pub fn strongest(intervals: &[IntervalAnalysis]) -> Option<&IntervalAnalysis> {
    intervals
        .iter()
        .max_by(|a, b| a.au_evidence().total_cmp(&b.au_evidence()))
}

/// Decodes the frames at `indices` in one pass over the clip.
pub fn fetch_frames(media: &Media, indices: &[usize]) -> Result<BTreeMap<usize, RgbImage>> {
    let mut wanted: Vec<usize> = indices.to_vec();
    wanted.sort_unstable();
    wanted.dedup();
    let mut out = BTreeMap::new();
    let Some(&last) = wanted.last() else {
        return Ok(out);
    };
    for frame in media.frames()? {
        let frame = frame?;
        if wanted.binary_search(&frame.index).is_ok() {
            out.insert(frame.index, frame.image);
        }
        if frame.index >= last {
            break;
        }
    }
    if let Some(missing) = wanted.iter().find(|i| !out.contains_key(i)) {
        return Err(Error::bad_input(
            &media.info().path,
            format!(
                "has no frame {missing} (it has {} frames, numbered from 0)",
                media.info().frames
            ),
        ));
    }
    Ok(out)
}

/// Analyses onset -> apex pairs of one clip (frames read in one pass).
pub fn analyze_intervals(
    media: &Media,
    pipeline: &FacePipeline,
    method: &dyn FlowMethod,
    pairs: &[(usize, usize)],
    options: &MotionOptions,
) -> Result<Vec<IntervalAnalysis>> {
    let indices: Vec<usize> = pairs.iter().flat_map(|&(a, b)| [a, b]).collect();
    let frames = fetch_frames(media, &indices)?;
    let path = &media.info().path;
    pairs
        .iter()
        .map(|&(onset, apex)| {
            let (a, b) = (&frames[&onset], &frames[&apex]);
            analyze_pair(pipeline, method, (onset, a), (apex, b), options, path).map(|p| p.0)
        })
        .collect()
}

/// One onset -> apex pair of frames of the clip at `path`: its analysis and the flow it was
/// read from (the face found on the onset frame).
pub fn analyze_pair(
    pipeline: &FacePipeline,
    method: &dyn FlowMethod,
    (onset, a): (usize, &RgbImage),
    (apex, b): (usize, &RgbImage),
    options: &MotionOptions,
    path: &std::path::Path,
) -> Result<(IntervalAnalysis, super::pair::PairMotion)> {
    let faces = pipeline.faces(a)?;
    let k = select(&faces, 0, path).map_err(|_| Error::NoFace {
        path: path.to_path_buf(),
        detail: format!("no face on the onset frame {onset}"),
    })?;
    let face = AlignedFace::new(&faces[k].landmarks68, ALIGNED_SIZE)?;
    let motion = pair_motion(method, &face, a, b)?;
    let source = format!("{} {onset} -> {apex}", method.name());
    let analysis = IntervalAnalysis {
        onset,
        apex,
        expression: expression(&motion.regions, face.iod, options, &source),
        regions: motion.regions.clone(),
        head: motion.head,
        iod_px: face.iod,
    };
    Ok((analysis, motion))
}

#[cfg(test)]
mod tests {
    use super::lid_only;

    #[test]
    fn only_eyelid_aus_are_lid_only() {
        for au in [5, 7, 45] {
            assert!(lid_only(au), "AU{au}");
        }
        for au in [1, 4, 6, 9, 12, 14, 26] {
            assert!(!lid_only(au), "AU{au}");
        }
        assert!(!lid_only(99), "an AU without regions");
    }
}
