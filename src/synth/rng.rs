//! The generator's random numbers: SplitMix64, a small, fast, well-mixed 64-bit generator whose
//! output is fixed by its definition (no library version can change a dataset's bytes).
//! Independent streams come from [`Rng::derive`], so a clip's content depends only on the
//! dataset seed and the clip's index, never on which thread rendered it.

/// A SplitMix64 stream.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// The SplitMix64 output function: a bijective mix of 64 bits.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng { state: mix(seed) }
    }

    /// An independent stream named by `key` (a clip index, a purpose tag): the same parent
    /// seed and key always give the same stream, whatever was drawn from `self` before.
    pub fn derive(&self, key: u64) -> Rng {
        Rng {
            state: mix(self.state ^ mix(key.wrapping_add(GOLDEN))),
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN);
        mix(self.state)
    }

    /// Uniform in [0, 1), 53 bits.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.unit() as f32
    }

    /// Uniform integer in [lo, hi] (inclusive; `lo` when `hi <= lo`).
    pub fn int(&mut self, lo: usize, hi: usize) -> usize {
        if hi <= lo {
            return lo;
        }
        let n = (hi - lo + 1) as u64;
        lo + (self.next_u64() % n) as usize
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f32) -> bool {
        self.unit() < p as f64
    }

    /// A standard normal sample (Box-Muller).
    pub fn normal(&mut self) -> f32 {
        let u1 = self.unit().max(f64::MIN_POSITIVE);
        let u2 = self.unit();
        ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
    }

    /// A uniformly chosen element.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.int(0, items.len() - 1)]
    }

    /// Fisher-Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.int(0, i);
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_matches_its_published_first_outputs() {
        // SplitMix64 seeded with state 0 (before the first increment) gives these; `new`
        // mixes the seed first, so compare through the raw state.
        let mut r = Rng { state: 0 };
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn streams_are_reproducible_and_independent() {
        let a = Rng::new(7);
        let mut x = a.derive(3);
        let mut y = a.derive(3);
        let mut z = a.derive(4);
        let xs: Vec<u64> = (0..4).map(|_| x.next_u64()).collect();
        assert_eq!(xs, (0..4).map(|_| y.next_u64()).collect::<Vec<_>>());
        assert_ne!(xs, (0..4).map(|_| z.next_u64()).collect::<Vec<_>>());
        let mut r = Rng::new(1);
        let n = 20000;
        let mean: f64 = (0..n).map(|_| r.unit()).sum::<f64>() / n as f64;
        assert!((mean - 0.5).abs() < 0.01, "{mean}");
        let var: f32 = (0..n).map(|_| r.normal().powi(2)).sum::<f32>() / n as f32;
        assert!((var - 1.0).abs() < 0.05, "{var}");
        for _ in 0..1000 {
            let k = r.int(2, 4);
            assert!((2..=4).contains(&k));
        }
    }
}
