//! Shared helpers for the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use actfer::models::ModelStore;

/// A test asset fetched by tools/setup into `$ACTFER_HOME/testdata`.
pub fn testdata(name: &str) -> PathBuf {
    let store = ModelStore::from_env().expect("model store");
    let path = store.home().join("testdata").join(name);
    assert!(
        path.is_file(),
        "{} is missing: run tools/setup",
        path.display()
    );
    path
}

/// The `actfer` binary of this build.
pub fn actfer() -> assert_cmd::Command {
    assert_cmd::Command::cargo_bin("actfer").expect("actfer binary")
}

/// Runs `actfer ARGS --json` and parses stdout, failing the test on a non-zero exit.
pub fn json(args: &[&str]) -> serde_json::Value {
    json_env(args, &[])
}

/// [`json`] with environment variables set for the run.
pub fn json_env(args: &[&str], env: &[(&str, &str)]) -> serde_json::Value {
    let out = actfer()
        .args(args)
        .arg("--json")
        .envs(env.iter().copied())
        .output()
        .expect("run actfer");
    assert!(
        out.status.success(),
        "actfer {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

/// Runs `actfer ARGS`, expects exit code `code`, and returns stderr.
pub fn fails_with(args: &[&str], code: i32) -> String {
    let out = actfer().args(args).output().expect("run actfer");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(code),
        "actfer {args:?}: stderr was {stderr}"
    );
    stderr
}

/// Runs `actfer ARGS`, failing the test (with stderr) on a non-zero exit; returns the output.
pub fn succeeds(args: &[&str]) -> std::process::Output {
    let out = actfer().args(args).output().expect("run actfer");
    assert!(
        out.status.success(),
        "actfer {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Every file under `dir`, relative path -> bytes.
pub fn files(dir: &std::path::Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}
