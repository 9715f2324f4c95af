//! What a trained run's saved weights show, measured after training: evaluation of any saved
//! weights (`saved_run`), the epoch chosen on validation (`select`), weight averaging and
//! recomputed BatchNorm statistics, and the model zoo (`zoo`: weights as safetensors). Built on `score` (how a network is scored) and on the run
//! directories `train` writes.
pub mod average;
pub mod precise_bn;
pub mod saved;
pub mod saved_run;
pub mod select;
pub mod zoo;
