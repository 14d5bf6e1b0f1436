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
    let out = actfer()
        .args(args)
        .arg("--json")
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
