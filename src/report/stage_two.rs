//! One table over every published result: the weights as trained and after each second-stage
//! method (`rebalance`), test accuracy and calibration, the method chosen on validation marked
//! (`longtail reproduce stage-two --results results` writes it to `results/stage-two.md`).
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::rebalance::Method;
use crate::run::{StageTwoReport, Summary};
use crate::store;

/// The table's file in the results folder.
pub const TABLE_MD: &str = "stage-two.md";

/// Every `<name>.json` of `results` that is a published result, by name.
fn published(results: &Path) -> Result<Vec<(String, Summary)>> {
    let paths: Vec<PathBuf> = std::fs::read_dir(results)
        .with_context(|| format!("cannot list {}", results.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    let mut runs = paths
        .into_iter()
        .map(|p| {
            let name = p.file_stem().map_or(String::new(), |s| s.to_string_lossy().into_owned());
            Summary::read(&p).map(|s| (name, s)).with_context(|| format!("cannot read {}", p.display()))
        })
        .collect::<Result<Vec<_>>>()?;
    runs.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(runs)
}

/// "83.68 (τ = 0.6) ←": a method's test accuracy at its chosen setting, marked when chosen.
fn method_cell(st: &StageTwoReport, method: Method) -> String {
    let Some(m) = st.methods.iter().find(|m| m.method == method.name()) else { return "not run".into() };
    match (&m.chosen, &m.test) {
        (Some(c), Some(t)) => {
            format!("{:.2} ({}){}", t.full_depth.overall, c.label, if st.chosen_method == m.method { " ←" } else { "" })
        }
        _ => "does not apply".into(),
    }
}

fn row(name: &str, s: &Summary) -> Vec<String> {
    let mut cells = vec![format!("`{name}`"), format!("{}", s.rho)];
    let Some(st) = &s.stage_two else {
        cells.push("not measured".into());
        cells.resize(5 + Method::ALL.len() + 2, "—".into());
        return cells;
    };
    let chosen = st.chosen_score();
    cells.push(st.weights.clone());
    cells.push(format!(
        "{:.2}{}",
        st.as_trained.full_depth.overall,
        if st.chosen_method == "none" { " ←" } else { "" }
    ));
    cells.push(format!("{:.2}", st.as_trained.calibration.ece));
    cells.extend(Method::ALL.map(|m| method_cell(st, m)));
    cells.push(format!("{:.2}", chosen.calibration.ece));
    cells.push(
        chosen.early_exit.as_ref().map_or("—".into(), |e| format!("{:.2}, {:.1} %", e.overall, 100.0 * e.saving)),
    );
    cells
}

/// The markdown table over every published result in `results`.
pub fn render(results: &Path) -> Result<String> {
    let runs = published(results)?;
    let mut head: Vec<String> = ["result", "ρ", "weights", "as trained", "ECE as trained"].map(String::from).to_vec();
    head.extend(Method::ALL.map(|m| m.name().to_string()));
    head.extend(["ECE of the chosen", "early exit of the chosen (acc, MACs saved)"].map(String::from));
    let measured = runs.iter().filter(|(_, s)| s.stage_two.is_some()).count();
    let mut md = format!(
        "## Second stage and calibration of every published result\n\n\
         {measured} of {} published results have second-stage numbers (`longtail rebalance` on their weights, then \
         `publish`). Every cell is full-depth test accuracy (%) at the setting chosen on validation images the \
         long-tailed subset leaves out, never on the test set; ← marks the method whose chosen setting validated \
         highest (on \"as trained\": none beat the weights as trained). ECE: expected calibration error of the final \
         head's confidence over 15 bins, in points. \"not measured\": no `stage_two.json` was published with the \
         result (`results/README.md` says which runs' weights no longer exist). Re-render with `longtail reproduce stage-two \
         --results {}`.\n\n| {} |\n|{}\n",
        runs.len(),
        results.display(),
        head.join(" | "),
        "---|".repeat(head.len())
    );
    for (name, s) in &runs {
        md.push_str(&format!("| {} |\n", row(name, s).join(" | ")));
    }
    Ok(md)
}

/// Render the table into `results/stage-two.md`; its path.
pub fn write(results: &Path) -> Result<PathBuf> {
    let md = render(results)?;
    let path = results.join(TABLE_MD);
    store::atomic_write(&path, md.as_bytes())?;
    Ok(path)
}
