//! The face pipeline: detect every face (MTCNN), fit the 478-point mesh to each, derive the
//! 68 points and the head pose. Faces come out largest first: the largest is the default
//! subject everywhere else.

use std::path::Path;

use candle_core::Device;
use serde::Serialize;

use super::mesh::{FaceMesh, Mesh};
use super::mtcnn::Mtcnn;
use super::{landmarks68, Detection, FaceBox, Point};
use crate::error::{Error, Result};
use crate::media::RgbImage;
use crate::models::ModelStore;

/// Yaw, pitch and roll in degrees.
pub use super::landmarks68::HeadPose;

/// Everything known about one face in one image.
#[derive(Debug, Clone, Serialize)]
pub struct Face {
    /// Detector box (for tracked frames: the box carried from the mesh).
    pub bbox: FaceBox,
    pub score: f32,
    pub landmarks5: [Point; 5],
    pub landmarks68: Vec<Point>,
    /// 478 points `[x, y, z]` in image pixels (z is relative depth, scaled like x).
    pub mesh: Vec<[f32; 3]>,
    /// The mesh network's face-presence probability.
    pub presence: f32,
    pub pose: HeadPose,
}

impl Face {
    pub fn mesh_xy(&self) -> Vec<Point> {
        self.mesh.iter().map(|p| [p[0], p[1]]).collect()
    }
}

/// Detector and mesh, loaded once.
pub struct FacePipeline {
    pub mtcnn: Mtcnn,
    pub mesh: FaceMesh,
}

impl FacePipeline {
    /// Loads the default models from the store.
    pub fn load(store: &ModelStore, device: &Device) -> Result<Self> {
        Ok(FacePipeline {
            mtcnn: Mtcnn::load(&store.require("mtcnn")?, device)?,
            mesh: FaceMesh::load(&store.require("face-landmarker")?, device)?,
        })
    }

    /// All faces in an image, largest box first.
    pub fn faces(&self, image: &RgbImage) -> Result<Vec<Face>> {
        let mut detections = self.mtcnn.detect(image)?;
        detections.sort_by(|a, b| b.bbox.area().total_cmp(&a.bbox.area()));
        detections.iter().map(|d| self.fit(image, d)).collect()
    }

    /// The mesh, 68 points and pose for one detection.
    pub fn fit(&self, image: &RgbImage, det: &Detection) -> Result<Face> {
        let mesh: Mesh = self.mesh.landmarks(image, det)?;
        Ok(face_from_mesh(det, mesh))
    }
}

fn face_from_mesh(det: &Detection, mesh: Mesh) -> Face {
    Face {
        bbox: det.bbox,
        score: det.score,
        landmarks5: det.landmarks5,
        landmarks68: landmarks68::from_mesh(&mesh.points).to_vec(),
        pose: landmarks68::head_pose(&mesh.points),
        presence: mesh.presence,
        mesh: mesh.points,
    }
}

/// Picks the subject: face `index` (0 = largest), or an error naming the input: no face
/// (exit 3), or an index past the faces found (exit 2, naming the range).
pub fn select(faces: &[Face], index: usize, input: &Path) -> Result<usize> {
    match faces.len() {
        0 => Err(Error::NoFace {
            path: input.to_path_buf(),
            detail: "no face found".into(),
        }),
        // a face index past those found is the command line's mistake (exit 2), not the input's
        n if index >= n => Err(Error::bad_input(
            input,
            format!(
                "--face {index} asked for, but only {n} face(s) found; use --face 0 to {}",
                n - 1
            ),
        )),
        _ => Ok(index),
    }
}
