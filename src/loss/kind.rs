//! Which loss trains a head, and whether it fits that head: every loss says what it needs of a
//! head's outputs ([`HeadOutputs`]) in its own module, and a head's loss is resolved once,
//! against the head it trains, for the config check and for training alike. A new loss is a
//! module with its `fits`, a variant here and its arm in `Criterion::head_loss`.
use serde::{Deserialize, Serialize};

use super::{ce, ldam, reslt};
use crate::model::classifier::HeadOutputs;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossKind {
    /// Cross-entropy on the logits (fused logits for a ResLT head; Szegedy et al.'s label
    /// smoothing and DRW's class weights when set).
    Ce,
    /// The ResLT loss α·L_ice + (1−α)·L_fce (Cui et al. 2022; docs/methods.md §5); needs branches.
    Reslt,
    /// LDAM (Cao et al. 2019; docs/methods.md §4): margins on cosine logits, or on every ResLT
    /// branch before the ResLT loss.
    Ldam,
}

impl LossKind {
    pub fn name(self) -> &'static str {
        match self {
            LossKind::Ce => "ce",
            LossKind::Reslt => "reslt",
            LossKind::Ldam => "ldam",
        }
    }

    /// Whether this loss can train a head with `head`'s outputs, and if not, why.
    pub fn fits(self, head: HeadOutputs) -> Result<(), &'static str> {
        match self {
            LossKind::Ce => ce::fits(head),
            LossKind::Reslt => reslt::fits(head),
            LossKind::Ldam => ldam::fits(head),
        }
    }
}

/// One head's loss, resolved against what the head outputs: what `Criterion` computes for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadLoss {
    /// Cross-entropy on the (fused) logits.
    CrossEntropy,
    /// LDAM on cosine logits.
    Ldam,
    /// The ResLT loss on branches whose true-class logits LDAM's margins lowered first.
    LdamOnBranches,
    /// The ResLT loss on the branches.
    Reslt,
}

impl HeadLoss {
    /// `kind` on a head with `head`'s outputs, or why it does not fit.
    pub fn resolve(kind: LossKind, head: HeadOutputs) -> Result<Self, &'static str> {
        kind.fits(head)?;
        Ok(match (kind, head.branches) {
            (LossKind::Ce, _) => HeadLoss::CrossEntropy,
            (LossKind::Ldam, false) => HeadLoss::Ldam,
            (LossKind::Ldam, true) => HeadLoss::LdamOnBranches,
            (LossKind::Reslt, _) => HeadLoss::Reslt,
        })
    }

    /// The config name of the loss (what the divergence message and the logged terms show).
    pub fn kind(self) -> LossKind {
        match self {
            HeadLoss::CrossEntropy => LossKind::Ce,
            HeadLoss::Ldam | HeadLoss::LdamOnBranches => LossKind::Ldam,
            HeadLoss::Reslt => LossKind::Reslt,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINEAR: HeadOutputs = HeadOutputs { cosine: false, branches: false };
    const COSINE: HeadOutputs = HeadOutputs { cosine: true, branches: false };
    const RESLT: HeadOutputs = HeadOutputs { cosine: false, branches: true };

    /// Every (loss, head) pair: the loss each head trains with, or a refusal saying why.
    #[test]
    fn each_loss_fits_the_heads_it_can_train() {
        let resolve = |k, h| HeadLoss::resolve(k, h);
        assert_eq!(resolve(LossKind::Ce, LINEAR), Ok(HeadLoss::CrossEntropy));
        assert_eq!(resolve(LossKind::Ce, RESLT), Ok(HeadLoss::CrossEntropy));
        assert!(resolve(LossKind::Ce, COSINE).unwrap_err().contains("cosine"));
        assert_eq!(resolve(LossKind::Ldam, COSINE), Ok(HeadLoss::Ldam));
        assert_eq!(resolve(LossKind::Ldam, RESLT), Ok(HeadLoss::LdamOnBranches));
        assert!(resolve(LossKind::Ldam, LINEAR).unwrap_err().contains("cosine"));
        assert_eq!(resolve(LossKind::Reslt, RESLT), Ok(HeadLoss::Reslt));
        assert!(resolve(LossKind::Reslt, LINEAR).unwrap_err().contains("branches"));
        assert!(resolve(LossKind::Reslt, COSINE).unwrap_err().contains("branches"));
        for h in [HeadLoss::CrossEntropy, HeadLoss::Ldam, HeadLoss::LdamOnBranches, HeadLoss::Reslt] {
            let head = if h == HeadLoss::Ldam {
                COSINE
            } else if h == HeadLoss::CrossEntropy {
                LINEAR
            } else {
                RESLT
            };
            assert_eq!(resolve(h.kind(), head), Ok(h), "{h:?} is what its own kind resolves to");
        }
    }
}
