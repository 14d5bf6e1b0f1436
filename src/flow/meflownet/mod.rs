//! MEFlowNet: a warping-only iterative optical-flow network for facial micro-motion, sized for
//! a CPU (a 128x128 pair in tens of milliseconds on 2 cores).
//!
//! - [`encoder`]: a convolutional encoder (two stride-2 convolutions and a residual one) gives
//!   matching features of both frames and context features of frame 1, at 1/4 resolution.
//! - Each of K iterations ([`update`]) warps frame 2's features by the current flow
//!   ([`warp`], bilinear sampling built from `gather`), concatenates frame 1's features, the
//!   warped ones, their difference, the context and the flow, refines them with three
//!   convolutions and predicts a flow update, an uncertainty (a Laplace scale) and the mask of
//!   the learned convex 4x upsampling ([`upsample`]). No correlation volume.
//! - Every iteration's full-resolution flow is returned, for the sequence loss in training;
//!   inference uses the last.
//!
//! Input normalisation: RGB in 0..=255 is scaled to 0..1, then each frame separately has its
//! mean removed and is divided by its standard deviation (over all pixels and channels; +1e-3),
//! so a global illumination gain between the frames does not read as motion.
//!
//! Sizes that are not multiples of 4 are padded (border replicated) and the flow cropped back.
//!
//! Head motion: the network outputs the total flow. [`crate::flow::head`] removes head motion
//! explicitly: a global (robust) similarity or affine fit of the flow, optionally weighted by
//! the face mask, is the head flow, and the remainder is the facial flow;
//! `examples/head_motion_eval.rs` measures this step against SynthME's
//! `onset_apex_face_K.flo` (the facial motion alone).

pub mod config;
pub mod encoder;
pub mod update;
pub mod upsample;
pub mod warp;

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

pub use config::{Config, DEFAULT_ITERS, STRIDE};

use crate::error::{Error, Result};
use crate::eval::flow::Flow;
use crate::flow::method::FlowMethod;
use crate::media::RgbImage;

/// The name errors and the CLI use.
pub const MODEL_NAME: &str = "meflownet";

/// What a forward pass returns.
#[derive(Debug, Clone)]
pub struct Output {
    /// Full-resolution flow after each iteration, pixels: `iters` tensors `[b, 2, h, w]`.
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
    /// [`STRIDE`]; `iters` refinement steps.
    pub fn forward(&self, a: &Tensor, b: &Tensor, iters: usize) -> candle_core::Result<Output> {
        let n = a.dim(0)?;
        let x = normalise(&Tensor::cat(&[a, b], 0)?)?; // [2n, 3, h, w]
        let trunk = self.encoder.trunk(&x)?; // [2n, trunk, H, W]
        let feats = self.encoder.features(&trunk)?;
        let f1 = feats.narrow(0, 0, n)?;
        let f2 = feats.narrow(0, n, n)?;
        let ctx = self.encoder.context(&trunk.narrow(0, 0, n)?)?;
        let (_, _, hh, ww) = f1.dims4()?;
        let mut flow = Tensor::zeros((n, 2, hh, ww), DType::F32, a.device())?; // feature px
        let mut flows = Vec::with_capacity(iters);
        let mut log_scale = None;
        for _ in 0..iters.max(1) {
            // As in RAFT, the next step sees the flow as a constant.
            let prev = flow.detach();
            let f2w = warp::warp(&f2, &prev)?;
            let up = self.update.forward(&f1, &f2w, &ctx, &prev)?;
            flow = (prev + up.delta)?;
            let full = upsample::convex_upsample(&(&flow * STRIDE as f64)?, &up.mask, STRIDE)?;
            flows.push(full);
            log_scale = Some(upsample::convex_upsample(&up.log_scale, &up.mask, STRIDE)?);
        }
        Ok(Output {
            flows,
            log_scale: log_scale.expect("at least one iteration"),
        })
    }

    /// Loads weights from a safetensors file (see [`load_weights`]).
    pub fn load(path: &Path, cfg: &Config, device: &Device) -> Result<Self> {
        let tensors = load_weights(path, device)?;
        let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
        MeFlowNet::new(cfg, vb).map_err(|e| bad_model(path, format!("not MEFlowNet weights ({e})")))
    }
}

fn bad_model(path: &Path, reason: String) -> Error {
    Error::BadModel {
        name: MODEL_NAME.into(),
        path: path.to_path_buf(),
        reason,
    }
}

/// Reads a safetensors weight file: a missing, empty or truncated file is
/// [`Error::BadModel`] naming it and saying how to get a good one.
pub fn load_weights(
    path: &Path,
    device: &Device,
) -> Result<std::collections::HashMap<String, Tensor>> {
    if !path.exists() {
        return Err(bad_model(
            path,
            "no such weights file (the committed weights are weights/meflownet.safetensors; \
             `actfer train flow` trains new ones)"
                .into(),
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path.display().to_string(), e))?;
    candle_core::safetensors::load_buffer(&bytes, device).map_err(|e| {
        bad_model(
            path,
            format!(
                "not a complete safetensors file ({} bytes: {e}); it may be truncated",
                bytes.len()
            ),
        )
    })
}

/// Per-frame normalisation of `[n, 3, h, w]` in 0..=255 (see the module docs).
pub fn normalise(x: &Tensor) -> candle_core::Result<Tensor> {
    let x = (x / 255.0)?;
    let n = x.dim(0)?;
    let flat = x.reshape((n, ()))?;
    let mean = flat.mean_keepdim(1)?;
    let centred = flat.broadcast_sub(&mean)?;
    let std = (centred.sqr()?.mean_keepdim(1)?.sqrt()? + 1e-3)?;
    centred.broadcast_div(&std)?.reshape(x.shape())
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

/// MEFlowNet as a [`FlowMethod`]: a network, an iteration count, a device.
#[derive(Debug, Clone)]
pub struct MeFlowMethod {
    pub net: MeFlowNet,
    pub iters: usize,
    pub device: Device,
}

/// The committed weights (`weights/meflownet.safetensors`, model card beside it), built into
/// the binary: trained by `actfer train flow` on SynthME, small enough to carry.
const COMMITTED: &[u8] = include_bytes!("../../../weights/meflownet.safetensors");

impl MeFlowMethod {
    /// The committed weights with the default [`Config`] on the CPU.
    pub fn committed() -> Result<Self> {
        let device = Device::Cpu;
        let cfg = Config::default();
        let path = Path::new("weights/meflownet.safetensors (built in)");
        let tensors = candle_core::safetensors::load_buffer(COMMITTED, &device)
            .map_err(|e| bad_model(path, format!("not a safetensors file ({e})")))?;
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &device);
        let net = MeFlowNet::new(&cfg, vb)
            .map_err(|e| bad_model(path, format!("not MEFlowNet weights ({e})")))?;
        Ok(MeFlowMethod {
            net,
            iters: cfg.iters,
            device,
        })
    }

    /// Loads weights with the default [`Config`] on the CPU.
    pub fn load(path: &Path) -> Result<Self> {
        let device = Device::Cpu;
        let cfg = Config::default();
        Ok(MeFlowMethod {
            net: MeFlowNet::load(path, &cfg, &device)?,
            iters: cfg.iters,
            device,
        })
    }

    /// The flow of one pair of `[1, 3, h, w]` tensors of any size (padded to a multiple of
    /// [`STRIDE`] and cropped back).
    pub fn estimate_tensors(&self, a: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
        let (_, _, h, w) = a.dims4()?;
        let ph = h.div_ceil(STRIDE) * STRIDE - h;
        let pw = w.div_ceil(STRIDE) * STRIDE - w;
        let pad = |t: &Tensor| -> candle_core::Result<Tensor> {
            t.pad_with_same(2, 0, ph)?.pad_with_same(3, 0, pw)
        };
        let out = self.net.forward(&pad(a)?, &pad(b)?, self.iters)?;
        let last = out.flows.last().expect("at least one iteration");
        last.narrow(2, 0, h)?.narrow(3, 0, w)
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
        let ta = image_tensor(a, &self.device)?;
        let tb = image_tensor(b, &self.device)?;
        Ok(tensor_to_flow(&self.estimate_tensors(&ta, &tb)?)?)
    }
}
