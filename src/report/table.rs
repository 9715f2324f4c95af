//! The Many/Medium/Few table printed at the end of a run and by `longtail eval`.
use crate::eval::metrics::fmt_group;
use crate::run::{EpochScore, GroupsInfo};

/// A markdown table of scores with the group convention stated under it.
pub fn score_table(rows: &[(&str, &EpochScore)], groups: &GroupsInfo) -> String {
    let mut s = String::from("| | epoch | overall | many | medium | few |\n|---|---:|---:|---:|---:|---:|\n");
    for (label, r) in rows {
        s.push_str(&format!(
            "| {label} | {} | {:.2} | {} | {} | {} |\n",
            r.epoch,
            r.overall,
            fmt_group(r.many),
            fmt_group(r.medium),
            fmt_group(r.few)
        ));
    }
    let count = |cls: &[usize]| -> String {
        if cls.is_empty() {
            "none".into()
        } else {
            let n: Vec<String> = cls.iter().map(|&c| groups.train_counts[c].to_string()).collect();
            format!("classes {}–{} ({} train images)", cls[0], cls[cls.len() - 1], n.join("/"))
        }
    };
    s.push_str(&format!(
        "\nGroups by {}.\nMany: {}; Medium: {}; Few: {}.\n",
        groups.rule,
        count(&groups.many),
        count(&groups.medium),
        count(&groups.few)
    ));
    s
}
