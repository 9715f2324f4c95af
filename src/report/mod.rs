//! How people see results: the terminal table, per-run reports (Markdown + self-contained HTML
//! with PNG plots) and comparisons across runs.
pub mod compare;
pub mod diff;
pub mod document;
pub mod evaluation;
pub mod plots;
pub mod publish;
pub mod reproduction;
pub mod run_report;
pub mod stage_two;
pub mod status;
pub mod table;
