//! How the network learns.
pub mod checkpoint;
pub mod cuda_graph;
pub mod epoch;
pub mod fork;
pub mod graphed;
pub mod memory;
pub mod progress;
pub mod run_files;
pub mod setup;
pub mod step;
pub mod summary;
pub mod tensorboard;
pub mod trainer;
