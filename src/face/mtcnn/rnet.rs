//! R-Net, MTCNN's second stage: rescores and refines P-Net's candidates on 24x24 crops.

use candle_core::{Module, Result, Tensor};
use candle_nn::{linear, Linear, VarBuilder};

use super::layers::{flatten_whc, max_pool_ceil, Conv, PRelu};

/// The crop side R-Net takes.
pub const RNET_SIZE: usize = 24;

#[derive(Debug, Clone)]
pub struct RNet {
    conv1: Conv,
    prelu1: PRelu,
    conv2: Conv,
    prelu2: PRelu,
    conv3: Conv,
    prelu3: PRelu,
    dense4: Linear,
    prelu4: PRelu,
    dense5_1: Linear,
    dense5_2: Linear,
}

impl RNet {
    /// `vb` points at the `rnet.` tensors.
    pub fn new(vb: VarBuilder) -> Result<Self> {
        Ok(RNet {
            conv1: Conv::new(3, 28, 3, vb.pp("conv1"))?,
            prelu1: PRelu::new(28, vb.pp("prelu1"))?,
            conv2: Conv::new(28, 48, 3, vb.pp("conv2"))?,
            prelu2: PRelu::new(48, vb.pp("prelu2"))?,
            conv3: Conv::new(48, 64, 2, vb.pp("conv3"))?,
            prelu3: PRelu::new(64, vb.pp("prelu3"))?,
            dense4: linear(576, 128, vb.pp("dense4"))?,
            prelu4: PRelu::new(128, vb.pp("prelu4"))?,
            dense5_1: linear(128, 2, vb.pp("dense5_1"))?,
            dense5_2: linear(128, 4, vb.pp("dense5_2"))?,
        })
    }

    /// `xs`: normalised RGB crops [n, 3, 24, 24]. Returns `(reg, prob)`: box regression
    /// [n, 4] and softmax face probabilities [n, 2] (column 1 = face).
    pub fn forward(&self, xs: &Tensor) -> Result<(Tensor, Tensor)> {
        let xs = self.conv1.forward_prelu(xs, &self.prelu1)?; // [n, 28, 22, 22]
        let xs = max_pool_ceil(&xs, 3, 2)?; // [n, 28, 11, 11]
        let xs = self.conv2.forward_prelu(&xs, &self.prelu2)?; // [n, 48, 9, 9]
        let xs = max_pool_ceil(&xs, 3, 2)?; // [n, 48, 4, 4]
        let xs = self.conv3.forward_prelu(&xs, &self.prelu3)?; // [n, 64, 3, 3]
        let xs = self
            .prelu4
            .forward(&self.dense4.forward(&flatten_whc(&xs)?)?)?; // [n, 128]
        let prob = candle_nn::ops::softmax(&self.dense5_1.forward(&xs)?, 1)?; // [n, 2]
        let reg = self.dense5_2.forward(&xs)?; // [n, 4]
        Ok((reg, prob))
    }
}
