//! Training MEFlowNet on SynthME pairs: consecutive frames (`TTTTT.flo`) and onset -> apex
//! (`onset_apex_K.flo`) of micro and macro expressions, a sequence loss over the iterations
//! with decaying weights, AdamW, checkpoints and resume, and validation EPE on micro onset ->
//! apex pairs.
//!
//! Loss: `sum_i gamma^(K-1-i) mean|f_i - gt|_1` over the K iterations' full-resolution flows,
//! plus `UNCERTAINTY_WEIGHT` times the Laplace negative log-likelihood of the last flow's
//! (detached) end-point error under the predicted scale: `mean(e / b + log b)`.
//!
//! Checkpoints: `OUT.ckpt.safetensors` (the weights) and `OUT.ckpt.json` ([`Checkpoint`]:
//! the step, seed and settings). Resuming restores the weights and the step; AdamW's moments
//! restart (candle's AdamW does not expose them), which costs a few steps of warm-up.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::eval::flow::{epe, read_flo, Epe, Flow};
use crate::flow::meflownet::{
    flow_tensor, image_tensor, initial_flow, save_weights, tensor_to_flow, Config, InitialFlow,
    MeFlowNet, Upsampled,
};
use crate::media::{read_image, RgbImage};
use crate::synth::labels::{Kind, Labels};
use crate::synth::rng::Rng;

/// Weight of the uncertainty term in the loss.
pub const UNCERTAINTY_WEIGHT: f64 = 0.1;
/// Default decay of the per-iteration loss weights.
pub const DEFAULT_GAMMA: f64 = 0.8;

/// What a pair shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PairKind {
    /// Frame T -> T+1.
    Consecutive,
    /// Onset -> apex of a micro-expression.
    MicroApex,
    /// Onset -> apex of a macro-expression.
    MacroApex,
}

/// One training or evaluation pair: two frames and the ground-truth flow between them.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    pub a: PathBuf,
    pub b: PathBuf,
    pub flow: PathBuf,
    /// The facial flow alone (head held still), onset -> apex pairs only.
    pub face_flow: Option<PathBuf>,
    pub kind: PairKind,
}

/// Every pair of a SynthME folder (`labels.json`, clips as frame folders, `--flow all` or
/// `apex`); pairs whose files are missing are left out.
pub fn dataset_pairs(dir: &Path) -> Result<Vec<Pair>> {
    let labels = Labels::read(dir)?;
    let mut pairs = Vec::new();
    for clip in &labels.clips {
        let frames = dir.join(&clip.files.frames);
        let flows = dir.join(&clip.files.flow);
        if !frames.is_dir() {
            continue; // clips written as video
        }
        let frame = |t: usize| frames.join(format!("{t:05}.png"));
        for t in 0..clip.frames.saturating_sub(1) {
            let f = flows.join(format!("{t:05}.flo"));
            if f.exists() {
                pairs.push(Pair {
                    a: frame(t),
                    b: frame(t + 1),
                    flow: f,
                    face_flow: None,
                    kind: PairKind::Consecutive,
                });
            }
        }
        for (k, ev) in clip.events.iter().enumerate() {
            let f = flows.join(format!("onset_apex_{k}.flo"));
            let face = flows.join(format!("onset_apex_face_{k}.flo"));
            if f.exists() && ev.apex > ev.onset {
                pairs.push(Pair {
                    a: frame(ev.onset),
                    b: frame(ev.apex),
                    flow: f,
                    face_flow: face.exists().then_some(face),
                    kind: if ev.kind == Kind::Micro {
                        PairKind::MicroApex
                    } else {
                        PairKind::MacroApex
                    },
                });
            }
        }
    }
    Ok(pairs)
}

/// A pair read from disk.
#[derive(Debug, Clone)]
pub struct LoadedPair {
    pub a: RgbImage,
    pub b: RgbImage,
    pub flow: Flow,
    /// The flow the network starts from ([`with_initial_flow`]); `None` for zero.
    pub init: Option<Flow>,
}

pub fn load_pair(p: &Pair) -> Result<LoadedPair> {
    let a = read_image(&p.a)?;
    let b = read_image(&p.b)?;
    let flow = read_flo(&p.flow)?;
    if (a.width as usize, a.height as usize) != (flow.width, flow.height)
        || (a.width, a.height) != (b.width, b.height)
    {
        return Err(Error::bad_input(
            &p.flow,
            format!(
                "frames {}x{} and {}x{}, flow {}x{}: sizes differ",
                a.width, a.height, b.width, b.height, flow.width, flow.height
            ),
        ));
    }
    Ok(LoadedPair {
        a,
        b,
        flow,
        init: None,
    })
}

/// The pair with the initial flow a network of `cfg` starts from, computed on its frames.
pub fn with_initial_flow(mut p: LoadedPair, cfg: &Config) -> Result<LoadedPair> {
    p.init = initial_flow(cfg, &p.a, &p.b)?;
    Ok(p)
}

/// Mirrors a pair left-right (frames and flow; u changes sign).
pub fn mirror(p: &LoadedPair) -> LoadedPair {
    let flip_img = |img: &RgbImage| {
        let (w, h) = (img.width as usize, img.height as usize);
        let mut data = vec![0u8; img.data.len()];
        for y in 0..h {
            for x in 0..w {
                let s = 3 * (y * w + x);
                let d = 3 * (y * w + (w - 1 - x));
                data[d..d + 3].copy_from_slice(&img.data[s..s + 3]);
            }
        }
        RgbImage {
            width: img.width,
            height: img.height,
            data,
        }
    };
    LoadedPair {
        a: flip_img(&p.a),
        b: flip_img(&p.b),
        flow: mirror_flow(&p.flow),
        init: p.init.as_ref().map(mirror_flow),
    }
}

fn mirror_flow(f: &Flow) -> Flow {
    let (w, h) = (f.width, f.height);
    let mut out = Flow::zeros(w, h);
    for y in 0..h {
        for x in 0..w {
            let (u, v) = f.at(x, y);
            let d = 2 * (y * w + (w - 1 - x));
            out.uv[d] = -u;
            out.uv[d + 1] = v;
        }
    }
    out
}

/// A `size x size` window of a pair at (`x0`, `y0`) (frames and flow alike); the whole pair
/// when it is not larger than `size`.
pub fn crop(p: &LoadedPair, x0: usize, y0: usize, size: usize) -> LoadedPair {
    let (w, h) = (p.flow.width, p.flow.height);
    if size >= w || size >= h {
        return p.clone();
    }
    let (x0, y0) = (x0.min(w - size), y0.min(h - size));
    let cut = |img: &RgbImage| {
        let mut data = Vec::with_capacity(size * size * 3);
        for y in y0..y0 + size {
            let s = 3 * (y * w + x0);
            data.extend_from_slice(&img.data[s..s + 3 * size]);
        }
        RgbImage {
            width: size as u32,
            height: size as u32,
            data,
        }
    };
    let cut_flow = |f: &Flow| {
        let mut uv = Vec::with_capacity(size * size * 2);
        for y in y0..y0 + size {
            let s = 2 * (y * w + x0);
            uv.extend_from_slice(&f.uv[s..s + 2 * size]);
        }
        Flow {
            width: size,
            height: size,
            uv,
        }
    };
    LoadedPair {
        a: cut(&p.a),
        b: cut(&p.b),
        flow: cut_flow(&p.flow),
        init: p.init.as_ref().map(cut_flow),
    }
}

/// A batch as tensors: frames `[n, 3, h, w]` (0..=255) and gold flow `[n, 2, h, w]`.
pub fn batch_tensors(pairs: &[LoadedPair], device: &Device) -> Result<(Tensor, Tensor, Tensor)> {
    let a: Vec<Tensor> = pairs
        .iter()
        .map(|p| image_tensor(&p.a, device))
        .collect::<candle_core::Result<_>>()?;
    let b: Vec<Tensor> = pairs
        .iter()
        .map(|p| image_tensor(&p.b, device))
        .collect::<candle_core::Result<_>>()?;
    let f: Vec<Tensor> = pairs
        .iter()
        .map(|p| flow_tensor(&p.flow, device))
        .collect::<candle_core::Result<_>>()?;
    Ok((
        Tensor::cat(&a, 0)?,
        Tensor::cat(&b, 0)?,
        Tensor::cat(&f, 0)?,
    ))
}

/// The batch's initial flows as `[n, 2, h, w]`; `None` when the pairs have none (zero).
pub fn init_tensor(pairs: &[LoadedPair], device: &Device) -> Result<Option<Tensor>> {
    if pairs.iter().all(|p| p.init.is_none()) {
        return Ok(None);
    }
    let f: Vec<Tensor> = pairs
        .iter()
        .map(|p| match &p.init {
            Some(f) => flow_tensor(f, device),
            None => flow_tensor(&Flow::zeros(p.flow.width, p.flow.height), device),
        })
        .collect::<candle_core::Result<_>>()?;
    Ok(Some(Tensor::cat(&f, 0)?))
}

/// The sequence loss (module docs): returns (total loss, last iteration's L1).
pub fn sequence_loss(
    flows: &[Tensor],
    log_scale: &Tensor,
    gold: &Tensor,
    gamma: f64,
) -> candle_core::Result<(Tensor, f32)> {
    let k = flows.len();
    let mut total: Option<Tensor> = None;
    let mut last_l1 = 0f32;
    for (i, f) in flows.iter().enumerate() {
        let l1 = (f - gold)?.abs()?.mean_all()?;
        if i + 1 == k {
            last_l1 = l1.to_scalar::<f32>()?;
        }
        let term = (l1 * gamma.powi((k - 1 - i) as i32))?;
        total = Some(match total {
            Some(t) => (t + term)?,
            None => term,
        });
    }
    let last = flows.last().expect("at least one iteration");
    let err = (last - gold)?.sqr()?.sum_keepdim(1)?.sqrt()?.detach(); // [n, 1, h, w]
    let nll = ((err / log_scale.exp()?)? + log_scale)?.mean_all()?;
    let total = (total.expect("at least one iteration") + (nll * UNCERTAINTY_WEIGHT)?)?;
    Ok((total, last_l1))
}

/// Training settings (the CLI's flags).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainOptions {
    /// The network's sizes (`iters` is the training iteration count).
    #[serde(default)]
    pub config: Config,
    /// SynthME folders whose pairs are trained on (together).
    pub data: Vec<PathBuf>,
    pub val: Option<PathBuf>,
    pub out: PathBuf,
    pub steps: usize,
    pub batch: usize,
    /// Side of the random square crops trained on (a multiple of 4; 0 = whole frames).
    pub crop: usize,
    pub lr: f64,
    /// How often each pool is drawn from: micro onset -> apex, macro onset -> apex,
    /// consecutive (normalised; an empty pool's share goes to the others).
    #[serde(default = "default_shares")]
    pub shares: [f32; 3],
    pub seed: u64,
    pub gamma: f64,
    /// Validate every this many steps (and at the end).
    pub val_every: usize,
    /// Micro onset -> apex validation pairs (the first ones of the folder).
    pub val_pairs: usize,
    /// Write a checkpoint every this many steps.
    pub checkpoint_every: usize,
    pub resume: Option<PathBuf>,
    /// Where the refinement starts, when chosen explicitly: it overrides `config`'s and, on
    /// resume, the checkpoint's.
    #[serde(default)]
    pub initial_flow: Option<InitialFlow>,
}

/// The default sampling shares: micro-expressions, the flow this network is for, first.
pub const DEFAULT_SHARES: [f32; 3] = [0.6, 0.2, 0.2];

fn default_shares() -> [f32; 3] {
    DEFAULT_SHARES
}

/// What a checkpoint's JSON holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checkpoint {
    pub step: usize,
    pub seed: u64,
    pub config: Config,
    pub options: TrainOptions,
    pub last_loss: f32,
    pub val_epe: Option<f64>,
}

/// One validation or progress record.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    pub step: usize,
    /// Mean loss over the steps since the last record.
    pub loss: f32,
    /// Mean last-iteration L1 since the last record, px.
    pub l1: f32,
    pub val_epe: Option<f64>,
    pub seconds: f64,
}

/// What training returns.
#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    pub steps: usize,
    pub zero_flow_val_epe: Option<f64>,
    pub records: Vec<Record>,
    pub weights: PathBuf,
}

/// The checkpoint paths next to `out`.
pub fn checkpoint_paths(out: &Path) -> (PathBuf, PathBuf) {
    let base = out.with_extension("");
    (
        base.with_extension("ckpt.safetensors"),
        base.with_extension("ckpt.json"),
    )
}

/// Pooled EPE of `net` over `pairs`, batched by 8; `zero` gives the zero-flow baseline.
pub fn evaluate(
    net: Option<&MeFlowNet>,
    pairs: &[LoadedPair],
    iters: usize,
    device: &Device,
) -> Result<Epe> {
    let mut pooled = Epe::default();
    for chunk in pairs.chunks(8) {
        let preds: Vec<Flow> = match net {
            Some(net) => {
                let (a, b, _) = batch_tensors(chunk, device)?;
                let init = init_tensor(chunk, device)?;
                let out = net.forward_from(&a, &b, init.as_ref(), iters, Upsampled::Last)?;
                let last = out.flows.last().expect("at least one iteration");
                (0..chunk.len())
                    .map(|i| tensor_to_flow(&last.narrow(0, i, 1)?))
                    .collect::<candle_core::Result<_>>()?
            }
            None => chunk
                .iter()
                .map(|p| Flow::zeros(p.flow.width, p.flow.height))
                .collect(),
        };
        for (p, pred) in chunk.iter().zip(&preds) {
            let e = epe(pred, &p.flow, None).map_err(Error::Internal)?;
            pooled.merge(&e);
        }
    }
    Ok(pooled)
}

/// Trains (see the module docs); `log` receives each record as it is made.
pub fn train(opts: &TrainOptions, mut log: impl FnMut(&str)) -> Result<TrainReport> {
    let device = Device::Cpu;
    // A resumed run keeps the network its checkpoint was written as.
    let cfg = match &opts.resume {
        Some(resume) => {
            let bytes = crate::flow::meflownet::read_weights_file(resume)?;
            let saved = crate::flow::meflownet::weights_config(&bytes, resume)?;
            Config {
                iters: opts.config.iters,
                mirror_average: opts.config.mirror_average,
                reverse_average: opts.config.reverse_average,
                initial_flow: opts.initial_flow.unwrap_or(saved.initial_flow),
                ..saved
            }
        }
        None => Config {
            initial_flow: opts.initial_flow.unwrap_or(opts.config.initial_flow),
            ..opts.config.clone()
        },
    };
    cfg.validate()
        .map_err(|e| Error::bad_input(&opts.out, format!("network config: {e}")))?;
    let mut pairs = Vec::new();
    for dir in &opts.data {
        pairs.extend(dataset_pairs(dir)?);
    }
    let by_kind = |k: PairKind| {
        pairs
            .iter()
            .filter(|p| p.kind == k)
            .cloned()
            .collect::<Vec<_>>()
    };
    let pools = [
        by_kind(PairKind::MicroApex),
        by_kind(PairKind::MacroApex),
        by_kind(PairKind::Consecutive),
    ];
    if pools.iter().all(|p| p.is_empty()) {
        return Err(Error::bad_input(
            opts.data.first().map_or(Path::new("."), |d| d.as_path()),
            "no pairs with ground-truth flow (frames as PNG folders and --flow all or apex)",
        ));
    }
    log(&format!(
        "data {}: {} micro onset->apex, {} macro onset->apex, {} consecutive pairs",
        opts.data
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        pools[0].len(),
        pools[1].len(),
        pools[2].len()
    ));
    // Sampling shares of the three pools (a missing pool's share goes to the others).
    let shares = opts.shares;
    if shares.iter().any(|s| s.is_nan() || *s < 0.0) || shares.iter().sum::<f32>() <= 0.0 {
        return Err(Error::bad_input(
            &opts.out,
            format!("sampling shares {shares:?}: give three non-negative numbers, not all 0"),
        ));
    }
    if !shares
        .iter()
        .zip(&pools)
        .any(|(s, p)| *s > 0.0 && !p.is_empty())
    {
        return Err(Error::bad_input(
            &opts.out,
            format!("sampling shares {shares:?} draw only from kinds of pairs the data lacks"),
        ));
    }
    let val: Vec<LoadedPair> = match &opts.val {
        Some(dir) => dataset_pairs(dir)?
            .into_iter()
            .filter(|p| p.kind == PairKind::MicroApex)
            .take(opts.val_pairs)
            .map(|p| with_initial_flow(load_pair(&p)?, &cfg))
            .collect::<Result<_>>()?,
        None => Vec::new(),
    };

    let mut varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
    let net = MeFlowNet::new(&cfg, vb)?;
    let (ckpt_w, ckpt_j) = checkpoint_paths(&opts.out);
    let mut start = 0;
    if let Some(resume) = &opts.resume {
        crate::flow::meflownet::load_weights(resume, &device)?; // clear errors first
        varmap.load(resume).map_err(|e| Error::BadWeights {
            name: crate::flow::meflownet::MODEL_NAME.into(),
            path: resume.clone(),
            reason: format!("cannot resume from it ({e})"),
        })?;
        let json = resume.with_extension("json");
        if let Ok(text) = std::fs::read_to_string(&json) {
            if let Ok(ck) = serde_json::from_str::<Checkpoint>(&text) {
                start = ck.step;
            }
        }
        log(&format!(
            "resumed from {} at step {start}",
            resume.display()
        ));
    }
    let mut opt = AdamW::new(
        varmap.all_vars(),
        ParamsAdamW {
            lr: opts.lr,
            weight_decay: 1e-4,
            ..Default::default()
        },
    )?;

    let mut report = TrainReport {
        steps: opts.steps,
        zero_flow_val_epe: None,
        records: Vec::new(),
        weights: opts.out.clone(),
    };
    if !val.is_empty() {
        report.zero_flow_val_epe = evaluate(None, &val, cfg.iters, &device)?.all.epe;
        let e = evaluate(Some(&net), &val, cfg.iters, &device)?.all.epe;
        log(&format!(
            "validation: {} micro onset->apex pairs; zero-flow EPE {:.4}, start EPE {:.4}",
            val.len(),
            report.zero_flow_val_epe.unwrap_or(f64::NAN),
            e.unwrap_or(f64::NAN)
        ));
    }

    let bar = crate::progress::bar(opts.steps as u64, "train flow");
    bar.set_position(start as u64);
    let t0 = std::time::Instant::now();
    let mut rng = Rng::new(opts.seed).derive(start as u64);
    let (mut loss_sum, mut l1_sum, mut n_sum) = (0f32, 0f32, 0usize);
    let mut last_loss;
    let mut last_val = None;
    for step in start..opts.steps {
        // Learning rate: linear warm-up over 50 steps, then cosine decay to 5 %.
        let progress = step as f64 / opts.steps.max(1) as f64;
        let warm = ((step + 1) as f64 / 50.0).min(1.0);
        let lr =
            opts.lr * warm * (0.05 + 0.95 * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()));
        opt.set_learning_rate(lr);

        let mut batch = Vec::with_capacity(opts.batch);
        while batch.len() < opts.batch {
            let mut r = rng.unit() as f32 * shares.iter().sum::<f32>();
            let mut pool = 0;
            for (i, s) in shares.iter().enumerate() {
                pool = i;
                if r < *s {
                    break;
                }
                r -= s;
            }
            if pools[pool].is_empty() {
                continue;
            }
            let mut p = with_initial_flow(load_pair(rng.pick(&pools[pool]))?, &cfg)?;
            if opts.crop > 0 {
                // Crops start on the features' grid (4 suits both strides).
                let (w, h) = (p.flow.width, p.flow.height);
                let x0 = rng.int(0, w.saturating_sub(opts.crop) / 4) * 4;
                let y0 = rng.int(0, h.saturating_sub(opts.crop) / 4) * 4;
                p = crop(&p, x0, y0, opts.crop);
            }
            batch.push(if rng.chance(0.5) { mirror(&p) } else { p });
        }
        let (a, b, gold) = batch_tensors(&batch, &device)?;
        let init = init_tensor(&batch, &device)?;
        let out = net.forward_from(&a, &b, init.as_ref(), cfg.iters, Upsampled::All)?;
        let (loss, l1) = sequence_loss(&out.flows, &out.log_scale, &gold, opts.gamma)?;
        opt.backward_step(&loss)?;
        last_loss = loss.to_scalar::<f32>()?;
        if !last_loss.is_finite() {
            return Err(Error::Internal(format!(
                "the loss is not finite at step {step} (lr {lr:.2e}); lower --lr"
            )));
        }
        loss_sum += last_loss;
        l1_sum += l1;
        n_sum += 1;
        bar.inc(1);
        bar.set_message(format!(
            "train flow: loss {last_loss:.3}{}",
            last_val.map_or(String::new(), |v: f64| format!(", val EPE {v:.3}"))
        ));

        let done = step + 1;
        let validate = done % opts.val_every.max(1) == 0 || done == opts.steps;
        if validate {
            let val_epe = if val.is_empty() {
                None
            } else {
                evaluate(Some(&net), &val, cfg.iters, &device)?.all.epe
            };
            last_val = val_epe;
            let rec = Record {
                step: done,
                loss: loss_sum / n_sum.max(1) as f32,
                l1: l1_sum / n_sum.max(1) as f32,
                val_epe,
                seconds: t0.elapsed().as_secs_f64(),
            };
            (loss_sum, l1_sum, n_sum) = (0.0, 0.0, 0);
            let line = format!(
                "step {} loss {:.4} l1 {:.4} val EPE {} ({:.0} s)",
                rec.step,
                rec.loss,
                rec.l1,
                rec.val_epe.map_or("-".into(), |v| format!("{v:.4}")),
                rec.seconds
            );
            bar.suspend(|| log(&line));
            report.records.push(rec);
        }
        if done % opts.checkpoint_every.max(1) == 0 || done == opts.steps {
            save(&varmap, &cfg, &ckpt_w)?;
            let ck = Checkpoint {
                step: done,
                seed: opts.seed,
                config: cfg.clone(),
                options: opts.clone(),
                last_loss,
                val_epe: last_val,
            };
            let text = serde_json::to_string_pretty(&ck).expect("checkpoint serialises");
            std::fs::write(&ckpt_j, text)
                .map_err(|e| Error::io(ckpt_j.display().to_string(), e))?;
        }
    }
    bar.finish_and_clear();
    save(&varmap, &cfg, &opts.out)?;
    Ok(report)
}

fn save(varmap: &VarMap, cfg: &Config, path: &Path) -> Result<()> {
    let tensors = varmap
        .data()
        .lock()
        .expect("the varmap lock is not poisoned")
        .iter()
        .map(|(name, var)| (name.clone(), var.as_tensor().clone()))
        .collect();
    save_weights(&tensors, cfg, path)
}
