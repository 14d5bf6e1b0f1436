//! The one interface every optical-flow estimator implements, classical or learned, so the
//! CLI, the benchmark and ME analysis run any of them on the same pairs.

use crate::error::Result;
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
