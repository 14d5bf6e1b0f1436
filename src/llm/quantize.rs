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
    let mut converted = 0;
    let tensors = map_tensors(&mut file, |_, q| {
        let quantized = !matches!(q.dtype(), GgmlDType::F32 | GgmlDType::F16 | GgmlDType::BF16);
        let row = q.shape().dims().last().copied().unwrap_or(0);
        let fits = row % dtype.block_size() == 0;
        if quantized && q.shape().rank() == 2 && q.dtype() != dtype && fits {
            let values = q.dequantize(&device)?;
            converted += 1;
            Ok(QTensor::quantize(&values, dtype)?)
        } else {
            Ok(q)
        }
    })?;
    let mut metadata = sorted_metadata(&file);
    if let Some(code) = file_type(dtype) {
        for (k, v) in metadata.iter_mut() {
            if k == "general.file_type" {
                *v = Value::U32(code);
            }
        }
    }
    let bytes_out = write_gguf(dst, &metadata, &tensors)?;
    Ok(RequantizeReport {
        tensors: tensors.len(),
        converted,
        bytes_in: file.size,
        bytes_out,
    })
}

/// Every tensor of `file` in the order of its data, each passed through `f` (name, tensor)
/// as it is read: the tensors of a rewritten GGUF.
pub(crate) fn map_tensors(
    file: &mut GgufFile,
    mut f: impl FnMut(&str, QTensor) -> Result<QTensor>,
) -> Result<Vec<(String, QTensor)>> {
    let device = Device::Cpu;
    let mut names: Vec<String> = file.content.tensor_infos.keys().cloned().collect();
    names.sort_by_key(|n| file.content.tensor_infos[n].offset);
    let mut tensors = Vec::with_capacity(names.len());
    for name in names {
        let info = &file.content.tensor_infos[&name];
        let q = info
            .read(&mut file.reader, file.content.tensor_data_offset, &device)
            .map_err(|e| Error::bad_input(&file.path, format!("tensor {name}: {e}")))?;
        let q = f(&name, q)?;
        tensors.push((name, q));
    }
    Ok(tensors)
}

/// Every metadata entry of `file`, sorted by key.
pub(crate) fn sorted_metadata(file: &GgufFile) -> Vec<(String, Value)> {
    let mut metadata: Vec<(String, Value)> = file
        .content
        .metadata
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    metadata.sort_by(|a, b| a.0.cmp(&b.0));
    metadata
}

/// Writes a GGUF of `metadata` and `tensors` to `dst`, beside it first and renamed into place
/// (an interrupted run leaves no half file); returns its size in bytes.
pub(crate) fn write_gguf(
    dst: &Path,
    metadata: &[(String, Value)],
    tensors: &[(String, QTensor)],
) -> Result<u64> {
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
    Ok(std::fs::metadata(dst)
        .map_err(|e| Error::io(dst.display().to_string(), e))?
        .len())
}

/// The same values in Q8_0 when `q` is Q4_0 or Q5_0, `q` itself otherwise.
///
/// Q4_0 and Q5_0 store 32 weights as small integers (4 or 5 bits, offset by 8 or 16) times one
/// f16 scale, and Q8_0 stores 32 weights as 8-bit integers times one f16 scale: the integers
/// move over with their scale and nothing is rounded. The dot products candle computes against
/// Q8_0 activations are then the ones llama.cpp computes for the original blocks, through
/// candle's SIMD Q8_0 kernel instead of its scalar Q4_0/Q5_0 code (Gemma 3 GGUFs keep most
/// matrices of width 640 in Q5_0, which K-quants' 256-wide blocks cannot split).
pub fn widen_to_q8_0(q: QTensor) -> Result<QTensor> {
    const BLOCK: usize = 32;
    /// One block's bytes to its 32 integers.
    type Unpack = fn(&[u8], &mut [i8; BLOCK]);
    let (size, unpack): (usize, Unpack) = match q.dtype() {
        GgmlDType::Q4_0 => (18, |b, out| {
            for j in 0..BLOCK / 2 {
                out[j] = (b[2 + j] & 0x0f) as i8 - 8;
                out[j + BLOCK / 2] = (b[2 + j] >> 4) as i8 - 8;
            }
        }),
        GgmlDType::Q5_0 => (22, |b, out| {
            let high = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
            for j in 0..BLOCK / 2 {
                let h0 = (((high >> j) & 1) << 4) as u8;
                let h1 = (((high >> (j + BLOCK / 2)) & 1) << 4) as u8;
                out[j] = ((b[6 + j] & 0x0f) | h0) as i8 - 16;
                out[j + BLOCK / 2] = ((b[6 + j] >> 4) | h1) as i8 - 16;
            }
        }),
        _ => return Ok(q),
    };
    let data = q.data()?;
    let mut wide = Vec::with_capacity(data.len() / size * 34);
    let mut ints = [0i8; BLOCK];
    for block in data.chunks_exact(size) {
        unpack(block, &mut ints);
        wide.extend_from_slice(&block[..2]); // the f16 scale
        wide.extend(ints.iter().map(|&i| i as u8));
    }
    let dims = q.shape().dims().to_vec();
    Ok(candle_core::quantized::ggml_file::qtensor_from_ggml(
        GgmlDType::Q8_0,
        &wide,
        dims,
        &Device::Cpu,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Tensor;

    fn values_of(q: &QTensor) -> Vec<f32> {
        let t = q.dequantize(&Device::Cpu).unwrap();
        t.flatten_all().unwrap().to_vec1().unwrap()
    }

    #[test]
    fn widening_to_q8_0_keeps_every_value() {
        let device = Device::Cpu;
        let values: Vec<f32> = (0..4 * 64)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
            .collect();
        let x = Tensor::from_vec(values, (4, 64), &device).unwrap();
        for dtype in [GgmlDType::Q4_0, GgmlDType::Q5_0] {
            let q = QTensor::quantize(&x, dtype).unwrap();
            let want = values_of(&q);
            let wide = widen_to_q8_0(q).unwrap();
            assert_eq!(wide.dtype(), GgmlDType::Q8_0);
            assert_eq!(wide.shape().dims(), &[4, 64]);
            assert_eq!(values_of(&wide), want, "{dtype:?}");
        }
        let q8 = QTensor::quantize(&x, GgmlDType::Q8_0).unwrap();
        assert_eq!(widen_to_q8_0(q8).unwrap().dtype(), GgmlDType::Q8_0);
    }
}
