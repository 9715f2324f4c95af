//! Learning rate per epoch (set at the start of each epoch, as both reference codebases do):
//! linear warm-up, then a constant rate, then cumulative step decays (the recipes of Cao et al.
//! 2019 and Cui et al. 2022 (ResLT); docs/methods.md §2).

/// lr(e) = base · warm(e) · gamma^(number of milestones ≤ e), where during the first
/// `warmup_epochs` epochs warm(e) = s·(1−f) + f with f = (e+1)/warmup_epochs and s the start factor.
#[derive(Debug, Clone, PartialEq)]
pub struct LrSchedule {
    pub base: f64,
    pub warmup_epochs: usize,
    pub warmup_start_factor: f64,
    pub milestones: Vec<usize>,
    pub gamma: f64,
}

impl LrSchedule {
    pub fn lr(&self, epoch: usize) -> f64 {
        let warm = if epoch < self.warmup_epochs {
            let f = (epoch + 1) as f64 / self.warmup_epochs as f64;
            self.warmup_start_factor * (1.0 - f) + f
        } else {
            1.0
        };
        let decays = self.milestones.iter().filter(|&&m| epoch >= m).count();
        self.base * warm * self.gamma.powi(decays as i32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12 * b.max(1e-3), "{a} vs {b}");
    }

    #[test]
    fn ldam_recipe_values() {
        let s = LrSchedule {
            base: 0.1,
            warmup_epochs: 5,
            warmup_start_factor: 0.0,
            milestones: vec![160, 180],
            gamma: 0.01,
        };
        let want = [0.02, 0.04, 0.06, 0.08, 0.1, 0.1];
        for (e, w) in want.iter().enumerate() {
            close(s.lr(e), *w);
        }
        close(s.lr(159), 0.1);
        close(s.lr(160), 0.001);
        close(s.lr(179), 0.001);
        close(s.lr(180), 0.00001);
        close(s.lr(199), 0.00001);
    }

    #[test]
    fn reslt_recipe_values() {
        let s = LrSchedule {
            base: 0.1,
            warmup_epochs: 5,
            warmup_start_factor: 1.0 / 3.0,
            milestones: vec![160, 180],
            gamma: 0.1,
        };
        let want = [0.046_666_666_666_666_67, 0.06, 0.073_333_333_333_333_33, 0.086_666_666_666_666_67, 0.1];
        for (e, w) in want.iter().enumerate() {
            close(s.lr(e), *w);
        }
        close(s.lr(100), 0.1);
        close(s.lr(160), 0.01);
        close(s.lr(180), 0.001);
    }
}
