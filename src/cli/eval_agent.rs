//! `actfer eval agent`: the agent on a SynthME folder, next to the tool-only pipeline.

use std::fmt::Write as _;
use std::path::PathBuf;

use actfer::agent::eval::{evaluate_agent, EvalOptions, QUESTION};
use actfer::agent::{sampling_for, system_prompt_for, Limits, LlmPolicy};
use actfer::evidence::AppearanceModels;
use actfer::llm::TextModel;
use actfer::models::ModelStore;
use actfer::synth::labels::Labels;
use actfer::Error;
use candle_core::Device;
use clap::Args;

#[derive(Debug, Args)]
pub struct AgentArgs {
    /// A SynthME folder (`actfer synth`), e.g. of the test split.
    #[arg(long)]
    pub data: PathBuf,
    #[command(flatten)]
    pub model: super::model_choice::ModelChoice,
    /// The question asked of every clip.
    #[arg(long, default_value = QUESTION)]
    pub question: String,
    /// Flow method of the motion tools and the tool-only pipeline.
    #[arg(long, default_value = "dis")]
    pub method: String,
    /// Steps per run, the final answer included.
    #[arg(long, default_value_t = Limits::default().max_steps)]
    pub max_steps: usize,
    /// How many emotions an answer may choose from: those the prototype inference over the
    /// shown AUs ranks highest, among the ones the AUs fit (0: every one they fit).
    #[arg(long, default_value_t = Limits::default().emotions)]
    pub emotions: usize,
    /// Evaluate only the first N expression clips.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Keep every run's trace in DIR/<clip id>/.
    #[arg(long)]
    pub traces: Option<PathBuf>,
    /// Also write every sample (gold, the agent's and the tool-only prediction, the run) as
    /// JSON lines here.
    #[arg(long)]
    pub samples: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: AgentArgs) -> anyhow::Result<()> {
    if a.max_steps == 0 || a.limit == Some(0) {
        return Err(Error::bad_input(&a.data, "--max-steps and --limit must be at least 1").into());
    }
    let labels = Labels::read(&a.data)?;
    let store = ModelStore::from_env()?;
    let models = AppearanceModels::load(&store, &Device::Cpu)?;
    let mut policy = LlmPolicy::new(
        TextModel::load_spec(a.model.spec())?,
        system_prompt_for(a.model.spec()),
        sampling_for(a.model.spec()),
    )?;
    let options = EvalOptions {
        question: a.question.clone(),
        limits: Limits {
            max_steps: a.max_steps,
            emotions: a.emotions,
            ..Default::default()
        },
        method: a.method.clone(),
        traces: a.traces.clone(),
        limit: a.limit,
        ..Default::default()
    };
    let total = labels.clips.len().min(a.limit.unwrap_or(usize::MAX));
    let bar = actfer::progress::bar(total as u64, "clips");
    let report = evaluate_agent(&a.data, &labels, &models, &mut policy, &options, |n, _| {
        bar.set_position(n as u64)
    })?;
    bar.finish_and_clear();
    if let Some(path) = &a.samples {
        let mut out = String::new();
        for ((agent, tools), run) in report
            .agent_samples
            .iter()
            .zip(&report.tool_samples)
            .zip(&report.runs)
        {
            let line =
                serde_json::json!({"id": agent.id, "agent": agent, "tools": tools, "run": run});
            out.push_str(&line.to_string());
            out.push('\n');
        }
        std::fs::write(path, out).map_err(|e| Error::io(path.display().to_string(), e))?;
    }
    if a.json {
        return super::print_json(&report);
    }
    let (g, t) = (&report.agent, &report.tools);
    let mut s = format!(
        "{} expression clips from {}; agent: {}, greedy, repetition penalty {} on strings; flow {}\n\n",
        report.samples,
        a.data.display(),
        report.model,
        sampling_for(a.model.spec()).repeat_penalty,
        a.method
    );
    let _ = writeln!(s, "{:<24} {:>10} {:>10}", "", "agent", "tool-only");
    let mut row = |name: &str, x: f64, y: Option<f64>| {
        let y = y.map_or("-".to_string(), |y| format!("{y:.4}"));
        let _ = writeln!(s, "{name:<24} {x:>10.4} {y:>10}");
    };
    row(
        "emotion UF1",
        g.scores.emotion.uf1,
        Some(t.scores.emotion.uf1),
    );
    row(
        "emotion UAR",
        g.scores.emotion.uar,
        Some(t.scores.emotion.uar),
    );
    row(
        "ME class UF1",
        g.scores.me_class.uf1,
        Some(t.scores.me_class.uf1),
    );
    row(
        "ME class UAR",
        g.scores.me_class.uar,
        Some(t.scores.me_class.uar),
    );
    row(
        "mean AU F1",
        g.scores.aus.mean_f1,
        Some(t.scores.aus.mean_f1),
    );
    row("parse rate", report.parse_rate, None);
    row("verifier passed", report.verified_rate, None);
    row("verifier first answer", report.first_pass_rate, None);
    row("mean steps", report.mean_steps, None);
    row("distinct thoughts", report.distinct_thoughts, None);
    row("zoom rate", report.zoom_rate, None);
    row(
        "seconds per sample",
        g.seconds_per_sample,
        Some(t.seconds_per_sample),
    );
    // the words checks, as first written: how many thoughts and texts had each problem
    let _ = writeln!(
        s,
        "\n{:<24} {:>10} {:>10}",
        "words (first answer)", "thoughts", "texts"
    );
    let (th, tx) = (&report.thought_words, &report.text_words);
    for (name, x, y) in [
        ("checked", th.texts, tx.texts),
        ("other emotion", th.other_emotion, tx.other_emotion),
        (
            "outside the catalogue",
            th.outside_catalogue,
            tx.outside_catalogue,
        ),
        ("unsupported citation", th.unsupported, tx.unsupported),
        ("non-words", th.non_words, tx.non_words),
        ("any problem", th.failed, tx.failed),
    ] {
        let _ = writeln!(s, "{name:<24} {x:>10} {y:>10}");
    }
    print!("{s}");
    Ok(())
}
