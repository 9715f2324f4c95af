//! How people see results: tables in the terminal and in `results/`.
pub mod table;
