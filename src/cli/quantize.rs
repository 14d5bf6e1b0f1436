//! `actfer quantize`: rewrite a GGUF model in another quantization (set-up turns the default
//! Q4_1 model into Q8_0, which decodes faster on CPUs).

use std::path::PathBuf;

use actfer::llm::quantize::{parse_dtype, requantize};
use clap::Args;

use super::print_json;

#[derive(Debug, Args)]
pub struct QuantizeArgs {
    /// The GGUF file to read.
    pub input: PathBuf,
    /// Where to write the new GGUF.
    pub output: PathBuf,
    /// Target quantization: q8_0, q4_0, q4_1, q5_0, q5_1, q4k, q6k, f16.
    #[arg(long = "type", default_value = "q8_0")]
    pub dtype: String,
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: QuantizeArgs) -> anyhow::Result<()> {
    let dtype = parse_dtype(&args.dtype).ok_or_else(|| {
        actfer::Error::Limit {
            what: "--type".into(),
            reason: format!(
                "{:?} is not a quantization this build writes; use q8_0, q4_0, q4_1, q5_0, q5_1, q4k, q6k or f16",
                args.dtype
            ),
        }
    })?;
    let report = requantize(&args.input, &args.output, dtype)?;
    // later runs check the copy against this record (`actfer::models::check_written`)
    actfer::models::stamp_written(&args.output)?;
    if args.json {
        print_json(&report)
    } else {
        println!(
            "{}: {} of {} tensors to {:?}, {} -> {} bytes",
            args.output.display(),
            report.converted,
            report.tensors,
            dtype,
            report.bytes_in,
            report.bytes_out
        );
        Ok(())
    }
}
