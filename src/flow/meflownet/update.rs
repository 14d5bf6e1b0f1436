//! The refinement block: from frame-1 features, warped frame-2 features, context and the
//! current flow, a flow update, an uncertainty and the convex-upsampling mask.

use candle_core::{Result, Tensor};
use candle_nn::{conv2d, Conv2d, Conv2dConfig, Module, VarBuilder};

use super::config::{Config, STRIDE};

/// What one refinement step predicts, all at 1/4 resolution.
#[derive(Debug, Clone)]
pub struct Update {
    /// Flow update, feature pixels: `[b, 2, H, W]`.
    pub delta: Tensor,
    /// Log scale of a Laplace error model, `log b` with `b` in full-resolution pixels:
    /// `[b, 1, H, W]`.
    pub log_scale: Tensor,
    /// Convex-upsampling logits: `[b, 9 * STRIDE^2, H, W]`.
    pub mask: Tensor,
}

#[derive(Debug, Clone)]
pub struct UpdateBlock {
    conv1: Conv2d,
    conv2: Conv2d,
    conv3: Conv2d,
    flow: Conv2d,
    uncertainty: Conv2d,
    mask: Conv2d,
}

fn conv(i: usize, o: usize, k: usize, vb: VarBuilder) -> Result<Conv2d> {
    let cfg = Conv2dConfig {
        padding: k / 2,
        ..Default::default()
    };
    conv2d(i, o, k, cfg, vb)
}

impl UpdateBlock {
    pub fn new(cfg: &Config, vb: VarBuilder) -> Result<Self> {
        let hid = cfg.hidden_channels;
        // frame-1 features, warped frame-2 features, their difference, context, flow
        let input = 3 * cfg.feature_channels + cfg.context_channels + 2;
        // The flow head starts at zero so an untrained network predicts no motion.
        let flow_vb = vb.pp("flow");
        let flow_w =
            flow_vb.get_with_hints((2, hid, 3, 3), "weight", candle_nn::Init::Const(0.0))?;
        let flow_b = flow_vb.get_with_hints(2, "bias", candle_nn::Init::Const(0.0))?;
        Ok(UpdateBlock {
            conv1: conv(input, hid, 3, vb.pp("conv1"))?,
            conv2: conv(hid, hid, 3, vb.pp("conv2"))?,
            conv3: conv(hid, hid, 3, vb.pp("conv3"))?,
            flow: Conv2d::new(
                flow_w,
                Some(flow_b),
                Conv2dConfig {
                    padding: 1,
                    ..Default::default()
                },
            ),
            uncertainty: conv(hid, 1, 3, vb.pp("uncertainty"))?,
            mask: conv(hid, 9 * STRIDE * STRIDE, 1, vb.pp("mask"))?,
        })
    }

    /// `f1`, `f2w` `[b, feature, H, W]`, `ctx` `[b, context, H, W]`, `flow` `[b, 2, H, W]`.
    pub fn forward(
        &self,
        f1: &Tensor,
        f2w: &Tensor,
        ctx: &Tensor,
        flow: &Tensor,
    ) -> Result<Update> {
        let diff = (f1 - f2w)?;
        let x = Tensor::cat(&[f1, f2w, &diff, ctx, flow], 1)?; // [b, input, H, W]
        let x = self.conv1.forward(&x)?.relu()?; // [b, hid, H, W]
        let y = self.conv2.forward(&x)?.relu()?;
        let x = (x + self.conv3.forward(&y)?.relu()?)?;
        Ok(Update {
            delta: self.flow.forward(&x)?,
            log_scale: self.uncertainty.forward(&x)?,
            // Scaled as RAFT does, so the softmax starts soft.
            mask: (self.mask.forward(&x)? * 0.25)?,
        })
    }
}
