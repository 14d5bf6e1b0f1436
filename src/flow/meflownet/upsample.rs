//! Learned convex upsampling: each full-resolution pixel is a softmax-weighted combination of
//! the 3x3 coarse neighbourhood around its coarse cell, the weights predicted per sub-pixel.

use candle_core::{Result, Tensor, D};

/// Upsamples `x` `[b, c, H, W]` by `r` with `mask` `[b, 9 * r * r, H, W]` (logits, neighbour
/// major: index `k * r * r + i * r + j` is neighbour `k` of sub-pixel row `i`, column `j`).
/// The border is replicated. Returns `[b, c, r * H, r * W]`. Flow must be scaled by `r`
/// beforehand (coarse pixels -> fine pixels).
pub fn convex_upsample(x: &Tensor, mask: &Tensor, r: usize) -> Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    // The 9 neighbours last, so the softmax and the weighted sum reduce contiguous rows.
    let mask = mask
        .reshape((b, 9, r * r, h * w))?
        .permute((0, 2, 3, 1))?
        .contiguous()?; // [b, r * r, H * W, 9]
    let mask = candle_nn::ops::softmax(&mask, D::Minus1)?;
    let padded = x.pad_with_same(2, 1, 1)?.pad_with_same(3, 1, 1)?; // [b, c, H+2, W+2]
    let mut neighbours = Vec::with_capacity(9);
    for dy in 0..3 {
        for dx in 0..3 {
            neighbours.push(padded.narrow(2, dy, h)?.narrow(3, dx, w)?);
        }
    }
    let n = Tensor::stack(&neighbours, 4)?.reshape((b, c, 1, h * w, 9))?;
    let up = mask.unsqueeze(1)?.broadcast_mul(&n)?.sum(D::Minus1)?; // [b, c, r * r, H * W]
    let up = up.reshape(vec![b, c, r, r, h, w])?;
    up.permute((0, 1, 4, 2, 5, 3))? // [b, c, H, r, W, r]
        .reshape((b, c, h * r, w * r))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn a_constant_field_stays_constant_and_a_peaked_mask_copies_the_centre() {
        let dev = Device::Cpu;
        let x = Tensor::full(3.5f32, (1, 2, 4, 5), &dev).unwrap();
        let mask = Tensor::randn(0f32, 1.0, (1, 9 * 4, 4, 5), &dev).unwrap();
        let up = convex_upsample(&x, &mask, 2).unwrap();
        assert_eq!(up.dims(), &[1, 2, 8, 10]);
        let v = up.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(v.iter().all(|a| (a - 3.5).abs() < 1e-5));

        // A mask that puts all weight on the centre neighbour (k = 4) is nearest upsampling.
        let x = Tensor::arange(0f32, 6.0, &dev)
            .unwrap()
            .reshape((1, 1, 2, 3))
            .unwrap();
        let mut m = vec![0f32; 9 * 4 * 6];
        for s in 0..4 {
            for p in 0..6 {
                m[(4 * 4 + s) * 6 + p] = 50.0;
            }
        }
        let mask = Tensor::from_vec(m, (1, 36, 2, 3), &dev).unwrap();
        let up = convex_upsample(&x, &mask, 2).unwrap();
        let rows = up
            .squeeze(0)
            .unwrap()
            .squeeze(0)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        let close =
            |got: &[f32], want: &[f32]| got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-4);
        assert!(
            close(&rows[0], &[0.0, 0.0, 1.0, 1.0, 2.0, 2.0]),
            "{:?}",
            rows[0]
        );
        assert!(
            close(&rows[3], &[3.0, 3.0, 4.0, 4.0, 5.0, 5.0]),
            "{:?}",
            rows[3]
        );
    }
}
