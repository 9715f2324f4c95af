//! How the network learns.
pub mod checkpoint;
pub mod cuda_graph;
pub mod fork;
pub mod graphed;
pub mod memory;
pub mod step;
pub mod trainer;
