//! Tracking one face through a clip: detect on the first frame that has a face, then fit the
//! mesh frame to frame from the previous frame's landmarks, re-detecting when the mesh loses
//! the face (presence drops) and smoothing the points (One Euro: steady at rest, no lag at
//! expression onsets).

use serde::{Deserialize, Serialize};

use super::pipeline::{Face, FacePipeline};
use super::smooth::{OneEuro, OneEuroConfig};
use super::{Detection, FaceBox, Point};
use crate::error::Result;
use crate::media::Frame;

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct TrackConfig {
    /// Below this mesh presence the face counts as lost and the detector runs again.
    pub min_presence: f32,
    /// Run the detector at least every this many frames (0: only when lost).
    pub redetect_every: usize,
    /// Which face to follow when a detection finds several (0 = largest).
    pub face: usize,
    pub smoothing: OneEuroConfig,
}

impl Default for TrackConfig {
    fn default() -> Self {
        TrackConfig {
            min_presence: 0.5,
            redetect_every: 0,
            face: 0,
            smoothing: OneEuroConfig::default(),
        }
    }
}

/// How a frame's face was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Detected,
    Tracked,
}

#[derive(Debug, Clone, Serialize)]
pub struct TrackedFrame {
    pub index: usize,
    pub time_s: f64,
    /// `None` when no face was found in this frame.
    pub face: Option<Face>,
    pub source: Option<Source>,
}

/// Follows one face; feed it frames in order.
pub struct Tracker<'a> {
    pipeline: &'a FacePipeline,
    config: TrackConfig,
    smoother: OneEuro,
    previous: Option<(Face, f64)>,
    /// The detector box relative to the 68-point hull at the last detection, so boxes carried
    /// by tracking keep the detector's framing: (dx0, dy0, dx1, dy1) in hull widths/heights.
    box_from_hull: [f32; 4],
    since_detection: usize,
}

impl<'a> Tracker<'a> {
    pub fn new(pipeline: &'a FacePipeline, config: TrackConfig) -> Self {
        Tracker {
            pipeline,
            smoother: OneEuro::new(config.smoothing),
            config,
            previous: None,
            box_from_hull: [0.0; 4],
            since_detection: 0,
        }
    }

    pub fn step(&mut self, frame: &Frame) -> Result<TrackedFrame> {
        let due =
            self.config.redetect_every > 0 && self.since_detection >= self.config.redetect_every;
        let mut found = None;
        if let (Some((prev, _)), false) = (&self.previous, due) {
            let det = self.detection_from_face(prev);
            let face = self.pipeline.fit(&frame.image, &det)?;
            if face.presence >= self.config.min_presence {
                found = Some((face, Source::Tracked));
            }
        }
        if found.is_none() {
            found = self.detect(frame)?.map(|f| (f, Source::Detected));
        }
        let Some((mut face, source)) = found else {
            self.previous = None;
            self.smoother.reset();
            return Ok(TrackedFrame {
                index: frame.index,
                time_s: frame.time_s,
                face: None,
                source: None,
            });
        };
        let dt = self
            .previous
            .as_ref()
            .map_or(0.0, |(_, t)| (frame.time_s - t) as f32);
        if source == Source::Detected {
            self.smoother.reset();
            self.since_detection = 0;
            self.box_from_hull = relative_box(&face.bbox, &hull(&face.landmarks68));
        } else {
            self.since_detection += 1;
        }
        let flat: Vec<f32> = face.mesh.iter().flatten().copied().collect();
        let smooth = self.smoother.filter(&flat, dt);
        for (p, s) in face.mesh.iter_mut().zip(smooth.chunks_exact(3)) {
            *p = [s[0], s[1], s[2]];
        }
        face.landmarks68 = super::landmarks68::from_mesh(&face.mesh).to_vec();
        face.pose = super::landmarks68::head_pose(&face.mesh);
        self.previous = Some((face.clone(), frame.time_s));
        Ok(TrackedFrame {
            index: frame.index,
            time_s: frame.time_s,
            face: Some(face),
            source: Some(source),
        })
    }

    /// Runs the detector; prefers the face that overlaps the previous one, else `config.face`.
    fn detect(&mut self, frame: &Frame) -> Result<Option<Face>> {
        let faces = self.pipeline.faces(&frame.image)?;
        let pick = match &self.previous {
            Some((prev, _)) => faces
                .iter()
                .enumerate()
                .max_by(|a, b| {
                    a.1.bbox
                        .iou(&prev.bbox)
                        .total_cmp(&b.1.bbox.iou(&prev.bbox))
                })
                .map(|(i, _)| i),
            None => (self.config.face < faces.len()).then_some(self.config.face),
        };
        Ok(pick.map(|i| faces[i].clone()))
    }

    /// A detector-like box and five points from the previous frame's landmarks.
    fn detection_from_face(&self, face: &Face) -> Detection {
        let lm = &face.landmarks68;
        let (r, l) = super::regions::eye_centres(lm);
        Detection {
            bbox: absolute_box(&self.box_from_hull, &hull(lm)),
            score: face.score,
            landmarks5: [r, l, lm[30], lm[48], lm[54]],
        }
    }
}

fn hull(points: &[Point]) -> FaceBox {
    points.iter().fold(
        FaceBox {
            x0: f32::MAX,
            y0: f32::MAX,
            x1: f32::MIN,
            y1: f32::MIN,
        },
        |b, p| FaceBox {
            x0: b.x0.min(p[0]),
            y0: b.y0.min(p[1]),
            x1: b.x1.max(p[0]),
            y1: b.y1.max(p[1]),
        },
    )
}

fn relative_box(b: &FaceBox, hull: &FaceBox) -> [f32; 4] {
    let (w, h) = (hull.width().max(1e-3), hull.height().max(1e-3));
    [
        (b.x0 - hull.x0) / w,
        (b.y0 - hull.y0) / h,
        (b.x1 - hull.x1) / w,
        (b.y1 - hull.y1) / h,
    ]
}

fn absolute_box(rel: &[f32; 4], hull: &FaceBox) -> FaceBox {
    let (w, h) = (hull.width(), hull.height());
    FaceBox {
        x0: hull.x0 + rel[0] * w,
        y0: hull.y0 + rel[1] * h,
        x1: hull.x1 + rel[2] * w,
        y1: hull.y1 + rel[3] * h,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_boxes_round_trip_and_follow_the_hull() {
        let hull_a = FaceBox {
            x0: 100.0,
            y0: 100.0,
            x1: 200.0,
            y1: 220.0,
        };
        let det = FaceBox {
            x0: 90.0,
            y0: 80.0,
            x1: 210.0,
            y1: 230.0,
        };
        let rel = relative_box(&det, &hull_a);
        assert_eq!(absolute_box(&rel, &hull_a), det);
        // The hull moves 10 px right and grows 10%: the box does the same.
        let hull_b = FaceBox {
            x0: 110.0,
            y0: 100.0,
            x1: 220.0,
            y1: 232.0,
        };
        let b = absolute_box(&rel, &hull_b);
        assert!((b.x0 - 99.0).abs() < 1e-3 && (b.x1 - 231.0).abs() < 1e-3);
    }
}
