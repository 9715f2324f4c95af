//! What the network is asked to do.
pub mod ce;

use serde::{Deserialize, Serialize};

/// `[loss]` section of a config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LossConfig {
    /// `ce` (cross-entropy).
    pub kind: LossKind,
    /// Label smoothing ε (SPEC §6.4, standard form): target = (1−ε)·onehot + ε/C.
    pub label_smoothing: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossKind {
    Ce,
}

impl Default for LossConfig {
    fn default() -> Self {
        LossConfig { kind: LossKind::Ce, label_smoothing: 0.0 }
    }
}
