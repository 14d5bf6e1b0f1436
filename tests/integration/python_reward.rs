//! Runs the Python reward entry points' tests (tools/reward/test_actfer_reward.py) against the
//! binary of this build, so `cargo test --release` covers them.

use std::process::Command;

#[test]
fn python_reward_function() {
    let out = Command::new("python3")
        .arg("tools/reward/test_actfer_reward.py")
        .env("ACTFER_BIN", env!("CARGO_BIN_EXE_actfer"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("python3 is needed for the Python reward tests (tools/setup installs it)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "Python reward tests failed:\n{stderr}"
    );
    assert!(stderr.contains("OK"), "{stderr}");
}
