//! The convolutional feature encoder: one trunk shared by both frames, a matching-feature
//! head for both and a context head for frame 1, all at 1/`stride` resolution.

use candle_core::{Result, Tensor};
use candle_nn::{conv2d, Conv2d, Conv2dConfig, Module, VarBuilder};

use super::config::Config;
use super::conv::Conv3x3;

/// Trunk + heads.
#[derive(Debug, Clone)]
pub struct Encoder {
    conv1: Conv2d,
    conv2: Conv2d,
    conv3: Conv3x3,
    feature: Conv2d,
    context: Conv2d,
}

fn conv(i: usize, o: usize, k: usize, stride: usize, vb: VarBuilder) -> Result<Conv2d> {
    let cfg = Conv2dConfig {
        padding: k / 2,
        stride,
        ..Default::default()
    };
    conv2d(i, o, k, cfg, vb)
}

impl Encoder {
    pub fn new(cfg: &Config, vb: VarBuilder) -> Result<Self> {
        Ok(Encoder {
            conv1: conv(3, cfg.stem_channels, 3, 2, vb.pp("conv1"))?,
            conv2: conv(
                cfg.stem_channels,
                cfg.trunk_channels,
                3,
                cfg.stride / 2,
                vb.pp("conv2"),
            )?,
            conv3: conv(cfg.trunk_channels, cfg.trunk_channels, 3, 1, vb.pp("conv3"))?.into(),
            feature: conv(
                cfg.trunk_channels,
                cfg.feature_channels,
                1,
                1,
                vb.pp("feature"),
            )?,
            context: conv(
                cfg.trunk_channels,
                cfg.context_channels,
                1,
                1,
                vb.pp("context"),
            )?,
        })
    }

    /// The trunk of normalised frames `[n, 3, h, w]` -> `[n, trunk, h/s, w/s]` (s the stride).
    pub fn trunk(&self, x: &Tensor) -> Result<Tensor> {
        let x = self.conv1.forward(x)?.relu()?; // [n, stem, h/2, w/2]
        let x = self.conv2.forward(&x)?.relu()?; // [n, trunk, h/s, w/s]
        let y = self.conv3.forward(&x)?.relu()?;
        x + y // residual
    }

    /// Matching features of a trunk: `[n, feature, h/s, w/s]`.
    pub fn features(&self, trunk: &Tensor) -> Result<Tensor> {
        self.feature.forward(trunk)
    }

    /// Context features of a trunk: `[n, context, h/s, w/s]`.
    pub fn context(&self, trunk: &Tensor) -> Result<Tensor> {
        self.context.forward(trunk)?.relu()
    }
}
