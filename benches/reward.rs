//! Reward scoring throughput: the library in-process (the baseline), the CLI end to end
//! (`actfer reward --out`), and the Python entry point (`actfer_reward.RewardServer`, batches of
//! 1,024, the size of a GRPO step). Prints one JSON object with rollouts/s and the ratios.
//!
//! `cargo bench --bench reward` (N from `ACTFER_BENCH_N`, default 200,000 rollouts in groups of 8).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use actfer::agent::words::Vocabulary;
use actfer::reward::{self, io, CalibrationState, Inputs, OnProblem, RewardConfig};

const EMOTIONS: [(&str, &[&str]); 8] = [
    ("happiness", &["AU6", "AU12"]),
    ("surprise", &["AU1", "AU2", "AU5", "AU26"]),
    ("anger", &["AU4", "AU5", "AU7", "AU23"]),
    ("disgust", &["AU9", "AU15", "AU16"]),
    ("sadness", &["AU1", "AU4", "AU15"]),
    ("fear", &["AU1", "AU2", "AU4", "AU5", "AU7", "AU20", "AU26"]),
    ("contempt", &["R12", "R14"]),
    ("neutral", &[]),
];

/// Deterministic synthetic rollouts: R1-style completions, a random emotion and half its
/// prototype AUs, a random zoom flag.
fn generate(dir: &Path, n: usize) {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let groups = n.div_ceil(8);
    let mut labels = String::new();
    for g in 0..groups {
        let (e, aus) = EMOTIONS[g % 8];
        labels +=
            &serde_json::json!({"sample": format!("s{g}"), "emotion": e, "aus": aus}).to_string();
        labels.push('\n');
    }
    let mut rollouts = String::with_capacity(n * 240);
    for i in 0..n {
        let g = i / 8;
        let (e, aus) = EMOTIONS[(rand() % 8) as usize];
        let k = aus.len().div_ceil(2);
        let answer = serde_json::json!({"emotion": e, "aus": &aus[..k]}).to_string();
        let completion = format!("<think>The cheeks rise and the mouth corners pull up.</think>\n<answer>{answer}</answer>");
        let line = serde_json::json!({"id": format!("r{i}"), "group": format!("q{g}"), "sample": format!("s{g}"), "completion": completion, "zoomed": rand() % 2 == 0});
        rollouts += &line.to_string();
        rollouts.push('\n');
    }
    std::fs::write(dir.join("labels.jsonl"), labels).unwrap();
    std::fs::write(dir.join("rollouts.jsonl"), rollouts).unwrap();
}

fn best_of<F: FnMut()>(runs: usize, mut f: F) -> f64 {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

const PYTHON: &str = r#"
import json, sys, time
sys.path.insert(0, "tools/reward")
import actfer_reward as ar
rows = [json.loads(l) for l in open(sys.argv[1])]
labels = {}
for l in open(sys.argv[2]):
    d = json.loads(l); labels[d["sample"]] = d
srv = ar.RewardServer()
ar._server = srv
batch = 1024
comps = [r["completion"] for r in rows]
kw = dict(emotion=[labels[r["sample"]]["emotion"] for r in rows], aus=[labels[r["sample"]]["aus"] for r in rows],
          group=[r["group"] for r in rows], sample=[r["sample"] for r in rows], zoomed=[r["zoomed"] for r in rows])
t = time.perf_counter(); n = 0
for i in range(0, len(rows), batch):
    sl = slice(i, i + batch)
    out = ar.reward_fn([""] * len(comps[sl]), comps[sl], **{k: v[sl] for k, v in kw.items()})
    n += len(out)
dt = time.perf_counter() - t
# Per-call overhead: one completion per call (verl's compute_score path).
t1 = time.perf_counter()
for r in rows[:2000]:
    ar.compute_score("bench", r["completion"], labels[r["sample"]])
single = (time.perf_counter() - t1) / 2000
srv.close()
print(json.dumps({"rollouts": n, "seconds": dt, "single_call_s": single}))
"#;

fn main() {
    let n: usize = std::env::var("ACTFER_BENCH_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), n);
    let (rpath, lpath) = (
        dir.path().join("rollouts.jsonl"),
        dir.path().join("labels.jsonl"),
    );
    let cfg = RewardConfig::default();

    // Baseline: the library in-process, from bytes in memory to scores in memory.
    let (rtext, ltext) = (
        std::fs::read(&rpath).unwrap(),
        std::fs::read(&lpath).unwrap(),
    );
    // the words term's list, as the CLI loads it
    let vocab = Vocabulary::shared().unwrap();
    let lib_s = best_of(3, || {
        let mut state = CalibrationState::default();
        let inputs = Inputs {
            labels: io::jsonl_lines(&ltext).map(|(k, l)| (k, io::parse_label(l))),
            labels_source: "l".into(),
            rollouts: io::parse_rollouts(&rtext).into_iter(),
            rollouts_source: "r".into(),
        };
        let r = reward::run(inputs, &cfg, &mut state, Some(&vocab), OnProblem::Skip).unwrap();
        assert_eq!(r.scores.len(), n);
    });

    // The CLI end to end: read both files, score, write every score line.
    let bin = env!("CARGO_BIN_EXE_actfer");
    let out = dir.path().join("scores.jsonl");
    let cli_s = best_of(3, || {
        let st = Command::new(bin)
            .args([
                "reward",
                "--rollouts",
                rpath.to_str().unwrap(),
                "--labels",
                lpath.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "--json",
            ])
            .output()
            .unwrap();
        assert!(
            st.status.success(),
            "{}",
            String::from_utf8_lossy(&st.stderr)
        );
    });

    // Python: the TRL-style entry point through one `actfer reward --serve`.
    let py = Command::new("python3")
        .args([
            "-c",
            PYTHON,
            rpath.to_str().unwrap(),
            lpath.to_str().unwrap(),
        ])
        .env("ACTFER_BIN", bin)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        py.status.success(),
        "{}",
        String::from_utf8_lossy(&py.stderr)
    );
    let pyv: serde_json::Value = serde_json::from_slice(&py.stdout).unwrap();
    let py_rate = pyv["rollouts"].as_f64().unwrap() / pyv["seconds"].as_f64().unwrap();

    let (lib_rate, cli_rate) = (n as f64 / lib_s, n as f64 / cli_s);
    let report = serde_json::json!({
        "rollouts": n,
        "threads": std::thread::available_parallelism().map_or(1, |k| k.get()),
        "library_rollouts_per_s": lib_rate.round(),
        "cli_rollouts_per_s": cli_rate.round(),
        "python_rollouts_per_s": py_rate.round(),
        "python_single_call_ms": (pyv["single_call_s"].as_f64().unwrap() * 1e3 * 1000.0).round() / 1000.0,
        "cli_over_library": (cli_rate / lib_rate * 1000.0).round() / 1000.0,
        "python_over_cli": (py_rate / cli_rate * 1000.0).round() / 1000.0,
    });
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
}
