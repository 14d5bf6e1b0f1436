//! MEFlowNet: a warping-only iterative optical-flow network for facial micro-motion, sized for
//! a CPU (a 128x128 pair in tens of milliseconds on 2 cores).
//!
//! - [`encoder`]: a convolutional encoder (a stride-2 convolution, a second one of stride 1 or
//!   2, and a residual one) gives matching features of both frames and context features of
//!   frame 1, at 1/`stride` resolution ([`Config::stride`], 4 by default). With
//!   [`Config::image_features`] the matching features also carry the normalised frame itself,
//!   average-pooled to that resolution.
//! - Each of K iterations ([`update`]) warps frame 2's matching features by the current flow
//!   ([`warp`], bilinear sampling built from `gather`), reads them with frame 1's, the context
//!   and the flow (the part of the first convolution that sees only frame 1 and the context
//!   is computed once per pair), with [`Config::photometric`] also the brightness-constancy
//!   terms of frame 1 and of frame 2 warped at full resolution ([`photometric`]), refines
//!   with three convolutions and predicts a flow update, an uncertainty (a Laplace scale) and
//!   the mask of the learned convex upsampling ([`upsample`]). No correlation volume.
//! - The iterations start from zero flow or, with [`Config::initial_flow`] `dis`, from
//!   OpenCV's DIS flow of the same pair averaged over each feature cell; the output is then
//!   that flow plus the upsampled change the iterations made ([`MeFlowNet::forward_from`]),
//!   so the network learns to correct a classical estimate (RAFT's warm start, with DIS as
//!   the start). [`MeFlowMethod`] computes the start the weights were trained with.
//! - Training takes every iteration's full-resolution flow (the sequence loss); inference
//!   upsamples the last one only ([`Upsampled`]), and computes the uncertainty and the
//!   upsampling mask for that one only.
//! - Test-time averages in [`MeFlowMethod`]: with [`Config::reverse_average`] (the committed
//!   weights) it also runs the pair backwards and averages the forward flow with the
//!   backward one negated; with [`Config::mirror_average`] it also runs the pair mirrored
//!   left-right and averages with that flow mirrored back. The extra passes run side by side
//!   on rayon's threads.
//! - The convolutions are [`conv::Conv`]: candle ops when training, the packed CPU kernels of
//!   the face networks at inference (same weights, same results).
//!
//! Input normalisation: RGB in 0..=255 is scaled to 0..1, then each frame separately has its
//! mean removed and is divided by its standard deviation (over all pixels and channels; +1e-3),
//! so a global illumination gain between the frames does not read as motion.
//!
//! Sizes that are not multiples of the stride are padded (border replicated) and the flow
//! cropped back.
//!
//! Weights files carry their [`Config`] as JSON in the safetensors metadata
//! ([`config::CONFIG_KEY`]); [`save_weights`] writes it and [`MeFlowNet::load`] reads it.
//!
//! Head motion: the network outputs the total flow. [`crate::flow::head`] removes head motion
//! explicitly: a global (robust) similarity or affine fit of the flow, optionally weighted by
//! the face mask, is the head flow, and the remainder is the facial flow;
//! `examples/head_motion_eval.rs` measures this step against SynthME's
//! `onset_apex_face_K.flo` (the facial motion alone).

pub mod config;
pub mod conv;
pub mod encoder;
pub mod photometric;
pub mod update;
pub mod upsample;
pub mod warp;

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

pub use config::{Config, InitialFlow, CONFIG_KEY, DEFAULT_ITERS};

use crate::error::{Error, Result};
use crate::eval::flow::Flow;
use crate::flow::method::FlowMethod;
use crate::media::RgbImage;

/// The name errors and the CLI use.
pub const MODEL_NAME: &str = "meflownet";

/// Which iterations' flows a forward pass upsamples to full resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upsampled {
    /// Every iteration's (training: the sequence loss).
    All,
    /// The last one only (inference).
    Last,
}

/// What a forward pass returns.
#[derive(Debug, Clone)]
pub struct Output {
    /// Full-resolution flow, pixels, `[b, 2, h, w]`: after each iteration
    /// ([`Upsampled::All`]) or after the last one only ([`Upsampled::Last`]).
    pub flows: Vec<Tensor>,
    /// Full-resolution log Laplace scale of the last iteration's flow error: `[b, 1, h, w]`.
    pub log_scale: Tensor,
}

#[derive(Debug, Clone)]
pub struct MeFlowNet {
    cfg: Config,
    encoder: encoder::Encoder,
    update: update::UpdateBlock,
}

impl MeFlowNet {
    pub fn new(cfg: &Config, vb: VarBuilder) -> candle_core::Result<Self> {
        Ok(MeFlowNet {
            cfg: cfg.clone(),
            encoder: encoder::Encoder::new(cfg, vb.pp("encoder"))?,
            update: update::UpdateBlock::new(cfg, vb.pp("update"))?,
        })
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Flow from `a` to `b`, both `[n, 3, h, w]` RGB in 0..=255 with `h`, `w` multiples of
    /// the stride; `iters` refinement steps, every one upsampled (for training).
    pub fn forward(&self, a: &Tensor, b: &Tensor, iters: usize) -> candle_core::Result<Output> {
        self.forward_with(a, b, iters, Upsampled::All)
    }

    /// As [`MeFlowNet::forward`], choosing which iterations are upsampled.
    pub fn forward_with(
        &self,
        a: &Tensor,
        b: &Tensor,
        iters: usize,
        upsampled: Upsampled,
    ) -> candle_core::Result<Output> {
        self.forward_from(a, b, None, iters, upsampled)
    }

    /// As [`MeFlowNet::forward_with`], starting from `init` (full-resolution flow in pixels,
    /// `[n, 2, h, w]`) instead of zero: the iterations refine its average over each feature
    /// cell, and each output is `init` plus the upsampled change.
    pub fn forward_from(
        &self,
        a: &Tensor,
        b: &Tensor,
        init: Option<&Tensor>,
        iters: usize,
        upsampled: Upsampled,
    ) -> candle_core::Result<Output> {
        let n = a.dim(0)?;
        let stride = self.cfg.stride;
        let x = normalise(&Tensor::cat(&[a, b], 0)?)?; // [2n, 3, h, w]
        let trunk = self.encoder.trunk(&x)?; // [2n, trunk, H, W]
        let mut feats = self.encoder.features(&trunk)?;
        if self.cfg.image_features {
            feats = Tensor::cat(&[feats, x.avg_pool2d(stride)?], 1)?;
        }
        let f1 = feats.narrow(0, 0, n)?;
        let f2 = feats.narrow(0, n, n)?;
        let ctx = self.encoder.context(&trunk.narrow(0, 0, n)?)?;
        let (_, _, hh, ww) = f1.dims4()?;
        let photometric = if self.cfg.photometric {
            let (x1, x2) = (x.narrow(0, 0, n)?, x.narrow(0, n, n)?);
            Some(photometric::Photometric::new(&x1, &x2, stride)?)
        } else {
            None
        };
        let mut fixed = vec![f1.clone(), ctx];
        if let Some(p) = &photometric {
            fixed.push(p.structure()?);
        }
        let prepared = self.update.prepare(&Tensor::cat(&fixed, 1)?)?;
        // feature px
        let start = match init {
            Some(f) => (f.avg_pool2d(stride)? / stride as f64)?,
            None => Tensor::zeros((n, 2, hh, ww), DType::F32, a.device())?,
        };
        let mut flow = start.clone();
        let iters = iters.max(1);
        let mut flows = Vec::with_capacity(iters);
        let mut log_scale = None;
        for i in 0..iters {
            // As in RAFT, the next step sees the flow as a constant.
            let prev = flow.detach();
            let f2w = warp::warp(&f2, &prev)?;
            let mut moving = vec![f2w, prev.clone()];
            if let Some(p) = &photometric {
                moving.push(p.residual(&prev)?);
            }
            let up = self.update.forward(&prepared, &Tensor::cat(&moving, 1)?)?;
            flow = (prev + &up.delta)?;
            let last = i + 1 == iters;
            if last || upsampled == Upsampled::All {
                // feature px -> full-resolution px; from a start, only the change is upsampled
                let coarse = match init {
                    Some(_) => ((&flow - &start)? * stride as f64)?,
                    None => (&flow * stride as f64)?,
                };
                let heads = self.update.upsampling(&up)?;
                // The last iteration's uncertainty rides along: one softmax of the mask.
                let coarse = if last {
                    Tensor::cat(&[&coarse, &heads.log_scale], 1)?
                } else {
                    coarse
                };
                let fine = upsample::convex_upsample(&coarse, &heads.mask, stride)?;
                let fine_flow = fine.narrow(1, 0, 2)?;
                flows.push(match init {
                    Some(init) => (fine_flow + init)?,
                    None => fine_flow,
                });
                if last {
                    log_scale = Some(fine.narrow(1, 2, 1)?);
                }
            }
        }
        Ok(Output {
            flows,
            log_scale: log_scale.expect("at least one iteration"),
        })
    }

    /// Loads a weights file (see [`load_weights`]) as the network its metadata describes
    /// (the default [`Config`] when it has none).
    pub fn load(path: &Path, device: &Device) -> Result<Self> {
        let bytes = read_weights_file(path)?;
        Self::from_bytes(&bytes, path, device)
    }

    /// Builds the network from the bytes of a weights file; `path` names it in errors.
    pub fn from_bytes(bytes: &[u8], path: &Path, device: &Device) -> Result<Self> {
        let cfg = weights_config(bytes, path)?;
        let tensors = parse_weights(bytes, path, device)?;
        let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
        MeFlowNet::new(&cfg, vb)
            .map_err(|e| bad_model(path, format!("not MEFlowNet weights ({e})")))
    }
}

fn bad_model(path: &Path, reason: String) -> Error {
    Error::BadWeights {
        name: MODEL_NAME.into(),
        path: path.to_path_buf(),
        reason,
    }
}

/// Reads a safetensors weight file: a missing, empty or truncated file is
/// [`Error::BadWeights`] naming it and saying how to get a good one.
pub fn load_weights(
    path: &Path,
    device: &Device,
) -> Result<std::collections::HashMap<String, Tensor>> {
    let bytes = read_weights_file(path)?;
    parse_weights(&bytes, path, device)
}

/// The bytes of a weights file; a missing one is [`Error::BadWeights`] saying where good ones come
/// from.
pub fn read_weights_file(path: &Path) -> Result<Vec<u8>> {
    if !path.exists() {
        return Err(bad_model(path, "no such weights file".into()));
    }
    std::fs::read(path).map_err(|e| Error::io(path.display().to_string(), e))
}

fn parse_weights(
    bytes: &[u8],
    path: &Path,
    device: &Device,
) -> Result<std::collections::HashMap<String, Tensor>> {
    candle_core::safetensors::load_buffer(bytes, device).map_err(|e| incomplete(path, bytes, e))
}

fn incomplete(path: &Path, bytes: &[u8], e: impl std::fmt::Display) -> Error {
    bad_model(
        path,
        format!(
            "not a complete safetensors file ({} bytes: {e}); it may be truncated",
            bytes.len()
        ),
    )
}

/// The [`Config`] a weights file's metadata names (the default [`Config`] when it names none).
pub fn weights_config(bytes: &[u8], path: &Path) -> Result<Config> {
    let (_, meta) =
        safetensors::SafeTensors::read_metadata(bytes).map_err(|e| incomplete(path, bytes, e))?;
    let cfg = match meta.metadata().as_ref().and_then(|m| m.get(CONFIG_KEY)) {
        Some(json) => serde_json::from_str::<Config>(json).map_err(|e| {
            bad_model(
                path,
                format!("its {CONFIG_KEY} metadata is not a config ({e})"),
            )
        })?,
        None => Config::default(),
    };
    cfg.validate()
        .map_err(|e| bad_model(path, format!("its {CONFIG_KEY} metadata: {e}")))?;
    Ok(cfg)
}

/// Writes `tensors` as a safetensors file whose metadata carries `cfg` (see
/// [`weights_config`]).
pub fn save_weights(
    tensors: &std::collections::HashMap<String, Tensor>,
    cfg: &Config,
    path: &Path,
) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir.display().to_string(), e))?;
    }
    let json = serde_json::to_string(cfg).expect("a config serialises");
    let meta = std::collections::HashMap::from([(CONFIG_KEY.to_string(), json)]);
    let mut sorted: Vec<(&String, &Tensor)> = tensors.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    safetensors::serialize_to_file(sorted, Some(meta), path)
        .map_err(|e| Error::Internal(format!("cannot write {}: {e}", path.display())))
}

/// The flow a network of `cfg` starts from on the pair (`a`, `b`): `None` for zero.
pub fn initial_flow(cfg: &Config, a: &RgbImage, b: &RgbImage) -> Result<Option<Flow>> {
    match cfg.initial_flow {
        InitialFlow::Zero => Ok(None),
        InitialFlow::Dis => {
            let dis = crate::flow::Classical::Dis(crate::flow::classical::DisPreset::Medium);
            Ok(Some(dis.estimate(a, b)?))
        }
    }
}

/// Per-frame normalisation of `[n, 3, h, w]` in 0..=255 (see the module docs).
pub fn normalise(x: &Tensor) -> candle_core::Result<Tensor> {
    if !x.track_op() {
        return normalise_constant(x);
    }
    let x = (x / 255.0)?;
    let n = x.dim(0)?;
    let flat = x.reshape((n, ()))?;
    let mean = flat.mean_keepdim(1)?;
    let centred = flat.broadcast_sub(&mean)?;
    let std = (centred.sqr()?.mean_keepdim(1)?.sqrt()? + 1e-3)?;
    centred.broadcast_div(&std)?.reshape(x.shape())
}

/// [`normalise`] at inference, in one pass over each frame's values. (candle runs element-wise
/// ops over 64K values or more on its own thread pool, whose hand-off costs more than these
/// small ops take, and stalls while the other mirror pass uses it.)
fn normalise_constant(x: &Tensor) -> candle_core::Result<Tensor> {
    let n = x.dim(0)?;
    let mut v = x.flatten_all()?.to_vec1::<f32>()?;
    for frame in v.chunks_exact_mut(x.elem_count() / n.max(1)) {
        let len = frame.len() as f64;
        let mean = frame.iter().map(|&p| p as f64 / 255.0).sum::<f64>() / len;
        let var = frame
            .iter()
            .map(|&p| (p as f64 / 255.0 - mean).powi(2))
            .sum::<f64>()
            / len;
        let std = var.sqrt() + 1e-3;
        for p in frame.iter_mut() {
            *p = ((*p as f64 / 255.0 - mean) / std) as f32;
        }
    }
    Tensor::from_vec(v, x.shape(), x.device())
}

/// An RGB image as `[1, 3, h, w]` f32 in 0..=255.
pub fn image_tensor(img: &RgbImage, device: &Device) -> candle_core::Result<Tensor> {
    let (w, h) = (img.width as usize, img.height as usize);
    let data: Vec<f32> = img.data.iter().map(|&v| v as f32).collect();
    Tensor::from_vec(data, (1, h, w, 3), device)?
        .permute((0, 3, 1, 2))?
        .contiguous()
}

/// A `[1, 2, h, w]` or `[2, h, w]` tensor as a [`Flow`].
pub fn tensor_to_flow(t: &Tensor) -> candle_core::Result<Flow> {
    let t = if t.rank() == 4 {
        t.squeeze(0)?
    } else {
        t.clone()
    };
    let (_, h, w) = t.dims3()?;
    let uv = t.permute((1, 2, 0))?.flatten_all()?.to_vec1::<f32>()?;
    Ok(Flow {
        width: w,
        height: h,
        uv,
    })
}

/// A [`Flow`] as `[1, 2, h, w]`.
pub fn flow_tensor(f: &Flow, device: &Device) -> candle_core::Result<Tensor> {
    Tensor::from_vec(f.uv.clone(), (1, f.height, f.width, 2), device)?
        .permute((0, 3, 1, 2))?
        .contiguous()
}

/// `[n, c, h, w]` mirrored left-right.
pub fn mirror_x(t: &Tensor) -> candle_core::Result<Tensor> {
    let w = t.dim(3)?;
    let reversed: Vec<u32> = (0..w as u32).rev().collect();
    t.contiguous()?
        .index_select(&Tensor::new(reversed, t.device())?, 3)
}

/// The flow `[n, 2, h, w]` of a pair mirrored left-right, from the pair's flow (or back):
/// mirrored, with its horizontal component negated.
pub fn mirror_flow_x(flow: &Tensor) -> candle_core::Result<Tensor> {
    let m = mirror_x(flow)?;
    Tensor::cat(&[m.narrow(1, 0, 1)?.neg()?, m.narrow(1, 1, 1)?], 1)
}

/// MEFlowNet as a [`FlowMethod`]: a network, an iteration count, whether to average with the
/// mirrored pair ([`Config::mirror_average`]) and with the reversed pair
/// ([`Config::reverse_average`]), a device. The counts start as the weights
/// file's config says; callers may change them.
#[derive(Debug, Clone)]
pub struct MeFlowMethod {
    pub net: MeFlowNet,
    pub iters: usize,
    pub mirror_average: bool,
    pub reverse_average: bool,
    pub device: Device,
}

/// The committed weights (`weights/meflownet.safetensors`, model card beside it), built into
/// the binary: trained by `actfer train flow` on SynthME, small enough to carry.
const COMMITTED: &[u8] = include_bytes!("../../../weights/meflownet.safetensors");

impl MeFlowMethod {
    /// The committed weights on the CPU.
    pub fn committed() -> Result<Self> {
        let path = Path::new("weights/meflownet.safetensors (built in)");
        Ok(Self::new(MeFlowNet::from_bytes(
            COMMITTED,
            path,
            &Device::Cpu,
        )?))
    }

    /// Loads a weights file on the CPU.
    pub fn load(path: &Path) -> Result<Self> {
        Ok(Self::new(MeFlowNet::load(path, &Device::Cpu)?))
    }

    /// A network on the CPU, run with its configured iteration count.
    pub fn new(net: MeFlowNet) -> Self {
        MeFlowMethod {
            iters: net.config().iters,
            mirror_average: net.config().mirror_average,
            reverse_average: net.config().reverse_average,
            net,
            device: Device::Cpu,
        }
    }

    /// The flow of `n` pairs of `[n, 3, h, w]` tensors of any size (padded to a multiple of
    /// the stride and cropped back), from `init` (`[n, 2, h, w]`, see
    /// [`MeFlowNet::forward_from`]; [`initial_flow`] makes the one the network was trained
    /// with). With `mirror_average` the mirrored pairs run too, side by side, and the result
    /// is the mean of the two flows. (The reverse average is [`MeFlowMethod::estimate`]'s:
    /// each direction needs its own start.)
    pub fn estimate_tensors(
        &self,
        a: &Tensor,
        b: &Tensor,
        init: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        let (_, _, h, w) = a.dims4()?;
        let stride = self.net.config().stride;
        let ph = h.div_ceil(stride) * stride - h;
        let pw = w.div_ceil(stride) * stride - w;
        let pad = |t: &Tensor| -> candle_core::Result<Tensor> {
            t.pad_with_same(2, 0, ph)?.pad_with_same(3, 0, pw)
        };
        let (a, b) = (pad(a)?, pad(b)?);
        let init = init.map(pad).transpose()?;
        let run = |a: &Tensor, b: &Tensor, init: Option<&Tensor>| -> candle_core::Result<Tensor> {
            let out = self
                .net
                .forward_from(a, b, init, self.iters, Upsampled::Last)?;
            Ok(out.flows.last().expect("at least one iteration").clone())
        };
        let last = if self.mirror_average {
            // Padded first, so the mirrored frames carry their padding on the left; the
            // mirrored flow is mirrored back before the crop. The two passes run side by
            // side on rayon's threads: one pass of this small network keeps one core busy.
            let mirrored = || -> candle_core::Result<Tensor> {
                let init = init.as_ref().map(mirror_flow_x).transpose()?;
                mirror_flow_x(&run(&mirror_x(&a)?, &mirror_x(&b)?, init.as_ref())?)
            };
            let (plain, back) = rayon::join(|| run(&a, &b, init.as_ref()), mirrored);
            ((plain? + back?)? * 0.5)?
        } else {
            run(&a, &b, init.as_ref())?
        };
        last.narrow(2, 0, h)?.narrow(3, 0, w)
    }

    /// The flow from `a` to `b` (same size) as `[1, 2, h, w]`: the start the weights were
    /// trained with, then the network, mirror-averaged when set.
    pub fn one_way(&self, a: &RgbImage, b: &RgbImage) -> Result<Tensor> {
        let ta = image_tensor(a, &self.device)?;
        let tb = image_tensor(b, &self.device)?;
        let init = initial_flow(self.net.config(), a, b)?
            .map(|f| flow_tensor(&f, &self.device))
            .transpose()?;
        Ok(self.estimate_tensors(&ta, &tb, init.as_ref())?)
    }
}

impl FlowMethod for MeFlowMethod {
    fn name(&self) -> &str {
        MODEL_NAME
    }

    fn estimate(&self, a: &RgbImage, b: &RgbImage) -> Result<Flow> {
        if (a.width, a.height) != (b.width, b.height) {
            return Err(Error::Internal(format!(
                "meflownet: frames differ in size ({}x{} vs {}x{})",
                a.width, a.height, b.width, b.height
            )));
        }
        let flow = if self.reverse_average {
            let (forward, backward) = rayon::join(|| self.one_way(a, b), || self.one_way(b, a));
            let forward = forward?;
            // The backward flow read where each pixel lands, negated.
            let landed = warp::warp(&backward?, &forward)?;
            ((forward - landed)? * 0.5)?
        } else {
            self.one_way(a, b)?
        };
        Ok(tensor_to_flow(&flow)?)
    }
}
