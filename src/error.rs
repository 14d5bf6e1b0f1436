//! The library's one error type. Every variant says what went wrong, names the file or model,
//! and says what to do. The binary turns it into a message and an exit code
//! ([`Error::exit_code`]): 2 when the input or the set-up is at fault, 3 when the input holds
//! no face, 1 for internal failures.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A path the user gave does not exist.
    #[error("{}: no such file or folder; check the path", path.display())]
    NotFound { path: PathBuf },

    /// An input exists but cannot be used as given (corrupt, truncated, wrong kind, too big).
    #[error("{}: {reason}", path.display())]
    BadInput { path: PathBuf, reason: String },

    /// A model file is missing, truncated or does not match its pinned checksum.
    #[error("model {name} ({}): {reason}; run tools/setup to fetch and convert it again", path.display())]
    BadModel {
        name: String,
        path: PathBuf,
        reason: String,
    },

    /// A weights file actfer trains (MEFlowNet) is missing, truncated or of another network.
    /// Unlike [`Error::BadModel`], set-up does not make it: the remedy is the committed file or
    /// a new training run.
    #[error("{name} weights ({}): {reason}; use the committed weights/meflownet.safetensors or train new ones with `actfer train flow`", path.display())]
    BadWeights {
        name: String,
        path: PathBuf,
        reason: String,
    },

    /// A model name that is neither a file, a known model, nor a reachable Hugging Face repo.
    #[error("model {spec}: {reason}")]
    ModelUnavailable { spec: String, reason: String },

    /// A model file that reads correctly but is of a kind this build cannot run (an
    /// architecture, a tokenizer type); says what is supported.
    #[error("{}: {what} is not supported (supported: {supported}); use a model of a supported kind", path.display())]
    Unsupported {
        path: PathBuf,
        what: String,
        supported: String,
    },

    /// The input holds no face (or not the one asked for). Exit code 3, so scripts can tell
    /// "no face" from a broken input.
    #[error("{}: {detail}", path.display())]
    NoFace { path: PathBuf, detail: String },

    /// A configured limit (frames, pixels, steps, tokens, time) was reached.
    #[error("{what}: {reason}")]
    Limit { what: String, reason: String },

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    #[error("OpenCV: {0}")]
    OpenCv(#[from] opencv::Error),

    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),

    #[error("{0}")]
    Internal(String),
}

impl Error {
    /// The process exit code for this error: 2 for bad input or set-up, 3 for no face, 1 for
    /// internal failures.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::NotFound { .. }
            | Error::BadInput { .. }
            | Error::BadModel { .. }
            | Error::BadWeights { .. }
            | Error::ModelUnavailable { .. }
            | Error::Unsupported { .. }
            | Error::Limit { .. } => 2,
            Error::NoFace { .. } => 3,
            Error::Io { .. } | Error::OpenCv(_) | Error::Candle(_) | Error::Internal(_) => 1,
        }
    }

    pub fn bad_input(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::BadInput {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// An I/O failure on `context` (a path, or what was being done). Where the path is at
    /// fault (missing, not allowed, a folder where a file was meant, a full or read-only disk,
    /// a file that is not text) it is the user's to fix: a [`BadInput`](Error::BadInput)
    /// naming the path (exit 2); anything else stays an I/O error (exit 1).
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        use std::io::ErrorKind::*;
        let context = context.into();
        let fix = match source.kind() {
            NotFound => "check the path and that its folder exists",
            PermissionDenied | ReadOnlyFilesystem => {
                "choose a path you may read and write, or change its permissions"
            }
            AlreadyExists | IsADirectory | NotADirectory => {
                "a file and a folder are mixed up; check the path"
            }
            StorageFull | QuotaExceeded => "free some disk space or write elsewhere",
            InvalidData => "the file is not what was expected (text, UTF-8); check the path",
            _ => return Error::Io { context, source },
        };
        Error::BadInput {
            path: PathBuf::from(context),
            reason: format!("{source}; {fix}"),
        }
    }
}
