//! What a GRPO run goes on from: the LoRA tensors and AdamW's moments
//! (`checkpoint.safetensors`, as SFT writes them: [`crate::llm::lora::checkpoint`]) and
//! `checkpoint.json` ([`GrpoCheckpoint`]): the step, the settings, the calibration of the zoom
//! utility, and the sha256 of the base model, the reference adapter and the data's labels, which
//! a resumed run must share. The queries and sampling seeds need no saved state: they are
//! functions of the seed and the step ([`super::queries`]).

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Tensor, Var};
use serde::{Deserialize, Serialize};

use super::GrpoOptions;
use crate::error::{Error, Result};
use crate::llm::lora::checkpoint::{read_json, read_tensors, write_json, write_tensors};
use crate::llm::lora::optim::AdamW;
use crate::llm::lora::sft::{CHECKPOINT_FILE, CHECKPOINT_JSON};
use crate::reward::CalibrationState;

/// `checkpoint.json` of a GRPO run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GrpoCheckpoint {
    /// Steps done.
    pub step: usize,
    pub options: GrpoOptions,
    pub base_model: String,
    pub base_sha256: String,
    /// The initial adapter: the KL reference.
    pub init_sha256: String,
    /// The SynthME folder's labels.json.
    pub data_sha256: String,
    /// AdamW's step count.
    pub adamw_t: u64,
    pub calibration: CalibrationState,
    /// Seconds of training so far, resumed runs included.
    pub seconds: f64,
}

/// The identities a checkpoint must share with the run that resumes it.
pub struct Identity<'a> {
    pub base: &'a str,
    pub init: &'a str,
    pub data: &'a str,
}

/// Reads a checkpoint (its folder or its JSON) and its tensors; refuses one of another base
/// model, reference adapter or data.
pub fn read(path: &Path, id: &Identity<'_>) -> Result<(GrpoCheckpoint, HashMap<String, Tensor>)> {
    let (ck, json): (GrpoCheckpoint, _) = read_json(path, "a GRPO checkpoint")?;
    for (theirs, ours, what) in [
        (&ck.base_sha256, id.base, "another base model than --base"),
        (
            &ck.init_sha256,
            id.init,
            "another reference adapter than --init",
        ),
        (
            &ck.data_sha256,
            id.data,
            "other data than --data (labels.json differs)",
        ),
    ] {
        if theirs != ours {
            return Err(Error::bad_input(
                &json,
                format!("the checkpoint was trained with {what}; pass the same or start a new run"),
            ));
        }
    }
    let tensors = read_tensors(&json.with_file_name(CHECKPOINT_FILE), ck.step, &json)?;
    Ok((ck, tensors))
}

/// Writes the checkpoint of `ck.step` into `dir`: the tensors first, the JSON last.
pub fn write(dir: &Path, ck: &GrpoCheckpoint, vars: &[(String, Var)], adam: &AdamW) -> Result<()> {
    write_tensors(&dir.join(CHECKPOINT_FILE), ck.step, vars, adam)?;
    write_json(&dir.join(CHECKPOINT_JSON), ck)
}
