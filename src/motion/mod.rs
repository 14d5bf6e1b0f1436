//! Motion analysis: from a clip to AU evidence, spotted intervals and an emotion.
//!
//! - [`regions`]: statistics of a flow field inside each facial region (mean and max
//!   magnitude, dominant direction, the share of pixels moving).
//! - [`pair`]: one expression between two frames (onset -> apex): aligned faces, flow, head
//!   motion removed, region statistics, AUs and emotion.
//! - [`au`]: AU evidence from region displacements (each AU's motion pattern, unmixed by
//!   non-negative least squares).
//! - [`series`]: a whole clip streamed frame by frame: chained region displacements and
//!   per-AU motion curves.
//! - [`spotting`]: onset/apex/offset intervals from per-frame motion curves, micro vs macro,
//!   blink suppression, non-maximum suppression.
//! - [`plot`]: the curves as a picture with the spotted intervals marked.
//! - [`clip`]: a clip end to end: series, curves, spotting, and each interval analysed.
//! - [`detect`]: learned per-AU detectors that say which AUs a motion shows.
//! - [`learn`]: the AU motion patterns fitted to SynthME training data.
//! - [`synthme`]: the analysis scored on a SynthME dataset.

pub mod au;
pub mod clip;
pub mod detect;
pub mod learn;
pub mod pair;
pub mod plot;
pub mod regions;
pub mod series;
pub mod spotting;
pub mod synthme;
