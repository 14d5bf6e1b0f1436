//! Training checkpoints: `checkpoint.safetensors` (the LoRA tensors by adapter name, AdamW's
//! moments as `adamw.m.NAME` and `adamw.v.NAME`, the step in the metadata) and
//! `checkpoint.json` (the trainer's own record: [`Checkpoint`] for SFT, the policy trainer's
//! in [`crate::agent::grpo`]). The JSON is written last and both files are renamed into place,
//! and reading checks that the two name the same step, so an interrupted write is reported
//! rather than resumed from.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor, Var};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::adapter::{read_safetensors, write_safetensors};
use super::optim::AdamW;
use super::sft::{SftOptions, CHECKPOINT_FILE, CHECKPOINT_JSON};
use crate::{Error, Result};

/// What an SFT run's `checkpoint.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checkpoint {
    pub step: usize,
    pub options: SftOptions,
    pub base_model: String,
    pub base_sha256: String,
    pub data_sha256: String,
    /// AdamW's step count.
    pub adamw_t: u64,
    pub tokens: u64,
    pub seconds: f64,
    pub val_loss: Option<f32>,
    pub best_val_loss: Option<f32>,
}

/// An SFT run's `checkpoint.json` and its tensors from a checkpoint folder or JSON path; the
/// base model and the data must be the ones it was trained on.
pub(crate) fn read(
    path: &Path,
    base_sha256: &str,
    data_sha256: &str,
) -> Result<(Checkpoint, HashMap<String, Tensor>)> {
    let (ck, json): (Checkpoint, _) = read_json(path, "an SFT checkpoint")?;
    if ck.base_sha256 != base_sha256 {
        return Err(Error::bad_input(
            &json,
            format!(
                "the checkpoint trains {} (another sha256 than --base); pass that model",
                ck.base_model
            ),
        ));
    }
    if ck.data_sha256 != data_sha256 {
        return Err(Error::bad_input(
            &json,
            "the checkpoint was trained on other data (sha256 differs); pass the same --data or start a new run",
        ));
    }
    let tensors = read_tensors(&json.with_file_name(CHECKPOINT_FILE), ck.step, &json)?;
    Ok((ck, tensors))
}

/// Reads a trainer's `checkpoint.json` (`path`: it, or its folder) as `T`; `what` names the
/// kind in the error for another file. Returns the record and the JSON's path.
pub(crate) fn read_json<T: DeserializeOwned>(path: &Path, what: &str) -> Result<(T, PathBuf)> {
    let json = if path.is_dir() {
        path.join(CHECKPOINT_JSON)
    } else {
        path.to_path_buf()
    };
    let text = std::fs::read_to_string(&json).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::NotFound { path: json.clone() },
        _ => Error::io(json.display().to_string(), e),
    })?;
    let record = serde_json::from_str(&text)
        .map_err(|e| Error::bad_input(&json, format!("not {what} ({e})")))?;
    Ok((record, json))
}

/// The tensors of `checkpoint.safetensors`, which must be those of step `step` of `json`.
pub(crate) fn read_tensors(
    tensors_path: &Path,
    step: usize,
    json: &Path,
) -> Result<HashMap<String, Tensor>> {
    let (tensors, meta) = read_safetensors(tensors_path)?;
    if meta.get(STEP_KEY) != Some(&step.to_string()) {
        return Err(Error::bad_input(
            tensors_path,
            format!("its step is not the {step} of {} (an interrupted write); resume from an earlier copy or start again", json.display()),
        ));
    }
    Ok(tensors)
}

const STEP_KEY: &str = "actfer.sft.step";
const M_PREFIX: &str = "adamw.m.";
const V_PREFIX: &str = "adamw.v.";

/// Writes an SFT checkpoint: its tensors, then `checkpoint.json`.
pub(crate) fn write(
    tensors_path: &Path,
    json_path: &Path,
    ck: &Checkpoint,
    vars: &[(String, Var)],
    adam: &AdamW,
) -> Result<()> {
    write_tensors(tensors_path, ck.step, vars, adam)?;
    write_json(json_path, ck)
}

/// Writes the LoRA tensors and AdamW's moments of step `step`.
pub(crate) fn write_tensors(
    tensors_path: &Path,
    step: usize,
    vars: &[(String, Var)],
    adam: &AdamW,
) -> Result<()> {
    let mut tensors = BTreeMap::new();
    for (i, (name, var)) in vars.iter().enumerate() {
        let shape = var.shape();
        tensors.insert(name.clone(), var.as_tensor().copy()?.detach());
        for (prefix, moment) in [(M_PREFIX, &adam.m[i]), (V_PREFIX, &adam.v[i])] {
            let t = Tensor::from_slice(moment, shape, &Device::Cpu)?;
            tensors.insert(format!("{prefix}{name}"), t);
        }
    }
    let meta = HashMap::from([(STEP_KEY.to_string(), step.to_string())]);
    write_safetensors(tensors_path, &tensors, meta)
}

/// Writes a trainer's record as `json_path` (beside it first, then renamed into place).
pub(crate) fn write_json<T: Serialize>(json_path: &Path, record: &T) -> Result<()> {
    let tmp = json_path.with_extension("json.part");
    let text = serde_json::to_string_pretty(record).expect("a checkpoint serialises") + "\n";
    std::fs::write(&tmp, text).map_err(|e| Error::io(tmp.display().to_string(), e))?;
    std::fs::rename(&tmp, json_path).map_err(|e| Error::io(json_path.display().to_string(), e))
}

/// Sets `vars` and AdamW's moments (and its step count, `adamw_t`) from checkpoint tensors.
pub(crate) fn restore(
    vars: &[(String, Var)],
    adam: &mut AdamW,
    adamw_t: u64,
    tensors: &HashMap<String, Tensor>,
) -> Result<()> {
    let get = |name: &str| {
        tensors.get(name).ok_or_else(|| {
            Error::Internal(format!(
                "the checkpoint has no {name}: it was written with other LoRA settings"
            ))
        })
    };
    for (i, (name, var)) in vars.iter().enumerate() {
        let w = get(name)?;
        if w.dims() != var.dims() {
            return Err(Error::Internal(format!(
                "{name} is {:?} in the checkpoint and {:?} in the model",
                w.dims(),
                var.dims()
            )));
        }
        var.set(w)?;
        adam.m[i] = get(&format!("{M_PREFIX}{name}"))?
            .flatten_all()?
            .to_vec1()?;
        adam.v[i] = get(&format!("{V_PREFIX}{name}"))?
            .flatten_all()?
            .to_vec1()?;
    }
    adam.t = adamw_t;
    Ok(())
}
