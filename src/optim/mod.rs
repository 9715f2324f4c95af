//! The optimiser and its learning-rate schedule: SGD with momentum as PyTorch computes it, and
//! the warm-up + step schedule of the long-tail recipes.
pub mod schedule;
pub mod sgd;
