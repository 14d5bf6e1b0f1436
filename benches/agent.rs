//! `actfer ask` speed on a 2-second clip (single_face.mp4, 72 frames) with the default model
//! (the trained reasoner; `ACTFER_BENCH_MODEL=smollm2-135m-instruct` for the base model with
//! its full prompt),
//! split into perception (the tools without optical flow: faces, spotting, crops), optical
//! flow, and the language model; once with the system prompt run through the model and once
//! with it loaded from the prompt cache (as every `actfer ask` after the first does), against
//! the tool-only pipeline in the same run (appearance on the frame, spotting, motion evidence
//! for each interval; no language model) as the baseline:
//!
//!     cargo bench --bench agent
//!
//! `ACTFER_BENCH_N` sets the repetitions (default 3); each run starts a fresh conversation.
//!
//! The build is portable (the kernels pick their code at run time);
//! `RUSTFLAGS="-C target-cpu=native" cargo bench --bench agent` builds for this CPU only.

use std::time::Instant;

use actfer::agent::eval::tool_only;
use actfer::agent::tools::ClipMotion;
use actfer::agent::trace::{InputInfo, Trace};
use actfer::agent::{run, sampling_for, system_prompt_for, Limits, LlmPolicy, Toolbox};
use actfer::evidence::AppearanceModels;
use actfer::flow::Classical;
use actfer::llm::prompt_cache::PromptCache;
use actfer::llm::{TextModel, REASONER_MODEL};
use actfer::media::{Media, OpenOptions};
use actfer::models::ModelStore;
use actfer::motion::clip::ClipOptions;
use candle_core::Device;

fn main() -> anyhow::Result<()> {
    let n: usize = std::env::var("ACTFER_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let store = ModelStore::from_env()?;
    let clip = store.home().join("testdata/single_face.mp4");
    let models = AppearanceModels::load(&store, &Device::Cpu)?;
    let open = || -> anyhow::Result<(Media, ClipOptions)> {
        let media = Media::open(&clip, &OpenOptions::default())?;
        let mut options = ClipOptions::default();
        options.spotting.fps = media.info().fps.unwrap_or(30.0) as f32;
        Ok((media, options))
    };
    let dis = || Box::new(Classical::parse("dis").expect("dis"));
    let frames = open()?.0.info().frames;
    let spec = std::env::var("ACTFER_BENCH_MODEL").unwrap_or_else(|_| REASONER_MODEL.into());
    println!(
        "{} ({frames} frames), {spec}, {n} runs each",
        clip.display()
    );

    // one question, as `actfer ask` asks it: a fresh model and conversation, the system
    // prompt run through the model or (`cache`) loaded from the prompt cache
    let ask = |cache: Option<&PromptCache>| -> anyhow::Result<Trace> {
        let (media, options) = open()?;
        let frame = media.frames()?.next().expect("a frame")?.image;
        let mut toolbox =
            Toolbox::new(&models, frame, None).with_clip(ClipMotion::new(media, dis(), options));
        let model = TextModel::load_spec(&spec)?;
        let mut policy = LlmPolicy::new(model, system_prompt_for(&spec), sampling_for(&spec))?;
        if let Some(cache) = cache {
            policy = policy.with_prompt_cache(cache.clone());
        }
        let input = InputInfo {
            path: clip.display().to_string(),
            kind: "video".into(),
            fps: None,
            frames,
            frame: 0,
            face_box: None,
        };
        let q = "What does this face express?";
        Ok(run(
            q,
            input,
            &mut toolbox,
            &mut policy,
            &Limits::default(),
        )?)
    };
    let cache_dir = tempfile::tempdir()?;
    let cache = PromptCache::new(cache_dir.path());
    ask(Some(&cache))?; // fills the cache
    let mut asked = 0.0;
    for (what, cache) in [("ask", None), ("ask, prompt cached", Some(&cache))] {
        let (mut perception, mut flow, mut llm, mut total, mut steps) = (0.0, 0.0, 0.0, 0.0, 0);
        for _ in 0..n {
            let trace = ask(cache)?;
            perception += trace.timings.perception_seconds - trace.timings.flow_seconds;
            flow += trace.timings.flow_seconds;
            llm += trace.timings.llm_seconds;
            total += trace.timings.total_seconds;
            steps += trace.steps.len();
        }
        let k = n as f64;
        println!(
            "{what:<19} {:.2} s per question (perception {:.2} s, flow {:.2} s, language model {:.2} s), {:.1} steps",
            total / k,
            perception / k,
            flow / k,
            llm / k,
            steps as f64 / k
        );
        asked = total / k;
    }

    let t = Instant::now();
    for _ in 0..n {
        let (media, options) = open()?;
        let frame = media.frames()?.next().expect("a frame")?.image;
        std::hint::black_box(models.analyse(&frame)?);
        let method = Classical::parse("dis").expect("dis");
        std::hint::black_box(tool_only(&media, &models, &method, &options)?);
    }
    let tools = t.elapsed().as_secs_f64() / n as f64;
    println!("tool-only:          {tools:.2} s per clip (appearance, spotting, motion evidence)");
    println!(
        "ratio ask (prompt cached) / tool-only: {:.2}",
        asked / tools
    );
    Ok(())
}
