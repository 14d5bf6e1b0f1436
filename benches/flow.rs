//! Optical flow on SynthME test pairs: every method (zero flow, the classical ones, MEFlowNet
//! with the committed weights) on the same micro-expression onset -> apex pairs (and macro
//! ones), EPE overall, inside the face mask and per gold magnitude, and pairs/s, at 128x128
//! and 256x256; every method's ratios against the best classical method by EPE inside the
//! face:
//!
//!     cargo bench --bench flow
//!
//! The pairs come from `actfer synth` on the test identities (seed 2026, every nuisance), made
//! in a temporary folder. `ACTFER_BENCH_N` sets the clips per size (default 24).
//!
//! The build is portable (the kernels pick their code at run time);
//! `RUSTFLAGS="-C target-cpu=native" cargo bench --bench flow` builds for this CPU only.

use actfer::face::pipeline::FacePipeline;
use actfer::flow::compare::{onset_apex_pairs, score, Score, ZeroFlow};
use actfer::flow::meflownet::MeFlowMethod;
use actfer::flow::{Classical, FlowMethod};
use actfer::models::ModelStore;
use actfer::synth::generate::{generate, FlowOutput, Settings, GENERATOR_VERSION};
use actfer::synth::identity::{load_looks, testdata_dir, Split};
use actfer::synth::labels::{Kind, SCHEMA};
use actfer::synth::spec::Switches;
use candle_core::Device;

fn fmt(v: Option<f64>) -> String {
    v.map_or("-".into(), |x| format!("{x:.3}"))
}

fn main() -> anyhow::Result<()> {
    let n: usize = std::env::var("ACTFER_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24);
    let store = ModelStore::from_env()?;
    let pipeline = FacePipeline::load(&store, &Device::Cpu)?;
    let looks = load_looks(&pipeline, &testdata_dir(store.home()), &[Split::Test])?;
    let tmp = tempfile::tempdir()?;
    let mut methods: Vec<Box<dyn FlowMethod>> = vec![Box::new(ZeroFlow)];
    for c in Classical::ALL {
        methods.push(Box::new(c));
    }
    let classical = 1..=Classical::ALL.len();
    methods.push(Box::new(MeFlowMethod::committed()?));
    for size in [128u32, 256] {
        let settings = Settings {
            schema: SCHEMA.to_string(),
            version: GENERATOR_VERSION,
            seed: 2026,
            clips: n,
            split: Some(Split::Test),
            long: false,
            fps: 30.0,
            size,
            flow: FlowOutput::Apex,
            video: false,
            switches: Switches {
                neutral: false,
                ..Switches::ALL
            },
            sheets: false,
        };
        let root = tmp.path().join(size.to_string());
        let labels = generate(&root, &settings, &looks, &|| {})?;
        for kind in [Kind::Micro, Kind::Macro] {
            let pairs = onset_apex_pairs(&root, &labels, kind)?;
            if pairs.is_empty() {
                continue;
            }
            println!(
                "\n{size}x{size}, {} {:?} onset->apex pairs (SynthME test split, seed 2026)",
                pairs.len(),
                kind
            );
            println!(
                "{:<18} {:>7} {:>7} {:>7} {:>7} {:>7} {:>9}",
                "method", "EPE", "face", "<1px", "1-3px", ">3px", "pairs/s"
            );
            let scores: Vec<Score> = methods
                .iter()
                .map(|m| score(m.as_ref(), &pairs))
                .collect::<actfer::Result<_>>()?;
            for s in &scores {
                println!(
                    "{:<18} {:>7} {:>7} {:>7} {:>7} {:>7} {:>9.1}",
                    s.method,
                    fmt(s.epe.all.epe),
                    fmt(s.epe.masked.and_then(|m| m.epe)),
                    fmt(s.epe.small.epe),
                    fmt(s.epe.medium.epe),
                    fmt(s.epe.large.epe),
                    s.pairs_per_second()
                );
            }
            let face = |s: &Score| s.epe.masked.and_then(|m| m.epe).unwrap_or(f64::INFINITY);
            let best = scores[classical.clone()]
                .iter()
                .min_by(|a, b| face(a).total_cmp(&face(b)))
                .expect("classical methods");
            println!(
                "best classical by face EPE: {} ({:.3})",
                best.method,
                face(best)
            );
            for s in &scores {
                println!(
                    "  {:<18} face EPE ratio {:.2}, speed ratio {:.2}",
                    s.method,
                    face(s) / face(best),
                    s.pairs_per_second() / best.pairs_per_second()
                );
            }
        }
    }
    Ok(())
}
