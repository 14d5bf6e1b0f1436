//! MTCNN face detection (Zhang et al. 2016) with facenet-pytorch 2.6.0's weights and
//! procedure, reproduced step by step so that boxes and landmarks match it to a pixel.
//!
//! 1. Image pyramid: scales `12 / min_face_size * factor^k` while the shorter side stays at
//!    least 12 px; each level is resized by area averaging ([`resize`]).
//! 2. P-Net on every level; cells with face probability >= `thresholds[0]` become
//!    candidates; NMS (IoU 0.5) per level, then NMS (IoU 0.7) across levels; P-Net's box
//!    regression; boxes made square.
//! 3. R-Net on 24x24 crops of all candidates in one batch; keep score > `thresholds[1]`;
//!    NMS (IoU 0.7); regression; square.
//! 4. O-Net on 48x48 crops; keep score > `thresholds[2]`; landmarks; regression; NMS with
//!    intersection over the smaller box (0.7).

mod boxes;
mod layers;
mod onet;
mod pnet;
mod resize;
mod rnet;

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::face::{Detection, FaceBox};
use crate::media::RgbImage;

use boxes::Candidate;
pub use onet::{ONet, ONET_SIZE};
pub use pnet::PNet;
use resize::{area_resize_planar, AreaSums, Region};
pub use rnet::{RNet, RNET_SIZE};

/// Detector settings; the defaults are facenet-pytorch's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MtcnnConfig {
    /// The smallest face side searched for, in image pixels: the first pyramid level is
    /// scaled by `12 / min_face_size`.
    pub min_face_size: f64,
    /// Score thresholds of P-Net, R-Net and O-Net.
    pub thresholds: [f32; 3],
    /// Scale step between pyramid levels.
    pub factor: f64,
    /// IoU above which P-Net candidates of one pyramid level suppress each other.
    pub nms_pnet_level: f32,
    /// IoU above which P-Net candidates of all levels suppress each other.
    pub nms_pnet: f32,
    /// IoU above which R-Net candidates suppress each other.
    pub nms_rnet: f32,
    /// Intersection over the smaller box above which final detections suppress each other.
    pub nms_onet_min: f32,
    /// Crops per R-Net / O-Net batch (bounds memory; results do not depend on it).
    pub batch_size: usize,
}

impl Default for MtcnnConfig {
    fn default() -> Self {
        MtcnnConfig {
            min_face_size: 20.0,
            thresholds: [0.6, 0.7, 0.7],
            factor: 0.709,
            nms_pnet_level: 0.5,
            nms_pnet: 0.7,
            nms_rnet: 0.7,
            nms_onet_min: 0.7,
            batch_size: 256,
        }
    }
}

impl MtcnnConfig {
    /// The pyramid scales for an image of `width x height`, largest first.
    pub fn scales(&self, width: usize, height: usize) -> Vec<f64> {
        let first = 12.0 / self.min_face_size;
        let mut min_side = width.min(height) as f64 * first;
        let mut scale = first;
        let mut scales = Vec::new();
        while min_side >= 12.0 {
            scales.push(scale);
            scale *= self.factor;
            min_side *= self.factor;
        }
        scales
    }
}

/// The three MTCNN networks and the detection procedure around them.
#[derive(Debug, Clone)]
pub struct Mtcnn {
    cfg: MtcnnConfig,
    pnet: PNet,
    rnet: RNet,
    onet: ONet,
    device: Device,
}

/// A candidate together with the image it belongs to.
type Tagged = (usize, Candidate);

impl Mtcnn {
    /// Builds the detector from the tensors under `pnet.`, `rnet.` and `onet.` in `vb`.
    pub fn new(cfg: MtcnnConfig, vb: VarBuilder) -> candle_core::Result<Self> {
        Ok(Mtcnn {
            cfg,
            pnet: PNet::new(vb.pp("pnet"))?,
            rnet: RNet::new(vb.pp("rnet"))?,
            onet: ONet::new(vb.pp("onet"))?,
            device: vb.device().clone(),
        })
    }

    /// Loads the converted weights (`mtcnn.safetensors`, see tools/convert/mtcnn.py) with the
    /// default settings.
    pub fn load(path: &Path, device: &Device) -> Result<Self> {
        Self::load_with(MtcnnConfig::default(), path, device)
    }

    pub fn load_with(cfg: MtcnnConfig, path: &Path, device: &Device) -> Result<Self> {
        let bad = |reason: String| Error::BadModel {
            name: "mtcnn".into(),
            path: path.to_path_buf(),
            reason,
        };
        if !path.is_file() {
            return Err(Error::NotFound {
                path: path.to_path_buf(),
            });
        }
        let tensors = candle_core::safetensors::load(path, device)
            .map_err(|e| bad(format!("not a readable safetensors file ({e})")))?;
        let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
        Mtcnn::new(cfg, vb).map_err(|e| bad(format!("not the MTCNN weights actfer expects ({e})")))
    }

    pub fn config(&self) -> &MtcnnConfig {
        &self.cfg
    }

    /// Faces in one image, highest score first.
    pub fn detect(&self, image: &RgbImage) -> Result<Vec<Detection>> {
        Ok(self.detect_batch(&[image])?.pop().unwrap_or_default())
    }

    /// Faces in each image, highest score first. Images of equal size share P-Net batches;
    /// R-Net and O-Net run on the candidates of all images together.
    pub fn detect_batch(&self, images: &[&RgbImage]) -> Result<Vec<Vec<Detection>>> {
        let start = std::time::Instant::now();
        let sums: Vec<AreaSums> = images.par_iter().map(|i| AreaSums::new(i)).collect();
        let cands = self.propose(images, &sums)?;
        let pnet_ms = start.elapsed().as_secs_f64() * 1e3;
        let pnet_kept: usize = cands.iter().map(Vec::len).sum();
        let cands = self.refine(images, &sums, cands)?;
        let rnet_ms = start.elapsed().as_secs_f64() * 1e3 - pnet_ms;
        let rnet_kept: usize = cands.iter().map(Vec::len).sum();
        let faces = self.output(images, &sums, cands)?;
        let total_ms = start.elapsed().as_secs_f64() * 1e3;
        tracing::debug!(
            images = images.len(),
            pnet_kept,
            rnet_kept,
            pnet_ms,
            rnet_ms,
            total_ms,
            "mtcnn"
        );
        Ok(faces)
    }

    /// Stage 1: P-Net over the pyramid. Returns squared candidate boxes per image.
    fn propose(&self, images: &[&RgbImage], sums: &[AreaSums]) -> Result<Vec<Vec<Candidate>>> {
        let mut per_image: Vec<Vec<Candidate>> = vec![Vec::new(); images.len()];
        let mut done = vec![false; images.len()];
        for first in 0..images.len() {
            if done[first] {
                continue;
            }
            let (w, h) = (images[first].width as usize, images[first].height as usize);
            let group: Vec<usize> = (first..images.len())
                .filter(|&i| {
                    !done[i] && images[i].width as usize == w && images[i].height as usize == h
                })
                .collect();
            group.iter().for_each(|&i| done[i] = true);
            if w == 0 || h == 0 {
                continue;
            }
            // Levels run in parallel; their candidates are gathered in pyramid order.
            let levels = self
                .cfg
                .scales(w, h)
                .into_par_iter()
                .map(|scale| self.propose_level(images, sums, &group, scale))
                .collect::<Result<Vec<_>>>()?;
            for level in levels {
                for (&i, found) in group.iter().zip(level) {
                    per_image[i].extend(found);
                }
            }
        }
        Ok(per_image
            .into_iter()
            .map(|c| {
                let keep = boxes::nms_union(&c, self.cfg.nms_pnet);
                keep.iter()
                    .map(|&k| Candidate {
                        bbox: boxes::square(boxes::regress_pnet(&c[k])),
                        ..c[k]
                    })
                    .collect()
            })
            .collect())
    }

    /// P-Net on the pyramid level `scale` of `group`'s images (all of one size): each image's
    /// candidates on that level after the per-level NMS.
    fn propose_level(
        &self,
        images: &[&RgbImage],
        sums: &[AreaSums],
        group: &[usize],
        scale: f64,
    ) -> Result<Vec<Vec<Candidate>>> {
        let (w, h) = (
            images[group[0]].width as usize,
            images[group[0]].height as usize,
        );
        let lh = (h as f64 * scale + 1.0) as usize;
        let lw = (w as f64 * scale + 1.0) as usize;
        let n = group.len();
        let mut level = vec![0f32; n * 3 * lh * lw];
        for (&i, dst) in group.iter().zip(level.chunks_exact_mut(3 * lh * lw)) {
            area_resize_planar(&sums[i], Region::whole(images[i]), lh, lw, dst);
        }
        let level = Tensor::from_vec(level, (n, 3, lh, lw), &self.device)?;
        let (reg, prob) = self.pnet.forward(&level)?; // [n, 4, oh, ow], [n, 2, oh, ow]
        let (_, _, _, ow) = prob.dims4()?;
        let prob = prob.flatten_all()?.to_vec1::<f32>()?;
        let reg = reg.flatten_all()?.to_vec1::<f32>()?;
        let plane = prob.len() / (2 * n);
        Ok((0..n)
            .map(|k| {
                let face = &prob[(2 * k + 1) * plane..(2 * k + 2) * plane];
                let regs = &reg[4 * k * plane..4 * (k + 1) * plane];
                let found = boxes::proposals(face, regs, ow, scale as f32, self.cfg.thresholds[0]);
                let keep = boxes::nms_union(&found, self.cfg.nms_pnet_level);
                boxes::pick(&found, &keep)
            })
            .collect())
    }

    /// Stage 2: R-Net on 24x24 crops. Returns squared candidate boxes per image.
    fn refine(
        &self,
        images: &[&RgbImage],
        sums: &[AreaSums],
        cands: Vec<Vec<Candidate>>,
    ) -> Result<Vec<Vec<Candidate>>> {
        let (tagged, crops) = crop_all(images, sums, cands, RNET_SIZE);
        let mut scored: Vec<Vec<Candidate>> = vec![Vec::new(); images.len()];
        let batch = self.cfg.batch_size.max(1);
        for (chunk, pixels) in tagged
            .chunks(batch)
            .zip(crops.chunks(batch * crop_len(RNET_SIZE)))
        {
            let xs =
                Tensor::from_slice(pixels, (chunk.len(), 3, RNET_SIZE, RNET_SIZE), &self.device)?;
            let (reg, prob) = self.rnet.forward(&xs)?; // [n, 4], [n, 2]
            let reg = reg.to_vec2::<f32>()?;
            let prob = prob.to_vec2::<f32>()?;
            for (((i, c), r), p) in chunk.iter().zip(reg).zip(prob) {
                if p[1] > self.cfg.thresholds[1] {
                    scored[*i].push(Candidate {
                        bbox: c.bbox,
                        score: p[1],
                        reg: [r[0], r[1], r[2], r[3]],
                    });
                }
            }
        }
        Ok(scored
            .into_iter()
            .map(|c| {
                let keep = boxes::nms_union(&c, self.cfg.nms_rnet);
                keep.iter()
                    .map(|&k| Candidate {
                        bbox: boxes::square(boxes::regress(&c[k])),
                        ..c[k]
                    })
                    .collect()
            })
            .collect())
    }

    /// Stage 3: O-Net on 48x48 crops; final boxes, scores and landmarks.
    fn output(
        &self,
        images: &[&RgbImage],
        sums: &[AreaSums],
        cands: Vec<Vec<Candidate>>,
    ) -> Result<Vec<Vec<Detection>>> {
        let (tagged, crops) = crop_all(images, sums, cands, ONET_SIZE);
        let mut found: Vec<Vec<(Candidate, [[f32; 2]; 5])>> = vec![Vec::new(); images.len()];
        let batch = self.cfg.batch_size.max(1);
        for (chunk, pixels) in tagged
            .chunks(batch)
            .zip(crops.chunks(batch * crop_len(ONET_SIZE)))
        {
            let xs =
                Tensor::from_slice(pixels, (chunk.len(), 3, ONET_SIZE, ONET_SIZE), &self.device)?;
            let (reg, marks, prob) = self.onet.forward(&xs)?; // [n, 4], [n, 10], [n, 2]
            let reg = reg.to_vec2::<f32>()?;
            let marks = marks.to_vec2::<f32>()?;
            let prob = prob.to_vec2::<f32>()?;
            for ((((i, c), r), m), p) in chunk.iter().zip(reg).zip(marks).zip(prob) {
                if p[1] > self.cfg.thresholds[2] {
                    let c = Candidate {
                        bbox: c.bbox,
                        score: p[1],
                        reg: [r[0], r[1], r[2], r[3]],
                    };
                    found[*i].push((c, image_from_box_fractions(&c.bbox, &m)));
                }
            }
        }
        Ok(found
            .into_iter()
            .map(|faces| {
                let regressed: Vec<Candidate> = faces
                    .iter()
                    .map(|(c, _)| Candidate {
                        bbox: boxes::regress(c),
                        ..*c
                    })
                    .collect();
                boxes::nms_min(&regressed, self.cfg.nms_onet_min)
                    .into_iter()
                    .map(|k| {
                        let [x0, y0, x1, y1] = regressed[k].bbox;
                        Detection {
                            bbox: FaceBox { x0, y0, x1, y1 },
                            score: regressed[k].score,
                            landmarks5: faces[k].1,
                        }
                    })
                    .collect()
            })
            .collect())
    }
}

/// Values in one normalised crop: [3, side, side].
fn crop_len(side: usize) -> usize {
    3 * side * side
}

/// Cuts every candidate's crop out of its image and resizes it to `side x side`; candidates
/// whose box lies outside the image are dropped. Returns the candidates kept, tagged with
/// their image, and their crops [n, 3, side, side] (flat).
fn crop_all(
    images: &[&RgbImage],
    sums: &[AreaSums],
    cands: Vec<Vec<Candidate>>,
    side: usize,
) -> (Vec<Tagged>, Vec<f32>) {
    let mut tagged = Vec::new();
    let mut crops = Vec::new();
    for (i, list) in cands.into_iter().enumerate() {
        let (w, h) = (images[i].width as usize, images[i].height as usize);
        for c in list {
            if let Some(region) = boxes::crop_region(c.bbox, w, h) {
                let start = crops.len();
                crops.resize(start + crop_len(side), 0.0);
                area_resize_planar(&sums[i], region, side, side, &mut crops[start..]);
                tagged.push((i, c));
            }
        }
    }
    (tagged, crops)
}

/// O-Net's landmarks (5 x then 5 y, fractions of the inclusive box size) in image pixels,
/// with facenet-pytorch's -1 pixel shift.
fn image_from_box_fractions(bbox: &[f32; 4], marks: &[f32]) -> [[f32; 2]; 5] {
    let w = bbox[2] - bbox[0] + 1.0;
    let h = bbox[3] - bbox[1] + 1.0;
    std::array::from_fn(|k| {
        [
            w * marks[k] + bbox[0] - 1.0,
            h * marks[k + 5] + bbox[1] - 1.0,
        ]
    })
}
