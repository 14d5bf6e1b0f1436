//! Everything one image says about each face in it: the face pipeline (MTCNN, mesh, 68
//! points, pose), MediaPipe's 52 blendshapes, the mesh measures, AU evidence from the cue
//! table (`facs::appearance`), the fer classifier's distribution on the aligned face, and the
//! prototype inference from the AUs. `actfer au` prints it; the agent's tools call it.

use candle_core::Device;
use serde::Serialize;

use crate::error::Result;
use crate::face::align::{Alignment, DEFAULT_ALIGNED_SIZE};
use crate::face::blendshapes::{BlendshapeScores, Blendshapes};
use crate::face::expression::{EmotionDistribution, ExpressionClassifier};
use crate::face::measures::FaceMeasures;
use crate::face::pipeline::{Face, FacePipeline};
use crate::facs::appearance::evidence;
use crate::facs::evidence::AuEvidence;
use crate::facs::inference::{infer, Inference};
use crate::media::RgbImage;
use crate::models::ModelStore;

/// The networks appearance evidence needs, loaded once.
pub struct AppearanceModels {
    pub faces: FacePipeline,
    pub blendshapes: Blendshapes,
    pub classifier: ExpressionClassifier,
}

/// One face's appearance evidence.
#[derive(Debug, Clone, Serialize)]
pub struct FaceAppearance {
    pub face: Face,
    pub measures: FaceMeasures,
    /// The 52 blendshape scores by name, in the model's order.
    pub blendshapes: Vec<(String, f32)>,
    /// Every AU the cue table covers, strongest first.
    pub aus: Vec<AuEvidence>,
    /// The fer classifier on the aligned face.
    pub classifier: EmotionDistribution,
    /// Prototype matching over `aus`.
    pub inference: Inference,
}

impl FaceAppearance {
    /// The AUs at or above [`crate::facs::evidence::PRESENT`], strongest first.
    pub fn present(&self) -> impl Iterator<Item = &AuEvidence> {
        self.aus.iter().filter(|a| a.present())
    }
}

impl AppearanceModels {
    pub fn load(store: &ModelStore, device: &Device) -> Result<Self> {
        let landmarker = store.require("face-landmarker")?;
        Ok(AppearanceModels {
            faces: FacePipeline::load(store, device)?,
            blendshapes: Blendshapes::load(&landmarker, device)?,
            classifier: ExpressionClassifier::load(
                &store.require(crate::face::expression::MODEL_NAME)?,
                device,
            )?,
        })
    }

    /// Every face in the image, largest first.
    pub fn analyse(&self, image: &RgbImage) -> Result<Vec<FaceAppearance>> {
        let faces = self.faces.faces(image)?;
        self.analyse_faces(image, faces)
    }

    /// Appearance evidence for faces already found in `image`.
    pub fn analyse_faces(&self, image: &RgbImage, faces: Vec<Face>) -> Result<Vec<FaceAppearance>> {
        if faces.is_empty() {
            return Ok(vec![]);
        }
        let points: Vec<Vec<[f32; 2]>> = faces
            .iter()
            .map(|f| self.blendshapes.subset(&f.mesh))
            .collect();
        let start = std::time::Instant::now();
        let scores = self.blendshapes.run_points(&points)?;
        let blendshapes_ms = start.elapsed().as_secs_f64() * 1e3;
        let alignments = faces
            .iter()
            .map(|f| Alignment::from_landmarks68(&f.landmarks68, DEFAULT_ALIGNED_SIZE))
            .collect::<Result<Vec<_>>>()?;
        let classes = self.classifier.classify_faces(image, &alignments)?;
        let classifier_ms = start.elapsed().as_secs_f64() * 1e3 - blendshapes_ms;
        tracing::debug!(
            faces = faces.len(),
            blendshapes_ms,
            classifier_ms,
            "appearance"
        );
        faces
            .into_iter()
            .zip(scores)
            .zip(classes)
            .map(|((face, scores), classifier)| {
                let measures = FaceMeasures::from_mesh(&face.mesh).ok_or_else(|| {
                    crate::Error::Internal("the mesh of a detected face is degenerate".into())
                })?;
                Ok(appearance(face, measures, &scores, classifier))
            })
            .collect()
    }
}

fn appearance(
    face: Face,
    measures: FaceMeasures,
    scores: &BlendshapeScores,
    classifier: EmotionDistribution,
) -> FaceAppearance {
    let aus = evidence(&|name| scores.get(name), &measures);
    let inference = infer(&aus);
    FaceAppearance {
        blendshapes: scores.iter().map(|(n, v)| (n.to_string(), v)).collect(),
        face,
        measures,
        aus,
        classifier,
        inference,
    }
}
