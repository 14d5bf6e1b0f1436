//! The 478-point face mesh of MediaPipe FaceLandmarker v2 (`face_landmarks_detector.tflite`,
//! converted by `tools/convert/face_landmarker.py`), run by the small TFLite executor in
//! [`super::tflite`].
//!
//! Network: input `input_12` `[b, 256, 256, 3]` RGB in [0, 1]; outputs `Identity`
//! `[b, 1, 1, 1434]` = 478 x (x, y, z) in crop pixels (z: depth relative to the face centre,
//! same scale as x), `Identity_1` `[b, 1, 1, 1]` the face-presence logit, `Identity_2`
//! `[b, 1]` tongue-out probability (unused here).
//!
//! The crop ([`CropSpec`]): a square of side `size` image pixels around `center`, rotated by
//! `angle` so that the eye line becomes horizontal, resampled to 256x256 with bilinear
//! interpolation and replicated borders (OpenCV `warpAffine`):
//!
//! `crop_from_image = T(127.5, 127.5) · S(256 / size) · R(-angle) · T(-center)`
//!
//! in OpenCV's convention (pixel centres at integer coordinates). The network's coordinates
//! put the crop's left edge at 0 (MediaPipe divides them by 256 and maps [0, 1] onto the
//! rectangle's edges), so a network point `(x, y)` is the crop pixel `(x - 0.5, y - 0.5)`.

use std::path::Path;

use candle_core::{Device, Tensor};

use super::geometry::{warp_image_f64, Interpolation};
use super::tflite::Graph;
use super::{Affine2, Detection, Point};
use crate::error::{Error, Result};
use crate::media::RgbImage;

/// The model's name in the manifest.
pub const MODEL_NAME: &str = "face-landmarker";
/// The mesh network's file inside the model folder.
pub const WEIGHTS_FILE: &str = "face_landmarks_detector.safetensors";
/// Side of the square crop the network takes.
pub const CROP_SIZE: usize = 256;
pub const NUM_POINTS: usize = 478;
/// Crop side relative to the face box: MediaPipe's landmarker enlarges the detection
/// rectangle 1.5x (`RectTransformationCalculator`, `scale_x = scale_y = 1.5`, square long side).
pub const BOX_SCALE: f32 = 1.5;

/// Where the crop lies in the image; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CropSpec {
    /// Centre of the square, image pixels.
    pub center: Point,
    /// Side of the square, image pixels.
    pub size: f32,
    /// Tilt of the face in radians: the angle of the vector from the eye on the image's left
    /// to the eye on the image's right (positive: that vector points down on screen).
    pub angle: f32,
}

impl CropSpec {
    /// MediaPipe's rule: the detection box, made square on its long side and enlarged
    /// [`BOX_SCALE`] times around its centre, rotated by the eye line of the five landmarks.
    pub fn from_detection(det: &Detection) -> Self {
        let [le, re] = [det.landmarks5[0], det.landmarks5[1]];
        CropSpec {
            center: det.bbox.center(),
            size: BOX_SCALE * det.bbox.width().max(det.bbox.height()),
            angle: (re[1] - le[1]).atan2(re[0] - le[0]),
        }
    }

    /// The 2x3 matrix mapping image pixels to crop pixels, in f64 for OpenCV.
    fn crop_from_image_f64(&self) -> [[f64; 3]; 2] {
        let s = CROP_SIZE as f64 / self.size as f64;
        let (sn, c) = (-(self.angle as f64)).sin_cos();
        let (a, b, d, e) = (s * c, -s * sn, s * sn, s * c);
        let half = (CROP_SIZE as f64 - 1.0) / 2.0;
        let [cx, cy] = [self.center[0] as f64, self.center[1] as f64];
        [
            [a, b, half - (a * cx + b * cy)],
            [d, e, half - (d * cx + e * cy)],
        ]
    }

    pub fn crop_from_image(&self) -> Affine2 {
        Affine2 {
            m: self.crop_from_image_f64().map(|r| r.map(|v| v as f32)),
        }
    }

    pub fn image_from_crop(&self) -> Affine2 {
        self.crop_from_image()
            .inverse()
            .expect("a crop of positive size is invertible")
    }
}

/// Cuts the 256x256 crop described by `spec` (bilinear, replicated border); returns it with
/// `image_from_crop`.
pub fn warp_crop(image: &RgbImage, spec: &CropSpec) -> Result<(RgbImage, Affine2)> {
    if !spec.size.is_finite() || spec.size <= 0.0 {
        return Err(Error::Internal(format!(
            "mesh crop of size {} (must be positive)",
            spec.size
        )));
    }
    let crop = warp_image_f64(
        image,
        &spec.crop_from_image_f64(),
        CROP_SIZE as u32,
        CROP_SIZE as u32,
        Interpolation::Bilinear,
    )?;
    Ok((crop, spec.image_from_crop()))
}

/// The crop the mesh network takes for a detected face ([`CropSpec::from_detection`]).
pub fn mesh_crop(image: &RgbImage, det: &Detection) -> Result<(RgbImage, Affine2)> {
    warp_crop(image, &CropSpec::from_detection(det))
}

/// The network's output for one crop.
#[derive(Debug, Clone, PartialEq)]
pub struct CropMesh {
    /// 478 points in the network's crop coordinates (left edge at 0; see the module docs).
    pub points: Vec<[f32; 3]>,
    /// Probability that the crop holds a face.
    pub presence: f32,
}

/// A face mesh in image coordinates.
#[derive(Debug, Clone, PartialEq)]
pub struct Mesh {
    /// 478 points in image pixels; z (relative depth, larger is farther) in the same scale as x.
    pub points: Vec<[f32; 3]>,
    pub presence: f32,
    /// Maps crop pixels (pixel centres at integers) to image pixels.
    pub image_from_crop: Affine2,
}

impl Mesh {
    pub fn point2(&self, i: usize) -> Point {
        [self.points[i][0], self.points[i][1]]
    }
}

/// Scale from 8-bit pixel values to [0, 1] (the f32 of 1/255, as candle's `affine` rounds it).
const INV_255: f32 = (1.0f64 / 255.0) as f32;

/// The loaded mesh network.
pub struct FaceMesh {
    graph: Graph,
    landmarks_out: usize,
    presence_out: usize,
    device: Device,
}

impl FaceMesh {
    /// Loads from the model folder (as `ModelStore::require("face-landmarker")` gives it) or
    /// from the `.safetensors` file itself.
    pub fn load(path: &Path, device: &Device) -> Result<Self> {
        let file = if path.is_dir() {
            path.join(WEIGHTS_FILE)
        } else {
            path.to_path_buf()
        };
        if !file.is_file() {
            return Err(Error::BadModel {
                name: MODEL_NAME.into(),
                path: file,
                reason: "missing".into(),
            });
        }
        let graph = Graph::load(&file, MODEL_NAME, device)?;
        let output = |name: &str| {
            graph.output_index(name).ok_or_else(|| Error::BadModel {
                name: MODEL_NAME.into(),
                path: file.clone(),
                reason: format!("the graph has no output {name}; is this face_landmarks_detector?"),
            })
        };
        let (landmarks_out, presence_out) = (output("Identity")?, output("Identity_1")?);
        Ok(FaceMesh {
            graph,
            landmarks_out,
            presence_out,
            device: device.clone(),
        })
    }

    /// Runs the network on `[b, 3, 256, 256]` RGB in [0, 1]; returns points `[b, 478, 3]` in
    /// network crop coordinates and presence probabilities `[b]`.
    pub fn forward(&self, crops: &Tensor) -> Result<(Tensor, Tensor)> {
        let outs = self.graph.forward(crops)?;
        let b = crops.dim(0)?;
        let points = outs[self.landmarks_out].reshape((b, NUM_POINTS, 3))?;
        let presence = candle_nn::ops::sigmoid(&outs[self.presence_out].reshape(b)?)?;
        Ok((points, presence))
    }

    /// Runs the network on a batch of 256x256 crops.
    pub fn run_crops(&self, crops: &[RgbImage]) -> Result<Vec<CropMesh>> {
        if crops.is_empty() {
            return Ok(vec![]);
        }
        // [b, 3, 256, 256] RGB in [0, 1], planes filled straight from the interleaved bytes.
        let plane = CROP_SIZE * CROP_SIZE;
        let mut data = vec![0f32; crops.len() * 3 * plane];
        for (c, dst) in crops.iter().zip(data.chunks_exact_mut(3 * plane)) {
            if (c.width as usize, c.height as usize) != (CROP_SIZE, CROP_SIZE) {
                return Err(Error::Internal(format!(
                    "mesh crop is {}x{}, expected 256x256",
                    c.width, c.height
                )));
            }
            for (p, rgb) in c.data.chunks_exact(3).enumerate() {
                for (ch, &v) in rgb.iter().enumerate() {
                    dst[ch * plane + p] = v as f32 * INV_255;
                }
            }
        }
        let x = Tensor::from_vec(data, (crops.len(), 3, CROP_SIZE, CROP_SIZE), &self.device)?;
        let (points, presence) = self.forward(&x)?;
        let points = points.to_vec3::<f32>()?;
        let presence = presence.to_vec1::<f32>()?;
        Ok(points
            .into_iter()
            .zip(presence)
            .map(|(p, presence)| CropMesh {
                points: p.into_iter().map(|v| [v[0], v[1], v[2]]).collect(),
                presence,
            })
            .collect())
    }

    /// The mesh of the face in `spec`'s crop, in image pixels.
    pub fn landmarks_in(&self, image: &RgbImage, spec: &CropSpec) -> Result<Mesh> {
        let (crop, image_from_crop) = warp_crop(image, spec)?;
        let out = self.run_crops(std::slice::from_ref(&crop))?.remove(0);
        Ok(to_image(&out, image_from_crop))
    }

    /// The mesh of a detected face, in image pixels.
    pub fn landmarks(&self, image: &RgbImage, det: &Detection) -> Result<Mesh> {
        self.landmarks_in(image, &CropSpec::from_detection(det))
    }
}

/// Maps a crop's mesh into the image (see the module docs for the half-pixel shift).
pub fn to_image(mesh: &CropMesh, image_from_crop: Affine2) -> Mesh {
    let scale = image_from_crop.scale();
    let points = mesh
        .points
        .iter()
        .map(|&[x, y, z]| {
            let [ix, iy] = image_from_crop.apply([x - 0.5, y - 0.5]);
            [ix, iy, z * scale]
        })
        .collect();
    Mesh {
        points,
        presence: mesh.presence,
        image_from_crop,
    }
}
