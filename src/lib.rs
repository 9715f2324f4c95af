//! longtail: train and evaluate long-tailed image classifiers on CIFAR-LT with libtorch.
//!
//! The module layout is the pipeline: `data` → `model` → `loss` → `train` → `eval` → `report`,
//! on a ground floor, `store` (atomic files, JSON, provenance), with `config` (what to run), `run`
//! (a run directory and its records, plain serde types) and `reproduce` (the report's whole
//! table: which configs, which runs) beside them.
pub mod bench;
pub mod config;
pub mod data;
pub mod eval;
pub mod loss;
pub mod model;
pub mod report;
pub mod reproduce;
pub mod run;
pub mod store;
pub mod train;
