//! Motion analysis: from a clip to AU evidence, spotted intervals and an emotion.
//!
//! - [`regions`]: statistics of a flow field inside each facial region (mean and max
//!   magnitude, dominant direction, the share of pixels moving).
//! - [`spotting`]: onset/apex/offset intervals from per-frame motion curves, micro vs macro,
//!   blink suppression, non-maximum suppression.
//! - [`plot`]: the curves as a picture with the spotted intervals marked.

pub mod plot;
pub mod regions;
pub mod spotting;
