//! MEFlowNet's sizes, with serde defaults so a weights file's card can spell them out.

use serde::{Deserialize, Serialize};

/// Default number of refinement iterations.
pub const DEFAULT_ITERS: usize = 5;

/// The network's sizes. The defaults are what the committed weights were trained with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Channels of the encoder's first (1/2 resolution) convolution.
    #[serde(default = "d_stem")]
    pub stem_channels: usize,
    /// Channels of the encoder's 1/4-resolution trunk.
    #[serde(default = "d_trunk")]
    pub trunk_channels: usize,
    /// Channels of the matching features (both frames).
    #[serde(default = "d_feature")]
    pub feature_channels: usize,
    /// Channels of the context features (frame 1 only).
    #[serde(default = "d_context")]
    pub context_channels: usize,
    /// Hidden channels of the refinement block.
    #[serde(default = "d_hidden")]
    pub hidden_channels: usize,
    /// Refinement iterations (inference may ask for another count).
    #[serde(default = "d_iters")]
    pub iters: usize,
}

/// The features' stride: flow is refined at 1/4 resolution and convexly upsampled 4x.
pub const STRIDE: usize = 4;

fn d_stem() -> usize {
    24
}
fn d_trunk() -> usize {
    48
}
fn d_feature() -> usize {
    48
}
fn d_context() -> usize {
    32
}
fn d_hidden() -> usize {
    64
}
fn d_iters() -> usize {
    DEFAULT_ITERS
}

impl Default for Config {
    fn default() -> Self {
        Config {
            stem_channels: d_stem(),
            trunk_channels: d_trunk(),
            feature_channels: d_feature(),
            context_channels: d_context(),
            hidden_channels: d_hidden(),
            iters: d_iters(),
        }
    }
}
