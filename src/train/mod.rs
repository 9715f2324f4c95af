//! How the network learns.
pub mod checkpoint;
pub mod memory;
pub mod schedule;
pub mod sgd;
pub mod step;
pub mod trainer;
