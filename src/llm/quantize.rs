//! Rewriting a GGUF model in another quantization (e.g. Q4_1 -> Q8_0, whose CPU kernels are
//! much faster), keeping every metadata entry.
//!
//! Each quantized weight matrix is dequantized and quantized again; 1-D tensors (norms) and
//! float tensors stay as they are. Going to a wider format (Q4_1 -> Q8_0) keeps the values
//! to within Q8_0's rounding step, so the model's answers barely move.

use std::path::Path;

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::Device;

use super::gguf::GgufFile;
use crate::{Error, Result};

/// What [`requantize`] did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RequantizeReport {
    pub tensors: usize,
    pub converted: usize,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// The quantization a name such as `q8_0` or `Q4_0` stands for.
pub fn parse_dtype(name: &str) -> Option<GgmlDType> {
    Some(match name.to_ascii_lowercase().as_str() {
        "q4_0" => GgmlDType::Q4_0,
        "q4_1" => GgmlDType::Q4_1,
        "q5_0" => GgmlDType::Q5_0,
        "q5_1" => GgmlDType::Q5_1,
        "q8_0" => GgmlDType::Q8_0,
        "q4k" | "q4_k" => GgmlDType::Q4K,
        "q6k" | "q6_k" => GgmlDType::Q6K,
        "f16" => GgmlDType::F16,
        "f32" => GgmlDType::F32,
        _ => return None,
    })
}

/// llama.cpp's `general.file_type` code for a file mostly in `dtype`.
fn file_type(dtype: GgmlDType) -> Option<u32> {
    Some(match dtype {
        GgmlDType::F32 => 0,
        GgmlDType::F16 => 1,
        GgmlDType::Q4_0 => 2,
        GgmlDType::Q4_1 => 3,
        GgmlDType::Q8_0 => 7,
        GgmlDType::Q5_0 => 8,
        GgmlDType::Q5_1 => 9,
        GgmlDType::Q4K => 15,
        GgmlDType::Q6K => 18,
        _ => return None,
    })
}

/// Writes `src` to `dst` with every quantized 2-D weight in `dtype`. The file is written
/// beside `dst` and renamed into place, so an interrupted run leaves no half file.
pub fn requantize(src: &Path, dst: &Path, dtype: GgmlDType) -> Result<RequantizeReport> {
    let mut file = GgufFile::open(src)?;
    let device = Device::Cpu;
    let mut names: Vec<String> = file.content.tensor_infos.keys().cloned().collect();
    names.sort_by_key(|n| file.content.tensor_infos[n].offset);
    let mut tensors: Vec<(String, QTensor)> = Vec::with_capacity(names.len());
    let mut converted = 0;
    for name in &names {
        let info = &file.content.tensor_infos[name];
        let q = info
            .read(&mut file.reader, file.content.tensor_data_offset, &device)
            .map_err(|e| Error::bad_input(src, format!("tensor {name}: {e}")))?;
        let quantized = !matches!(q.dtype(), GgmlDType::F32 | GgmlDType::F16 | GgmlDType::BF16);
        let row = q.shape().dims().last().copied().unwrap_or(0);
        let fits = row % dtype.block_size() == 0;
        if quantized && q.shape().rank() == 2 && q.dtype() != dtype && fits {
            let values = q.dequantize(&device)?;
            tensors.push((name.clone(), QTensor::quantize(&values, dtype)?));
            converted += 1;
        } else {
            tensors.push((name.clone(), q));
        }
    }
    let mut metadata: Vec<(String, Value)> = file
        .content
        .metadata
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if let Some(code) = file_type(dtype) {
        for (k, v) in metadata.iter_mut() {
            if k == "general.file_type" {
                *v = Value::U32(code);
            }
        }
    }
    metadata.sort_by(|a, b| a.0.cmp(&b.0));
    let tmp = dst.with_extension("gguf.part");
    let out = std::fs::File::create(&tmp).map_err(|e| Error::io(tmp.display().to_string(), e))?;
    let mut out = std::io::BufWriter::new(out);
    let md: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let ts: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, t)| (k.as_str(), t)).collect();
    gguf_file::write(&mut out, &md, &ts)?;
    use std::io::Write;
    out.flush()
        .map_err(|e| Error::io(tmp.display().to_string(), e))?;
    drop(out);
    std::fs::rename(&tmp, dst).map_err(|e| Error::io(dst.display().to_string(), e))?;
    let bytes_out = std::fs::metadata(dst)
        .map_err(|e| Error::io(dst.display().to_string(), e))?
        .len();
    Ok(RequantizeReport {
        tensors: tensors.len(),
        converted,
        bytes_in: file.size,
        bytes_out,
    })
}
