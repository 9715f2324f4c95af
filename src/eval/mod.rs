//! What the model learned.
pub mod average;
pub mod early_exit;
pub mod evaluate;
pub mod metrics;
pub mod precise_bn;
pub mod saved_run;
pub mod select;
