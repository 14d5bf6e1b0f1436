//! Head-motion removal on a SynthME folder's micro onset -> apex pairs: the facial flow left
//! after each removal model, against the facial-only ground truth, inside the face mask.
//!
//! `cargo run --release --example head_motion_eval -- WEIGHTS TEST_DIR [PAIRS]`
//!
//! Inputs: the ground-truth total flow (`onset_apex_K.flo`, so the removal step alone is
//! measured), DIS medium and MEFlowNet (WEIGHTS). For each input, the EPE against
//! `onset_apex_face_K.flo` inside `mask.png` of the raw flow, of zero flow, and of the facial
//! flow after every [`HeadModel`], without a prior and with the face mask as prior weight;
//! and, as the floor of any global model, `oracle`: a least-squares fit of the true head flow
//! (input minus facial gold) subtracted from the input.
//! Prints a table (pooled per pixel over the pairs) and then the same as JSON.

use std::collections::BTreeMap;
use std::path::Path;

use actfer::eval::flow::{epe, read_flo, Epe, Flow};
use actfer::flow::head::{fit_head, remove_head_motion, HeadModel};
use actfer::flow::meflownet::MeFlowMethod;
use actfer::flow::train::{dataset_pairs, load_pair, PairKind};
use actfer::flow::{Classical, DisPreset, FlowMethod};
use actfer::media::read_image;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: head_motion_eval WEIGHTS TEST_DIR [PAIRS]";
    let weights = args.get(1).expect(usage);
    let dir = args.get(2).expect(usage);
    let max_pairs: usize = args.get(3).map_or(Ok(1000), |s| s.parse())?;
    let net = MeFlowMethod::load(Path::new(weights))?;
    let dis = Classical::Dis(DisPreset::Medium);
    let pairs: Vec<_> = dataset_pairs(Path::new(dir))?
        .into_iter()
        .filter(|p| p.kind == PairKind::MicroApex && p.face_flow.is_some())
        .take(max_pairs)
        .collect();
    anyhow::ensure!(
        !pairs.is_empty(),
        "no micro onset->apex pairs with facial flow in {dir}"
    );

    // (input, variant) -> pooled EPE inside the mask.
    let mut table: BTreeMap<(usize, String), Epe> = BTreeMap::new();
    let inputs = ["gold_total", "dis_medium", "meflownet"];
    let mut mask_share = 0.0;
    for p in &pairs {
        let lp = load_pair(p)?;
        let gold = read_flo(p.face_flow.as_ref().expect("filtered"))?;
        let clip = p
            .flow
            .parent()
            .and_then(Path::parent)
            .expect("clip/flow/x.flo");
        let m = read_image(&clip.join("mask.png"))?;
        let mask: Vec<bool> = m.data.chunks(3).map(|c| c[0] > 127).collect();
        let prior: Vec<f32> = mask.iter().map(|&b| f32::from(u8::from(b))).collect();
        mask_share += mask.iter().filter(|&&b| b).count() as f64 / mask.len() as f64;
        let flows = [
            lp.flow.clone(),
            dis.estimate(&lp.a, &lp.b)?,
            net.estimate(&lp.a, &lp.b)?,
        ];
        for (i, flow) in flows.iter().enumerate() {
            let mut add = |name: String, f: &Flow| -> anyhow::Result<()> {
                let e = epe(f, &gold, Some(&mask)).map_err(anyhow::Error::msg)?;
                table.entry((i, name)).or_default().merge(&e);
                Ok(())
            };
            add("0 raw".into(), flow)?;
            add("0 zero".into(), &Flow::zeros(flow.width, flow.height))?;
            // The best a global model can do: least squares on the true head flow, input -
            // facial gold, subtracted from the input.
            let mut head_gold = flow.clone();
            for (h, g) in head_gold.uv.iter_mut().zip(&gold.uv) {
                *h -= g;
            }
            for model in [HeadModel::PLAIN_AFFINE, HeadModel::ALL[1]] {
                let fit = fit_head(&head_gold, None, model);
                add(
                    format!("3 oracle {}", model.name()),
                    &fit.head.subtract_from(flow),
                )?;
            }
            for model in HeadModel::ALL {
                let (facial, _) = remove_head_motion(flow, None, model);
                add(format!("1 {}", model.name()), &facial)?;
                let (facial, _) = remove_head_motion(flow, Some(&prior), model);
                add(format!("2 {} +mask", model.name()), &facial)?;
            }
        }
    }

    let value = |e: &Epe| e.masked.and_then(|s| s.epe).unwrap_or(f64::NAN);
    let variants: Vec<String> = table
        .keys()
        .filter(|(i, _)| *i == 0)
        .map(|(_, v)| v.clone())
        .collect();
    println!(
        "{} micro pairs, face mask {:.1} % of the frame; EPE px inside the mask vs facial gold",
        pairs.len(),
        100.0 * mask_share / pairs.len() as f64
    );
    println!("| removal | {} |", inputs.join(" | "));
    println!("|---|{}", "---|".repeat(inputs.len()));
    let mut json = serde_json::Map::new();
    for v in &variants {
        let label = v.split_once(' ').map_or(v.as_str(), |(_, l)| l);
        let cells: Vec<String> = (0..inputs.len())
            .map(|i| format!("{:.4}", value(&table[&(i, v.clone())])))
            .collect();
        println!("| {label} | {} |", cells.join(" | "));
        let row: serde_json::Map<_, _> = inputs
            .iter()
            .enumerate()
            .map(|(i, name)| (name.to_string(), value(&table[&(i, v.clone())]).into()))
            .collect();
        json.insert(label.to_string(), row.into());
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({
            "pairs": pairs.len(),
            "epe_in_face_mask_vs_face_gold": json,
        }))?
    );
    Ok(())
}
