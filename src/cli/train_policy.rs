//! `actfer train policy`: the reasoner's language model, fine-tuned with LoRA (`sft`) and the
//! adapter merged into a GGUF the other commands load (`merge`).

use std::path::PathBuf;

use actfer::llm::lora::adapter::{DEFAULT_ALPHA, DEFAULT_RANK};
use actfer::llm::lora::sft::{
    DEFAULT_ACCUM, DEFAULT_CKPT_EVERY, DEFAULT_EPOCHS, DEFAULT_LR, DEFAULT_MAX_LEN, DEFAULT_SEED,
    DEFAULT_VAL_EVERY, DEFAULT_WARMUP,
};
use actfer::llm::lora::{merge, train_sft, Adapter, LoraConfig, Overflow, SftOptions, Target};
use actfer::llm::quantize::parse_dtype;
use actfer::llm::DEFAULT_MODEL;
use candle_core::quantized::GgmlDType;
use clap::{Args, Subcommand};

use super::print_json;

#[derive(Debug, Subcommand)]
pub enum LoraCommand {
    /// Supervised fine-tuning with LoRA on conversations (JSONL, one
    /// {"id", "split": "train"|"val", "messages": [{"role", "content"}]} a line), loss on the
    /// assistant tokens only. Writes OUT/adapter.safetensors (and adapter.best.safetensors by
    /// validation loss), OUT/log.csv and a checkpoint to --resume from. Threads: matrix products
    /// RAYON_NUM_THREADS, element-wise ops CANDLE_NUM_THREADS (1 is fastest on a busy machine).
    Sft(SftArgs),
    /// Merge an adapter into its base model: a new GGUF with W + (alpha/rank) B A in the
    /// adapted matrices, every other tensor and metadata entry kept.
    Merge(MergeArgs),
}

impl LoraCommand {
    pub fn wants_json(&self) -> bool {
        match self {
            LoraCommand::Sft(a) => a.json,
            LoraCommand::Merge(a) => a.json,
        }
    }
}

#[derive(Debug, Args)]
pub struct SftArgs {
    /// Base model: a GGUF file (llama, qwen2 or qwen3) or a model name.
    #[arg(long, default_value = DEFAULT_MODEL)]
    pub base: String,
    /// Conversations, JSONL.
    #[arg(long)]
    pub data: PathBuf,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// LoRA rank.
    #[arg(long, default_value_t = DEFAULT_RANK)]
    pub rank: usize,
    /// LoRA alpha (the update is scaled by alpha/rank).
    #[arg(long, default_value_t = DEFAULT_ALPHA)]
    pub alpha: f64,
    /// Adapted projections: q, k, v, o, gate, up, down, or all.
    #[arg(long, value_delimiter = ',', default_value = "all")]
    pub targets: Vec<String>,
    /// Peak learning rate (linear warm-up, then cosine decay to a tenth).
    #[arg(long, default_value_t = DEFAULT_LR)]
    pub lr: f64,
    #[arg(long, default_value_t = DEFAULT_EPOCHS)]
    pub epochs: usize,
    /// Conversations per optimizer step (gradient accumulation).
    #[arg(long, default_value_t = DEFAULT_ACCUM)]
    pub accum: usize,
    /// Warm-up steps.
    #[arg(long, default_value_t = DEFAULT_WARMUP)]
    pub warmup: usize,
    /// Longest conversation in tokens.
    #[arg(long, default_value_t = DEFAULT_MAX_LEN)]
    pub max_len: usize,
    /// What to do with a longer one: truncate (keep its first tokens) or drop.
    #[arg(long, default_value = "truncate", value_parser = parse_overflow)]
    pub overflow: Overflow,
    /// Seed of the LoRA initialisation and the data order.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// Validation loss every this many steps (and at the end; 0: at the end only).
    #[arg(long, default_value_t = DEFAULT_VAL_EVERY)]
    pub val_every: usize,
    /// Checkpoint every this many steps (and at the end; 0: at the end only).
    #[arg(long, default_value_t = DEFAULT_CKPT_EVERY)]
    pub ckpt_every: usize,
    /// Stop after this step (the learning-rate schedule still spans every epoch).
    #[arg(long)]
    pub max_steps: Option<usize>,
    /// Go on from a checkpoint (its folder, usually --out): its training settings are used,
    /// and the base model and data must be the same.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Print the training report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Base model: a GGUF file or a model name (the one the adapter was trained on).
    #[arg(long, default_value = DEFAULT_MODEL)]
    pub base: String,
    /// The adapter (adapter.safetensors of `train policy sft`).
    #[arg(long)]
    pub adapter: PathBuf,
    /// Where the merged GGUF goes.
    #[arg(long)]
    pub out: PathBuf,
    /// Type of the merged matrices: q8_0 or f32.
    #[arg(long = "type", default_value = "q8_0", value_parser = parse_merge_type)]
    pub dtype: GgmlDType,
    #[arg(long)]
    pub json: bool,
}

fn parse_targets(names: &[String]) -> Result<Vec<Target>, actfer::Error> {
    let mut targets = Vec::new();
    for s in names {
        targets.extend(Target::parse(s).ok_or_else(|| actfer::Error::Limit {
            what: "--targets".into(),
            reason: format!("{s:?} is not a projection; use q, k, v, o, gate, up, down or all"),
        })?);
    }
    Ok(targets)
}

fn parse_overflow(s: &str) -> Result<Overflow, String> {
    serde_json::from_value(serde_json::Value::String(s.into()))
        .map_err(|_| format!("{s:?}: use truncate or drop"))
}

fn parse_merge_type(s: &str) -> Result<GgmlDType, String> {
    match parse_dtype(s) {
        Some(t @ (GgmlDType::Q8_0 | GgmlDType::F32)) => Ok(t),
        _ => Err(format!("{s:?}: use q8_0 or f32")),
    }
}

pub fn run(cmd: LoraCommand) -> anyhow::Result<()> {
    match cmd {
        LoraCommand::Sft(a) => sft(a),
        LoraCommand::Merge(a) => {
            let base = actfer::llm::resolve(&a.base)?;
            let adapter = Adapter::load(&a.adapter)?;
            let report = merge(&base, &adapter, &a.out, a.dtype)?;
            // later runs check the merged file against this record
            actfer::models::stamp_written(&a.out)?;
            if a.json {
                return print_json(&report);
            }
            eprintln!(
                "{}: {} of {} tensors merged ({:?}), {} bytes{}",
                report.out.display(),
                report.merged,
                report.tensors,
                a.dtype,
                report.bytes_out,
                if report.same_base {
                    ""
                } else {
                    "; the base is not the file the adapter was trained on"
                }
            );
            Ok(())
        }
    }
}

fn sft(a: SftArgs) -> anyhow::Result<()> {
    let base = actfer::llm::resolve(&a.base)?;
    let opts = SftOptions {
        lora: LoraConfig {
            rank: a.rank,
            alpha: a.alpha,
            targets: parse_targets(&a.targets)?,
        },
        lr: a.lr,
        epochs: a.epochs,
        accum: a.accum,
        warmup: a.warmup,
        max_len: a.max_len,
        overflow: a.overflow,
        seed: a.seed,
        val_every: a.val_every,
        ckpt_every: a.ckpt_every,
        max_steps: a.max_steps,
        resume: a.resume,
        ..SftOptions::default()
    };
    let report = train_sft(&opts, &base, &a.data, &a.out)?;
    if a.json {
        return print_json(&report);
    }
    eprintln!(
        "{} steps of {} ({} train, {} val conversations; {} cut, {} left out): loss {} -> {}, val {}; {:.0} tokens/s",
        report.steps,
        report.total_steps,
        report.train_conversations,
        report.val_conversations,
        report.truncated.len(),
        report.dropped.len(),
        fmt_loss(report.first_loss),
        fmt_loss(report.last_loss),
        fmt_loss(report.val_loss),
        report.tokens_per_s
    );
    eprintln!("adapter: {}", report.adapter.display());
    Ok(())
}

fn fmt_loss(v: Option<f32>) -> String {
    v.map_or("-".into(), |v| format!("{v:.4}"))
}
