//! The agent: a language model runs a tool loop over one face image (or one frame of a clip)
//! and answers with an emotion and the AUs that its observations showed, each AU citing the
//! steps that showed it; the run is kept as a trace (a visual chain of thought).
//!
//! - [`tools`]: the tools and the JSON schema of a step, built from the library's tables;
//!   [`clip_tools`]: the tools that read a clip's motion
//! - [`policy`]: who picks the steps ([`policy::LlmPolicy`]: the model under that schema)
//! - [`mod@run`]: the loop with its budgets and stop reasons
//! - [`verifier`]: checks of the answer against the evidence; [`words`]: what the model
//!   writes, read against the catalogue and the evidence
//! - [`trace`]: the trace document (`actfer.trace/1`)
//! - [`eval`]: the agent scored on SynthME next to the tool-only pipeline
//! - [`explain`]: ME explanations for clips and datasets, resumable JSON lines
//! - [`grpo`]: UC-GRPO training of the reasoner's adapter on its own rollouts

pub mod clip_tools;
pub mod eval;
pub mod explain;
pub mod grpo;
pub mod phrasing;
pub mod policy;
pub mod run;
pub mod run_dir;
pub mod teacher;
pub mod tools;
pub mod trace;
pub mod trajectories;
pub mod verifier;
pub mod words;

pub use policy::{default_sampling, sampling_for, LlmPolicy, Policy, Reply, Turn, VisionPolicy};
pub use run::{run, system_prompt, system_prompt_for, Limits};
pub use tools::Toolbox;
pub use trace::{StopReason, Trace};
