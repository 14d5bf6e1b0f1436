//! Rendering one clip: geometry frame by frame (expression field, head motion), photometry
//! (light, noise, JPEG), and the ground-truth flow between any two frames.
//!
//! Spaces: the *canvas* is the clip's base image (the look aligned on the template, with a
//! margin, [`super::identity::Base`]); a *frame* is the `size x size` output. At frame `t`
//! - the expression field `E_t` lives on the canvas and moves content as
//!   [`super::warp::render`] does: `expressed(y) = canvas(y - E_t(y))`;
//! - the head transform `frame_from_canvas_t` (similarity: margin offset, then small
//!   rotation, scale and shift about the nose tip) places the expressed canvas in the frame.
//!
//! So frame `t` at pixel `x` shows canvas point `src_t(x) = y - E_t(y)` with
//! `y = canvas_from_frame_t(x)`. A canvas point `p` shows in frame `t'` at
//! `frame_from_canvas_t'(y')` where `y' = p + E_t'(y')` (solved by the fixed-point iteration
//! of [`super::warp`]). The ground-truth flow from frame `t` to `t'` at `x` is that position
//! minus `x`: exactly the motion the renderer applied, so warping frame `t'` back by it gives
//! frame `t` (up to bilinear sampling and the photometric nuisances).

use opencv::core::Vector;
use opencv::imgcodecs;
use rayon::prelude::*;

use super::field::motion_field;
use super::identity::Base;
use super::labels::{Blink, Event, Nuisance};
use super::profile::Profile;
use super::rng::Rng;
use super::templates::{landmark_displacements, Activation};
use super::warp::{invert_point, sample, sample_flow};
use crate::error::{Error, Result};
use crate::eval::flow::Flow;
use crate::face::geometry::Affine2;
use crate::face::Point;
use crate::media::RgbImage;

/// How far a field may stretch the picture: the smallest `det(I - grad E)` allowed (the area
/// of canvas shown per frame pixel; 0 is a fold, below 1 a stretch, above 1 a squeeze,
/// which is harmless). An expression at its apex keeps at least [`MIN_EVENT_DET`]; the
/// whole field at a blink's apex (blink and expressions) at least [`MIN_BLINK_DET`].
/// Expressions and blinks that would stretch more are scaled down; their labels carry the
/// intensities and displacements actually rendered.
pub const MIN_EVENT_DET: f32 = 0.4;
pub const MIN_BLINK_DET: f32 = 0.3;

/// The geometry of one frame.
pub struct FrameGeometry {
    /// Expression field on the canvas (`None`: no expression in this frame).
    pub field: Option<Flow>,
    pub frame_from_canvas: Affine2,
    pub canvas_from_frame: Affine2,
}

/// A clip ready to render: its base, final events (intensities set) and blinks.
pub struct Scene<'a> {
    pub base: &'a Base,
    pub size: u32,
    pub fps: f32,
    pub events: &'a [Event],
    pub blinks: &'a [Blink],
    pub nuisance: &'a Nuisance,
    /// Rotation centre of head motion, canvas pixels (the nose tip).
    centre: Point,
}

impl<'a> Scene<'a> {
    pub fn new(
        base: &'a Base,
        size: u32,
        fps: f32,
        events: &'a [Event],
        blinks: &'a [Blink],
        nuisance: &'a Nuisance,
    ) -> Self {
        Scene {
            base,
            size,
            fps,
            events,
            blinks,
            nuisance,
            centre: base.landmarks[30],
        }
    }

    /// The AU activations at frame `t`: every event's AUs times its profile, and blinks.
    pub fn activations(&self, t: usize) -> Vec<Activation> {
        let mut acts = Vec::new();
        let tf = t as f32;
        for e in self.events {
            let k = profile(e.onset, e.apex, e.offset).intensity(tf);
            if k > 0.0 {
                acts.extend(e.aus.iter().map(|a| Activation {
                    au: a.au,
                    side: a.side.map(Into::into),
                    intensity: a.intensity * k,
                }));
            }
        }
        for b in self.blinks {
            let k = profile(b.onset, b.apex, b.offset).intensity(tf);
            if k > 0.0 {
                acts.push(Activation {
                    au: 45,
                    side: None,
                    intensity: b.intensity * k,
                });
            }
        }
        acts
    }

    /// Per-frame head values `[rotation_deg, shift_x, shift_y, scale]` (zeros and 1 when the
    /// head is still).
    pub fn head(&self, t: usize) -> [f32; 4] {
        let Some(h) = &self.nuisance.head else {
            return [0.0, 0.0, 0.0, 1.0];
        };
        let s = t as f32 / self.fps;
        let sum = |w: &[super::labels::Wave; 2]| w[0].at(s) + w[1].at(s);
        [
            sum(&h.rotation_deg),
            sum(&h.shift_x_px),
            sum(&h.shift_y_px),
            1.0 + sum(&h.scale),
        ]
    }

    /// The canvas -> frame transform of frame `t`.
    pub fn frame_from_canvas(&self, t: usize) -> Affine2 {
        let [deg, dx, dy, scale] = self.head(t);
        let m = self.base.margin as f32;
        let c = self.centre;
        // x = R s (y - c) + c - margin + shift
        let rot = Affine2::similarity(scale, deg.to_radians(), [0.0, 0.0]);
        let r = rot.apply([-c[0], -c[1]]);
        Affine2 {
            m: [
                [rot.m[0][0], rot.m[0][1], r[0] + c[0] - m + dx],
                [rot.m[1][0], rot.m[1][1], r[1] + c[1] - m + dy],
            ],
        }
    }

    /// The geometry of frame `t`.
    pub fn geometry(&self, t: usize) -> Result<FrameGeometry> {
        let acts = self.activations(t);
        let field = self.field(&acts)?;
        let frame_from_canvas = self.frame_from_canvas(t);
        Ok(FrameGeometry {
            field,
            canvas_from_frame: frame_from_canvas
                .inverse()
                .expect("head scale stays near 1"),
            frame_from_canvas,
        })
    }

    /// The canvas expression field of a set of activations (`None` when nothing moves).
    pub fn field(&self, acts: &[Activation]) -> Result<Option<Flow>> {
        if acts.iter().all(|a| a.intensity == 0.0) {
            return Ok(None);
        }
        let d = landmark_displacements(&self.base.landmarks, acts)?;
        let side = self.base.image.width as usize;
        Ok(Some(motion_field(side, side, &self.base.landmarks, &d)?))
    }

    /// For every frame pixel (row-major), the canvas point it shows.
    pub fn source_map(&self, g: &FrameGeometry) -> Vec<Point> {
        let s = self.size as usize;
        let mut out = vec![[0.0f32; 2]; s * s];
        out.par_chunks_mut(s).enumerate().for_each(|(y, row)| {
            for (x, o) in row.iter_mut().enumerate() {
                let c = g.canvas_from_frame.apply([x as f32, y as f32]);
                *o = match &g.field {
                    Some(f) => {
                        let e = sample_flow(f, c[0], c[1]);
                        [c[0] - e[0], c[1] - e[1]]
                    }
                    None => c,
                };
            }
        });
        out
    }

    /// Where canvas points show in a frame of geometry `g`: `frame_from_canvas(y)` with
    /// `y = p + E(y)`. Returns the positions and the largest fixed-point residual (px).
    pub fn forward(
        &self,
        points: &[Point],
        g: &FrameGeometry,
        head: &Affine2,
    ) -> (Vec<Point>, f32) {
        let Some(field) = &g.field else {
            return (points.iter().map(|p| head.apply(*p)).collect(), 0.0);
        };
        let solved: Vec<(Point, f32)> = points
            .par_iter()
            .map(|&p| {
                let (y, residual, _) = invert_point(field, p);
                (head.apply(y), residual)
            })
            .collect();
        let residual = solved.iter().fold(0.0f32, |m, s| m.max(s.1));
        (solved.into_iter().map(|s| s.0).collect(), residual)
    }

    /// The ground-truth flow from the frame whose source map is `src` to the frame of
    /// geometry `g` seen through `head` (normally `g.frame_from_canvas`; the first frame's
    /// transform gives the facial motion alone).
    pub fn flow(&self, src: &[Point], g: &FrameGeometry, head: &Affine2) -> (Flow, f32) {
        let s = self.size as usize;
        let (pos, residual) = self.forward(src, g, head);
        let mut flow = Flow::zeros(s, s);
        for (i, p) in pos.iter().enumerate() {
            flow.uv[2 * i] = p[0] - (i % s) as f32;
            flow.uv[2 * i + 1] = p[1] - (i / s) as f32;
        }
        (flow, residual)
    }

    /// The clean frame (before photometric nuisances), RGB floats.
    pub fn render(&self, src: &[Point]) -> Vec<f32> {
        let mut out = vec![0.0f32; src.len() * 3];
        out.par_chunks_mut(3 * self.size as usize)
            .zip(src.par_chunks(self.size as usize))
            .for_each(|(row, srow)| {
                for (o, p) in row.chunks_exact_mut(3).zip(srow) {
                    o.copy_from_slice(&sample(&self.base.image, p[0], p[1]));
                }
            });
        out
    }

    /// The finished frame `t`: light, noise, rounding, JPEG. `rng` is the clip's noise
    /// stream; frame `t` draws from its own sub-stream.
    pub fn finish(
        &self,
        t: usize,
        mut rgb: Vec<f32>,
        frames: usize,
        rng: &Rng,
    ) -> Result<RgbImage> {
        let s = self.size as usize;
        if let Some(l) = &self.nuisance.light {
            let r = light_ramp(t, frames, self.fps);
            let gain = 1.0 + l.gain * r;
            let tilt = l.tilt * r;
            for (i, px) in rgb.chunks_exact_mut(3).enumerate() {
                let x = (i % s) as f32 - 0.5 * (s as f32 - 1.0);
                let k = gain * (1.0 + tilt * x / s as f32);
                px.iter_mut().for_each(|v| *v *= k);
            }
        }
        if let Some(sigma) = self.nuisance.noise_sigma {
            let mut r = rng.derive(t as u64);
            rgb.iter_mut().for_each(|v| *v += sigma * r.normal());
        }
        let mut img = RgbImage::new(self.size, self.size);
        for (o, v) in img.data.iter_mut().zip(&rgb) {
            *o = v.round().clamp(0.0, 255.0) as u8;
        }
        if let Some(q) = self.nuisance.jpeg_quality {
            img = jpeg_round_trip(&img, q)?;
        }
        Ok(img)
    }
}

/// The event/blink profile in frames.
fn profile(onset: usize, apex: usize, offset: usize) -> Profile {
    Profile::new(onset as f32, apex as f32, offset as f32).expect("drawn with onset < offset")
}

/// The illumination ramp: smoothstep over a short clip, a slow sine (period 20 s) over a
/// long one (more than 10 s).
pub fn light_ramp(t: usize, frames: usize, fps: f32) -> f32 {
    let secs = frames as f32 / fps;
    if secs > 10.0 {
        return (std::f32::consts::TAU * t as f32 / fps / 20.0).sin();
    }
    let u = t as f32 / (frames.max(2) - 1) as f32;
    u * u * (3.0 - 2.0 * u)
}

fn jpeg_round_trip(img: &RgbImage, quality: u8) -> Result<RgbImage> {
    let mut buf = Vector::<u8>::new();
    let params = Vector::from_slice(&[imgcodecs::IMWRITE_JPEG_QUALITY, quality as i32]);
    imgcodecs::imencode(".jpg", &img.to_bgr_mat()?, &mut buf, &params)?;
    let mat = imgcodecs::imdecode(&buf, imgcodecs::IMREAD_COLOR)?;
    RgbImage::from_bgr_mat(&mat)
}

/// The smallest `det(I - grad E)` over the field, by forward differences: below 0 the warp
/// folds.
pub fn field_min_det(f: &Flow) -> f32 {
    let (w, h) = (f.width, f.height);
    let mut worst = 1.0f32;
    for y in 0..h.saturating_sub(1) {
        for x in 0..w.saturating_sub(1) {
            let i = 2 * (y * w + x);
            let (r, d) = (i + 2, i + 2 * w);
            let (ux, uy) = (f.uv[r] - f.uv[i], f.uv[d] - f.uv[i]);
            let (vx, vy) = (f.uv[r + 1] - f.uv[i + 1], f.uv[d + 1] - f.uv[i + 1]);
            worst = worst.min((1.0 - ux) * (1.0 - vy) - uy * vx);
        }
    }
    worst
}

/// The intensity factor `k` in (0, 1] that brings a field's smallest determinant up to
/// `floor`: the determinant is `1 - k a + k^2 b` for a field scaled by `k`; this uses the
/// linear part, `1 - k (1 - det)`, which is exact for one-directional stretch and
/// conservative otherwise.
fn stretch_factor(det: f32, floor: f32) -> f32 {
    if det >= floor {
        1.0
    } else {
        (1.0 - floor) / (1.0 - det)
    }
}

/// Sets an event's AU intensities so that its apex displacement (the largest motion of a
/// landmark, measured on the smoothed field that is rendered) is `apex_displacement_128`
/// scaled to the face width, then lowers them while the apex field stretches the picture
/// more than [`MIN_EVENT_DET`] allows; records the displacement reached.
pub fn settle_event(scene: &Scene, event: &mut Event, face_width: f32) -> Result<()> {
    let acts = |e: &Event| -> Vec<Activation> {
        e.aus
            .iter()
            .map(|a| Activation {
                au: a.au,
                side: a.side.map(Into::into),
                intensity: a.intensity,
            })
            .collect()
    };
    // The field of the event at apex, its largest landmark motion and its slope.
    let measure = |e: &Event| -> Result<(f32, f32)> {
        let Some(field) = scene.field(&acts(e))? else {
            return Ok((0.0, 0.0));
        };
        let g = FrameGeometry {
            field: Some(field),
            frame_from_canvas: Affine2::IDENTITY,
            canvas_from_frame: Affine2::IDENTITY,
        };
        let (moved, _) = scene.forward(&scene.base.landmarks, &g, &Affine2::IDENTITY);
        let reach = moved
            .iter()
            .zip(&scene.base.landmarks)
            .fold(0.0f32, |m, (a, b)| m.max((a[0] - b[0]).hypot(a[1] - b[1])));
        Ok((reach, field_min_det(g.field.as_ref().unwrap())))
    };
    let target = event.apex_displacement_128 * face_width / 128.0;
    // The field is nearly linear in the intensities: two proportional corrections.
    for _ in 0..2 {
        let (reach, _) = measure(event)?;
        if reach <= 1e-6 {
            return Err(Error::Internal(format!(
                "expression {:?} moves no landmark",
                event.aus
            )));
        }
        let k = target / reach;
        event.aus.iter_mut().for_each(|a| a.intensity *= k);
    }
    let (mut reach, mut det) = measure(event)?;
    for _ in 0..4 {
        if det >= MIN_EVENT_DET {
            break;
        }
        let k = stretch_factor(det, MIN_EVENT_DET);
        event.aus.iter_mut().for_each(|a| a.intensity *= k);
        (reach, det) = measure(event)?;
    }
    event.apex_displacement_px = reach;
    event.apex_displacement_128 = reach * 128.0 / face_width;
    Ok(())
}

/// Lowers a blink's intensity while the whole field at its apex (with the clip's
/// expressions, `scene.events`) stretches the picture more than [`MIN_BLINK_DET`] allows.
pub fn settle_blink(scene: &Scene, blink: &mut Blink) -> Result<()> {
    for _ in 0..8 {
        let mut all = scene.activations(blink.apex);
        all.retain(|a| a.au != 45);
        all.push(Activation {
            au: 45,
            side: None,
            intensity: blink.intensity,
        });
        let det = scene.field(&all)?.map_or(1.0, |f| field_min_det(&f));
        if det >= MIN_BLINK_DET {
            return Ok(());
        }
        blink.intensity *= stretch_factor(det, MIN_BLINK_DET);
    }
    Ok(())
}

/// The face mask of a frame: inside the convex hull of the 68 points with the brows raised
/// by a third of the inter-ocular distance (the forehead above them moves with AU1/2/4).
pub fn face_mask(landmarks: &[Point; 68], size: u32) -> RgbImage {
    let (right, left) = crate::face::regions::eye_centres(landmarks);
    let iod = (left[0] - right[0]).hypot(left[1] - right[1]);
    let up = [
        (left[1] - right[1]) / iod * iod / 3.0,
        -(left[0] - right[0]) / iod * iod / 3.0,
    ];
    let mut pts: Vec<Point> = landmarks.to_vec();
    for p in &landmarks[17..27] {
        pts.push([p[0] + up[0], p[1] + up[1]]);
    }
    let hull = convex_hull(pts);
    let mut img = RgbImage::new(size, size);
    for y in 0..size as usize {
        for x in 0..size as usize {
            if inside_convex(&hull, [x as f32, y as f32]) {
                let i = (y * size as usize + x) * 3;
                img.data[i..i + 3].copy_from_slice(&[255, 255, 255]);
            }
        }
    }
    img
}

/// Andrew's monotone chain: the hull counter-clockwise (in y-up terms).
fn convex_hull(mut pts: Vec<Point>) -> Vec<Point> {
    pts.sort_by(|a, b| a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1])));
    let cross = |o: Point, a: Point, b: Point| {
        (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])
    };
    let mut hull: Vec<Point> = Vec::new();
    for pass in 0..2 {
        let start = hull.len();
        let iter: Box<dyn Iterator<Item = &Point>> = if pass == 0 {
            Box::new(pts.iter())
        } else {
            Box::new(pts.iter().rev())
        };
        for &p in iter {
            while hull.len() >= start + 2
                && cross(hull[hull.len() - 2], hull[hull.len() - 1], p) <= 0.0
            {
                hull.pop();
            }
            hull.push(p);
        }
        hull.pop();
    }
    hull
}

fn inside_convex(hull: &[Point], p: Point) -> bool {
    let n = hull.len();
    n >= 3
        && (0..n).all(|i| {
            let (a, b) = (hull[i], hull[(i + 1) % n]);
            (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0]) >= 0.0
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hull_of_a_square_with_an_inner_point() {
        let h = convex_hull(vec![
            [0.0, 0.0],
            [4.0, 0.0],
            [4.0, 4.0],
            [0.0, 4.0],
            [2.0, 2.0],
        ]);
        assert_eq!(h.len(), 4);
        assert!(inside_convex(&h, [1.0, 1.0]));
        assert!(inside_convex(&h, [4.0, 2.0]));
        assert!(!inside_convex(&h, [4.5, 2.0]));
    }

    #[test]
    fn determinant_of_a_linear_field() {
        // E = (0.25 x + 0.1 y, 0): det(I - grad E) = 1 - 0.25.
        let mut f = Flow::zeros(5, 5);
        for y in 0..5 {
            for x in 0..5 {
                f.uv[2 * (y * 5 + x)] = 0.25 * x as f32 + 0.1 * y as f32;
            }
        }
        assert!((field_min_det(&f) - 0.75).abs() < 1e-5);
        assert_eq!(stretch_factor(0.75, 0.4), 1.0);
        // det -0.5 at k = 1 becomes 1 - k 1.5 = 0.4 at k = 0.4.
        assert!((stretch_factor(-0.5, 0.4) - 0.4).abs() < 1e-6);
    }

    #[test]
    fn light_ramp_runs_zero_to_one_on_short_clips() {
        assert_eq!(light_ramp(0, 30, 30.0), 0.0);
        assert_eq!(light_ramp(29, 30, 30.0), 1.0);
        assert!((light_ramp(300, 1200, 30.0) - 0.0).abs() < 1e-4);
    }
}
