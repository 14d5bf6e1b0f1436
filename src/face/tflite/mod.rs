//! A small executor for the TFLite graphs that `tools/convert/face_landmarker.py` stores in
//! safetensors: every constant tensor under its TFLite name (f16 widened to f32), and the op
//! list in the metadata key `graph` (JSON: `ops` in execution order with `op`, `inputs`,
//! `outputs`, `options`; `inputs`/`outputs` of the subgraph; `tensors` with shapes).
//!
//! Everything is decided at load: weights are transposed from TFLite's OHWI (depthwise 1HWC)
//! to candle's OIHW, SAME padding becomes explicit (TFLite puts the odd pixel at the bottom
//! and right), and each activation gets a slot index that is dropped after its last use. At run
//! time [`Graph::forward`] only walks a `Vec<Op>`. A PRELU that alone reads the output of a
//! CONV_2D, DEPTHWISE_CONV_2D or ADD is fused into it, and so is an ADD that alone reads a
//! CONV_2D's output (as the convolution's residual): on the CPU the kernels in [`cpu`] apply
//! the bias, the residual and the activation as they store each result ([`Epilogue`]).
//!
//! Activations are NCHW inside (TFLite's NHWC shapes are permuted at load); [`Graph::forward`]
//! takes `[b, c, h, w]` and returns rank-4 outputs in TFLite's NHWC layout, so that
//! `Identity` `[1, 1, 1, 1434]` keeps its meaning. Supported ops: CONV_2D, DEPTHWISE_CONV_2D,
//! PRELU, ADD, MAX_POOL_2D (VALID), PAD, RESHAPE, LOGISTIC, with fused NONE / RELU / RELU6.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{
    CpuStorage, CustomOp1, CustomOp2, DType, Device, Layout, Shape, Storage, Tensor, D,
};
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::face::kernels::{self, Activation, Packed};

mod cpu;
pub(crate) use cpu::{ConvCpu, DepthwiseCpu};

#[derive(Debug, Deserialize)]
struct GraphJson {
    ops: Vec<OpJson>,
    inputs: Vec<IoJson>,
    outputs: Vec<IoJson>,
    tensors: HashMap<String, TensorJson>,
}

#[derive(Debug, Deserialize)]
struct OpJson {
    op: String,
    inputs: Vec<Option<String>>,
    outputs: Vec<String>,
    #[serde(default)]
    options: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct IoJson {
    name: String,
}

#[derive(Debug, Deserialize)]
struct TensorJson {
    shape: Vec<i64>,
}

/// Zero padding `[top, bottom, left, right]`.
pub(crate) type Pad4 = [usize; 4];

#[derive(Clone)]
enum Act {
    None,
    Relu,
    Relu6,
    /// `alpha` `[1, c, 1, 1]` for other devices, and its values for the CPU.
    Prelu(Tensor, Vec<f32>),
}

/// What follows an op: per-channel bias, then activation. Runs as one CPU pass, or as candle
/// ops on other devices. As a [`CustomOp2`] it first adds a residual of the same shape.
struct Epilogue {
    /// `[1, c, 1, 1]` and its values.
    bias: Option<(Tensor, Vec<f32>)>,
    act: Act,
}

enum Kind {
    /// `weight` `[o, i, kh, kw]` for devices without the CPU kernel. `residual`: the other
    /// operand of an ADD fused into the convolution.
    Conv {
        weight: Tensor,
        cpu: ConvCpu,
        residual: Option<usize>,
    },
    /// `weight` `[c, 1, kh, kw]` for devices without the CPU kernel.
    Depthwise {
        weight: Tensor,
        cpu: DepthwiseCpu,
    },
    /// Only the epilogue (an unfused PRELU).
    Activation,
    Add {
        rhs: usize,
    },
    MaxPool {
        k: (usize, usize),
        stride: (usize, usize),
    },
    /// Zero padding per NCHW dimension, `[before, after]`.
    Pad {
        pads: [[usize; 2]; 4],
    },
    Logistic,
    /// The target shape in TFLite's layout; -1 (or the batch) takes the rest.
    Reshape {
        shape: Vec<i64>,
    },
}

struct Op {
    kind: Kind,
    input: usize,
    output: usize,
    epilogue: Epilogue,
    /// Slots no later op reads: dropped after this op.
    release: Vec<usize>,
}

impl Op {
    /// The slots the op reads.
    fn reads(&self) -> impl Iterator<Item = usize> {
        let second = match self.kind {
            Kind::Add { rhs } => Some(rhs),
            Kind::Conv { residual, .. } => residual,
            _ => None,
        };
        std::iter::once(self.input).chain(second)
    }

    /// Takes over `next` when it is a PRELU or ADD reading this op's output (an ADD only into
    /// a CONV_2D, as its residual); returns whether it did. The caller checks that nothing
    /// else reads this op's output.
    fn absorb(&mut self, next: &Op) -> bool {
        if !matches!(self.epilogue.act, Act::None) || next.epilogue.bias.is_some() {
            return false;
        }
        match (&mut self.kind, &next.kind) {
            (Kind::Conv { .. } | Kind::Depthwise { .. } | Kind::Add { .. }, Kind::Activation)
                if next.input == self.output => {}
            (Kind::Conv { residual, .. }, Kind::Add { rhs }) if residual.is_none() => {
                let other = if next.input == self.output {
                    *rhs
                } else if *rhs == self.output {
                    next.input
                } else {
                    return false;
                };
                if other == self.output {
                    return false;
                }
                *residual = Some(other);
            }
            _ => return false,
        }
        self.epilogue.act = next.epilogue.act.clone();
        self.output = next.output;
        true
    }
}

/// A loaded graph; see the module docs.
pub struct Graph {
    ops: Vec<Op>,
    slots: usize,
    input: usize,
    outputs: Vec<(String, usize)>,
}

fn bad(name: &str, path: &Path, reason: impl Into<String>) -> Error {
    Error::BadModel {
        name: name.to_string(),
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// The safetensors header's `__metadata__.graph`, parsed.
fn read_graph_json(bytes: &[u8]) -> std::result::Result<GraphJson, String> {
    let n =
        u64::from_le_bytes(bytes.get(..8).ok_or("file too short")?.try_into().unwrap()) as usize;
    let header: serde_json::Value =
        serde_json::from_slice(bytes.get(8..8 + n).ok_or("truncated header")?)
            .map_err(|e| e.to_string())?;
    let graph = header["__metadata__"]["graph"]
        .as_str()
        .ok_or("no `graph` in the safetensors metadata")?;
    serde_json::from_str(graph).map_err(|e| format!("bad graph metadata: {e}"))
}

/// TFLite SAME padding for one axis: the odd pixel goes after.
pub(crate) fn same_pad(input: usize, k: usize, stride: usize) -> [usize; 2] {
    let out = input.div_ceil(stride);
    let total = ((out - 1) * stride + k).saturating_sub(input);
    [total / 2, total - total / 2]
}

impl Graph {
    /// Loads a converted model; `name` is the model's name for error messages.
    pub fn load(path: &Path, name: &str, device: &Device) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path.display().to_string(), e))?;
        let graph = read_graph_json(&bytes).map_err(|r| bad(name, path, r))?;
        let consts = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)
            .map_err(|e| bad(name, path, format!("unreadable tensors: {e}")))?;
        let fail = |r: String| bad(name, path, r);

        let mut slot_of: HashMap<String, usize> = HashMap::new();
        let slot = |n: &str, slot_of: &mut HashMap<String, usize>| {
            let next = slot_of.len();
            *slot_of.entry(n.to_string()).or_insert(next)
        };
        let input = slot(&graph.inputs[0].name, &mut slot_of);
        let mut ops = Vec::with_capacity(graph.ops.len());
        for (i, op) in graph.ops.iter().enumerate() {
            let arg = |k: usize| -> std::result::Result<&str, String> {
                op.inputs
                    .get(k)
                    .and_then(|s| s.as_deref())
                    .ok_or(format!("op {i} ({}) lacks input {k}", op.op))
            };
            let konst = |k: usize| -> std::result::Result<Tensor, String> {
                let n = arg(k)?;
                consts
                    .get(n)
                    .cloned()
                    .ok_or(format!("op {i} ({}): constant {n} is not stored", op.op))
            };
            let opt = |k: &str| op.options.get(k).and_then(|v| v.as_u64()).unwrap_or(1) as usize;
            let shape_of = |n: &str| {
                graph
                    .tensors
                    .get(n)
                    .map(|t| t.shape.clone())
                    .unwrap_or_default()
            };
            let act = match op
                .options
                .get("fused_activation_function")
                .and_then(|v| v.as_str())
            {
                None | Some("NONE") => Act::None,
                Some("RELU") => Act::Relu,
                Some("RELU6") => Act::Relu6,
                Some(a) => {
                    return Err(fail(format!(
                        "op {i} ({}): fused activation {a} is not supported",
                        op.op
                    )))
                }
            };
            let padding = |k: (usize, usize), stride: usize| -> std::result::Result<Pad4, String> {
                match op.options.get("padding").and_then(|v| v.as_str()) {
                    Some("VALID") | None => Ok([0; 4]),
                    Some("SAME") => {
                        let s = shape_of(arg(0)?); // NHWC
                        let (h, w) = (s[1] as usize, s[2] as usize);
                        let ([t, b], [l, r]) = (same_pad(h, k.0, stride), same_pad(w, k.1, stride));
                        Ok([t, b, l, r])
                    }
                    Some(p) => Err(format!("op {i}: padding {p}")),
                }
            };
            let mut bias = None;
            let mut kind_act = None;
            let kind = (|| -> std::result::Result<Kind, String> {
                if opt("dilation_h_factor") != 1 || opt("dilation_w_factor") != 1 {
                    return Err("dilated convolutions are not supported".into());
                }
                let stride = opt("stride_h");
                if stride != opt("stride_w") {
                    return Err("unequal strides are not supported".into());
                }
                let e = |e: candle_core::Error| e.to_string();
                Ok(match op.op.as_str() {
                    "CONV_2D" => {
                        let weight = konst(1)?
                            .permute((0, 3, 1, 2))
                            .and_then(|t| t.contiguous())
                            .map_err(e)?;
                        let (o, _, kh, kw) = weight.dims4().map_err(e)?;
                        bias = Some(konst(2)?.reshape((1, o, 1, 1)).map_err(e)?);
                        let (_, i_ch, _, _) = weight.dims4().map_err(e)?;
                        let flat = weight.flatten_all().and_then(|t| t.to_vec1()).map_err(e)?;
                        let cpu = ConvCpu {
                            weight: Packed::new(&flat, o, i_ch * kh * kw),
                            k: (kh, kw),
                            stride,
                            pad: padding((kh, kw), stride)?,
                        };
                        Kind::Conv {
                            weight,
                            cpu,
                            residual: None,
                        }
                    }
                    "DEPTHWISE_CONV_2D" => {
                        if opt("depth_multiplier") != 1 {
                            return Err("depth_multiplier != 1 is not supported".into());
                        }
                        let weight = konst(1)?
                            .permute((3, 0, 1, 2))
                            .and_then(|t| t.contiguous())
                            .map_err(e)?;
                        let (c, _, kh, kw) = weight.dims4().map_err(e)?;
                        bias = Some(konst(2)?.reshape((1, c, 1, 1)).map_err(e)?);
                        let cpu = DepthwiseCpu {
                            weight: weight.flatten_all().and_then(|t| t.to_vec1()).map_err(e)?,
                            k: (kh, kw),
                            stride,
                            pad: padding((kh, kw), stride)?,
                        };
                        Kind::Depthwise { weight, cpu }
                    }
                    "PRELU" => {
                        let alpha = konst(1)?;
                        let c = alpha.elem_count();
                        if alpha.dim(D::Minus1).map_err(e)? != c {
                            return Err("PRELU alpha must vary over channels only".into());
                        }
                        let values = alpha.flatten_all().and_then(|t| t.to_vec1()).map_err(e)?;
                        kind_act =
                            Some(Act::Prelu(alpha.reshape((1, c, 1, 1)).map_err(e)?, values));
                        Kind::Activation
                    }
                    "ADD" => Kind::Add { rhs: usize::MAX },
                    "MAX_POOL_2D" => {
                        if op.options.get("padding").and_then(|v| v.as_str()) != Some("VALID") {
                            return Err("MAX_POOL_2D with SAME padding is not supported".into());
                        }
                        Kind::MaxPool {
                            k: (opt("filter_height"), opt("filter_width")),
                            stride: (stride, stride),
                        }
                    }
                    "PAD" => {
                        let p = konst(1)?
                            .to_dtype(DType::I64)
                            .and_then(|t| t.to_vec2::<i64>())
                            .map_err(e)?;
                        let nchw = [0, 3, 1, 2].map(|d| [p[d][0] as usize, p[d][1] as usize]);
                        Kind::Pad { pads: nchw }
                    }
                    "LOGISTIC" => Kind::Logistic,
                    "RESHAPE" => Kind::Reshape {
                        shape: konst(1)?
                            .to_dtype(DType::I64)
                            .and_then(|t| t.to_vec1::<i64>())
                            .map_err(e)?,
                    },
                    other => return Err(format!("op {other} is not supported")),
                })
            })()
            .map_err(|r| fail(format!("op {i} ({}): {r}", op.op)))?;
            let src = *slot_of
                .get(arg(0).map_err(fail)?)
                .ok_or_else(|| fail(format!("op {i} reads an unknown tensor")))?;
            let kind = match kind {
                Kind::Add { .. } => {
                    let rhs = arg(1).map_err(fail)?;
                    Kind::Add {
                        rhs: *slot_of
                            .get(rhs)
                            .ok_or_else(|| fail(format!("op {i}: unknown {rhs}")))?,
                    }
                }
                k => k,
            };
            let output = slot(&op.outputs[0], &mut slot_of);
            let bias = bias
                .map(|b| -> Result<_> { Ok((b.clone(), b.flatten_all()?.to_vec1()?)) })
                .transpose()?;
            let epilogue = Epilogue {
                bias,
                act: kind_act.unwrap_or(act),
            };
            ops.push(Op {
                kind,
                input: src,
                output,
                epilogue,
                release: vec![],
            });
        }
        let outputs = graph
            .outputs
            .iter()
            .map(|o| {
                Ok((
                    o.name.clone(),
                    *slot_of
                        .get(o.name.as_str())
                        .ok_or_else(|| fail(format!("no op writes {}", o.name)))?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;

        // Fold each op into the one before it where that one's output has no other reader: a
        // PRELU becomes the activation of a CONV_2D, DEPTHWISE_CONV_2D or ADD, and an ADD the
        // residual of a CONV_2D.
        let mut readers = vec![0usize; slot_of.len()];
        for op in &ops {
            op.reads().for_each(|s| readers[s] += 1);
        }
        let mut fused: Vec<Op> = Vec::with_capacity(ops.len());
        for op in ops {
            if let Some(prev) = fused.last_mut() {
                let sole_reader =
                    readers[prev.output] == 1 && !outputs.iter().any(|o| o.1 == prev.output);
                if sole_reader && prev.absorb(&op) {
                    continue;
                }
            }
            fused.push(op);
        }
        let mut ops = fused;
        // Drop each slot after its last reader (never the outputs).
        let mut last_use = vec![None; slot_of.len()];
        for (i, op) in ops.iter().enumerate() {
            op.reads().for_each(|s| last_use[s] = Some(i));
        }
        for (s, last) in last_use.iter().enumerate() {
            if let Some(i) = last {
                if !outputs.iter().any(|o| o.1 == s) {
                    ops[*i].release.push(s);
                }
            }
        }
        for op in &mut ops {
            op.kind = match std::mem::replace(&mut op.kind, Kind::Logistic) {
                Kind::Conv {
                    weight,
                    cpu,
                    residual,
                } => Kind::Conv {
                    weight: weight.to_device(device)?,
                    cpu,
                    residual,
                },
                Kind::Depthwise { weight, cpu } => Kind::Depthwise {
                    weight: weight.to_device(device)?,
                    cpu,
                },
                k => k,
            };
            if let Some((b, _)) = &mut op.epilogue.bias {
                *b = b.to_device(device)?;
            }
            if let Act::Prelu(a, _) = &mut op.epilogue.act {
                *a = a.to_device(device)?;
            }
        }
        Ok(Graph {
            ops,
            slots: slot_of.len(),
            input,
            outputs,
        })
    }

    /// The index of a subgraph output in [`Graph::forward`]'s result.
    pub fn output_index(&self, name: &str) -> Option<usize> {
        self.outputs.iter().position(|o| o.0 == name)
    }

    /// Runs the graph on `[b, c, h, w]`; returns the subgraph outputs in order, rank-4 ones
    /// as NHWC like TFLite.
    pub fn forward(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let mut values: Vec<Option<Tensor>> = vec![None; self.slots];
        values[self.input] = Some(x.clone());
        for op in &self.ops {
            let y = run_op(op, &values)?;
            values[op.output] = Some(y);
            for &s in &op.release {
                values[s] = None;
            }
        }
        self.outputs
            .iter()
            .map(|(_, s)| {
                let t = values[*s]
                    .take()
                    .ok_or_else(|| Error::Internal("graph output never written".into()))?;
                Ok(if t.rank() == 4 {
                    t.permute((0, 2, 3, 1))?.contiguous()?
                } else {
                    t
                })
            })
            .collect()
    }
}

/// Whether `x` can go through the CPU kernels: an f32 NCHW tensor on the CPU.
fn on_cpu(x: &Tensor) -> bool {
    x.device().is_cpu() && x.dtype() == DType::F32 && x.rank() == 4
}

/// The contiguous values of a CPU f32 tensor, passed to `f`.
fn with_values<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        return Err(Error::Internal("CPU tensor expected".into()));
    };
    Ok(f(contiguous_f32(cpu, layout)?))
}

/// One op on the values computed so far; returns its output with the epilogue applied.
fn run_op(op: &Op, values: &[Option<Tensor>]) -> Result<Tensor> {
    let slot = |s: usize| {
        values[s]
            .as_ref()
            .ok_or_else(|| Error::Internal("graph slot read before written".into()))
    };
    let x = slot(op.input)?;
    let y = match &op.kind {
        Kind::Conv {
            weight,
            cpu,
            residual,
        } => {
            let residual = residual.map(slot).transpose()?;
            return conv(x, weight, cpu, residual, &op.epilogue);
        }
        Kind::Depthwise { weight, cpu } => {
            if on_cpu(x) {
                let dims = x.dims4()?;
                let (oh, ow) = cpu.out_size((dims.2, dims.3));
                let y = with_values(x, |v| cpu.run(v, dims, op.epilogue.kernel()))?;
                return Ok(Tensor::from_vec(y, (dims.0, dims.1, oh, ow), x.device())?);
            }
            let [t, bo, l, r] = cpu.pad;
            let x = x.pad_with_zeros(2, t, bo)?.pad_with_zeros(3, l, r)?;
            x.conv2d(weight, 0, cpu.stride, 1, weight.dim(0)?)?
        }
        Kind::Activation => x.clone(),
        Kind::Add { rhs } => return op.epilogue.apply(x, Some(slot(*rhs)?)),
        Kind::MaxPool { k, stride } => {
            if on_cpu(x) && k.0 == k.1 && stride.0 == stride.1 {
                let (b, c, h, w) = x.dims4()?;
                let (oh, ow) = ((h - k.0) / stride.0 + 1, (w - k.1) / stride.1 + 1);
                let y = with_values(x, |v| {
                    kernels::max_pool(v, b * c, (h, w), (k.0, stride.0), (oh, ow))
                })?;
                Tensor::from_vec(y, (b, c, oh, ow), x.device())?
            } else {
                x.max_pool2d_with_stride(*k, *stride)?
            }
        }
        Kind::Pad { pads } => {
            let mut y = x.clone();
            for (d, [a, b]) in pads.iter().enumerate() {
                if a + b > 0 {
                    y = y.pad_with_zeros(d, *a, *b)?;
                }
            }
            y
        }
        Kind::Logistic => candle_nn::ops::sigmoid(x)?,
        Kind::Reshape { shape } => reshape_nhwc(x, shape)?,
    };
    op.epilogue.apply(&y, None)
}

/// CONV_2D with its epilogue and fused residual; on the CPU through [`ConvCpu`].
fn conv(
    x: &Tensor,
    weight: &Tensor,
    cpu: &ConvCpu,
    residual: Option<&Tensor>,
    epilogue: &Epilogue,
) -> Result<Tensor> {
    if on_cpu(x) {
        let (b, c, h, w) = x.dims4()?;
        let (oh, ow) = cpu.out_size((h, w));
        let out_shape = (b, cpu.weight.rows(), oh, ow);
        let y = with_values(x, |v| match residual {
            Some(r) => {
                if r.dims() != [b, cpu.weight.rows(), oh, ow] {
                    return Err(Error::Internal(format!(
                        "ADD of {out_shape:?} and {:?}: broadcasting is not supported",
                        r.dims()
                    )));
                }
                with_values(r, |r| cpu.run(v, (b, c, h, w), Some(r), epilogue.kernel()))
            }
            None => Ok(cpu.run(v, (b, c, h, w), None, epilogue.kernel())),
        })??;
        return Ok(Tensor::from_vec(y, out_shape, x.device())?);
    }
    let y = if cpu.k == (1, 1) && cpu.stride == 1 && cpu.pad == [0; 4] {
        // [b, i, h, w] -> [b, o, h, w] as one matmul over pixels.
        let (b, c, h, w) = x.dims4()?;
        let w2 = weight.reshape((cpu.weight.rows(), c))?;
        w2.broadcast_matmul(&x.reshape((b, c, h * w))?)?
            .reshape((b, (), h, w))?
    } else {
        let [t, bo, l, r] = cpu.pad;
        let x = x.pad_with_zeros(2, t, bo)?.pad_with_zeros(3, l, r)?;
        x.conv2d(weight, 0, cpu.stride, 1, 1)?
    };
    epilogue.apply(&y, residual)
}

/// RESHAPE in TFLite's NHWC terms: the target `shape` (-1 takes the rest, the batch stays).
fn reshape_nhwc(x: &Tensor, shape: &[i64]) -> Result<Tensor> {
    let x = if x.rank() == 4 {
        x.permute((0, 2, 3, 1))?
    } else {
        x.clone()
    };
    let b = x.dim(0)?;
    let known: i64 = shape.iter().skip(1).filter(|&&d| d > 0).product();
    let dims: Vec<usize> = std::iter::once(b)
        .chain(shape.iter().skip(1).map(|&d| {
            if d > 0 {
                d as usize
            } else {
                x.elem_count() / b / known as usize
            }
        }))
        .collect();
    let y = x.contiguous()?.reshape(dims)?;
    Ok(if y.rank() == 4 {
        y.permute((0, 3, 1, 2))?
    } else {
        y
    })
}

impl Epilogue {
    /// The bias and activation for the CPU kernels.
    fn kernel(&self) -> kernels::Epilogue<'_> {
        kernels::Epilogue {
            bias: self.bias.as_ref().map(|(_, b)| b.as_slice()),
            residual: None,
            act: match &self.act {
                Act::None => Activation::None,
                Act::Relu => Activation::Relu,
                Act::Relu6 => Activation::Relu6,
                Act::Prelu(_, alpha) => Activation::PRelu(alpha),
            },
        }
    }

    fn is_identity(&self) -> bool {
        self.bias.is_none() && matches!(self.act, Act::None)
    }

    /// `act(x + bias (+ residual))`.
    fn apply(&self, x: &Tensor, residual: Option<&Tensor>) -> Result<Tensor> {
        if self.is_identity() && residual.is_none() {
            return Ok(x.clone());
        }
        if x.device().is_cpu() && x.dtype() == DType::F32 && x.rank() == 4 {
            let x = x.contiguous()?;
            return Ok(match residual {
                Some(r) => x.apply_op2_no_bwd(&r.contiguous()?, self)?,
                None => x.apply_op1_no_bwd(self)?,
            });
        }
        let mut y = match residual {
            Some(r) => (x + r)?,
            None => x.clone(),
        };
        if let Some((b, _)) = &self.bias {
            y = y.broadcast_add(b)?;
        }
        Ok(match &self.act {
            Act::None => y,
            Act::Relu => y.relu()?,
            Act::Relu6 => y.clamp(0f32, 6f32)?,
            Act::Prelu(alpha, _) => (y.relu()? + y.minimum(0f32)?.broadcast_mul(alpha)?)?,
        })
    }

    /// The CPU pass over contiguous NCHW f32, optionally adding `residual` first.
    fn cpu(
        &self,
        x: &[f32],
        residual: Option<&[f32]>,
        shape: &Shape,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (_, c, h, w) = shape.dims4()?;
        let mut y = x.to_vec();
        if let Some(r) = residual {
            y.iter_mut().zip(r).for_each(|(v, r)| *v += r);
        }
        let ep = self.kernel();
        for (n, plane) in y.chunks_exact_mut(h * w).enumerate() {
            let ch = n % c;
            if let Some(b) = ep.bias {
                plane.iter_mut().for_each(|v| *v += b[ch]);
            }
            ep.act.apply(ch, plane);
        }
        Ok((CpuStorage::F32(y), shape.clone()))
    }
}

fn contiguous_f32<'a>(storage: &'a CpuStorage, layout: &Layout) -> candle_core::Result<&'a [f32]> {
    let CpuStorage::F32(all) = storage else {
        candle_core::bail!("f32 input only")
    };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&all[start..end]),
        None => candle_core::bail!("contiguous input only"),
    }
}

impl CustomOp1 for Epilogue {
    fn name(&self) -> &'static str {
        "tflite-epilogue"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        self.cpu(contiguous_f32(storage, layout)?, None, layout.shape())
    }
}

impl CustomOp2 for Epilogue {
    fn name(&self) -> &'static str {
        "tflite-add-epilogue"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        if l1.shape() != l2.shape() {
            candle_core::bail!(
                "ADD of {:?} and {:?}: broadcasting is not supported",
                l1.shape(),
                l2.shape()
            );
        }
        self.cpu(
            contiguous_f32(s1, l1)?,
            Some(contiguous_f32(s2, l2)?),
            l1.shape(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_padding_puts_the_odd_pixel_last() {
        assert_eq!(same_pad(256, 3, 2), [0, 1]);
        assert_eq!(same_pad(128, 3, 1), [1, 1]);
        assert_eq!(same_pad(5, 2, 2), [0, 1]);
    }
}
