//! The convolutional feature encoder: one trunk shared by both frames, a matching-feature
//! head for both and a context head for frame 1, all at 1/`stride` resolution.

use candle_core::{Result, Tensor};
use candle_nn::{conv2d, Conv2dConfig, Module, VarBuilder};

use super::config::Config;
use super::conv::Conv;

/// Trunk + heads.
#[derive(Debug, Clone)]
pub struct Encoder {
    conv1: Conv,
    conv2: Conv,
    conv3: Conv,
    feature: Conv,
    context: Conv,
}

fn conv(i: usize, o: usize, k: usize, stride: usize, vb: VarBuilder) -> Result<Conv> {
    let cfg = Conv2dConfig {
        padding: k / 2,
        stride,
        ..Default::default()
    };
    Conv::new(conv2d(i, o, k, cfg, vb)?)
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
            conv3: conv(cfg.trunk_channels, cfg.trunk_channels, 3, 1, vb.pp("conv3"))?,
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
        let n = x.dim(0)?;
        if self.conv1.packed_for(x) && n > 1 {
            // At inference one frame at a time: the convolutions run per frame anyway, and the
            // residual sum stays under the size candle hands to its thread pool (see
            // `normalise`).
            let frames: Vec<Tensor> = (0..n)
                .map(|i| self.trunk(&x.narrow(0, i, 1)?))
                .collect::<Result<_>>()?;
            return Tensor::cat(&frames, 0);
        }
        let x = self.conv1.forward_relu(x)?; // [n, stem, h/2, w/2]
        let x = self.conv2.forward_relu(&x)?; // [n, trunk, h/s, w/s]
        let y = self.conv3.forward_relu(&x)?;
        x + y // residual
    }

    /// Matching features of a trunk: `[n, feature, h/s, w/s]`.
    pub fn features(&self, trunk: &Tensor) -> Result<Tensor> {
        self.feature.forward(trunk)
    }

    /// Context features of a trunk: `[n, context, h/s, w/s]`.
    pub fn context(&self, trunk: &Tensor) -> Result<Tensor> {
        self.context.forward_relu(trunk)
    }
}
