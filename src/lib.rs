//! longtail: train and evaluate long-tailed image classifiers on CIFAR-LT with libtorch.
//!
//! The module layout is the pipeline, each floor importing only the floors below it:
//!
//! - the ground floor, with no crate imports: `store` (atomic files, JSON, provenance), `check`
//!   (numbers and names checked where they enter), `interrupt` (stopping cleanly on a signal);
//! - `data`, `model`, `optim`, `loss`: what an image goes through, the network, how its
//!   weights move, what it is asked to do;
//! - `score`: how a network is scored on a set of images (accuracy per group, early exit);
//! - `config` (what to run) and `run` (a run directory and its records, plain serde types);
//! - `train`: how the network learns, writing a run directory;
//! - `eval`: what a trained run's saved weights show (evaluation, `select`, averaging, BN);
//! - `rebalance`: second-stage and post-hoc re-balancing of a trained run's heads;
//! - `report`: how people see results; `reproduce`: the report's whole table;
//! - the commands (`main.rs`, `bench`) on top.
pub mod bench;
pub mod check;
pub mod config;
pub mod data;
pub mod eval;
pub mod interrupt;
pub mod loss;
pub mod model;
pub mod optim;
pub mod rebalance;
pub mod report;
pub mod reproduce;
pub mod run;
pub mod score;
pub mod store;
pub mod train;
