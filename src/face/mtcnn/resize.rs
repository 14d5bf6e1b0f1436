//! Area resampling of 8-bit RGB into MTCNN's normalised planar input.
//!
//! facenet-pytorch resizes with `F.interpolate(mode="area")`, which is adaptive average
//! pooling: output pixel `(oy, ox)` of an `oh x ow` image resized from `h x w` is the mean of
//! input rows `floor(oy*h/oh) .. ceil((oy+1)*h/oh)` and columns `floor(ox*w/ow) ..
//! ceil((ox+1)*w/ow)` (windows may overlap when enlarging). The window sums of 8-bit pixels
//! are exact integers, and the mean is taken as `(sum / rows) / cols` in f32 like PyTorch's
//! CPU kernel, so the result is bit-identical to facenet-pytorch's. OpenCV's INTER_AREA is
//! not: it weights partial pixels for non-integer factors.
//!
//! The window sums come from a summed-area table ([`AreaSums`]) built once per image and
//! shared by every pyramid level and crop, so a resize costs four lookups per output value
//! instead of a pass over its region.

use crate::media::RgbImage;

/// MTCNN's input normalisation of a pixel value: `(p - 127.5) / 128`.
#[inline]
pub fn normalise(p: f32) -> f32 {
    (p - 127.5) * 0.0078125
}

/// A rectangle of image pixels: columns `x0..x0 + w`, rows `y0..y0 + h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub x0: usize,
    pub y0: usize,
    pub w: usize,
    pub h: usize,
}

impl Region {
    pub fn whole(image: &RgbImage) -> Self {
        Region {
            x0: 0,
            y0: 0,
            w: image.width as usize,
            h: image.height as usize,
        }
    }
}

/// The input index range `[start, end)` that output index `i` of `out` averages over `len`.
#[inline]
fn window(i: usize, out: usize, len: usize) -> (usize, usize) {
    (i * len / out, ((i + 1) * len).div_ceil(out))
}

/// Summed-area table of an RGB image: entry `(y, x, c)` of `[h + 1, w + 1, 3]` is the sum of
/// channel `c` over rows `< y` and columns `< x`. Sums wrap modulo 2^32; a window sum taken
/// from four entries is still exact while the window holds under 2^32 / 255 pixels.
pub struct AreaSums {
    sums: Vec<u32>,
    width: usize,
    height: usize,
}

/// Most pixels a window may hold for its wrapped 8-bit sum to stay exact.
const MAX_WINDOW: usize = u32::MAX as usize / 255;

impl AreaSums {
    pub fn new(image: &RgbImage) -> Self {
        let (w, h) = (image.width as usize, image.height as usize);
        let stride = (w + 1) * 3;
        let mut sums = vec![0u32; (h + 1) * stride];
        if w == 0 {
            return AreaSums {
                sums,
                width: w,
                height: h,
            };
        }
        let mut row_sum = vec![0u32; stride];
        for (y, src) in image.data.chunks_exact(w * 3).enumerate() {
            // row_sum: running sums along row y; each table row adds it to the one above.
            for (x, px) in src.chunks_exact(3).enumerate() {
                for c in 0..3 {
                    row_sum[(x + 1) * 3 + c] = row_sum[x * 3 + c].wrapping_add(u32::from(px[c]));
                }
            }
            let (above, below) = sums.split_at_mut((y + 1) * stride);
            let above = &above[y * stride..];
            for ((s, &a), &r) in below[..stride].iter_mut().zip(above).zip(&row_sum) {
                *s = a.wrapping_add(r);
            }
        }
        AreaSums {
            sums,
            width: w,
            height: h,
        }
    }

    /// The per-channel sums over rows `ys..ye` and columns `xs..xe`.
    #[inline]
    fn window(&self, (ys, ye): (usize, usize), (xs, xe): (usize, usize)) -> [u32; 3] {
        let stride = (self.width + 1) * 3;
        let at = |y: usize, x: usize| &self.sums[y * stride + x * 3..][..3];
        let (a, b, c, d) = (at(ys, xs), at(ys, xe), at(ye, xs), at(ye, xe));
        std::array::from_fn(|ch| {
            d[ch]
                .wrapping_sub(b[ch])
                .wrapping_sub(c[ch])
                .wrapping_add(a[ch])
        })
    }
}

/// Resizes `region` of the image behind `sums` to `oh x ow` by area averaging and writes the
/// normalised result as planes (R, G, B) of `oh * ow` values into `dst` (`3 * oh * ow`
/// long): [3, oh, ow].
pub fn area_resize_planar(sums: &AreaSums, region: Region, oh: usize, ow: usize, dst: &mut [f32]) {
    assert!(
        region.w > 0 && region.h > 0 && oh > 0 && ow > 0,
        "empty resize"
    );
    assert!(region.x0 + region.w <= sums.width && region.y0 + region.h <= sums.height);
    assert_eq!(dst.len(), 3 * oh * ow);
    assert!(
        region.w.div_ceil(ow) * region.h.div_ceil(oh) < MAX_WINDOW / 4,
        "area resize of {region:?} to {ow}x{oh}: windows too large for exact sums"
    );
    let shift = |(s, e): (usize, usize), by: usize| (s + by, e + by);
    let cols: Vec<(usize, usize)> = (0..ow)
        .map(|ox| shift(window(ox, ow, region.w), region.x0))
        .collect();
    let plane = oh * ow;
    for oy in 0..oh {
        let rows = shift(window(oy, oh, region.h), region.y0);
        let kh = (rows.1 - rows.0) as f32;
        for (ox, &cols) in cols.iter().enumerate() {
            let kw = (cols.1 - cols.0) as f32;
            for (ch, sum) in sums.window(rows, cols).into_iter().enumerate() {
                let mean = sum as f32 / kh / kw;
                dst[ch * plane + oy * ow + ox] = normalise(mean);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(w: u32, h: u32) -> RgbImage {
        let mut img = RgbImage::new(w, h);
        for (i, v) in img.data.iter_mut().enumerate() {
            *v = ((i * 37 + i / 7) % 256) as u8;
        }
        img
    }

    #[test]
    fn windows_match_adaptive_pooling() {
        // 5 -> 3: floor/ceil windows [0,2), [1,4), [3,5) overlap by one.
        assert_eq!(
            (0..3).map(|i| window(i, 3, 5)).collect::<Vec<_>>(),
            vec![(0, 2), (1, 4), (3, 5)]
        );
        // Enlarging 2 -> 4 repeats each input.
        assert_eq!(
            (0..4).map(|i| window(i, 4, 2)).collect::<Vec<_>>(),
            vec![(0, 1), (0, 1), (1, 2), (1, 2)]
        );
    }

    #[test]
    fn averages_the_window_of_a_region() {
        let img = image(9, 7);
        let region = Region {
            x0: 2,
            y0: 1,
            w: 6,
            h: 4,
        };
        let sums = AreaSums::new(&img);
        let mut out = vec![0.0; 3 * 2 * 3];
        area_resize_planar(&sums, region, 2, 3, &mut out);
        // Output (1, 2), green: rows 3..5, columns 6..8 of the image.
        let sum: u32 = (3..5)
            .flat_map(|y| (6..8).map(move |x| (x, y)))
            .map(|(x, y)| img.pixel(x, y)[1] as u32)
            .sum();
        let expected = normalise(sum as f32 / 2.0 / 2.0);
        assert_eq!(out[6 + 3 + 2], expected);
        // Same size is the identity.
        let mut same = vec![0.0; 3 * 7 * 9];
        area_resize_planar(&sums, Region::whole(&img), 7, 9, &mut same);
        assert_eq!(
            same[2 * 63 + 4 * 9 + 5],
            normalise(img.pixel(5, 4)[2] as f32)
        );
    }
}
