//! How a network is scored on a set of images: predictions in batches (`predict`), accuracy
//! overall, per class and per Many / Medium / Few group (`metrics`), and early-exit inference
//! with the MACs it saves (`early_exit`), and calibration (`calibration`). Used while training (`train`) and after it (`eval`).
pub mod calibration;
pub mod early_exit;
pub mod metrics;
pub mod predict;
