//! The one interface every optical-flow estimator implements, classical or learned, so the
//! CLI, the benchmark and ME analysis run any of them on the same pairs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::error::{Error, Result};
use crate::eval::flow::Flow;
use crate::media::RgbImage;

/// An optical-flow estimator: the flow from `a` to `b` on `a`'s grid (the pixel at `x` in
/// `a` shows at `x + F(x)` in `b`), in pixels, the same convention as SynthME's ground truth
/// and the `.flo` files.
pub trait FlowMethod: Send + Sync {
    /// The method's name as the CLI spells it (`tvl1`, `dis`, `farneback`, `meflownet`).
    fn name(&self) -> &str;
    /// The flow from `a` to `b`; both frames have the same size.
    fn estimate(&self, a: &RgbImage, b: &RgbImage) -> Result<Flow>;
}

/// The names [`by_name`] takes.
pub const METHODS: &[&str] = &[
    "meflownet",
    "tvl1",
    "dis",
    "dis-fast",
    "dis-ultrafast",
    "farneback",
];

/// A method by name: `meflownet` (the committed weights) or a classical one
/// ([`super::Classical::parse`]).
pub fn by_name(name: &str) -> Result<Box<dyn FlowMethod>> {
    if name == super::meflownet::MODEL_NAME {
        return Ok(Box::new(super::meflownet::MeFlowMethod::committed()?));
    }
    match super::Classical::parse(name) {
        Some(m) => Ok(Box::new(m)),
        None => Err(Error::Limit {
            what: format!("flow method {name}"),
            reason: format!("unknown flow method; use one of {}", METHODS.join(", ")),
        }),
    }
}

/// A method that adds up the time its estimates take, so a caller that hands it to library
/// code (spotting runs many estimates) can say how much of its time was flow.
pub struct Timed {
    inner: Box<dyn FlowMethod>,
    nanos: AtomicU64,
}

impl Timed {
    pub fn new(inner: Box<dyn FlowMethod>) -> Self {
        Timed {
            inner,
            nanos: AtomicU64::new(0),
        }
    }

    /// Seconds spent in [`FlowMethod::estimate`] so far.
    pub fn seconds(&self) -> f64 {
        self.nanos.load(Ordering::Relaxed) as f64 * 1e-9
    }
}

impl FlowMethod for Timed {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn estimate(&self, a: &RgbImage, b: &RgbImage) -> Result<Flow> {
        let start = Instant::now();
        let out = self.inner.estimate(a, b);
        let ns = start.elapsed().as_nanos() as u64;
        self.nanos.fetch_add(ns, Ordering::Relaxed);
        out
    }
}
