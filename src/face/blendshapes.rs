//! The 52 blendshape scores of MediaPipe FaceLandmarker v2 (`face_blendshapes.tflite`,
//! converted by `tools/convert/face_landmarker.py`): an MLP-Mixer from 146 of the 478 mesh
//! points to ARKit-style scores in [0, 1] (`_neutral`, `browDownLeft`, ..., `noseSneerRight`).
//!
//! Input, as MediaPipe builds it (`face_blendshapes_graph.cc`): the 146 points of the model's
//! landmark subset ([`Blendshapes::landmark_indices`], stored in the model's metadata), x and y
//! only, in pixels of the whole input image: `face_landmarks_detector_graph.cc` passes the mesh
//! projected from the crop onto the image together with that image's size, and
//! `LandmarksToTensorCalculator` multiplies the normalised x by the image width and y by its
//! height; shape `[1, 146, 2]`. The network itself first subtracts
//! the mean point and divides by the mean distance to it, so the output does not depend on where
//! the face is or on its size in pixels, nor on the half-pixel offset between MediaPipe's
//! coordinates (left image edge at 0) and [`Mesh`]'s (pixel centres at integers). It does depend
//! on the in-plane rotation and on equal pixel scales for x and y. Points that all coincide give
//! NaN scores (the mean distance is zero).
//!
//! Network (layer names as in the checkpoint, under `model_1/GhumMarkerPoserMlpMixerGeneral/`):
//! 1. normalise as above, then multiply by the stored constant (0.5);
//! 2. `conv2d`: a linear map over the point axis, 146 points -> 96 tokens, each token keeping
//!    (x, y); `MLPMixer/input_tokens_embedding`: 2 -> 64 channels per token;
//! 3. `MLPMixer/AddExtraTokens`: a learnt token put first (97 tokens);
//! 4. `MLPMixer/MixerBlock_{0..3}`: layer norm (scale, no offset) -> token-mixing MLP
//!    (97 -> 384 -> 97, ReLU) + residual; layer norm -> channel-mixing MLP (64 -> 256 -> 64,
//!    ReLU) + residual;
//! 5. `output_blendweights`: the first token's 64 channels -> 52 logits -> sigmoid.
//!
//! The TFLite 1x1 convolutions are plain linear layers here (weights `[out, 1, 1, in]`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{Device, Module, Tensor};
use candle_nn::{LayerNorm, Linear};

use super::mesh::{Mesh, MODEL_NAME, NUM_POINTS};
use crate::error::{Error, Result};

/// The blendshape network's file inside the model folder.
pub const WEIGHTS_FILE: &str = "face_blendshapes.safetensors";
/// Mesh points the network takes.
pub const NUM_INPUT_POINTS: usize = 146;
/// Scores the network gives.
pub const NUM_BLENDSHAPES: usize = 52;
/// Tokens the 146 points are mixed into (before the extra token is added).
const TOKENS: usize = 96;
/// Channels per token.
const CHANNELS: usize = 64;
/// Hidden width of the token-mixing MLPs.
const TOKEN_HIDDEN: usize = 384;
/// Hidden width of the channel-mixing MLPs.
const CHANNEL_HIDDEN: usize = 256;
/// Where the checkpoint keeps the network's tensors.
const PREFIX: &str = "model_1/GhumMarkerPoserMlpMixerGeneral";

/// The constant tensors of the file, read by their TFLite names (the converter appends
/// `_dequantize` to the f16 constants it widened to f32).
struct Weights {
    tensors: HashMap<String, Tensor>,
    file: PathBuf,
}

impl Weights {
    fn bad(&self, reason: String) -> Error {
        bad_model(&self.file, reason)
    }

    fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let t = self
            .tensors
            .get(name)
            .ok_or_else(|| self.bad(format!("no tensor {name}; is this face_blendshapes?")))?;
        if t.dims() != shape {
            return Err(self.bad(format!("{name} is {:?}, expected {shape:?}", t.dims())));
        }
        Ok(t.clone())
    }

    fn has_prefix(&self, prefix: &str) -> bool {
        let prefix = format!("{prefix}/");
        self.tensors.keys().any(|k| k.starts_with(&prefix))
    }

    /// A single-value constant.
    fn scalar(&self, name: &str) -> Result<f64> {
        Ok(self.get(name, &[1])?.to_vec1::<f32>()?[0] as f64)
    }

    /// A TFLite 1x1 CONV_2D as a linear layer: `{name}/Conv2D` `[out, 1, 1, in]` and
    /// `{name}/BiasAdd/ReadVariableOp` `[out]`.
    fn linear(&self, name: &str, inputs: usize, outputs: usize) -> Result<Linear> {
        let w = self.get(
            &format!("{name}/Conv2D_dequantize"),
            &[outputs, 1, 1, inputs],
        )?;
        let b = self.get(
            &format!("{name}/BiasAdd/ReadVariableOp_dequantize"),
            &[outputs],
        )?;
        Ok(Linear::new(w.reshape((outputs, inputs))?, Some(b)))
    }

    /// Layer norm over channels with a learnt scale and no offset (`{name}/batchnorm/mul`).
    fn layer_norm(&self, name: &str, channels: usize, eps: f64) -> Result<LayerNorm> {
        let scale = self.get(
            &format!("{name}/batchnorm/mul/ReadVariableOp_dequantize"),
            &[channels],
        )?;
        Ok(LayerNorm::new_no_bias(scale, eps))
    }
}

fn bad_model(file: &Path, reason: impl Into<String>) -> Error {
    Error::BadModel {
        name: MODEL_NAME.into(),
        path: file.to_path_buf(),
        reason: reason.into(),
    }
}

/// Two linear layers with a ReLU between.
struct Mlp {
    fc1: Linear,
    fc2: Linear,
}

impl Mlp {
    fn load(w: &Weights, name: &str, dim: usize, hidden: usize) -> Result<Self> {
        Ok(Mlp {
            fc1: w.linear(&format!("{name}/Mlp_1"), dim, hidden)?,
            fc2: w.linear(&format!("{name}/Mlp_2"), hidden, dim)?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.fc2.forward(&self.fc1.forward(x)?.relu()?)?)
    }
}

struct MixerBlock {
    norm1: LayerNorm,
    token_mixing: Mlp,
    norm2: LayerNorm,
    channel_mixing: Mlp,
}

impl MixerBlock {
    /// `x`: `[b, tokens, channels]`, returned in the same shape.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.norm1.forward(x)?.transpose(1, 2)?.contiguous()?; // [b, channels, tokens]
        let y = self.token_mixing.forward(&y)?.transpose(1, 2)?; // [b, tokens, channels]
        let x = (x + y)?;
        let y = self.channel_mixing.forward(&self.norm2.forward(&x)?)?;
        Ok((x + y)?)
    }
}

/// The 52 scores for one face, each in [0, 1], in the model's order ([`Blendshapes::names`]).
#[derive(Debug, Clone, PartialEq)]
pub struct BlendshapeScores {
    names: Arc<[String]>,
    pub values: Vec<f32>,
}

impl BlendshapeScores {
    /// The score of one blendshape by its ARKit name (`"jawOpen"`); `None` for an unknown name.
    pub fn get(&self, name: &str) -> Option<f32> {
        let i = self.names.iter().position(|n| n == name)?;
        Some(self.values[i])
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// `(name, score)` in the model's order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, f32)> + '_ {
        self.names
            .iter()
            .map(String::as_str)
            .zip(self.values.iter().copied())
    }

    /// The `k` highest scores, highest first (`_neutral` included).
    pub fn top(&self, k: usize) -> Vec<(&str, f32)> {
        let mut all: Vec<_> = self.iter().collect();
        all.sort_by(|a, b| b.1.total_cmp(&a.1));
        all.truncate(k);
        all
    }
}

/// The loaded blendshape network.
pub struct Blendshapes {
    input_scale: f64,
    points_to_tokens: Linear,
    token_embedding: Linear,
    /// `[1, 1, channels]`.
    extra_token: Tensor,
    blocks: Vec<MixerBlock>,
    output: Linear,
    names: Arc<[String]>,
    landmark_indices: Vec<usize>,
    device: Device,
}

impl Blendshapes {
    /// Loads from the model folder (as `ModelStore::require("face-landmarker")` gives it) or
    /// from the `.safetensors` file itself. A path that does not exist is [`Error::NotFound`];
    /// a model folder without the file, or a file that is not the converted blendshape network,
    /// is [`Error::BadModel`].
    pub fn load(path: &Path, device: &Device) -> Result<Self> {
        if !path.exists() {
            return Err(Error::NotFound {
                path: path.to_path_buf(),
            });
        }
        let file = if path.is_dir() {
            path.join(WEIGHTS_FILE)
        } else {
            path.to_path_buf()
        };
        if !file.is_file() {
            return Err(bad_model(&file, "missing"));
        }
        let bytes = std::fs::read(&file).map_err(|e| Error::io(file.display().to_string(), e))?;
        let meta = read_metadata(&bytes).map_err(|r| bad_model(&file, r))?;
        let names: Vec<String> = metadata_list(&meta, "blendshape_names", NUM_BLENDSHAPES)
            .map_err(|r| bad_model(&file, r))?;
        let landmark_indices: Vec<usize> =
            metadata_list(&meta, "landmark_indices", NUM_INPUT_POINTS)
                .map_err(|r| bad_model(&file, r))?;
        if let Some(i) = landmark_indices.iter().find(|&&i| i >= NUM_POINTS) {
            return Err(bad_model(
                &file,
                format!("landmark index {i} is outside the {NUM_POINTS}-point mesh"),
            ));
        }
        let tensors = candle_core::safetensors::load_buffer(&bytes, device)
            .map_err(|e| bad_model(&file, format!("unreadable tensors: {e}")))?;
        let w = Weights { tensors, file };
        Self::from_weights(&w, names, landmark_indices, device)
    }

    fn from_weights(
        w: &Weights,
        names: Vec<String>,
        landmark_indices: Vec<usize>,
        device: &Device,
    ) -> Result<Self> {
        let mixer = format!("{PREFIX}/MLPMixer");
        // One epsilon, stored once, serves every layer norm.
        let eps = w.scalar(&format!(
            "{mixer}/MixerBlock_0/layer_norm1/batchnorm/add/y_dequantize"
        ))?;
        let block_name = |i: usize| format!("{mixer}/MixerBlock_{i}");
        let mut blocks = vec![];
        while w.has_prefix(&block_name(blocks.len())) {
            let block = block_name(blocks.len());
            blocks.push(MixerBlock {
                norm1: w.layer_norm(&format!("{block}/layer_norm1"), CHANNELS, eps)?,
                token_mixing: Mlp::load(
                    w,
                    &format!("{block}/mlp_token_mixing"),
                    TOKENS + 1,
                    TOKEN_HIDDEN,
                )?,
                norm2: w.layer_norm(&format!("{block}/layer_norm2"), CHANNELS, eps)?,
                channel_mixing: Mlp::load(
                    w,
                    &format!("{block}/mlp_channel_mixing"),
                    CHANNELS,
                    CHANNEL_HIDDEN,
                )?,
            });
        }
        if blocks.is_empty() {
            return Err(w.bad("no MixerBlock_0 tensors; is this face_blendshapes?".into()));
        }
        Ok(Blendshapes {
            input_scale: w.scalar(&format!(
                "{PREFIX}/tf.math.truediv/truediv;{PREFIX}/tf.math.truediv/truediv/y_dequantize"
            ))?,
            points_to_tokens: w.linear(&format!("{PREFIX}/conv2d"), NUM_INPUT_POINTS, TOKENS)?,
            token_embedding: w.linear(&format!("{mixer}/input_tokens_embedding"), 2, CHANNELS)?,
            extra_token: w
                .get(
                    &format!("{mixer}/AddExtraTokens/strided_slice_1_dequantize"),
                    &[1, 1, 1, CHANNELS],
                )?
                .reshape((1, 1, CHANNELS))?,
            blocks,
            output: w.linear(
                &format!("{PREFIX}/output_blendweights"),
                CHANNELS,
                NUM_BLENDSHAPES,
            )?,
            names: names.into(),
            landmark_indices,
            device: device.clone(),
        })
    }

    /// The 52 blendshape names, in output order (`_neutral` first).
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The 146 mesh indices the network reads, in input order.
    pub fn landmark_indices(&self) -> &[usize] {
        &self.landmark_indices
    }

    /// Runs the network on points `[b, 146, 2]` (x, y in image pixels); returns scores
    /// `[b, 52]`.
    pub fn forward(&self, points: &Tensor) -> Result<Tensor> {
        let (b, _, _) = points.dims3()?;
        // Centre on the mean point, divide by the mean distance to it.
        let centred = points.broadcast_sub(&points.mean_keepdim(1)?)?; // [b, 146, 2]
        let spread = centred.sqr()?.sum_keepdim(2)?.sqrt()?.mean_keepdim(1)?; // [b, 1, 1]
        let x = centred
            .broadcast_div(&spread)?
            .affine(self.input_scale, 0.0)?;
        let x = x.transpose(1, 2)?.contiguous()?; // [b, 2, 146]
        let x = self.points_to_tokens.forward(&x)?; // [b, 2, 96]
        let x = x.transpose(1, 2)?.contiguous()?; // [b, 96, 2]
        let x = self.token_embedding.forward(&x)?; // [b, 96, 64]
        let extra = self.extra_token.repeat((b, 1, 1))?; // [b, 1, 64]
        let mut x = Tensor::cat(&[extra, x], 1)?; // [b, 97, 64]
        for block in &self.blocks {
            x = block.forward(&x)?;
        }
        let first = x.narrow(1, 0, 1)?.squeeze(1)?; // [b, 64]
        Ok(candle_nn::ops::sigmoid(&self.output.forward(&first)?)?) // [b, 52]
    }

    /// The network's input points of a mesh: its 146 subset points, x and y.
    pub fn input_points(&self, mesh: &Mesh) -> Result<Vec<[f32; 2]>> {
        if mesh.points.len() != NUM_POINTS {
            return Err(Error::Internal(format!(
                "a mesh of {} points, expected {NUM_POINTS}",
                mesh.points.len()
            )));
        }
        Ok(self.subset(&mesh.points))
    }

    /// The 146 input points, x and y, of 478 mesh points `[x, y, z]` in image pixels.
    pub fn subset(&self, points: &[[f32; 3]]) -> Vec<[f32; 2]> {
        self.landmark_indices
            .iter()
            .map(|&i| [points[i][0], points[i][1]])
            .collect()
    }

    /// Scores for each set of 146 input points (as [`Self::input_points`] gives them), run as
    /// one batch.
    pub fn run_points(&self, points: &[Vec<[f32; 2]>]) -> Result<Vec<BlendshapeScores>> {
        if points.is_empty() {
            return Ok(vec![]);
        }
        let mut data: Vec<f32> = Vec::with_capacity(points.len() * NUM_INPUT_POINTS * 2);
        for p in points {
            if p.len() != NUM_INPUT_POINTS {
                return Err(Error::Internal(format!(
                    "{} blendshape input points, expected {NUM_INPUT_POINTS}",
                    p.len()
                )));
            }
            data.extend(p.iter().flatten());
        }
        let x = Tensor::from_vec(data, (points.len(), NUM_INPUT_POINTS, 2), &self.device)?;
        Ok(self
            .forward(&x)?
            .to_vec2::<f32>()?
            .into_iter()
            .map(|values| BlendshapeScores {
                names: self.names.clone(),
                values,
            })
            .collect())
    }

    /// Scores for each mesh (points in image pixels), run as one batch.
    pub fn scores_batch(&self, meshes: &[Mesh]) -> Result<Vec<BlendshapeScores>> {
        let points = meshes
            .iter()
            .map(|m| self.input_points(m))
            .collect::<Result<Vec<_>>>()?;
        self.run_points(&points)
    }

    /// Scores for one mesh (points in image pixels).
    pub fn scores(&self, mesh: &Mesh) -> Result<BlendshapeScores> {
        Ok(self.scores_batch(std::slice::from_ref(mesh))?.remove(0))
    }
}

/// The safetensors header's `__metadata__` (string values).
fn read_metadata(bytes: &[u8]) -> std::result::Result<HashMap<String, String>, String> {
    let head = bytes.get(..8).ok_or("file too short")?;
    let n = u64::from_le_bytes(head.try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(
        bytes
            .get(8..8usize.saturating_add(n))
            .ok_or("truncated header")?,
    )
    .map_err(|e| format!("bad safetensors header: {e}"))?;
    serde_json::from_value(header["__metadata__"].clone())
        .map_err(|e| format!("bad safetensors metadata: {e}"))
}

/// A metadata entry holding a JSON list of exactly `len` items.
fn metadata_list<T: serde::de::DeserializeOwned>(
    meta: &HashMap<String, String>,
    key: &str,
    len: usize,
) -> std::result::Result<Vec<T>, String> {
    let text = meta
        .get(key)
        .ok_or_else(|| format!("no `{key}` in the metadata"))?;
    let list: Vec<T> = serde_json::from_str(text).map_err(|e| format!("bad `{key}`: {e}"))?;
    if list.len() != len {
        return Err(format!(
            "`{key}` has {} entries, expected {len}",
            list.len()
        ));
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scores(values: Vec<f32>) -> BlendshapeScores {
        BlendshapeScores {
            names: vec!["a".to_string(), "b".into(), "c".into()].into(),
            values,
        }
    }

    #[test]
    fn scores_are_found_by_name_and_ranked() {
        let s = scores(vec![0.1, 0.7, 0.4]);
        assert_eq!(s.get("c"), Some(0.4));
        assert_eq!(s.get("jawOpen"), None);
        assert_eq!(s.top(2), vec![("b", 0.7), ("c", 0.4)]);
    }

    #[test]
    fn metadata_lists_must_have_the_stated_length() {
        let meta = HashMap::from([("k".to_string(), "[1, 2, 3]".to_string())]);
        assert_eq!(
            metadata_list::<usize>(&meta, "k", 3).unwrap(),
            vec![1, 2, 3]
        );
        assert!(metadata_list::<usize>(&meta, "k", 4).is_err());
        assert!(metadata_list::<usize>(&meta, "missing", 3).is_err());
    }
}
