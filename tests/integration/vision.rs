//! Qwen3-VL through `actfer::llm::vision` on a tiny model with random weights that the test
//! writes itself (no checkpoint is reachable offline): the names come from building
//! candle-transformers' model over a `VarMap`, the values from a seeded generator. Random
//! weights say nothing about answers; these tests show that the loader finds every tensor,
//! that the image reaches the logits, and that generation is repeatable.

use std::path::Path;
use std::sync::Arc;

use actfer::llm::vision::{is_vision_dir, read_config, VisionModel};
use actfer::media::RgbImage;
use actfer::Error;
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use candle_transformers::models::qwen3_vl::Qwen3VLModel;
use rand::{rngs::StdRng, Rng, SeedableRng};
use serde_json::json;

use crate::common::{fails_with, json as actfer_json};

/// Two text layers of width 32, a two-block vision tower with 8-pixel patches merged 2x2
/// and one DeepStack feature: a 64x64 image becomes 64 patches and 16 image tokens.
pub fn tiny_config() -> serde_json::Value {
    json!({
        "model_type": "qwen3_vl",
        "image_token_id": 90,
        "video_token_id": 91,
        "vision_start_token_id": 92,
        "vision_end_token_id": 93,
        "tie_word_embeddings": false,
        "text_config": {
            "head_dim": 16, "vocab_size": 100, "hidden_size": 32, "intermediate_size": 64,
            "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1,
            "hidden_act": "silu", "max_position_embeddings": 256, "rms_norm_eps": 1e-6,
            "rope_theta": 10000.0, "sliding_window": null
        },
        "vision_config": {
            "depth": 2, "hidden_size": 32, "out_hidden_size": 32, "intermediate_size": 64,
            "num_heads": 2, "patch_size": 8, "spatial_merge_size": 2, "temporal_patch_size": 2,
            "num_position_embeddings": 16, "deepstack_visual_indexes": [1],
            "hidden_act": "gelu_pytorch_tanh"
        }
    })
}

/// Writes config.json, preprocessor_config.json (bounds that keep 64x64 as it is) and
/// model.safetensors with seeded random weights.
fn write_tiny_model(dir: &Path) {
    write_model(dir, &tiny_config());
}

/// [`write_tiny_model`] with another config.
pub fn write_model(dir: &Path, config: &serde_json::Value) {
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let preprocessor = json!({"min_pixels": 1024, "max_pixels": 16384,
        "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]});
    std::fs::write(
        dir.join("preprocessor_config.json"),
        preprocessor.to_string(),
    )
    .unwrap();

    // read as the loader reads it (tie_word_embeddings copied into text_config)
    let cfg = read_config(&dir.join("config.json")).unwrap();
    let varmap = VarMap::new();
    Qwen3VLModel::new(
        &cfg,
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
    )
    .unwrap();
    let mut rng = StdRng::seed_from_u64(7);
    let vars = varmap.data().lock().unwrap();
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort();
    for name in names {
        let var = &vars[name];
        let dims = var.dims().to_vec();
        let count: usize = dims.iter().product();
        let fan_in: usize = dims[1..].iter().product::<usize>().max(1);
        let scale = if dims.len() == 1 {
            0.1
        } else {
            2.0 / (fan_in as f32).sqrt()
        };
        // norm scales near 1, everything else near 0
        let base = if dims.len() == 1 && name.contains("norm") && name.ends_with("weight") {
            1.0
        } else {
            0.0
        };
        let values: Vec<f32> = (0..count)
            .map(|_| base + scale * rng.random_range(-1.0f32..1.0))
            .collect();
        var.set(&Tensor::from_vec(values, dims, &Device::Cpu).unwrap())
            .unwrap();
    }
    drop(vars);
    varmap.save(dir.join("model.safetensors")).unwrap();
}

pub fn filled(value: u8) -> RgbImage {
    let mut image = RgbImage::new(64, 64);
    image.data.fill(value);
    image
}

/// The largest difference between two logit vectors.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn the_image_reaches_the_logits_and_generation_repeats() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_model(dir.path());
    assert!(is_vision_dir(dir.path()));
    let model = Arc::new(VisionModel::load_dir(dir.path()).unwrap());
    assert!(model.tokenizer.is_none());

    let (before, after) = ([1u32, 2, 3], [4u32, 5]);
    let black = model.generate_ids(&filled(0), &before, &after, 6).unwrap();
    let again = model.generate_ids(&filled(0), &before, &after, 6).unwrap();
    let white = model
        .generate_ids(&filled(255), &before, &after, 6)
        .unwrap();

    // 64x64 in 8-pixel patches is an 8x8 grid; merged 2x2, 16 placeholders
    let images = black.prompt_tokens.iter().filter(|&&t| t == 90).count();
    assert_eq!(images, 16);
    assert_eq!(
        black.prompt_tokens.len(),
        before.len() + 2 + 16 + after.len()
    );
    assert_eq!(black.first_logits.len(), 100);
    assert_eq!(black.tokens.len(), 6);
    assert!(black.text.is_none());

    // the same image twice: the same logits and tokens (no state kept between generations)
    assert_eq!(black.first_logits, again.first_logits);
    assert_eq!(black.tokens, again.tokens);

    // another image: other logits
    let diff = max_abs_diff(&black.first_logits, &white.first_logits);
    assert!(
        diff > 1e-3,
        "black and white images give the same logits (max diff {diff})"
    );
}

#[test]
fn missing_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let err = VisionModel::load_dir(dir.path()).unwrap_err();
    assert!(matches!(err, Error::BadInput { .. }), "{err}");
    assert!(err.to_string().contains("config.json"), "{err}");

    std::fs::write(dir.path().join("config.json"), tiny_config().to_string()).unwrap();
    let err = VisionModel::load_dir(dir.path()).unwrap_err();
    assert!(err.to_string().contains("no *.safetensors"), "{err}");

    // weights that lack the vision tower
    let lone = Tensor::zeros((100, 32), DType::F32, &Device::Cpu).unwrap();
    let tensors = [("model.language_model.embed_tokens.weight".to_string(), lone)].into();
    candle_core::safetensors::save(&tensors, dir.path().join("model.safetensors")).unwrap();
    let err = VisionModel::load_dir(dir.path()).unwrap_err();
    assert!(matches!(err, Error::BadModel { .. }), "{err}");

    let err = VisionModel::load_dir(&dir.path().join("absent")).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
}

/// A word-level `tokenizer.json` for the tiny model: words `w0`..`w89` are ids 0-89 (`w0`
/// also stands for unknown words), Qwen's chat markers are ids 94-96.
fn write_tiny_tokenizer(dir: &Path) {
    let mut vocab: serde_json::Map<String, serde_json::Value> =
        (0..90).map(|i| (format!("w{i}"), json!(i))).collect();
    for (id, content) in [
        (94, "<|im_start|>"),
        (95, "<|im_end|>"),
        (96, "<|endoftext|>"),
    ] {
        vocab.insert(content.into(), json!(id));
    }
    let special = |id: u32, content: &str| {
        json!({"id": id, "content": content, "single_word": false, "lstrip": false,
               "rstrip": false, "normalized": false, "special": true})
    };
    let tokenizer = json!({
        "version": "1.0", "truncation": null, "padding": null,
        "added_tokens": [special(94, "<|im_start|>"), special(95, "<|im_end|>"),
                         special(96, "<|endoftext|>")],
        "normalizer": null, "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": null, "decoder": null,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "w0"}
    });
    std::fs::write(dir.join("tokenizer.json"), tokenizer.to_string()).unwrap();
}

#[test]
fn generate_takes_an_image_with_a_vision_model() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_model(dir.path());
    write_tiny_tokenizer(dir.path());
    let image = dir.path().join("grey.png");
    let mut grey = filled(128);
    grey.data.iter_mut().step_by(7).for_each(|v| *v = 30);
    actfer::media::write_image(&image, &grey).unwrap();

    let (model_arg, image_arg) = (dir.path().to_str().unwrap(), image.to_str().unwrap());
    let run = || {
        actfer_json(&[
            "generate",
            "--max-tokens",
            "5",
            "--prompt",
            "w3 w4 w5",
            "--model",
            model_arg,
            "--image",
            image_arg,
        ])
    };
    let (first, second) = (run(), run());
    // 16 placeholders; <|im_start|> user \n is [94, w0]; the prompt, <|im_end|> <|im_start|>
    // assistant: [3, 4, 5, 95, 94, 0]; plus the two vision markers
    assert_eq!(first["image_tokens"], 16, "{first}");
    assert_eq!(first["prompt_tokens"], 2 + 2 + 16 + 6, "{first}");
    let tokens = first["tokens"].as_array().unwrap();
    assert!(!tokens.is_empty() && tokens.len() <= 5, "{first}");
    assert_eq!(first["tokens"], second["tokens"]);
    assert!(first["text"].is_string());

    // a text model, a missing image, and sampling are refused with what to do
    let cases: [(&[&str], &str); 3] = [
        (&["--image", image_arg], "Qwen3-VL"),
        (
            &["--model", model_arg, "--image", "/absent.png"],
            "/absent.png",
        ),
        (
            &[
                "--model",
                model_arg,
                "--image",
                image_arg,
                "--temperature",
                "0.7",
            ],
            "greedily",
        ),
    ];
    for (extra, needle) in cases {
        let args: Vec<&str> = ["generate", "--prompt", "hi"]
            .iter()
            .chain(extra)
            .copied()
            .collect();
        let err = fails_with(&args, 2);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}
