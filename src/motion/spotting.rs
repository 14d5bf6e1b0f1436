//! Spotting expressions in per-frame motion curves: onset, apex and offset of each bump,
//! micro vs macro, blinks set apart.
//!
//! Input: one curve per AU group, the magnitude (px) of the face's displacement against a
//! neutral reference, head motion removed; an expression is a bump that rises from about 0 at
//! its onset to a peak at its apex and falls back by its offset. Optionally the eyelid curve,
//! on which a blink is a short strong bump.
//!
//! Steps ([`spot`]):
//! 1. Each curve is smoothed (Gaussian, [`SpotOptions::smooth_s`]) and its slow drift removed:
//!    a baseline from running quantiles: first a low one over every frame in a wide window,
//!    then the median ([`SpotOptions::detrend_window_s`]) over the frames that the first pass
//!    did not see as raised, so a 4-s expression does not lift the baseline under it.
//! 2. The combined curve is the per-frame maximum of the detrended curves; it is detrended the
//!    same way (the maximum of several noisy curves sits above 0), and its noise is a robust
//!    sigma (median absolute deviation, clipped at 3 sigma until stable).
//! 3. Candidates are the runs above the threshold `max(threshold_noise * noise, threshold_px)`;
//!    the apex is the run's highest frame. Onset and offset are where the curve falls back to
//!    [`SpotOptions::boundary_fraction`] of the peak, or by default from there to where a
//!    raised-cosine profile through that crossing and the apex reaches 0 (the bump's foot,
//!    which the noise hides).
//! 4. A candidate that the same curves without their one-frame spikes (a running median of
//!    three) do not lift over the threshold is dropped ([`SpotOptions::despike`]). Candidates
//!    shorter than [`SpotOptions::min_duration_s`] are dropped. A candidate whose apex
//!    lies within [`SpotOptions::blink_window_s`] of a significant blink-curve peak and whose
//!    own peak is under [`SpotOptions::blink_ratio`] times that blink peak is a blink (a blink
//!    leaks weakly into the brow curves). Overlapping candidates keep the highest peak.
//! 5. Kind: micro when `(offset - onset) / fps <= micro_max_s` (MEGC: 0.5 s), else macro.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One per-frame motion curve, px.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Curve {
    pub name: String,
    pub values: Vec<f32>,
}

/// Micro- (at most [`SpotOptions::micro_max_s`]) or macro-expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpotKind {
    Micro,
    Macro,
}

/// One spotted interval; frames are inclusive indices into the curves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spot {
    pub onset: usize,
    pub apex: usize,
    pub offset: usize,
    pub kind: SpotKind,
    /// The combined curve above its baseline at the apex, px.
    pub peak: f32,
    /// `peak` over the noise sigma (the noise floored at 0.001 px, so clean curves give a
    /// finite score).
    pub score: f32,
    /// The curve that rises highest above its own baseline at the apex.
    pub curve: String,
}

/// Spotting settings; every field has a default (documented per field).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SpotOptions {
    /// Frames per second of the curves. Default 30.
    pub fps: f32,
    /// Confirm each candidate on the curves without their one-frame spikes (a running median
    /// of three frames before smoothing): a candidate they do not lift over the threshold is
    /// dropped. Apex, peak and bounds still come from the curves as they are (the median
    /// shaves a sharp apex by a frame). Default true: a flow or mesh glitch in one frame
    /// (SynthME blinks showed them: a brow region jumping for the frame the eye is shut) is
    /// no expression, which rises over two frames or more even at 30 fps.
    pub despike: bool,
    /// Gaussian smoothing sigma, seconds; 0 turns it off. Default 0.02 (0.6 frame at 30 fps:
    /// more blurs the feet of short bumps and biases onset and offset outwards).
    pub smooth_s: f32,
    /// Width of the running median that makes the baseline, seconds. Frames raised above a
    /// first pass (a low quantile over a window 2.5 times as wide) are left out of it, so an
    /// expression as long as the window does not lift it; short enough to follow drift.
    /// Default 4.
    pub detrend_window_s: f32,
    /// Threshold in noise sigmas above the baseline. Default 5.5.
    pub threshold_noise: f32,
    /// Threshold floor, px above the baseline (what a clean curve needs to count). Default
    /// 0.25.
    pub threshold_px: f32,
    /// Onset and offset are where the curve falls back to this share of the peak above the
    /// baseline. Default 0.25.
    pub boundary_fraction: f32,
    /// ... and at least this many noise sigmas above the baseline (so weak bumps do not run
    /// out into the noise). Default 1.
    pub boundary_noise: f32,
    /// Move onset and offset from the crossings out to where a raised-cosine profile through
    /// the crossing and the apex is 0 (the labelled onset and offset). Default true.
    pub extrapolate: bool,
    /// Longest micro-expression, onset to offset, seconds (MEGC: 0.5). Default 0.5.
    pub micro_max_s: f32,
    /// Shortest interval kept, onset to offset, seconds. Default 0.1.
    pub min_duration_s: f32,
    /// A micro-length candidate is a blink when its peak is under this multiple of the blink
    /// curve's peak near its apex. Default 10: a blink's flow spills into the brows, cheeks and
    /// mouth (on SynthME their AU curves peaked at up to 3 times the eye closure), and
    /// micro-expressions close the eye by under a tenth of a pixel, so nearly any micro-length
    /// motion at a clear eye closure is the blink.
    pub blink_ratio: f32,
    /// Largest distance between a candidate's apex and the blink peak, seconds. Default 0.1.
    pub blink_window_s: f32,
    /// A blink-curve peak counts when it is at least this many px above its baseline (and
    /// above [`BLINK_NOISE`] blink-curve sigmas). Default 0.8: SynthME's blinks close the
    /// aligned eye by 1-3 px; micro-expressions by under 0.1 px (lid tightening in a
    /// macro-expression by about 1 px, but only micro-length candidates can be blinks).
    pub blink_min_px: f32,
}

/// Noise sigmas a blink-curve peak must clear.
pub const BLINK_NOISE: f32 = 3.0;

impl Default for SpotOptions {
    fn default() -> Self {
        SpotOptions {
            fps: 30.0,
            despike: true,
            smooth_s: 0.02,
            detrend_window_s: 4.0,
            threshold_noise: 5.5,
            threshold_px: 0.25,
            boundary_fraction: 0.25,
            boundary_noise: 1.0,
            extrapolate: true,
            micro_max_s: 0.5,
            min_duration_s: 0.1,
            blink_ratio: 10.0,
            blink_window_s: 0.1,
            blink_min_px: 0.8,
        }
    }
}

impl SpotOptions {
    /// Refuses settings [`spot`] cannot work with, naming the field.
    pub fn check(&self) -> Result<()> {
        let bad = |field: &str, value: f32, need: &str| {
            Err(Error::Internal(format!(
                "spotting option {field} is {value}; it must be {need}"
            )))
        };
        if !(self.fps.is_finite() && self.fps > 0.0) {
            return bad(
                "fps",
                self.fps,
                "a positive number (frames per second of the clip)",
            );
        }
        let non_negative = [
            ("smooth_s", self.smooth_s),
            ("threshold_noise", self.threshold_noise),
            ("threshold_px", self.threshold_px),
            ("boundary_noise", self.boundary_noise),
            ("micro_max_s", self.micro_max_s),
            ("min_duration_s", self.min_duration_s),
            ("blink_window_s", self.blink_window_s),
            ("blink_min_px", self.blink_min_px),
        ];
        for (field, value) in non_negative {
            if !(value.is_finite() && value >= 0.0) {
                return bad(field, value, "a finite number >= 0");
            }
        }
        if !(self.detrend_window_s.is_finite() && self.detrend_window_s > 0.0) {
            return bad("detrend_window_s", self.detrend_window_s, "> 0 seconds");
        }
        if !(self.boundary_fraction > 0.0 && self.boundary_fraction < 1.0) {
            return bad("boundary_fraction", self.boundary_fraction, "in (0, 1)");
        }
        if !(self.blink_ratio.is_finite() && self.blink_ratio > 0.0) {
            return bad("blink_ratio", self.blink_ratio, "> 0");
        }
        Ok(())
    }

    /// `s` seconds in whole frames.
    fn frames(&self, s: f32) -> usize {
        (s * self.fps).round() as usize
    }
}

/// What [`spot`] found, with the curves it thresholded (for plots and checks).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spotting {
    /// Expressions in onset order.
    pub spots: Vec<Spot>,
    /// Candidates set apart as blinks, in onset order.
    pub blinks: Vec<Spot>,
    /// The combined curve's baseline, px, one value a frame.
    pub baseline: Vec<f32>,
    /// The combined curve: per frame, the largest smoothed, detrended curve, px.
    pub combined: Vec<f32>,
    /// Robust noise sigma of the combined curve above its baseline, px.
    pub noise: f32,
    /// The threshold above the baseline that a candidate's peak crossed, px.
    pub threshold: f32,
}

/// Spots expressions in `curves` (the steps in the module docs). `blink` is the eyelid curve,
/// kept out of `curves`; without it no candidate is taken for a blink.
pub fn spot(curves: &[Curve], blink: Option<&[f32]>, options: &SpotOptions) -> Result<Spotting> {
    options.check()?;
    let n = check_curves(curves, blink)?;
    let Combined {
        detrended,
        combined,
        baseline: base,
        raised,
    } = combine(curves, n, options, false);
    // the same without one-frame spikes, to confirm candidates
    let despiked = options
        .despike
        .then(|| combine(curves, n, options, true).raised);
    let noise = robust_sigma(&raised);
    let threshold = (options.threshold_noise * noise).max(options.threshold_px);
    let blink_raised = blink.map(|b| {
        let s = smooth(b, options.smooth_s * options.fps);
        let base = baseline(&s, options);
        let raised: Vec<f32> = s.iter().zip(&base).map(|(v, b)| v - b).collect();
        let floor = (BLINK_NOISE * robust_sigma(&raised)).max(options.blink_min_px);
        (raised, floor)
    });

    let min_frames = options.frames(options.min_duration_s);
    let mut spots = Vec::new();
    let mut blinks = Vec::new();
    for (lo, hi) in runs_above(&raised, threshold) {
        if let Some(d) = &despiked {
            if d[lo..=hi].iter().all(|&v| v < threshold) {
                continue; // a one-frame spike
            }
        }
        let apex = (lo..=hi)
            .max_by(|&a, &b| raised[a].total_cmp(&raised[b]))
            .unwrap_or(lo);
        let peak = raised[apex];
        let level = (options.boundary_fraction * peak).max(options.boundary_noise * noise);
        let (onset, offset) = bounds(&raised, apex, level.min(peak), options.extrapolate);
        if offset - onset < min_frames {
            continue;
        }
        let micro = (offset - onset) as f32 <= options.micro_max_s * options.fps + 1e-3;
        let curve = (0..curves.len())
            .max_by(|&a, &b| detrended[a][apex].total_cmp(&detrended[b][apex]))
            .map_or_else(String::new, |i| curves[i].name.clone());
        let spot = Spot {
            onset,
            apex,
            offset,
            kind: if micro {
                SpotKind::Micro
            } else {
                SpotKind::Macro
            },
            peak,
            score: peak / noise.max(1e-3),
            curve,
        };
        let is_blink = blink_raised.as_ref().is_some_and(|(b, floor)| {
            let w = options.frames(options.blink_window_s);
            let blink_peak = b[apex.saturating_sub(w)..=(apex + w).min(n - 1)]
                .iter()
                .fold(f32::MIN, |m, &v| m.max(v));
            micro && blink_peak >= *floor && peak < options.blink_ratio * blink_peak
        });
        if is_blink {
            blinks.push(spot);
        } else {
            spots.push(spot);
        }
    }
    Ok(Spotting {
        spots: suppress_overlaps(spots),
        blinks: suppress_overlaps(blinks),
        baseline: base,
        combined,
        noise,
        threshold,
    })
}

/// The curves as [`spot`] thresholds them (steps 1 and 2 of the module docs).
struct Combined {
    /// Each curve smoothed and detrended.
    detrended: Vec<Vec<f32>>,
    /// Per frame, the largest detrended curve.
    combined: Vec<f32>,
    /// The combined curve's baseline.
    baseline: Vec<f32>,
    /// The combined curve above its baseline.
    raised: Vec<f32>,
}

/// Smooths, detrends and combines `curves` (`n` frames each); with `despike`, each curve
/// first loses its one-frame spikes.
fn combine(curves: &[Curve], n: usize, options: &SpotOptions, despike: bool) -> Combined {
    let detrended: Vec<Vec<f32>> = curves
        .iter()
        .map(|c| {
            let values = match despike {
                true => median3(&c.values),
                false => c.values.clone(),
            };
            let s = smooth(&values, options.smooth_s * options.fps);
            let b = baseline(&s, options);
            s.iter().zip(&b).map(|(v, b)| v - b).collect()
        })
        .collect();
    let combined: Vec<f32> = (0..n)
        .map(|t| detrended.iter().map(|d| d[t]).fold(f32::MIN, f32::max))
        .collect();
    let baseline = baseline(&combined, options);
    let raised = combined.iter().zip(&baseline).map(|(c, b)| c - b).collect();
    Combined {
        detrended,
        combined,
        baseline,
        raised,
    }
}

/// The common length of `curves` and `blink`; refuses no curves, different lengths and
/// values that are not finite.
fn check_curves(curves: &[Curve], blink: Option<&[f32]>) -> Result<usize> {
    let first = curves.first().ok_or_else(|| {
        Error::Internal("spotting needs at least one motion curve; none was given".into())
    })?;
    let n = first.values.len();
    let named = curves
        .iter()
        .map(|c| (c.name.as_str(), c.values.as_slice()))
        .chain(blink.map(|b| ("blink", b)));
    for (name, values) in named {
        if values.len() != n {
            return Err(Error::Internal(format!(
                "curve {name:?} has {} frames but {:?} has {n}; every curve (and the blink \
                 curve) must cover the same frames",
                values.len(),
                first.name
            )));
        }
        if let Some(t) = values.iter().position(|v| !v.is_finite()) {
            return Err(Error::Internal(format!(
                "curve {name:?} holds {} at frame {t}; fill gaps (e.g. frames without a face) \
                 before spotting",
                values[t]
            )));
        }
    }
    Ok(n)
}

/// Gaussian smoothing with sigma `sigma` frames, the kernel renormalised at the ends.
/// Running median of three: a value that stands above (or below) both neighbours alone, a
/// one-frame spike, takes the nearer neighbour's value; a rise that lasts two frames or more
/// is kept. The first and last values stay.
fn median3(x: &[f32]) -> Vec<f32> {
    (0..x.len())
        .map(|i| {
            if i == 0 || i + 1 == x.len() {
                return x[i];
            }
            let (a, b, c) = (x[i - 1], x[i], x[i + 1]);
            a.max(b).min(a.min(b).max(c)) // the middle of the three
        })
        .collect()
}

fn smooth(x: &[f32], sigma: f32) -> Vec<f32> {
    if sigma < 0.1 {
        return x.to_vec();
    }
    let radius = (3.0 * sigma).ceil() as usize;
    let kernel: Vec<f32> = (0..=2 * radius)
        .map(|k| {
            let d = k as f32 - radius as f32;
            (-0.5 * (d / sigma).powi(2)).exp()
        })
        .collect();
    (0..x.len())
        .map(|t| {
            let (mut sum, mut weight) = (0.0, 0.0);
            for (k, w) in kernel.iter().enumerate() {
                if let Some(v) = (t + k).checked_sub(radius).and_then(|j| x.get(j)) {
                    sum += w * v;
                    weight += w;
                }
            }
            sum / weight
        })
        .collect()
}

/// The `q` quantile (0..1, nearest rank) of `values`, reordering them; `None` when empty.
fn quantile(values: &mut [f32], q: f32) -> Option<f32> {
    if values.is_empty() {
        return None;
    }
    let k = ((values.len() - 1) as f32 * q).round() as usize;
    let (_, v, _) = values.select_nth_unstable_by(k, f32::total_cmp);
    Some(*v)
}

/// Robust sigma: 1.4826 times the median absolute deviation, recomputed over the values
/// within 3 sigma of the median until the set stops shrinking (a few rounds).
fn robust_sigma(x: &[f32]) -> f32 {
    let mut kept: Vec<f32> = x.to_vec();
    let mut sigma = 0.0;
    for _ in 0..5 {
        let Some(median) = quantile(&mut kept, 0.5) else {
            return 0.0;
        };
        let mut dev: Vec<f32> = kept.iter().map(|v| (v - median).abs()).collect();
        sigma = 1.4826 * quantile(&mut dev, 0.5).unwrap_or(0.0);
        let before = kept.len();
        kept.retain(|v| (v - median).abs() <= 3.0 * sigma);
        if kept.len() == before || kept.is_empty() {
            break;
        }
    }
    sigma
}

/// A running `q` quantile over a window of `2 half + 1` frames, of the frames marked in
/// `keep`, computed every `half / 8` frames and linearly interpolated between; where too few
/// frames are kept the neighbouring values are carried over.
fn running_quantile(x: &[f32], keep: &[bool], half: usize, q: f32) -> Vec<f32> {
    let n = x.len();
    if n == 0 {
        return Vec::new();
    }
    let stride = (half / 8).max(1);
    let need = (half / 2).max(3);
    let mut anchors: Vec<(usize, f32)> = Vec::new();
    let mut window = Vec::with_capacity(2 * half + 1);
    let mut t: usize = 0;
    loop {
        window.clear();
        let (lo, hi) = (t.saturating_sub(half), (t + half).min(n - 1));
        window.extend((lo..=hi).filter(|&j| keep[j]).map(|j| x[j]));
        if window.len() >= need.min(n) {
            anchors.extend(quantile(&mut window, q).map(|v| (t, v)));
        }
        if t == n - 1 {
            break;
        }
        t = (t + stride).min(n - 1);
    }
    if anchors.is_empty() {
        // Nothing kept anywhere: the quantile over every frame.
        let mut all = x.to_vec();
        return vec![quantile(&mut all, q).unwrap_or(0.0); n];
    }
    let mut out = Vec::with_capacity(n);
    let mut k = 0;
    for t in 0..n {
        while k + 1 < anchors.len() && anchors[k + 1].0 <= t {
            k += 1;
        }
        let (t0, v0) = anchors[k];
        let v = match anchors.get(k + 1) {
            Some(&(t1, v1)) if t > t0 => v0 + (v1 - v0) * (t - t0) as f32 / (t1 - t0) as f32,
            _ => v0,
        };
        out.push(v);
    }
    out
}

/// The first baseline pass: its window over [`SpotOptions::detrend_window_s`], its quantile
/// (low, so expressions filling most of a window do not lift it), and the sigmas above it at
/// which a frame counts as raised (and at least half of [`SpotOptions::threshold_px`], for
/// curves without noise).
const FIRST_PASS_WINDOW: f32 = 2.5;
const FIRST_PASS_QUANTILE: f32 = 0.2;
const RAISED_SIGMAS: f32 = 2.0;
/// Frames next to a raised frame are left out of the second pass too, seconds (the feet of a
/// bump sit below the cut).
const RAISED_MARGIN_S: f32 = 0.25;

/// The slow baseline of `x`: a low running quantile over a wide window, then the running
/// median of the frames not raised above it.
fn baseline(x: &[f32], options: &SpotOptions) -> Vec<f32> {
    let n = x.len();
    let half = options.frames(options.detrend_window_s / 2.0).max(1);
    let wide = options
        .frames(FIRST_PASS_WINDOW * options.detrend_window_s / 2.0)
        .max(1);
    let first = running_quantile(x, &vec![true; n], wide, FIRST_PASS_QUANTILE);
    let residual: Vec<f32> = x.iter().zip(&first).map(|(v, b)| v - b).collect();
    let mut sorted = residual.clone();
    let median = quantile(&mut sorted, 0.5).unwrap_or(0.0);
    let cut = median + (RAISED_SIGMAS * robust_sigma(&residual)).max(0.5 * options.threshold_px);
    let margin = options.frames(RAISED_MARGIN_S);
    let mut keep = vec![true; n];
    for t in (0..n).filter(|&t| residual[t] > cut) {
        keep[t.saturating_sub(margin)..=(t + margin).min(n - 1)].fill(false);
    }
    running_quantile(x, &keep, half, 0.5)
}

/// Maximal runs of frames at or above `threshold`, as inclusive `(first, last)`.
fn runs_above(x: &[f32], threshold: f32) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut start = None;
    for (t, &v) in x.iter().enumerate() {
        match (v >= threshold, start) {
            (true, None) => start = Some(t),
            (false, Some(s)) => {
                runs.push((s, t - 1));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        runs.push((s, x.len() - 1));
    }
    runs
}

/// Onset and offset of the bump at `apex`: the (sub-frame) crossings of `level` on either
/// side, and with `extrapolate` moved out to the foot of a raised cosine through the crossing
/// and the apex: a raised cosine reaches the share `f` of its peak at `u = acos(1 - 2f) / pi`
/// of the way from its foot to its apex.
fn bounds(x: &[f32], apex: usize, level: f32, extrapolate: bool) -> (usize, usize) {
    let n = x.len();
    let peak = x[apex];
    let stretch = if extrapolate && peak > 0.0 {
        let f = (level / peak).clamp(0.0, 0.9);
        let u = (1.0 - 2.0 * f).acos() / std::f32::consts::PI;
        1.0 / (1.0 - u)
    } else {
        1.0
    };
    let reach = |d: f32| d * stretch;
    let crossing = |from: usize, to: usize| {
        // `from` is above the level, `to` (next to it) at or below it.
        let (a, b) = (x[from], x[to]);
        let share = if a > b { (a - level) / (a - b) } else { 1.0 };
        share.clamp(0.0, 1.0)
    };
    let mut left = apex;
    while left > 0 && x[left - 1] > level {
        left -= 1;
    }
    let left_at = if left > 0 {
        left as f32 - crossing(left, left - 1)
    } else {
        0.0
    };
    let mut right = apex;
    while right + 1 < n && x[right + 1] > level {
        right += 1;
    }
    let right_at = if right + 1 < n {
        right as f32 + crossing(right, right + 1)
    } else {
        (n - 1) as f32
    };
    let a = apex as f32;
    let onset = (a - reach(a - left_at)).round().max(0.0) as usize;
    let offset = (a + reach(right_at - a)).round().min((n - 1) as f32) as usize;
    (onset.min(apex), offset.max(apex))
}

/// Non-maximum suppression: the highest peaks first, a spot dropped when it shares a frame
/// with one already kept; the kept ones in onset order.
fn suppress_overlaps(mut spots: Vec<Spot>) -> Vec<Spot> {
    spots.sort_by(|a, b| b.peak.total_cmp(&a.peak).then(a.onset.cmp(&b.onset)));
    let mut kept: Vec<Spot> = Vec::new();
    for s in spots {
        if kept
            .iter()
            .all(|k| s.offset < k.onset || s.onset > k.offset)
        {
            kept.push(s);
        }
    }
    kept.sort_by_key(|s| s.onset);
    kept
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::eval::spotting::{evaluate, Interval, Kind, SpottingOptions};
    use crate::synth::labels::Kind as SynthKind;
    use crate::synth::rng::Rng;
    use crate::synth::spec::{draw_long, Switches};
    use crate::synth::Profile;

    const FPS: f32 = 30.0;
    /// Expression curves of the synthetic videos (the eyelid curve is the blink curve).
    const NAMES: [&str; 4] = ["brows", "nose", "cheeks", "mouth"];

    /// A synthetic long video's curves and what they hold.
    pub(crate) struct Video {
        pub curves: Vec<Curve>,
        pub blink: Vec<f32>,
        pub gold: Vec<(usize, usize, SpotKind)>,
        pub gold_blinks: Vec<(usize, usize)>,
    }

    fn add_bump(curve: &mut [f32], p: Profile, amplitude: f32) {
        for (t, v) in curve.iter_mut().enumerate() {
            *v += amplitude * p.intensity(t as f32);
        }
    }

    /// SynthME's long-video timing (`draw_long`: 20-60 s, 0-5 expressions at least 1 s apart,
    /// blinks every 2-6 s) at 30 fps, as motion curves: micro peaks 0.3-2 px, macro 2-10 px
    /// on one main curve and up to three weaker ones; blinks of 3-8 px on the eyelid curve
    /// leaking 10-25 % into the brows. `noisy` adds white noise (sigma 0.05-0.15 px), a
    /// resting level of 0.2-0.5 px and a random-walk drift.
    pub(crate) fn synth_video(seed: u64, noisy: bool) -> Video {
        let root = Rng::new(seed);
        let spec = draw_long(&mut root.derive(1), &Switches::ALL, FPS, 128);
        let mut rng = root.derive(2);
        let n = spec.frames;
        let mut curves: Vec<Vec<f32>> = vec![vec![0.0; n]; NAMES.len()];
        let mut blink = vec![0.0; n];
        let mut gold = Vec::new();
        for e in &spec.events {
            let micro = e.kind == SynthKind::Micro;
            let amplitude = if micro {
                rng.range(0.3, 2.0)
            } else {
                rng.range(2.0, 10.0)
            };
            let p = Profile::new(e.onset as f32, e.apex as f32, e.offset as f32).unwrap();
            let main = rng.int(0, NAMES.len() - 1);
            for (i, c) in curves.iter_mut().enumerate() {
                let weight = if i == main {
                    1.0
                } else if rng.chance(0.5) {
                    rng.range(0.2, 0.8)
                } else {
                    0.0
                };
                add_bump(c, p, amplitude * weight);
            }
            let kind = if micro {
                SpotKind::Micro
            } else {
                SpotKind::Macro
            };
            gold.push((e.onset, e.offset, kind));
        }
        let mut gold_blinks = Vec::new();
        for b in &spec.blinks {
            let p = Profile::new(b.onset as f32, b.apex as f32, b.offset as f32).unwrap();
            let amplitude = rng.range(3.0, 8.0) * b.intensity;
            add_bump(&mut blink, p, amplitude);
            add_bump(&mut curves[0], p, amplitude * rng.range(0.1, 0.25));
            gold_blinks.push((b.onset, b.offset));
        }
        if noisy {
            let sigma = rng.range(0.05, 0.15);
            for c in curves.iter_mut().chain([&mut blink]) {
                let mut drift = rng.range(0.2, 0.5);
                for v in c.iter_mut() {
                    drift = (drift + 0.01 * rng.normal()).max(0.0);
                    *v = (*v + drift + sigma * rng.normal()).max(0.0);
                }
            }
        }
        Video {
            curves: NAMES
                .iter()
                .zip(curves)
                .map(|(name, values)| Curve {
                    name: name.to_string(),
                    values,
                })
                .collect(),
            blink,
            gold,
            gold_blinks,
        }
    }

    fn intervals(
        video: &str,
        spans: impl Iterator<Item = (usize, usize, SpotKind)>,
    ) -> Vec<Interval> {
        spans
            .map(|(onset, offset, kind)| Interval {
                video: video.into(),
                onset: onset as u64,
                offset: offset as u64,
                kind: match kind {
                    SpotKind::Micro => Kind::Micro,
                    SpotKind::Macro => Kind::Macro,
                },
            })
            .collect()
    }

    fn iou(a: (usize, usize), b: (usize, usize)) -> f64 {
        let inter = (a.1.min(b.1) + 1).saturating_sub(a.0.max(b.0));
        let union = (a.1 - a.0 + 1) + (b.1 - b.0 + 1) - inter;
        inter as f64 / union as f64
    }

    /// Gold and predicted intervals of `videos`, and the spots that match a blink (IoU >= 0.5)
    /// but no expression.
    fn run(seeds: impl Iterator<Item = u64>, noisy: bool) -> (Vec<Interval>, Vec<Interval>, usize) {
        let (mut gold, mut pred, mut blinks_as_spots) = (Vec::new(), Vec::new(), 0);
        for seed in seeds {
            let v = synth_video(seed, noisy);
            let r = spot(&v.curves, Some(&v.blink), &SpotOptions::default()).unwrap();
            let name = seed.to_string();
            gold.extend(intervals(&name, v.gold.iter().copied()));
            pred.extend(intervals(
                &name,
                r.spots.iter().map(|s| (s.onset, s.offset, s.kind)),
            ));
            blinks_as_spots += r
                .spots
                .iter()
                .filter(|s| {
                    let span = (s.onset, s.offset);
                    v.gold_blinks.iter().any(|&b| iou(span, b) >= 0.5)
                        && !v.gold.iter().any(|g| iou(span, (g.0, g.1)) >= 0.5)
                })
                .count();
        }
        (gold, pred, blinks_as_spots)
    }

    #[test]
    fn clean_curves_are_spotted_exactly() {
        let (gold, pred, blinks_as_spots) = run(0..10, false);
        let report = evaluate(&gold, &pred, SpottingOptions::default());
        assert!(gold.len() >= 20, "{} gold intervals", gold.len());
        assert!(gold.iter().any(|g| g.kind == Kind::Micro));
        assert!(gold.iter().any(|g| g.kind == Kind::Macro));
        assert_eq!(
            (report.overall.tp, report.overall.fp, report.overall.fn_),
            (gold.len() as u64, 0, 0)
        );
        assert_eq!(report.overall.f1, 1.0);
        assert_eq!(blinks_as_spots, 0);
    }

    #[test]
    fn clean_blinks_are_set_apart() {
        let v = synth_video(3, false);
        let r = spot(&v.curves, Some(&v.blink), &SpotOptions::default()).unwrap();
        // Blinks clear of every expression each leave one blink spot over the brows.
        let clear: Vec<_> = v
            .gold_blinks
            .iter()
            .filter(|b| v.gold.iter().all(|g| b.1 < g.0 || b.0 > g.1))
            .collect();
        assert!(clear.len() >= 3, "{}", clear.len());
        for b in clear {
            assert!(
                r.blinks
                    .iter()
                    .any(|s| iou((s.onset, s.offset), *b) >= 0.5 && s.curve == "brows"),
                "blink {b:?} not among {:?}",
                r.blinks
            );
        }
        // Without the eyelid curve the same leaks are taken for expressions.
        let alone = spot(&v.curves, None, &SpotOptions::default()).unwrap();
        assert!(alone.blinks.is_empty());
        assert_eq!(alone.spots.len(), r.spots.len() + r.blinks.len());
    }

    #[test]
    fn noisy_drifting_batch_scores_f1_over_0_8() {
        let (gold, pred, blinks_as_spots) = run(100..120, true);
        let report = evaluate(&gold, &pred, SpottingOptions::default());
        let o = report.overall;
        eprintln!(
            "noisy batch: gold {}, predicted {}, tp {} fp {} fn {}, F1 {:.3} (micro {:.3}, \
             macro {:.3}), blinks as spots {blinks_as_spots}",
            gold.len(),
            pred.len(),
            o.tp,
            o.fp,
            o.fn_,
            o.f1,
            report.micro.f1,
            report.macro_.f1
        );
        assert!(gold.len() >= 20, "{}", gold.len());
        assert!(o.f1 >= 0.8, "F1 {}", o.f1);
        assert_eq!(blinks_as_spots, 0);
    }

    /// Four 60-s curves of white noise (sigma 0.05-0.15 px) on a resting level, with or
    /// without a random-walk drift.
    fn flat_curves(seed: u64, drift_step: f32) -> (Vec<Curve>, f32) {
        let mut rng = Rng::new(seed);
        let n = (60.0 * FPS) as usize;
        let sigma = rng.range(0.05, 0.15);
        let curves = NAMES
            .iter()
            .map(|name| {
                let mut level = rng.range(0.2, 0.5);
                let values = (0..n)
                    .map(|_| {
                        level = (level + drift_step * rng.normal()).max(0.0);
                        (level + sigma * rng.normal()).max(0.0)
                    })
                    .collect();
                Curve {
                    name: name.to_string(),
                    values,
                }
            })
            .collect();
        (curves, sigma)
    }

    #[test]
    fn flat_noisy_curves_give_no_spots() {
        let mut drifting = 0;
        for seed in 0..10u64 {
            let (curves, sigma) = flat_curves(1000 + seed, 0.0);
            let r = spot(&curves, None, &SpotOptions::default()).unwrap();
            assert!(r.spots.is_empty(), "seed {seed}: {:?}", r.spots);
            // The smoothed combined curve's noise: a fraction of the per-frame sigma.
            assert!(
                r.noise > 0.2 * sigma && r.noise < sigma,
                "{} vs {sigma}",
                r.noise
            );
            assert_eq!(r.threshold, (5.5 * r.noise).max(0.25));
            let (curves, _) = flat_curves(1000 + seed, 0.01);
            drifting += spot(&curves, None, &SpotOptions::default())
                .unwrap()
                .spots
                .len();
        }
        // With drift the odd wander got through (one spot in these 10 minutes), an excursion
        // that the despiked curves do not confirm ([`SpotOptions::despike`]). Over
        // the 200 noisy videos of seeds 200..400 (534 expressions) the defaults give 485 true
        // and 12 false positives, F1 0.941 (without despiking 493 and 12, F1 0.949: this
        // white per-frame noise lifts a few weak bumps over the threshold for one frame); a
        // threshold of 5 sigmas gave 26 false positives.
        assert_eq!(drifting, 0, "spots in 10 flat drifting minutes");
    }

    #[test]
    fn a_long_macro_on_drift_keeps_its_height_and_extent() {
        // 40 s, a 4-s macro of 2 px (rise 1.6 s) at 20 s on a linear drift of 1 px over the
        // clip, no noise: the baseline must pass under the bump.
        let n = (40.0 * FPS) as usize;
        let p = Profile::new(600.0, 648.0, 720.0).unwrap();
        let values: Vec<f32> = (0..n)
            .map(|t| 0.3 + t as f32 / n as f32 + 2.0 * p.intensity(t as f32))
            .collect();
        let curves = [Curve {
            name: "mouth".into(),
            values,
        }];
        let r = spot(&curves, None, &SpotOptions::default()).unwrap();
        assert_eq!(r.spots.len(), 1, "{:?}", r.spots);
        let s = &r.spots[0];
        assert_eq!(s.kind, SpotKind::Macro);
        assert!((s.peak - 2.0).abs() < 0.05, "peak {}", s.peak);
        assert!(s.apex.abs_diff(648) <= 1, "apex {}", s.apex);
        assert!(
            s.onset.abs_diff(600) <= 3 && s.offset.abs_diff(720) <= 3,
            "{s:?}"
        );
        assert_eq!(s.curve, "mouth");
        // The curve's own baseline took the drift away: the combined one is flat near 0.
        assert!(r.baseline.iter().all(|b| b.abs() < 0.02));
    }

    #[test]
    fn a_one_frame_spike_is_no_expression() {
        // 10 s at rest; a 3-px jump of one frame at 2 s, a 0.6-px micro bump (8 frames) at 6 s
        let n = 300;
        let p = Profile::new(180.0, 183.0, 188.0).unwrap();
        let mut values: Vec<f32> = (0..n).map(|t| 0.6 * p.intensity(t as f32)).collect();
        values[60] = 3.0;
        let curves = [Curve {
            name: "brows".into(),
            values,
        }];
        let apexes = |despike| {
            // no shortest duration: the smoothed spike is about 3 frames wide
            let options = SpotOptions {
                despike,
                min_duration_s: 0.0,
                ..SpotOptions::default()
            };
            let r = spot(&curves, None, &options).unwrap();
            r.spots.iter().map(|s| s.apex).collect::<Vec<_>>()
        };
        assert_eq!(apexes(true), [183]);
        assert_eq!(apexes(false), [60, 183]);
    }

    #[test]
    fn a_micro_bump_is_bounded_at_its_feet() {
        // 8 frames (0.27 s), apex at 3/8; no smoothing: onset and offset within a frame.
        let n = 300;
        let p = Profile::new(100.0, 103.0, 108.0).unwrap();
        let values: Vec<f32> = (0..n).map(|t| 0.6 * p.intensity(t as f32)).collect();
        let options = SpotOptions {
            smooth_s: 0.0,
            ..SpotOptions::default()
        };
        let curves = [Curve {
            name: "brows".into(),
            values,
        }];
        let r = spot(&curves, None, &options).unwrap();
        assert_eq!(r.spots.len(), 1, "{:?}", r.spots);
        let s = &r.spots[0];
        assert_eq!((s.apex, s.kind), (103, SpotKind::Micro));
        assert!(
            s.onset.abs_diff(100) <= 1 && s.offset.abs_diff(108) <= 1,
            "{s:?}"
        );
        assert!((s.peak - 0.6).abs() < 1e-4);
        // Crossings alone (no extrapolation) sit inside the bump.
        let inner = spot(
            &curves,
            None,
            &SpotOptions {
                extrapolate: false,
                ..options
            },
        )
        .unwrap();
        let i = &inner.spots[0];
        assert!(i.onset > 100 && i.offset < 108, "{i:?}");
    }

    #[test]
    fn bad_arguments_are_refused_with_a_reason() {
        let c = |name: &str, n: usize| Curve {
            name: name.into(),
            values: vec![0.0; n],
        };
        let o = SpotOptions::default();
        let err = spot(&[c("a", 10), c("b", 9)], None, &o).unwrap_err();
        assert!(err.to_string().contains("same frames"), "{err}");
        let err = spot(&[c("a", 10)], Some(&[0.0; 11]), &o).unwrap_err();
        assert!(err.to_string().contains("\"blink\" has 11 frames"), "{err}");
        let err = spot(&[], None, &o).unwrap_err();
        assert!(err.to_string().contains("at least one"), "{err}");
        for fps in [0.0, -30.0, f32::NAN] {
            let err = spot(&[c("a", 10)], None, &SpotOptions { fps, ..o }).unwrap_err();
            assert!(err.to_string().contains("fps"), "{err}");
        }
        let mut nan = c("a", 10);
        nan.values[4] = f32::NAN;
        let err = spot(&[nan], None, &o).unwrap_err();
        assert!(err.to_string().contains("frame 4"), "{err}");
        let err = spot(
            &[c("a", 10)],
            None,
            &SpotOptions {
                boundary_fraction: 1.0,
                ..o
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("boundary_fraction"), "{err}");
        // Empty curves are no error: nothing to spot.
        let r = spot(&[c("a", 0)], None, &o).unwrap();
        assert!(r.spots.is_empty() && r.combined.is_empty());
    }
}
