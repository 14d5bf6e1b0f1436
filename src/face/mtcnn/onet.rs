//! O-Net, MTCNN's last stage: final score, box refinement and five landmarks on 48x48 crops.

use candle_core::{Module, Result, Tensor};
use candle_nn::{linear, Linear, VarBuilder};

use super::layers::{flatten_whc, max_pool_ceil, Conv, PRelu};

/// The crop side O-Net takes.
pub const ONET_SIZE: usize = 48;

#[derive(Debug, Clone)]
pub struct ONet {
    conv1: Conv,
    prelu1: PRelu,
    conv2: Conv,
    prelu2: PRelu,
    conv3: Conv,
    prelu3: PRelu,
    conv4: Conv,
    prelu4: PRelu,
    dense5: Linear,
    prelu5: PRelu,
    dense6_1: Linear,
    dense6_2: Linear,
    dense6_3: Linear,
}

impl ONet {
    /// `vb` points at the `onet.` tensors.
    pub fn new(vb: VarBuilder) -> Result<Self> {
        Ok(ONet {
            conv1: Conv::new(3, 32, 3, vb.pp("conv1"))?,
            prelu1: PRelu::new(32, vb.pp("prelu1"))?,
            conv2: Conv::new(32, 64, 3, vb.pp("conv2"))?,
            prelu2: PRelu::new(64, vb.pp("prelu2"))?,
            conv3: Conv::new(64, 64, 3, vb.pp("conv3"))?,
            prelu3: PRelu::new(64, vb.pp("prelu3"))?,
            conv4: Conv::new(64, 128, 2, vb.pp("conv4"))?,
            prelu4: PRelu::new(128, vb.pp("prelu4"))?,
            dense5: linear(1152, 256, vb.pp("dense5"))?,
            prelu5: PRelu::new(256, vb.pp("prelu5"))?,
            dense6_1: linear(256, 2, vb.pp("dense6_1"))?,
            dense6_2: linear(256, 4, vb.pp("dense6_2"))?,
            dense6_3: linear(256, 10, vb.pp("dense6_3"))?,
        })
    }

    /// `xs`: normalised RGB crops [n, 3, 48, 48]. Returns `(reg, landmarks, prob)`: box
    /// regression [n, 4], landmarks [n, 10] (5 x then 5 y, fractions of the crop's box) and
    /// softmax face probabilities [n, 2] (column 1 = face).
    pub fn forward(&self, xs: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
        let xs = self.conv1.forward_prelu(xs, &self.prelu1)?; // [n, 32, 46, 46]
        let xs = max_pool_ceil(&xs, 3, 2)?; // [n, 32, 23, 23]
        let xs = self.conv2.forward_prelu(&xs, &self.prelu2)?; // [n, 64, 21, 21]
        let xs = max_pool_ceil(&xs, 3, 2)?; // [n, 64, 10, 10]
        let xs = self.conv3.forward_prelu(&xs, &self.prelu3)?; // [n, 64, 8, 8]
        let xs = max_pool_ceil(&xs, 2, 2)?; // [n, 64, 4, 4]
        let xs = self.conv4.forward_prelu(&xs, &self.prelu4)?; // [n, 128, 3, 3]
        let xs = self
            .prelu5
            .forward(&self.dense5.forward(&flatten_whc(&xs)?)?)?; // [n, 256]
        let prob = candle_nn::ops::softmax(&self.dense6_1.forward(&xs)?, 1)?; // [n, 2]
        let reg = self.dense6_2.forward(&xs)?; // [n, 4]
        let landmarks = self.dense6_3.forward(&xs)?; // [n, 10]
        Ok((reg, landmarks, prob))
    }
}
