//! The AutoAugment policy table in the code equals SPEC §6.1's table, entry by entry.
use std::path::PathBuf;

use longtail::data::augment::autoaugment::CIFAR10_POLICY;

#[test]
fn policy_matches_spec_table() {
    let spec = std::env::var_os("LONGTAIL_SPEC")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/docs/SPEC.md"));
    let text = std::fs::read_to_string(&spec).unwrap_or_else(|e| panic!("cannot read {}: {e}", spec.display()));
    let section = &text[text.find("### 6.1").expect("SPEC has §6.1")..];
    let mut rows: Vec<(usize, String, String)> = Vec::new();
    for line in section.lines().take_while(|l| !l.starts_with("Magnitude mapping")) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        for half in cells.chunks(3) {
            if let [n, a, b] = half {
                if let Ok(n) = n.parse::<usize>() {
                    rows.push((n, a.to_string(), b.to_string()));
                }
            }
        }
    }
    rows.sort_by_key(|r| r.0);
    assert_eq!(rows.len(), 25, "SPEC §6.1 lists 25 sub-policies");
    let fmt = |s: &longtail::data::augment::autoaugment::Step| format!("{} {:?},{}", s.op.name(), s.p, s.m);
    for (n, a, b) in &rows {
        let ours = &CIFAR10_POLICY[n - 1];
        assert_eq!(fmt(&ours[0]), *a, "sub-policy {n}, op 1");
        assert_eq!(fmt(&ours[1]), *b, "sub-policy {n}, op 2");
    }
}
