//! Numbers checked where they enter: a config key or a command-line flag whose value is not
//! finite, not in its range or zero where it must not be is an error naming the key, the value
//! and the range, before anything trains on it. (A NaN learning rate would otherwise surface
//! epochs later as "diverged"; ρ = ∞ would train one class.) Ground floor: no crate imports.
use std::fmt::Display;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key} = {value}: {why}")]
pub struct BadValue {
    pub key: String,
    pub value: String,
    pub why: String,
}

impl BadValue {
    pub fn new(key: &str, value: impl Display, why: impl Into<String>) -> Self {
        BadValue { key: key.to_string(), value: value.to_string(), why: why.into() }
    }
}

/// `ok`, or the error for `key = value` saying `why`.
pub fn require(ok: bool, key: &str, value: impl Display, why: &str) -> Result<(), BadValue> {
    if ok {
        Ok(())
    } else {
        Err(BadValue::new(key, value, why))
    }
}

/// Finite and > 0 (a learning rate, a logit scale, a decay factor).
pub fn positive(key: &str, v: f64) -> Result<(), BadValue> {
    require(v.is_finite() && v > 0.0, key, v, "must be a finite number > 0")
}

/// Finite and ≥ 0 (a weight decay, a loss weight, Mixup's α).
pub fn non_negative(key: &str, v: f64) -> Result<(), BadValue> {
    require(v.is_finite() && v >= 0.0, key, v, "must be a finite number ≥ 0")
}

/// In [0, 1) (momentum, label smoothing, DRW's β).
pub fn unit_open(key: &str, v: f64) -> Result<(), BadValue> {
    require((0.0..1.0).contains(&v), key, v, "must be in [0, 1)")
}

/// In [0, 1] (a mixing weight, a start factor).
pub fn unit_closed(key: &str, v: f64) -> Result<(), BadValue> {
    require((0.0..=1.0).contains(&v), key, v, "must be in [0, 1]")
}

/// In (0, 1] (a softmax confidence threshold τ).
pub fn confidence(key: &str, v: f64) -> Result<(), BadValue> {
    require(v > 0.0 && v <= 1.0, key, v, "must be in (0, 1]")
}

/// A count that must be at least 1 (epochs, a batch size).
pub fn at_least_one(key: &str, v: usize) -> Result<(), BadValue> {
    require(v >= 1, key, v, "must be ≥ 1")
}

/// A count in `1..=max` (a cap keeps a typo such as 1e9 threads from reaching the library).
pub fn count_up_to(key: &str, v: usize, max: usize) -> Result<(), BadValue> {
    require((1..=max).contains(&v), key, v, &format!("must be in 1..={max}"))
}

/// A name that becomes a file or folder name (a run, a result, a dataset): non-empty, no path
/// separators, not `.` or `..`, no control characters, so it cannot write outside its folder.
pub fn plain_name(key: &str, name: &str) -> Result<(), BadValue> {
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && name.len() <= 200
        && !name.chars().any(|c| c == '/' || c == '\\' || c.is_control());
    require(
        ok,
        key,
        format!("{name:?}"),
        "must be a plain, non-empty name of at most 200 bytes (no '/', '\\', '.', '..' or control characters)",
    )
}

/// A command-line parser for a flag that takes a confidence threshold τ ∈ (0, 1].
pub fn parse_confidence(s: &str) -> Result<f64, String> {
    let v: f64 = s.trim().parse().map_err(|_| format!("{s:?} is not a number"))?;
    confidence("τ", v).map(|()| v).map_err(|e| e.why)
}

/// A command-line parser for an imbalance ratio ρ: finite and ≥ 1 (whether the rarest class keeps
/// an image is checked against the dataset, `data::subset::check_rho`).
pub fn parse_rho(s: &str) -> Result<f64, String> {
    let v: f64 = s.trim().parse().map_err(|_| format!("{s:?} is not a number"))?;
    require(v.is_finite() && v >= 1.0, "ρ", v, "must be a finite number ≥ 1").map(|()| v).map_err(|e| e.why)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_hold_at_their_edges_and_refuse_nan_and_infinity() {
        assert!(positive("k", 1e-9).is_ok() && positive("k", 0.0).is_err() && positive("k", -0.1).is_err());
        assert!(non_negative("k", 0.0).is_ok() && non_negative("k", -1e-12).is_err());
        assert!(unit_open("k", 0.0).is_ok() && unit_open("k", 0.999).is_ok() && unit_open("k", 1.0).is_err());
        assert!(unit_closed("k", 1.0).is_ok() && unit_closed("k", 1.0001).is_err());
        assert!(confidence("k", 1.0).is_ok() && confidence("k", 0.0).is_err() && confidence("k", 2.0).is_err());
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            for check in [positive, non_negative, unit_open, unit_closed, confidence] {
                assert!(check("k", v).is_err(), "{v}");
            }
        }
        assert!(at_least_one("k", 0).is_err() && at_least_one("k", 1).is_ok());
        assert!(count_up_to("k", 64, 64).is_ok() && count_up_to("k", 65, 64).is_err());
    }

    #[test]
    fn errors_name_the_key_the_value_and_the_range() {
        let e = positive("train.lr", f64::NAN).unwrap_err().to_string();
        assert_eq!(e, "train.lr = NaN: must be a finite number > 0");
        assert_eq!(parse_confidence("2").unwrap_err(), "must be in (0, 1]");
        assert_eq!(parse_confidence("0.9"), Ok(0.9));
        assert!(parse_rho("inf").is_err() && parse_rho("0").is_err() && parse_rho("x").is_err());
        assert_eq!(parse_rho("50"), Ok(50.0));
    }

    #[test]
    fn names_cannot_leave_their_folder() {
        for bad in ["", ".", "..", "../x", "a/b", "a\\b", "x\0y", "tab\there"] {
            assert!(plain_name("name", bad).is_err(), "{bad:?}");
        }
        for good in ["model-12", "reslt-a0.95-aa-ls-r50", "..x", "élan"] {
            assert!(plain_name("name", good).is_ok(), "{good:?}");
        }
        assert!(plain_name("name", &"a".repeat(201)).is_err());
    }
}
