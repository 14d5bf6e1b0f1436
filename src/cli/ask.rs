//! `actfer ask`: a question about a face image (or one frame of a clip), answered by the
//! language model through the tool loop; prints the answer with its evidence and writes the
//! trace.

use std::path::PathBuf;

use actfer::agent::run_dir::RunDir;
use actfer::agent::tools::ClipMotion;
use actfer::agent::trace::InputInfo;
use actfer::agent::{
    run, sampling_for, system_prompt, system_prompt_for, Limits, LlmPolicy, Policy, StopReason,
    Toolbox, Trace, VisionPolicy,
};
use actfer::evidence::AppearanceModels;
use actfer::llm::prompt_cache::{PromptCache, PROMPT_CACHE};
use actfer::llm::vision::{is_vision_spec, VisionModel};
use actfer::llm::{SamplingParams, TextModel};
use actfer::media::{Media, MediaKind, OpenOptions};
use actfer::models::ModelStore;
use actfer::Error;
use candle_core::Device;
use clap::Args;

#[derive(Debug, Args)]
pub struct AskArgs {
    /// Image, video, or folder of frames.
    pub input: PathBuf,
    /// The question, e.g. "What does this face express?".
    pub question: String,
    #[command(flatten)]
    pub model: super::model_choice::ModelChoice,
    /// Where the trace (trace.json) and its crops go; default: INPUT's name + `.trace` in the
    /// current folder.
    #[arg(long)]
    pub trace_dir: Option<PathBuf>,
    /// Print the trace as JSON instead of the answer for a person.
    #[arg(long)]
    pub json: bool,
    /// In a clip, the frame to read (0-based); default: the first frame with a face.
    #[arg(long)]
    pub frame: Option<usize>,
    /// Steps, the final answer included; the last one must answer.
    #[arg(long, default_value_t = Limits::default().max_steps)]
    pub max_steps: usize,
    /// Tokens the model may generate over the run.
    #[arg(long, default_value_t = Limits::default().max_tokens)]
    pub max_tokens: usize,
    /// Seconds for the run (checked before each step).
    #[arg(long, default_value_t = Limits::default().max_seconds)]
    pub timeout: f64,
    /// Answers the verifier may send back to the model for revision.
    #[arg(long, default_value_t = Limits::default().revisions)]
    pub revisions: usize,
    /// How many emotions the answer may choose from: those the prototype inference over the
    /// shown AUs ranks highest, among the ones the AUs fit (0: every one they fit).
    #[arg(long, default_value_t = Limits::default().emotions)]
    pub emotions: usize,
    /// 0 is greedy.
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f64,
    #[arg(long, default_value_t = SamplingParams::default().seed)]
    pub seed: u64,
    /// Repetition penalty on the string being written (a thought, the answer's text); 1 is off.
    /// Default: 1 for the trained reasoner, 1.3 for other models.
    #[arg(long)]
    pub repeat_penalty: Option<f32>,
    /// Frame rate of a folder of frames.
    #[arg(long)]
    pub fps: Option<f64>,
    /// Run the system prompt through the model every time, instead of loading its keys and
    /// values from `$ACTFER_HOME/prompt-cache` (written by the first question; text models).
    #[arg(long)]
    pub no_prompt_cache: bool,
    /// Motion on clips (spot_expressions, au_evidence from motion).
    #[command(flatten)]
    pub motion: super::spot::MotionArgs,
}

pub fn run_ask(a: AskArgs) -> anyhow::Result<()> {
    actfer::agent::run::check_question(&a.question)?;
    if a.max_steps == 0 || a.max_tokens == 0 {
        return Err(
            Error::bad_input(&a.input, "--max-steps and --max-tokens must be at least 1").into(),
        );
    }
    let media = Media::open(
        &a.input,
        &OpenOptions {
            fps: a.fps,
            max_frames: None,
        },
    )?;
    let info = media.info().clone();
    let store = ModelStore::from_env()?;
    let models = AppearanceModels::load(&store, &Device::Cpu)?;
    // the verifier's words checks read the word list: a missing or damaged one stops the run
    // here, before any result
    actfer::agent::words::Vocabulary::shared()?;
    let frame = super::subject_frame(&media, &models, &a.input, a.frame)?;
    let trace_dir = a.trace_dir.clone().unwrap_or_else(|| {
        let stem = a
            .input
            .file_stem()
            .map_or("input".into(), |s| s.to_string_lossy().into_owned());
        PathBuf::from(format!("{stem}.trace"))
    });
    // the run writes into a folder of its own, moved into place with the trace at the end
    let run_dir = RunDir::new(&trace_dir)?;
    let mut toolbox = Toolbox::new(&models, frame.image, Some(run_dir.path().to_path_buf()));
    if info.kind != MediaKind::Image && info.frames >= 2 {
        let options = a.motion.options(&media)?;
        let method = super::flow::method(&a.motion.method)?;
        toolbox = toolbox.with_clip(ClipMotion::new(media, method, options));
    }
    if toolbox.faces()?.is_empty() {
        return Err(Error::NoFace {
            path: a.input.clone(),
            detail: "no face found".into(),
        }
        .into());
    }
    let sampling = SamplingParams {
        temperature: a.temperature,
        seed: a.seed,
        repeat_penalty: a
            .repeat_penalty
            .unwrap_or(sampling_for(a.model.spec()).repeat_penalty),
        ..Default::default()
    };
    let spec = a.model.spec();
    let mut policy: Box<dyn Policy> = if is_vision_spec(spec) {
        let model = VisionModel::load_spec(spec)?;
        Box::new(VisionPolicy::new(model, system_prompt(), sampling)?.named(spec))
    } else {
        let model = TextModel::load_spec(spec)?;
        let mut policy = LlmPolicy::new(model, system_prompt_for(spec), sampling)?;
        if !a.no_prompt_cache {
            policy = policy.with_prompt_cache(PromptCache::new(store.home().join(PROMPT_CACHE)));
        }
        Box::new(policy)
    };
    let input = InputInfo {
        path: a.input.display().to_string(),
        kind: format!("{:?}", info.kind).to_lowercase(),
        fps: info.fps,
        frames: info.frames,
        frame: frame.index,
        face_box: None,
    };
    let limits = Limits {
        max_steps: a.max_steps,
        max_tokens: a.max_tokens,
        max_seconds: a.timeout,
        revisions: a.revisions,
        emotions: a.emotions,
        ..Default::default()
    };
    let trace = run(&a.question, input, &mut toolbox, policy.as_mut(), &limits)?;
    trace.write(run_dir.path())?;
    let trace_dir = run_dir.finish()?;
    if a.json {
        super::print_json(&trace)?;
    } else {
        print_answer(&trace, &trace_dir);
    }
    if trace.answer.is_none() {
        return Err(Error::Internal(format!(
            "no answer: {} (the partial trace is in {})",
            trace.stop.describe(),
            trace_dir.display()
        ))
        .into());
    }
    Ok(())
}

fn print_answer(t: &Trace, dir: &std::path::Path) {
    for s in &t.steps {
        let args = if s.tool.args.is_null() {
            String::new()
        } else {
            s.tool.args.to_string()
        };
        println!("step {}: {} {}", s.id, s.tool.name, args);
        if !s.thought.is_empty() {
            println!("  thought: {}", s.thought);
        }
        if s.tool.name != "final_answer" {
            println!("  observation: {}", s.observation.text);
        }
    }
    println!();
    match &t.answer {
        Some(ans) => {
            let conf = ans
                .emotion
                .confidence
                .map(|c| format!(" (classifier probability {c:.2})"))
                .unwrap_or_default();
            println!("emotion: {}{conf}", ans.emotion.label);
            if ans.aus.is_empty() {
                println!("AUs: none claimed");
            }
            for au in &ans.aus {
                let steps: Vec<String> = au.evidence.iter().map(|i| i.to_string()).collect();
                let cited = if steps.is_empty() {
                    "no step shows it".to_string()
                } else {
                    format!("step {}", steps.join(", "))
                };
                println!(
                    "  {:<5} {:<21} {:.2}  {:<5}  {cited}",
                    au.au, au.name, au.intensity, au.side
                );
            }
            for iv in &ans.intervals {
                println!(
                    "  expression: onset {} -> apex {} -> offset {}",
                    iv.onset, iv.apex, iv.offset
                );
            }
            if !ans.text.is_empty() {
                println!("explanation: {}", ans.text);
            }
            for c in &t.verifier {
                println!(
                    "check {}: {} ({})",
                    c.name,
                    if c.passed { "passed" } else { "FAILED" },
                    c.detail
                );
            }
        }
        None => println!("no answer"),
    }
    let why = match t.stop {
        StopReason::Answered => format!("answered at step {}", t.steps.len()),
        other => other.describe().to_string(),
    };
    println!(
        "stop: {why}; {:.1} s (perception {:.1} s, of which flow {:.1} s; language model {:.1} s); trace: {}",
        t.timings.total_seconds,
        t.timings.perception_seconds,
        t.timings.flow_seconds,
        t.timings.llm_seconds,
        dir.join(actfer::agent::trace::FILE).display()
    );
}
