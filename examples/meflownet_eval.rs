//! MEFlowNet's speed and accuracy on a SynthME folder's micro onset -> apex pairs.
//!
//! `cargo run --release --example meflownet_eval -- WEIGHTS|random TEST_DIR [PAIRS] [ITERS] [mirror|reverse|mirror+reverse|plain]`
//! (`ITERS` and the mirror averaging default to the weights file's config) prints JSON: ms per 128x128 pair (batch 1, after a warm-up; the initial flow included when
//! the network starts from one), EPE of the network, of zero
//! flow, and of the head-motion removal step against the facial-only ground truth.

use std::path::Path;
use std::time::Instant;

use actfer::eval::flow::{epe, read_flo, Epe, Flow};
use actfer::flow::head::{remove_head_motion, HeadModel};
use actfer::flow::meflownet::{Config, MeFlowMethod, MeFlowNet};
use actfer::flow::train::{dataset_pairs, load_pair, PairKind};
use actfer::flow::FlowMethod;
use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let weights = args.get(1).map(String::as_str).unwrap_or("random");
    let dir = args
        .get(2)
        .expect("usage: meflownet_eval WEIGHTS|random TEST_DIR [PAIRS] [ITERS] [mirror|reverse|mirror+reverse|plain]");
    let max_pairs: usize = args.get(3).map_or(Ok(1000), |s| s.parse())?;
    let device = Device::Cpu;
    let mut method = if weights == "random" {
        let vm = VarMap::new();
        let vb = VarBuilder::from_varmap(&vm, DType::F32, &device);
        MeFlowMethod::new(MeFlowNet::new(&Config::default(), vb)?)
    } else {
        MeFlowMethod::load(Path::new(weights))?
    };
    if let Some(iters) = args.get(4) {
        method.iters = iters.parse()?;
    }
    // Which averages run: mirror, reverse, both (mirror+reverse) or plain.
    if let Some(averages) = args.get(5) {
        let words: Vec<&str> = averages.split('+').collect();
        anyhow::ensure!(
            words
                .iter()
                .all(|w| ["mirror", "reverse", "plain"].contains(w)),
            "mirror, reverse, mirror+reverse or plain, not {averages}"
        );
        method.mirror_average = words.contains(&"mirror");
        method.reverse_average = words.contains(&"reverse");
    }
    let pairs: Vec<_> = dataset_pairs(Path::new(dir))?
        .into_iter()
        .filter(|p| p.kind == PairKind::MicroApex)
        .take(max_pairs)
        .collect();
    anyhow::ensure!(!pairs.is_empty(), "no micro onset->apex pairs in {dir}");

    // Speed: one pair at a time, the whole method (the initial flow, when the network starts
    // from one, included).
    let first = load_pair(&pairs[0])?;
    for _ in 0..3 {
        method.estimate(&first.a, &first.b)?;
    }
    let reps = 20;
    let t = Instant::now();
    for _ in 0..reps {
        method.estimate(&first.a, &first.b)?;
    }
    let ms = t.elapsed().as_secs_f64() * 1000.0 / reps as f64;

    let (mut net, mut zero, mut facial, mut total_vs_face, mut zero_face) = (
        Epe::default(),
        Epe::default(),
        Epe::default(),
        Epe::default(),
        Epe::default(),
    );
    let t = Instant::now();
    for p in &pairs {
        let lp = load_pair(p)?;
        let pred = method.estimate(&lp.a, &lp.b)?;
        net.merge(&epe(&pred, &lp.flow, None).map_err(anyhow::Error::msg)?);
        let z = Flow::zeros(pred.width, pred.height);
        zero.merge(&epe(&z, &lp.flow, None).map_err(anyhow::Error::msg)?);
        if let Some(face) = &p.face_flow {
            let gold = read_flo(face)?;
            let (fac, _) = remove_head_motion(&pred, None, HeadModel::PLAIN_AFFINE);
            facial.merge(&epe(&fac, &gold, None).map_err(anyhow::Error::msg)?);
            total_vs_face.merge(&epe(&pred, &gold, None).map_err(anyhow::Error::msg)?);
            zero_face.merge(&epe(&z, &gold, None).map_err(anyhow::Error::msg)?);
        }
    }
    let per_pair = t.elapsed().as_secs_f64() * 1000.0 / pairs.len() as f64;
    let out = serde_json::json!({
        "weights": weights,
        "pairs": pairs.len(),
        "iters": method.iters,
        "mirror_average": method.mirror_average,
        "reverse_average": method.reverse_average,
        "threads": rayon::current_num_threads(),
        "ms_per_pair_128": ms,
        "ms_per_pair_with_io": per_pair,
        "epe_micro_onset_apex": net.all.epe,
        "epe_zero_flow": zero.all.epe,
        "facial": {
            "epe_head_removed_vs_face_gold": facial.all.epe,
            "epe_total_vs_face_gold": total_vs_face.all.epe,
            "epe_zero_vs_face_gold": zero_face.all.epe,
        }
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
