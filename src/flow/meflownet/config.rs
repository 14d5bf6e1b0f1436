//! MEFlowNet's sizes, with serde defaults so a weights file's card can spell them out. A
//! weights file written by `actfer train flow` carries its `Config` as JSON in the
//! safetensors metadata (key [`CONFIG_KEY`]), so inference builds the network it was trained as.

use serde::{Deserialize, Serialize};

/// Default number of refinement iterations, for training and inference. The committed weights
/// measure better at 3 than at 5 on the test micro pairs (0.1089 against 0.1096 px EPE with
/// the mirror average), and 3 cost less.
pub const DEFAULT_ITERS: usize = 3;

/// The safetensors metadata key that holds a weights file's [`Config`] as JSON.
pub const CONFIG_KEY: &str = "actfer.meflownet.config";

/// The network's sizes. The defaults are what the committed weights were trained with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Channels of the encoder's first (1/2 resolution) convolution.
    #[serde(default = "d_stem")]
    pub stem_channels: usize,
    /// Channels of the encoder's trunk (at 1/`stride` resolution).
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
    /// The features' stride, 2 or 4: flow is refined at 1/`stride` resolution and convexly
    /// upsampled by `stride`.
    #[serde(default = "d_stride")]
    pub stride: usize,
    /// The matching features also carry the normalised frame itself, average-pooled to the
    /// features' resolution (3 channels), so the warp compares pixels as well as features.
    #[serde(default = "d_image_features")]
    pub image_features: bool,
    /// The refinement block also reads brightness-constancy terms computed at full resolution
    /// and pooled to the features' grid ([`super::photometric`]).
    #[serde(default = "d_photometric")]
    pub photometric: bool,
    /// Where the refinement starts: zero flow, or a classical estimate that the iterations
    /// correct ([`InitialFlow`]). `Config::default()` starts from DIS, as the committed weights
    /// do; JSON without the field (weights files written before it existed) reads as zero.
    #[serde(default)]
    pub initial_flow: InitialFlow,
    /// Inference also runs the left-right mirror image of the pair (in the same batch, from
    /// the mirrored start) and averages the two flows, the mirror's mirrored back: a
    /// test-time ensemble of two that costs one more batch item, not a second DIS.
    /// Training ignores it. Off in `Config::default()` and in the committed weights' file,
    /// which run [`Config::reverse_average`] instead (better for the same time); JSON without
    /// the field reads as off.
    #[serde(default)]
    pub mirror_average: bool,
    /// Inference also runs the pair backwards (frame 2 to frame 1, from that direction's own
    /// start) and averages the forward flow with the backward one negated, read where each
    /// pixel lands (the backward flow warped by the forward one). Both directions run side
    /// by side. Training ignores it. `Config::default()` sets it, as the committed weights' file
    /// does; JSON without the field reads as off.
    #[serde(default)]
    pub reverse_average: bool,
}

/// The flow the refinement starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InitialFlow {
    /// Zero flow: the network alone.
    #[default]
    Zero,
    /// OpenCV's DIS (medium preset) on the same pair: its full-resolution flow, pooled to the
    /// features' grid, is where the iterations start, and the network's output is that flow
    /// plus the upsampled correction.
    Dis,
}

impl Config {
    /// Channels of what is warped and compared: the learned matching features, plus the
    /// pooled frame when [`Config::image_features`] is set.
    pub fn matching_channels(&self) -> usize {
        self.feature_channels + if self.image_features { 3 } else { 0 }
    }

    /// Photometric channels of the block's fixed and moving inputs.
    pub fn photometric_channels(&self) -> usize {
        if self.photometric {
            3
        } else {
            0
        }
    }

    /// Checks the sizes a network can be built with.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.stride != 2 && self.stride != 4 {
            return Err(format!("stride must be 2 or 4, not {}", self.stride));
        }
        let sizes = [
            self.stem_channels,
            self.trunk_channels,
            self.feature_channels,
            self.context_channels,
            self.hidden_channels,
        ];
        if sizes.contains(&0) {
            return Err("every channel count must be at least 1".into());
        }
        Ok(())
    }
}

fn d_stem() -> usize {
    16
}
fn d_trunk() -> usize {
    32
}
fn d_feature() -> usize {
    32
}
fn d_context() -> usize {
    16
}
fn d_hidden() -> usize {
    32
}
fn d_iters() -> usize {
    DEFAULT_ITERS
}
fn d_stride() -> usize {
    4
}
fn d_image_features() -> bool {
    true
}
fn d_photometric() -> bool {
    true
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
            stride: d_stride(),
            image_features: d_image_features(),
            photometric: d_photometric(),
            // the committed weights start from DIS; a file that does not say starts from zero
            initial_flow: InitialFlow::Dis,
            mirror_average: false,
            reverse_average: true,
        }
    }
}
