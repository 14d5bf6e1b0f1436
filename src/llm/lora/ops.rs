//! Two custom ops that keep the backward pass to the gradients training needs.
//!
//! candle's backward computes the gradient of every input of an op, frozen ones included: a
//! plain `x.matmul(&w.t())` would also compute `x^T grad` for every base matrix (as much work
//! as the forward product, and a matrix-sized buffer kept until the backward ends), and adding
//! a constant (a causal mask, a row's maximum) keeps a gradient the size of the scores. So:
//! - [`frozen_matmul`]: `x W^T` with the gradient reaching `x` only;
//! - [`row_shift`]: each row minus its largest entry, and for attention scores `-inf` past the
//!   diagonal (the causal mask). The shift is a constant for the gradient, which is exact for
//!   what follows it here (softmax and log-softmax do not move when a row is shifted).
//!
//! Everything else in the training forward is composed from candle ops that have a backward
//! (candle-nn 0.11's `softmax_last_dim`, `rms_norm` and rotary ops have none).

use candle_core::{CpuStorage, CustomOp1, Device, Layout, Shape, Tensor};

/// `x W^T` for rows `x` `[n, in]` and a frozen `w` `[out, in]`: `[n, out]`.
pub fn frozen_matmul(x: &Tensor, w: &Tensor) -> candle_core::Result<Tensor> {
    x.contiguous()?.apply_op1(Frozen { weight: w.clone() })
}

/// Each row of `x` (last dimension) minus its largest entry; with `causal`, `x` holds square
/// score matrices `[.., t, t]` and entry (i, j > i) becomes `-inf`.
pub fn row_shift(x: &Tensor, causal: bool) -> candle_core::Result<Tensor> {
    x.contiguous()?.apply_op1(RowShift { causal })
}

struct Frozen {
    /// `[out, in]`
    weight: Tensor,
}

/// The f32 values of a contiguous tensor's storage, as a tensor of its shape (a copy).
fn tensor_of(
    storage: &CpuStorage,
    layout: &Layout,
    op: &'static str,
) -> candle_core::Result<Tensor> {
    let data = storage.as_slice::<f32>()?;
    let (start, end) = layout
        .contiguous_offsets()
        .ok_or(candle_core::Error::RequiresContiguous { op })?;
    Tensor::from_slice(&data[start..end], layout.shape(), &Device::Cpu)
}

fn storage_of(t: &Tensor) -> candle_core::Result<(CpuStorage, Shape)> {
    Ok((
        CpuStorage::F32(t.flatten_all()?.to_vec1()?),
        t.shape().clone(),
    ))
}

impl CustomOp1 for Frozen {
    fn name(&self) -> &'static str {
        "frozen-matmul"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = tensor_of(storage, layout, self.name())?;
        storage_of(&x.matmul(&self.weight.t()?)?)
    }

    fn bwd(
        &self,
        _x: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        // [n, out] x [out, in]
        Ok(Some(grad.matmul(&self.weight)?))
    }
}

struct RowShift {
    causal: bool,
}

impl CustomOp1 for RowShift {
    fn name(&self) -> &'static str {
        "row-shift"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let data = storage.as_slice::<f32>()?;
        let (start, end) = layout
            .contiguous_offsets()
            .ok_or(candle_core::Error::RequiresContiguous { op: self.name() })?;
        let dims = layout.dims();
        let cols = *dims.last().unwrap_or(&1);
        let rows = if dims.len() >= 2 {
            dims[dims.len() - 2]
        } else {
            1
        };
        if self.causal && rows != cols {
            candle_core::bail!("row-shift: causal scores must be square, got {dims:?}");
        }
        let mut out = data[start..end].to_vec();
        for (r, row) in out.chunks_exact_mut(cols.max(1)).enumerate() {
            let keep = if self.causal { r % rows + 1 } else { cols };
            let max = row[..keep]
                .iter()
                .copied()
                .fold(f32::NEG_INFINITY, f32::max);
            for v in &mut row[..keep] {
                *v -= max;
            }
            row[keep..].fill(f32::NEG_INFINITY);
        }
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }

    fn bwd(
        &self,
        _x: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        if !self.causal {
            return Ok(Some(grad.clone()));
        }
        let t = grad.dim(grad.rank() - 1)?;
        let lower: Vec<f32> = (0..t * t)
            .map(|k| if k % t <= k / t { 1.0 } else { 0.0 })
            .collect();
        let lower = Tensor::from_vec(lower, (t, t), grad.device())?;
        Ok(Some(grad.broadcast_mul(&lower)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::max_abs_diff;
    use candle_core::{Var, D};

    fn values(n: usize, k: u32) -> Vec<f32> {
        (0..n)
            .map(|i| ((i as u32 * 37 + k * 11) % 23) as f32 / 7.0 - 1.5)
            .collect()
    }

    #[test]
    fn frozen_matmul_gives_the_product_and_the_input_gradient_only() {
        let dev = Device::Cpu;
        let x = Var::from_vec(values(3 * 4, 1), (3, 4), &dev).unwrap();
        let w = Tensor::from_vec(values(5 * 4, 2), (5, 4), &dev).unwrap();
        let c = Tensor::from_vec(values(3 * 5, 3), (3, 5), &dev).unwrap();
        let y = frozen_matmul(x.as_tensor(), &w).unwrap();
        let plain = x.as_tensor().matmul(&w.t().unwrap()).unwrap();
        assert!(max_abs_diff(&y, &plain) < 1e-6);
        // d sum(y * c) / dx = c W
        let grads = (y * &c).unwrap().sum_all().unwrap().backward().unwrap();
        let gx = grads.get(x.as_tensor()).unwrap();
        assert!(max_abs_diff(gx, &c.matmul(&w).unwrap()) < 1e-5);
        assert!(grads.get(&w).is_none(), "no gradient for the frozen matrix");
    }

    #[test]
    fn row_shift_masks_the_future_and_keeps_softmax_gradients() {
        let dev = Device::Cpu;
        let x = Var::from_vec(values(2 * 3 * 3, 4), (2, 3, 3), &dev).unwrap();
        let shifted = row_shift(x.as_tensor(), true).unwrap();
        let rows: Vec<Vec<Vec<f32>>> = shifted.to_vec3().unwrap();
        let raw: Vec<Vec<Vec<f32>>> = x.as_tensor().to_vec3().unwrap();
        for (h, m) in rows.iter().enumerate() {
            for (i, row) in m.iter().enumerate() {
                let max = raw[h][i][..=i].iter().copied().fold(f32::MIN, f32::max);
                for (j, &v) in row.iter().enumerate() {
                    if j > i {
                        assert_eq!(v, f32::NEG_INFINITY);
                    } else {
                        assert_eq!(v, raw[h][i][j] - max);
                    }
                }
            }
        }
        // softmax through the shift vs a plain masked softmax (no shift; small values)
        let c = Tensor::from_vec(values(2 * 3 * 3, 5), (2, 3, 3), &dev).unwrap();
        let softmax = |s: &Tensor| {
            let e = s.exp().unwrap();
            let sum = e.sum_keepdim(D::Minus1).unwrap();
            e.broadcast_div(&sum).unwrap()
        };
        let p = softmax(&shifted);
        let g1 = (&p * &c).unwrap().sum_all().unwrap().backward().unwrap();
        let mask: Vec<f32> = (0..18)
            .map(|k| if k % 3 <= (k / 3) % 3 { 0.0 } else { -1e9 })
            .collect();
        let mask = Tensor::from_vec(mask, (2, 3, 3), &dev).unwrap();
        let q = softmax(&(x.as_tensor() + &mask).unwrap());
        assert!(max_abs_diff(&p, &q) < 1e-6);
        let g2 = (&q * &c).unwrap().sum_all().unwrap().backward().unwrap();
        let (a, b) = (
            g1.get(x.as_tensor()).unwrap(),
            g2.get(x.as_tensor()).unwrap(),
        );
        assert!(max_abs_diff(a, b) < 1e-6, "{a} {b}");
        assert!(
            a.abs()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
                > 1e-3
        );
    }
}
