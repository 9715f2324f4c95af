//! Reproducing a whole comparison table: the rows and their configs (`manifest`), and the
//! trainings that fill them (`runner`). Rendering lives in `report::reproduction`.
pub mod manifest;
pub mod plan;
pub mod runner;
pub mod slurm;
