//! SGD with momentum, weight decay and optional Nesterov, in PyTorch's exact form (docs/methods.md §2):
//! g ← ∇ + wd·θ; buf ← μ·buf + g (buf = g at the first step); d = g + μ·buf (Nesterov) or buf;
//! θ ← θ − lr·d. We own the momentum buffers (rather than using tch's optimiser) so that a
//! checkpoint can save and restore them and a resumed run continues exactly.
use tch::Tensor;

pub struct Sgd {
    /// (name, parameter), sorted by name so buffers line up with checkpoints.
    params: Vec<(String, Tensor)>,
    buffers: Vec<Option<Tensor>>,
    pub momentum: f64,
    pub weight_decay: f64,
    pub nesterov: bool,
}

impl Sgd {
    pub fn new(mut params: Vec<(String, Tensor)>, momentum: f64, weight_decay: f64, nesterov: bool) -> Self {
        params.sort_by(|a, b| a.0.cmp(&b.0));
        let buffers = params.iter().map(|_| None).collect();
        Sgd { params, buffers, momentum, weight_decay, nesterov }
    }

    pub fn zero_grad(&mut self) {
        for (_, p) in &mut self.params {
            p.zero_grad();
        }
    }

    pub fn step(&mut self, lr: f64) {
        tch::no_grad(|| {
            for ((_, p), buf) in self.params.iter_mut().zip(self.buffers.iter_mut()) {
                let grad = p.grad();
                if !grad.defined() {
                    continue;
                }
                let g = if self.weight_decay != 0.0 { &grad + &*p * self.weight_decay } else { grad };
                let b = match buf {
                    Some(b) => {
                        let _ = b.g_mul_scalar_(self.momentum).g_add_(&g);
                        b
                    }
                    None => buf.insert(g.copy()),
                };
                let d = if self.nesterov { &g + &*b * self.momentum } else { b.shallow_clone() };
                let _ = p.g_add_(&(d * -lr));
            }
        });
    }

    /// The same update with the learning rate in a device tensor and a device flag `ok`: where
    /// `ok` is false every parameter and buffer keeps its value. No host synchronisation and no
    /// allocation outside the step, so a CUDA graph can capture it. Every momentum buffer must
    /// exist (one [`Sgd::step`] has run); with `ok` true the result is bit-identical to `step`.
    pub fn step_guarded(&mut self, lr: &Tensor, ok: &Tensor) -> Result<(), String> {
        self.buffers_ready()?;
        tch::no_grad(|| {
            for ((_, p), buf) in self.params.iter_mut().zip(self.buffers.iter_mut()) {
                let (grad, Some(b)) = (p.grad(), buf.as_mut()) else { continue };
                if !grad.defined() {
                    continue;
                }
                // The same operations in the same order as `step`, so the values agree exactly.
                let g = if self.weight_decay != 0.0 { &grad + &*p * self.weight_decay } else { grad };
                let new_b = &*b * self.momentum + &g;
                let d = if self.nesterov { &g + &new_b * self.momentum } else { new_b.shallow_clone() };
                let new_p = &*p + &d * lr.neg();
                b.copy_(&new_b.where_self(ok, &*b));
                p.copy_(&new_p.where_self(ok, &*p));
            }
        });
        Ok(())
    }

    /// Every parameter with a gradient has its momentum buffer (what [`Sgd::step_guarded`] needs).
    pub fn buffers_ready(&self) -> Result<(), String> {
        match self.params.iter().zip(&self.buffers).find(|((_, p), b)| p.grad().defined() && b.is_none()) {
            Some(((name, _), _)) => {
                Err(format!("the momentum buffer of {name} does not exist yet: run one eager step first"))
            }
            None => Ok(()),
        }
    }

    /// The sum of every gradient's sum, on the device: a non-finite element anywhere makes it
    /// non-finite. None when no parameter has a gradient.
    fn gradient_sum(&self) -> Option<Tensor> {
        let sums: Vec<Tensor> = self
            .params
            .iter()
            .filter_map(|(_, p)| Some(p.grad()).filter(|g| g.defined()).map(|g| g.sum(tch::Kind::Float)))
            .collect();
        (!sums.is_empty()).then(|| Tensor::stack(&sums, 0).sum(tch::Kind::Float))
    }

    /// Whether every gradient is finite, as a device bool (no host synchronisation).
    pub fn gradients_finite(&self) -> Tensor {
        match self.gradient_sum() {
            Some(sum) => sum.isfinite(),
            None => Tensor::from(true).to_device(self.params.first().map_or(tch::Device::Cpu, |(_, p)| p.device())),
        }
    }

    /// The first parameter (by name) whose gradient holds a NaN or an infinity, if any. One
    /// synchronising reduction per step: a non-finite element makes its tensor's sum, and so the
    /// sum of sums, non-finite; only then are the parameters searched one by one.
    pub fn non_finite_gradient(&self) -> Option<String> {
        if self.gradient_sum().is_none_or(|sum| sum.double_value(&[]).is_finite()) {
            return None;
        }
        self.params.iter().find_map(|(name, p)| {
            let g = p.grad();
            (g.defined() && !g.sum(tch::Kind::Float).double_value(&[]).is_finite()).then(|| name.clone())
        })
    }

    /// Momentum buffers by parameter name (for checkpoints).
    pub fn buffers(&self) -> Vec<(String, Tensor)> {
        self.params
            .iter()
            .zip(&self.buffers)
            .filter_map(|((n, _), b)| b.as_ref().map(|b| (n.clone(), b.shallow_clone())))
            .collect()
    }

    /// Restore buffers saved by [`Sgd::buffers`]; unknown names are an error.
    pub fn load_buffers(&mut self, saved: Vec<(String, Tensor)>) -> Result<(), String> {
        for (name, t) in saved {
            let i = self
                .params
                .iter()
                .position(|(n, _)| *n == name)
                .ok_or_else(|| format!("checkpoint has a momentum buffer for unknown parameter {name}"))?;
            let device = self.params[i].1.device();
            self.buffers[i] = Some(t.to_device(device));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    #[test]
    fn two_steps_match_hand_computation() {
        // θ0 = 1, loss = 0.5·θ² → ∇ = θ. μ = 0.9, wd = 0.1, lr = 0.5.
        for nesterov in [false, true] {
            let p = Tensor::from_slice(&[1.0f64]).set_requires_grad(true);
            let mut opt = Sgd::new(vec![("p".into(), p.shallow_clone())], 0.9, 0.1, nesterov);
            let mut theta = 1.0f64;
            let mut buf: Option<f64> = None;
            for _ in 0..2 {
                opt.zero_grad();
                (&p * &p * 0.5).sum(Kind::Double).backward();
                opt.step(0.5);
                let g = theta + 0.1 * theta;
                let b = match buf {
                    Some(b) => 0.9 * b + g,
                    None => g,
                };
                buf = Some(b);
                let d = if nesterov { g + 0.9 * b } else { b };
                theta -= 0.5 * d;
                assert!((p.double_value(&[0]) - theta).abs() < 1e-12, "nesterov={nesterov}");
            }
        }
    }
}
