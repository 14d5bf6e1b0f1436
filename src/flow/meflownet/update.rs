//! The refinement block: from frame-1 features, the context, warped frame-2 features and the
//! current flow, a flow update, an uncertainty and the convex-upsampling mask.
//!
//! The block's first convolution is linear in its inputs, so it is split in two: the part
//! that reads frame 1's features and the context is the same at every iteration and is
//! computed once per pair ([`UpdateBlock::prepare`]); each iteration adds the part that reads
//! the warped features and the flow. (A difference channel `f1 - f2w` would add nothing a
//! linear first layer cannot already form from the two.)

use candle_core::{Result, Tensor};
use candle_nn::{conv2d, conv2d_no_bias, Conv2d, Conv2dConfig, Module, VarBuilder};

use super::config::Config;
use super::conv::Conv;

/// What one refinement step predicts, at the features' resolution.
#[derive(Debug, Clone)]
pub struct Update {
    /// Flow update, feature pixels: `[b, 2, H, W]`.
    pub delta: Tensor,
    /// The block's hidden state, which [`UpdateBlock::upsampling`] reads: `[b, hidden, H, W]`.
    pub hidden: Tensor,
}

/// What an upsampled step also needs, from [`UpdateBlock::upsampling`].
#[derive(Debug, Clone)]
pub struct Upsampling {
    /// Log scale of a Laplace error model, `log b` with `b` in full-resolution pixels:
    /// `[b, 1, H, W]`.
    pub log_scale: Tensor,
    /// Convex-upsampling logits: `[b, 9 * stride^2, H, W]`.
    pub mask: Tensor,
}

#[derive(Debug, Clone)]
pub struct UpdateBlock {
    /// First convolution, the part on frame 1's features and the context (with the bias).
    fixed_in: Conv,
    /// First convolution, the part on the warped features and the flow.
    moving_in: Conv,
    conv2: Conv,
    conv3: Conv,
    flow: Conv,
    uncertainty: Conv,
    mask: Conv,
}

fn same(k: usize) -> Conv2dConfig {
    Conv2dConfig {
        padding: k / 2,
        ..Default::default()
    }
}

impl UpdateBlock {
    pub fn new(cfg: &Config, vb: VarBuilder) -> Result<Self> {
        let hid = cfg.hidden_channels;
        let m = cfg.matching_channels();
        let p = cfg.photometric_channels();
        // The flow head starts at zero so an untrained network predicts no motion.
        let flow_vb = vb.pp("flow");
        let flow_w =
            flow_vb.get_with_hints((2, hid, 3, 3), "weight", candle_nn::Init::Const(0.0))?;
        let flow_b = flow_vb.get_with_hints(2, "bias", candle_nn::Init::Const(0.0))?;
        Ok(UpdateBlock {
            fixed_in: Conv::new(conv2d(
                m + cfg.context_channels + p,
                hid,
                3,
                same(3),
                vb.pp("fixed_in"),
            )?)?,
            moving_in: Conv::new(conv2d_no_bias(
                m + 2 + p,
                hid,
                3,
                same(3),
                vb.pp("moving_in"),
            )?)?,
            conv2: Conv::new(conv2d(hid, hid, 3, same(3), vb.pp("conv2"))?)?,
            conv3: Conv::new(conv2d(hid, hid, 3, same(3), vb.pp("conv3"))?)?,
            flow: Conv::new(Conv2d::new(flow_w, Some(flow_b), same(3)))?,
            uncertainty: Conv::new(conv2d(hid, 1, 3, same(3), vb.pp("uncertainty"))?)?,
            mask: Conv::new(conv2d(
                hid,
                9 * cfg.stride * cfg.stride,
                1,
                same(1),
                vb.pp("mask"),
            )?)?,
        })
    }

    /// The iteration-independent part of the first convolution: `fixed` is frame 1's
    /// matching features, the context and (when configured) the photometric structure terms,
    /// concatenated: `[b, matching + context (+ 3), H, W]` -> `[b, hidden, H, W]`.
    pub fn prepare(&self, fixed: &Tensor) -> Result<Tensor> {
        self.fixed_in.forward(fixed)
    }

    /// One step: `prepared` from [`UpdateBlock::prepare`]; `moving` is the warped features,
    /// the flow and (when configured) the photometric residual terms, concatenated:
    /// `[b, matching + 2 (+ 3), H, W]`.
    pub fn forward(&self, prepared: &Tensor, moving: &Tensor) -> Result<Update> {
        // relu(first convolution), its fixed part `prepared` added as the results are stored
        let x = self.moving_in.forward_fused(moving, Some(prepared), true)?; // [b, hid, H, W]
        let y = self.conv2.forward_relu(&x)?;
        let hidden = (x + self.conv3.forward_relu(&y)?)?;
        Ok(Update {
            delta: self.flow.forward(&hidden)?,
            hidden,
        })
    }

    /// The uncertainty and the upsampling mask of a step, computed only for the steps that
    /// are upsampled (at inference, the last).
    pub fn upsampling(&self, update: &Update) -> Result<Upsampling> {
        Ok(Upsampling {
            log_scale: self.uncertainty.forward(&update.hidden)?,
            // Scaled as RAFT does, so the softmax starts soft.
            mask: (self.mask.forward(&update.hidden)? * 0.25)?,
        })
    }
}
