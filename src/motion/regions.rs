//! Statistics of a flow field inside each facial region: mean vector, mean and maximum
//! magnitude, the direction of the mean vector and the share of pixels moving.
//!
//! A region's pixels are those whose integer coordinates `(x, y)` lie in its box
//! ([`Region::bbox`], half-open: `x0 <= x < x1`, `y0 <= y < y1`) clipped to the frame; the
//! landmarks are in the flow's pixel space. A region wholly outside the frame has
//! `pixels: 0` and every statistic 0.

use serde::Serialize;

use crate::eval::flow::Flow;
use crate::face::regions::{Region, Side};
use crate::face::Point;

/// Magnitude above which a pixel counts as moving, px of the flow's frame. Micro-expression
/// apexes in SynthME move landmarks 0.5-3 px at a 128-px face width, and DIS / MEFlowNet read
/// still skin as roughly 0.05-0.15 px, so 0.2 px sits between noise and the faintest event.
pub const DEFAULT_MOVING_PX: f32 = 0.2;

/// Motion of one facial region in one flow field.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegionMotion {
    pub region: &'static str,
    pub side: Side,
    /// Mean flow vector (u right, v down), pixels of the flow's frame.
    pub mean: [f32; 2],
    /// Mean and maximum of the per-pixel magnitude.
    pub mean_magnitude: f32,
    pub max_magnitude: f32,
    /// Direction of the mean vector in degrees, counter-clockwise from image-right with up
    /// positive (0 = right, 90 = up, 180 = left, -90 = down): `atan2(-v, u)`, in
    /// (-180, 180]; 0 for a zero mean.
    pub direction_deg: f32,
    /// Share of the region's pixels moving more than the threshold, 0-1.
    pub moving_share: f32,
    /// Pixels of the region inside the frame.
    pub pixels: usize,
}

/// The motion of `region` in `flow`; pixels moving more than `moving_px` count as moving.
pub fn region_motion(
    flow: &Flow,
    landmarks68: &[Point],
    region: &Region,
    moving_px: f32,
) -> RegionMotion {
    let b = region.bbox(landmarks68);
    let (xs, xe) = pixel_span(b.x0, b.x1, flow.width);
    let (ys, ye) = pixel_span(b.y0, b.y1, flow.height);
    let (mut su, mut sv, mut smag) = (0f64, 0f64, 0f64);
    let (mut max_mag, mut moving, mut pixels) = (0f32, 0usize, 0usize);
    for y in ys..ye {
        for x in xs..xe {
            let (u, v) = flow.at(x, y);
            let m = u.hypot(v);
            su += u as f64;
            sv += v as f64;
            smag += m as f64;
            max_mag = max_mag.max(m);
            moving += usize::from(m > moving_px);
            pixels += 1;
        }
    }
    let n = pixels.max(1) as f64;
    let mean = [(su / n) as f32, (sv / n) as f32];
    let direction_deg = if mean == [0.0, 0.0] {
        0.0
    } else {
        // `0.0 - v`, not `-v`: a zero v must not give -0.0 and so -180 for a leftward mean.
        (0.0 - mean[1]).atan2(mean[0]).to_degrees()
    };
    RegionMotion {
        region: region.name,
        side: region.side,
        mean,
        mean_magnitude: (smag / n) as f32,
        max_magnitude: max_mag,
        direction_deg,
        moving_share: (moving as f64 / n) as f32,
        pixels,
    }
}

/// [`region_motion`] for each of `regions`, in order.
pub fn regions_motion<'a>(
    flow: &Flow,
    landmarks68: &[Point],
    regions: impl IntoIterator<Item = &'a Region>,
    moving_px: f32,
) -> Vec<RegionMotion> {
    regions
        .into_iter()
        .map(|r| region_motion(flow, landmarks68, r, moving_px))
        .collect()
}

/// The integer coordinates `c` with `lo <= c < hi`, clipped to `0..len`; empty as `(s, s)`.
fn pixel_span(lo: f32, hi: f32, len: usize) -> (usize, usize) {
    let clip = |c: f32| {
        if c.is_nan() {
            0
        } else {
            c.ceil().clamp(0.0, len as f32) as usize
        }
    };
    let (s, e) = (clip(lo), clip(hi));
    (s, e.max(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::face::regions::tests::face;
    use crate::face::regions::{region, REGIONS};

    fn field(w: usize, h: usize, f: impl Fn(f32, f32) -> (f32, f32)) -> Flow {
        let mut flow = Flow::zeros(w, h);
        for y in 0..h {
            for x in 0..w {
                let (u, v) = f(x as f32, y as f32);
                flow.uv[2 * (y * w + x)] = u;
                flow.uv[2 * (y * w + x) + 1] = v;
            }
        }
        flow
    }

    fn close(a: f32, b: f32, tol: f32) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn a_constant_shift_reads_the_same_everywhere() {
        let lm = face();
        // 0.3 px right, 0.4 px up: magnitude 0.5, direction atan2(0.4, 0.3) = 53.13 deg.
        let flow = field(128, 128, |_, _| (0.3, -0.4));
        let all = regions_motion(&flow, &lm, REGIONS, DEFAULT_MOVING_PX);
        assert_eq!(all.len(), REGIONS.len());
        for m in &all {
            assert!(m.pixels > 0, "{}", m.region);
            assert!(close(m.mean[0], 0.3, 1e-5) && close(m.mean[1], -0.4, 1e-5));
            assert!(close(m.mean_magnitude, 0.5, 1e-5) && close(m.max_magnitude, 0.5, 1e-5));
            assert!(
                close(m.direction_deg, 53.130_1, 1e-3),
                "{}",
                m.direction_deg
            );
            assert_eq!(m.moving_share, 1.0);
        }
        // The AUW-GCN patch at the right mouth corner is x 41..49, y 106..114: 64 pixels.
        let corner = region("roi_r_mouth_corner").unwrap();
        let m = region_motion(&flow, &lm, corner, DEFAULT_MOVING_PX);
        assert_eq!(
            (m.region, m.side, m.pixels),
            ("roi_r_mouth_corner", Side::Right, 64)
        );
        // Above the threshold nothing moves.
        assert_eq!(region_motion(&flow, &lm, corner, 0.5).moving_share, 0.0);
    }

    #[test]
    fn directions_follow_image_up_positive() {
        let lm = face();
        let r = region("glabella").unwrap();
        for ((u, v), deg) in [
            ((1.0, 0.0), 0.0),
            ((0.0, -1.0), 90.0),
            ((-1.0, 0.0), 180.0),
            ((0.0, 1.0), -90.0),
        ] {
            let m = region_motion(&field(128, 128, |_, _| (u, v)), &lm, r, 0.2);
            assert!(
                close(m.direction_deg, deg, 1e-4),
                "{u},{v}: {}",
                m.direction_deg
            );
        }
    }

    #[test]
    fn a_rotation_about_a_patch_centre_has_zero_mean_and_radial_magnitude() {
        let lm = face();
        // The patch at point 30 (60, 100) is 8 px wide: x 56..64, y 96..104, centred at
        // (59.5, 99.5) in pixel indices. A small rotation about that centre:
        // (u, v) = w * (-(y - cy), x - cx).
        let (cx, cy, w) = (59.5f32, 99.5f32, 0.1f32);
        let flow = field(128, 128, |x, y| (-w * (y - cy), w * (x - cx)));
        let m = region_motion(&flow, &lm, region("roi_nose_tip").unwrap(), 0.3);
        assert_eq!(m.pixels, 64);
        assert!(
            m.mean[0].abs() < 1e-5 && m.mean[1].abs() < 1e-5,
            "{:?}",
            m.mean
        );
        // Largest radius is the corner: sqrt(2) * 3.5 px.
        assert!(close(m.max_magnitude, w * 3.5 * 2f32.sqrt(), 1e-5));
        // Mean radius over the 8x8 grid of half-integer offsets, computed directly.
        let offs = [-3.5f32, -2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5];
        let mean_r: f32 = offs
            .iter()
            .flat_map(|a| offs.iter().map(move |b| a.hypot(*b)))
            .sum::<f32>()
            / 64.0;
        assert!(close(m.mean_magnitude, w * mean_r, 1e-5));
        // Radius > 3 px (magnitude > 0.3): 32 of the 64 offsets.
        assert!(close(m.moving_share, 0.5, 1e-6), "{}", m.moving_share);
    }

    #[test]
    fn motion_inside_one_region_stays_there() {
        let lm = face();
        // Only the right mouth corner's patch (x 41..49, y 106..114) moves, 1 px left; its
        // left half only moves in a second field.
        let inside = |x: f32, y: f32| (41.0..49.0).contains(&x) && (106.0..114.0).contains(&y);
        let flow = field(128, 128, |x, y| {
            if inside(x, y) {
                (-1.0, 0.0)
            } else {
                (0.0, 0.0)
            }
        });
        let corner = region("roi_r_mouth_corner").unwrap();
        let m = region_motion(&flow, &lm, corner, DEFAULT_MOVING_PX);
        assert_eq!((m.mean, m.moving_share), ([-1.0, 0.0], 1.0));
        assert!(close(m.direction_deg, 180.0, 1e-4));
        let other = region_motion(&flow, &lm, region("roi_l_mouth_corner").unwrap(), 0.2);
        assert_eq!(
            (other.mean, other.max_magnitude, other.moving_share),
            ([0.0, 0.0], 0.0, 0.0)
        );
        assert_eq!(other.direction_deg, 0.0);
        // Half the patch moving gives half the mean and a share of one half.
        let flow = field(128, 128, |x, y| {
            if inside(x, y) && x < 45.0 {
                (0.0, 2.0)
            } else {
                (0.0, 0.0)
            }
        });
        let m = region_motion(&flow, &lm, corner, DEFAULT_MOVING_PX);
        assert!(close(m.mean[1], 1.0, 1e-6) && close(m.moving_share, 0.5, 1e-6));
        assert!(close(m.direction_deg, -90.0, 1e-4) && m.max_magnitude == 2.0);
    }

    #[test]
    fn boxes_are_clipped_to_the_frame() {
        let lm = face();
        let corner = region("roi_r_mouth_corner").unwrap();
        // A 45x108 frame cuts the patch to x 41..45, y 106..108: 8 pixels.
        let flow = field(45, 108, |_, _| (1.0, 0.0));
        let m = region_motion(&flow, &lm, corner, DEFAULT_MOVING_PX);
        assert_eq!((m.pixels, m.mean), (8, [1.0, 0.0]));
        // A 30x30 frame holds none of it.
        let flow = field(30, 30, |_, _| (1.0, 0.0));
        let m = region_motion(&flow, &lm, corner, DEFAULT_MOVING_PX);
        assert_eq!(m.pixels, 0);
        assert_eq!(
            (m.mean, m.mean_magnitude, m.max_magnitude),
            ([0.0, 0.0], 0.0, 0.0)
        );
        assert_eq!((m.direction_deg, m.moving_share), (0.0, 0.0));
    }
}
