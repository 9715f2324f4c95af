//! The Many/Medium/Few table printed at the end of a run and by `longtail eval`, the early-exit
//! table of both, and the early-exit timing table of `eval --timing`.
use super::document::Block;
use crate::run::TimingReport;
use crate::run::{EpochScore, GroupsInfo};
use crate::score::early_exit::EarlyExit;
use crate::score::metrics::fmt_group;

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

/// Early-exit inference, one row per threshold: accuracy, where images leave, MACs saved.
pub fn early_exit_table(rows: &[EarlyExit]) -> String {
    // The exits are numbered from the rows themselves: a model with one exit has "exit 1 / final".
    let exits = rows.first().map_or(0, |r| r.exit_fractions.len().saturating_sub(1));
    let names: Vec<String> = (1..=exits).map(|k| k.to_string()).chain(["final".to_string()]).collect();
    let mut s = format!(
        "| τ | overall | many | medium | few | leave at exit {} (%) | mean MMACs | saving |\n|---:|---:|---:|---:|---:|---|---:|---:|\n",
        names.join(" / ")
    );
    for r in rows {
        let fr: Vec<String> = r.exit_fractions.iter().map(|f| format!("{:.1}", 100.0 * f)).collect();
        s.push_str(&format!(
            "| {} | {:.2} | {} | {} | {} | {} | {:.2} | {:.1} % |\n",
            r.threshold,
            r.overall,
            fmt_group(r.many),
            fmt_group(r.medium),
            fmt_group(r.few),
            fr.join(" / "),
            r.mean_macs / 1e6,
            100.0 * r.saving
        ));
    }
    if let Some(r) = rows.first() {
        s.push_str(&format!("\nMACs of the same network without exits: {:.2} M.\n", r.full_macs as f64 / 1e6));
    }
    s
}

/// `eval --timing`'s measurements as report blocks: a sentence saying what was measured where,
/// then one row per batch size.
pub fn timing_blocks(r: &TimingReport) -> Vec<Block> {
    let tau = r.rows.first().map_or(String::from("?"), |t| t.tau.to_string());
    let reps = r.rows.first().map_or(0, |t| t.repetitions);
    let note = format!(
        "Wall clock of early exits that stop (confident images leave the batch) against the same network \
         without exits, {} weights, τ = {tau}; medians of {reps} interleaved passes each. Measured {} on {} ({}), \
         commit {}.",
        r.weights, r.provenance.measured_at, r.machine, r.provenance.device, r.provenance.commit
    );
    let head = ["batch", "images", "full depth (s)", "early exit (s)", "speedup", "early-exit accuracy"];
    let rows = r
        .rows
        .iter()
        .map(|t| {
            vec![
                t.batch.to_string(),
                t.images.to_string(),
                format!("{:.2}", t.full_depth_seconds),
                format!("{:.2}", t.early_exit_seconds),
                format!("{:.2}×", t.speedup()),
                format!("{:.2}", t.early_exit_accuracy),
            ]
        })
        .collect();
    vec![Block::Paragraph(note), Block::Table(head.map(String::from).to_vec(), rows)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(exit_fractions: Vec<f64>) -> EarlyExit {
        EarlyExit {
            threshold: 0.9,
            overall: 77.126,
            many: Some(90.0),
            medium: None,
            few: Some(65.5),
            mean_macs: 44.43e6,
            full_macs: 68_862_592,
            saving: 0.3548,
            exit_fractions,
            exit_fractions_by_group: Vec::new(),
        }
    }

    #[test]
    fn early_exit_table_numbers_the_exits_the_rows_have() {
        let two = early_exit_table(&[row(vec![0.25, 0.125, 0.625])]);
        assert!(two.starts_with("| τ | overall | many | medium | few | leave at exit 1 / 2 / final (%) |"), "{two}");
        assert!(two.contains("| 0.9 | 77.13 | 90.00 | — | 65.50 | 25.0 / 12.5 / 62.5 | 44.43 | 35.5 % |"), "{two}");
        assert!(two.ends_with("\nMACs of the same network without exits: 68.86 M.\n"), "{two}");
        let one = early_exit_table(&[row(vec![0.5, 0.5])]);
        assert!(one.contains("| leave at exit 1 / final (%) |"), "{one}");
    }
}
