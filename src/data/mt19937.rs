//! MT19937 and numpy's legacy `RandomState.shuffle`, bit for bit.
//!
//! The community-standard CIFAR-LT subsets (LDAM-DRW's `imbalance_cifar.py`, copied into ResLT)
//! are chosen with `np.random.seed(s)` followed by one `np.random.shuffle` per class. To give our
//! users the *same* images without a Python round trip we reproduce both pieces exactly:
//! `init_genrand` seeding (what numpy's legacy seeding does for an integer seed) and the
//! Fisher–Yates loop of `_shuffle_raw`, which draws `j ∈ [0, i]` by masked rejection sampling on
//! 32-bit outputs (`random_interval`). See docs/methods.md §1.

const N: usize = 624;
const M: usize = 397;
const MATRIX_A: u32 = 0x9908_b0df;
const UPPER_MASK: u32 = 0x8000_0000;
const LOWER_MASK: u32 = 0x7fff_ffff;

/// The 32-bit Mersenne Twister of Matsumoto & Nishimura (1998).
#[derive(Clone)]
pub struct Mt19937 {
    state: [u32; N],
    index: usize,
}

impl Mt19937 {
    /// `init_genrand(seed)`: numpy's `RandomState(seed)` for an integer seed in `0..2^32`.
    pub fn new(seed: u32) -> Self {
        let mut state = [0u32; N];
        state[0] = seed;
        for i in 1..N {
            let prev = state[i - 1];
            state[i] = 1_812_433_253u32.wrapping_mul(prev ^ (prev >> 30)).wrapping_add(i as u32);
        }
        Mt19937 { state, index: N }
    }

    fn twist(&mut self) {
        for i in 0..N {
            let y = (self.state[i] & UPPER_MASK) | (self.state[(i + 1) % N] & LOWER_MASK);
            let mut next = self.state[(i + M) % N] ^ (y >> 1);
            if y & 1 != 0 {
                next ^= MATRIX_A;
            }
            self.state[i] = next;
        }
        self.index = 0;
    }

    /// The next tempered 32-bit output (`genrand_int32`).
    pub fn next_u32(&mut self) -> u32 {
        if self.index >= N {
            self.twist();
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^= y >> 18;
        y
    }

    /// Uniform integer in `[0, max]`, exactly as numpy's legacy `random_interval`: mask the
    /// output to the smallest all-ones bit pattern covering `max` and reject values above it.
    pub fn interval(&mut self, max: u32) -> u32 {
        if max == 0 {
            return 0;
        }
        let mut mask = max;
        mask |= mask >> 1;
        mask |= mask >> 2;
        mask |= mask >> 4;
        mask |= mask >> 8;
        mask |= mask >> 16;
        loop {
            let value = self.next_u32() & mask;
            if value <= max {
                return value;
            }
        }
    }

    /// numpy's legacy in-place shuffle of a 1-d array: `for i in n-1 ..= 1: swap(i, interval(i))`.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.interval(i as u32) as usize;
            items.swap(i, j);
        }
    }

    /// A uniform `f64` in `[0, 1)` with 53 random bits (numpy's `random_sample`).
    pub fn next_f64(&mut self) -> f64 {
        let a = (self.next_u32() >> 5) as f64;
        let b = (self.next_u32() >> 6) as f64;
        (a * 67_108_864.0 + b) / 9_007_199_254_740_992.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_outputs_of_init_genrand_5489() {
        // The canonical first outputs of MT19937 seeded with 5489 (the C++ std::mt19937 default).
        let mut rng = Mt19937::new(5489);
        let first: Vec<u32> = (0..3).map(|_| rng.next_u32()).collect();
        assert_eq!(first, vec![3_499_211_612, 581_869_302, 3_890_346_734]);
        // std::mt19937's 10000th output is 4123659995 (required by the C++ standard).
        let mut rng = Mt19937::new(5489);
        let mut last = 0;
        for _ in 0..10_000 {
            last = rng.next_u32();
        }
        assert_eq!(last, 4_123_659_995);
    }

    #[test]
    fn numpy_seed0_first_outputs() {
        // np.random.seed(0); np.random.randint(2**32, dtype=np.uint64) style raw draws:
        // numpy's RandomState(0).tomaxint path starts with genrand 2357136044, 2546248239.
        let mut rng = Mt19937::new(0);
        assert_eq!(rng.next_u32(), 2_357_136_044);
        assert_eq!(rng.next_u32(), 2_546_248_239);
        // np.random.seed(0); np.random.random_sample() == 0.5488135039273248
        let mut rng = Mt19937::new(0);
        assert_eq!(rng.next_f64(), 0.548_813_503_927_324_8);
    }

    #[test]
    fn interval_stays_in_range_and_zero_is_free() {
        let mut rng = Mt19937::new(1);
        let before = rng.clone().next_u32();
        assert_eq!(rng.interval(0), 0);
        assert_eq!(rng.next_u32(), before, "interval(0) must not consume a draw");
        for max in [1u32, 2, 3, 7, 8, 1000, u32::MAX] {
            for _ in 0..200 {
                assert!(rng.interval(max) <= max);
            }
        }
    }
}
