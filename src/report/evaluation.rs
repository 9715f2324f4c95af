//! The text `longtail eval` prints: the score table of the evaluated weights and of each branch
//! and exit alone, per-class accuracy, early-exit inference, timing, and the files written.
use crate::eval::saved_run::EvalOutcome;
use crate::report::document::markdown;
use crate::report::table::{early_exit_table, score_table, timing_blocks};
use crate::run::EpochScore;

pub fn render(outcome: &EvalOutcome) -> String {
    let mut s = String::new();
    for note in &outcome.notes {
        s.push_str(note);
        s.push('\n');
    }
    let rows: Vec<(&str, &EpochScore)> = outcome.scores.iter().map(|(n, sc)| (n.as_str(), sc)).collect();
    s.push_str(&score_table(&rows, &outcome.groups));
    s.push('\n');
    for (name, acc) in &outcome.per_class {
        let values: Vec<String> = acc.iter().map(|a| format!("{a:.1}")).collect();
        match name {
            Some(name) => s.push_str(&format!("per class, {name}: {}\n", values.join(" "))),
            None => s.push_str(&format!("per class: {}\n", values.join(" "))),
        }
    }
    if !outcome.early_exit.is_empty() {
        s.push_str(&format!(
            "\nEarly-exit inference ({}):\n{}\n",
            outcome.label,
            early_exit_table(&outcome.early_exit)
        ));
    }
    if let Some(timing) = &outcome.timing {
        s.push_str(&markdown(&timing_blocks(timing)));
    }
    for path in &outcome.written {
        s.push_str(&format!("wrote {} (`longtail publish` attaches it to the result)\n", path.display()));
    }
    s
}
