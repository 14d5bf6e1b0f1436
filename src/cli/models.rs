//! `actfer models list|verify|path`.

use actfer::models::{Checksum, ModelStatus, ModelStore};
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// List the default models: role, path, size, licence, source package, checksum status.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Check sizes only, without hashing.
        #[arg(long)]
        fast: bool,
    },
    /// Re-hash every file of the default models (or of the ones named) against the manifest;
    /// with no names, also set-up's converted copies against the hash recorded when written.
    Verify {
        /// Models to verify (default: all).
        names: Vec<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print where a model resolves to: a path, a default model name, or owner/repo:file on
    /// Hugging Face.
    Path {
        /// Path, model name, or owner/repo:file.
        spec: String,
    },
}

impl ModelsCommand {
    pub fn wants_json(&self) -> bool {
        matches!(
            self,
            ModelsCommand::List { json: true, .. } | ModelsCommand::Verify { json: true, .. }
        )
    }
}

pub fn run(cmd: ModelsCommand) -> anyhow::Result<()> {
    let store = ModelStore::from_env()?;
    match cmd {
        ModelsCommand::List { json, fast } => {
            let rows: Vec<ModelStatus> = store
                .manifest()
                .models
                .iter()
                .map(|m| store.status(m, !fast))
                .collect();
            if json {
                super::print_json(&rows)?;
            } else {
                print_table(&store, &rows);
            }
        }
        ModelsCommand::Verify { names, json } => {
            let entries = if names.is_empty() {
                store.manifest().models.iter().collect()
            } else {
                names
                    .iter()
                    .map(|n| store.known(n))
                    .collect::<Result<Vec<_>, _>>()?
            };
            let rows: Vec<ModelStatus> = entries.iter().map(|m| store.status(m, true)).collect();
            if json {
                super::print_json(&rows)?;
            } else {
                print_table(&store, &rows);
            }
            let mut bad: Vec<String> = rows
                .iter()
                .flat_map(|r| r.files.iter())
                .filter(|f| f.checksum != Checksum::Verified)
                .map(|f| format!("{} ({})", f.path.display(), f.checksum.explain()))
                .collect();
            // set-up's conversions (no pinned hash): against the hash recorded when written
            if names.is_empty() {
                let models = store.home().join("models");
                for (name, file) in [
                    (actfer::llm::DEFAULT_MODEL, actfer::llm::DEFAULT_MODEL_Q8_0),
                    (actfer::llm::REASONER_MODEL, actfer::llm::REASONER_FILE),
                ] {
                    let path = models.join(file);
                    if !path.is_file() {
                        continue;
                    }
                    match actfer::models::check_written(name, &path) {
                        Ok(()) if !json => {
                            println!("{name}: {} unchanged since set-up wrote it", path.display())
                        }
                        Ok(()) => {}
                        Err(_) => bad.push(format!(
                            "{} (changed since set-up wrote it)",
                            path.display()
                        )),
                    }
                }
            }
            if !bad.is_empty() {
                // Set-up state, not a bug: exit code 2 like any other bad input.
                return Err(actfer::Error::BadModel {
                    name: "store".into(),
                    path: store.home().to_path_buf(),
                    reason: format!(
                        "{} file(s) failed verification: {}",
                        bad.len(),
                        bad.join(", ")
                    ),
                }
                .into());
            }
        }
        ModelsCommand::Path { spec } => {
            // as runs resolve it: the default LLM is set-up's Q8_0 copy
            let path = actfer::llm::resolve(&spec)?;
            println!("{}", path.display());
        }
    }
    Ok(())
}

fn print_table(store: &ModelStore, rows: &[ModelStatus]) {
    println!("model cache: {}", store.home().display());
    println!(
        "{:<22} {:>10}  {:<10} {:<22} role; licence",
        "name", "size", "checksum", "package"
    );
    for r in rows {
        let checksum = serde_json::to_value(r.checksum).unwrap_or_default();
        println!(
            "{:<22} {:>10}  {:<10} {:<22} {}; {}",
            r.name,
            human_size(r.size),
            checksum.as_str().unwrap_or("?"),
            format!("{} {}", r.package, r.version),
            r.role,
            r.licence
        );
    }
    if rows.iter().any(|r| !r.checksum.is_ok()) {
        println!("some files are missing or damaged: run tools/setup");
    }
}

fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}
