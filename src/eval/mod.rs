//! What the model learned.
pub mod evaluate;
pub mod metrics;
