//! Candidate boxes between MTCNN's stages: proposals from P-Net's map, the two NMS flavours,
//! box regression, squaring, and the crop each candidate is cut from.
//!
//! Arithmetic is f32 in facenet-pytorch's order of operations so that the boxes, and the
//! integer crops derived from them, come out the same.

use super::resize::Region;

/// A face candidate in image pixels: box `[x0, y0, x1, y1]`, score, and the regression
/// offsets of the stage that scored it (fractions of the box size).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub bbox: [f32; 4],
    pub score: f32,
    pub reg: [f32; 4],
}

/// P-Net's cell stride and receptive field on a pyramid level, in level pixels.
const PNET_STRIDE: f32 = 2.0;
const PNET_CELL: f32 = 12.0;

/// Candidates from one image's P-Net output on a level scaled by `scale`: every cell whose
/// face probability is at least `threshold`, row by row. `prob` is the face-probability plane
/// [oh, ow]; `reg` the four regression planes [4, oh, ow]. The box maps the cell's 12x12
/// window back to image pixels.
pub fn proposals(
    prob: &[f32],
    reg: &[f32],
    ow: usize,
    scale: f32,
    threshold: f32,
) -> Vec<Candidate> {
    let plane = prob.len();
    let image_from_level = |v: f32| (v / scale).floor();
    prob.iter()
        .enumerate()
        .filter(|(_, &p)| p >= threshold)
        .map(|(i, &score)| {
            let (x, y) = ((i % ow) as f32, (i / ow) as f32);
            let x0 = image_from_level(PNET_STRIDE * x + 1.0);
            let y0 = image_from_level(PNET_STRIDE * y + 1.0);
            let x1 = image_from_level(PNET_STRIDE * x + PNET_CELL - 1.0 + 1.0);
            let y1 = image_from_level(PNET_STRIDE * y + PNET_CELL - 1.0 + 1.0);
            Candidate {
                bbox: [x0, y0, x1, y1],
                score,
                reg: [
                    reg[i],
                    reg[plane + i],
                    reg[2 * plane + i],
                    reg[3 * plane + i],
                ],
            }
        })
        .collect()
}

/// Greedy non-maximum suppression with intersection over union, as torchvision's `nms`:
/// areas without the +1, a box is dropped when its IoU with a kept one exceeds `threshold`.
/// Returns the indices kept, in decreasing score order.
pub fn nms_union(cands: &[Candidate], threshold: f32) -> Vec<usize> {
    let area = |b: &[f32; 4]| (b[2] - b[0]) * (b[3] - b[1]);
    greedy(
        cands,
        area,
        |inter, ai, aj| inter / (ai + aj - inter) > threshold,
        0.0,
    )
}

/// Greedy non-maximum suppression with intersection over the smaller box, as facenet-pytorch's
/// final numpy NMS ("Min"): areas with the +1 pixel convention, a box is dropped when the
/// overlap exceeds `threshold`. Returns the indices kept, in decreasing score order.
pub fn nms_min(cands: &[Candidate], threshold: f32) -> Vec<usize> {
    let area = |b: &[f32; 4]| (b[2] - b[0] + 1.0) * (b[3] - b[1] + 1.0);
    greedy(
        cands,
        area,
        |inter, ai, aj| inter / ai.min(aj) > threshold,
        1.0,
    )
}

/// Visits candidates by decreasing score (ties in input order), keeping each one that no
/// kept candidate `overlaps` (called with intersection, kept area, other area). `plus` is
/// added to the intersection's sides (1 for the inclusive-pixel convention).
fn greedy(
    cands: &[Candidate],
    area: impl Fn(&[f32; 4]) -> f32,
    overlaps: impl Fn(f32, f32, f32) -> bool,
    plus: f32,
) -> Vec<usize> {
    let mut order: Vec<usize> = (0..cands.len()).collect();
    order.sort_by(|&a, &b| cands[b].score.total_cmp(&cands[a].score));
    let areas: Vec<f32> = cands.iter().map(|c| area(&c.bbox)).collect();
    let mut dropped = vec![false; cands.len()];
    let mut kept = Vec::new();
    for (pos, &i) in order.iter().enumerate() {
        if dropped[i] {
            continue;
        }
        kept.push(i);
        let a = &cands[i].bbox;
        for &j in &order[pos + 1..] {
            if dropped[j] {
                continue;
            }
            let b = &cands[j].bbox;
            let w = (a[2].min(b[2]) - a[0].max(b[0]) + plus).max(0.0);
            let h = (a[3].min(b[3]) - a[1].max(b[1]) + plus).max(0.0);
            if overlaps(w * h, areas[i], areas[j]) {
                dropped[j] = true;
            }
        }
    }
    kept
}

/// The candidates at `keep`, in that order.
pub fn pick(cands: &[Candidate], keep: &[usize]) -> Vec<Candidate> {
    keep.iter().map(|&k| cands[k]).collect()
}

/// Applies P-Net's regression: offsets are fractions of the box's width and height
/// (`x1 - x0`, no +1).
pub fn regress_pnet(c: &Candidate) -> [f32; 4] {
    let [x0, y0, x1, y1] = c.bbox;
    let (w, h) = (x1 - x0, y1 - y0);
    [
        x0 + c.reg[0] * w,
        y0 + c.reg[1] * h,
        x1 + c.reg[2] * w,
        y1 + c.reg[3] * h,
    ]
}

/// Applies R-Net's or O-Net's regression: offsets are fractions of the inclusive box size
/// (`x1 - x0 + 1`).
pub fn regress(c: &Candidate) -> [f32; 4] {
    let [x0, y0, x1, y1] = c.bbox;
    let (w, h) = (x1 - x0 + 1.0, y1 - y0 + 1.0);
    [
        x0 + c.reg[0] * w,
        y0 + c.reg[1] * h,
        x1 + c.reg[2] * w,
        y1 + c.reg[3] * h,
    ]
}

/// The square with the box's centre and its longer side.
pub fn square(b: [f32; 4]) -> [f32; 4] {
    let (w, h) = (b[2] - b[0], b[3] - b[1]);
    let side = w.max(h);
    let x0 = b[0] + w * 0.5 - side * 0.5;
    let y0 = b[1] + h * 0.5 - side * 0.5;
    [x0, y0, x0 + side, y0 + side]
}

/// The pixels a stage crops for a candidate box in a `width x height` image, or `None` when
/// the box lies outside. facenet-pytorch truncates the box to integers, clamps `x0, y0` to at
/// least 1 and `x1, y1` to at most the image size, and crops columns `x0 - 1 .. x1` and rows
/// `y0 - 1 .. y1` (the part of the box outside the image is cut off, not padded).
pub fn crop_region(b: [f32; 4], width: usize, height: usize) -> Option<Region> {
    let x0 = (b[0].trunc() as i64).max(1);
    let y0 = (b[1].trunc() as i64).max(1);
    let x1 = (b[2].trunc() as i64).min(width as i64);
    let y1 = (b[3].trunc() as i64).min(height as i64);
    (x1 > x0 - 1 && y1 > y0 - 1).then(|| Region {
        x0: (x0 - 1) as usize,
        y0: (y0 - 1) as usize,
        w: (x1 - x0 + 1) as usize,
        h: (y1 - y0 + 1) as usize,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(bbox: [f32; 4], score: f32) -> Candidate {
        Candidate {
            bbox,
            score,
            reg: [0.0; 4],
        }
    }

    #[test]
    fn proposals_map_cells_to_image_windows() {
        // A 2x3 map; only cell (x 2, y 1) passes. Scale 0.5: window (2*2+1)/0.5 = 10 ..
        // (2*2+12)/0.5 = 32 in x, (2*1+1)/0.5 = 6 .. 28 in y.
        let prob = [0.1, 0.2, 0.3, 0.4, 0.5, 0.9];
        let mut reg = [0.0f32; 24];
        for k in 0..4 {
            reg[k * 6 + 5] = k as f32 + 1.0;
        }
        let c = proposals(&prob, &reg, 3, 0.5, 0.6);
        assert_eq!(
            c,
            vec![Candidate {
                bbox: [10.0, 6.0, 32.0, 28.0],
                score: 0.9,
                reg: [1.0, 2.0, 3.0, 4.0]
            }]
        );
    }

    #[test]
    fn nms_union_keeps_the_best_of_overlapping_boxes() {
        let boxes = vec![
            cand([0.0, 0.0, 10.0, 10.0], 0.8),
            cand([1.0, 0.0, 11.0, 10.0], 0.9), // IoU with the first 90/110 = 0.82
            cand([20.0, 20.0, 30.0, 30.0], 0.7),
        ];
        assert_eq!(nms_union(&boxes, 0.7), vec![1, 2]);
        assert_eq!(nms_union(&boxes, 0.9), vec![1, 0, 2]);
    }

    #[test]
    fn nms_min_drops_a_box_inside_another() {
        // IoU is small (36/121) but the small box lies inside the big one.
        let boxes = vec![
            cand([0.0, 0.0, 10.0, 10.0], 0.9),
            cand([2.0, 2.0, 7.0, 7.0], 0.95),
        ];
        assert_eq!(nms_min(&boxes, 0.7), vec![1]);
        assert_eq!(nms_union(&boxes, 0.7), vec![1, 0]);
    }

    #[test]
    fn regression_and_squaring() {
        let c = Candidate {
            bbox: [10.0, 20.0, 29.0, 59.0],
            score: 1.0,
            reg: [0.1, -0.1, 0.0, 0.5],
        };
        assert_eq!(regress(&c), [12.0, 16.0, 29.0, 79.0]);
        let r = regress_pnet(&c);
        for (got, want) in r.iter().zip([11.9, 16.1, 29.0, 78.5]) {
            assert!((got - want).abs() < 1e-5, "{r:?}");
        }
        assert_eq!(square([10.0, 20.0, 30.0, 60.0]), [0.0, 20.0, 40.0, 60.0]);
    }

    #[test]
    fn crops_are_clamped_to_the_image() {
        assert_eq!(
            crop_region([-5.7, 3.2, 20.9, 200.0], 100, 50),
            Some(Region {
                x0: 0,
                y0: 2,
                w: 20,
                h: 48
            })
        );
        assert_eq!(crop_region([120.0, 3.0, 140.0, 20.0], 100, 50), None);
    }
}
