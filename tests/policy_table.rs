//! The AutoAugment policy table in the code equals the one docs/methods.md (§8) transcribes from
//! the paper, entry by entry.
use std::path::Path;

use longtail::data::augment::autoaugment::CIFAR10_POLICY;

#[test]
fn policy_matches_the_documented_table() {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/methods.md");
    let text = std::fs::read_to_string(&docs).unwrap_or_else(|e| panic!("cannot read {}: {e}", docs.display()));
    let section = &text[text.find("| # | op1 (p, m) |").expect("docs/methods.md has the policy table")..];
    let mut rows: Vec<(usize, String, String)> = Vec::new();
    for line in section.lines().map(str::trim).take_while(|l| l.starts_with('|')) {
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
    assert_eq!(rows.len(), 25, "the documented policy lists 25 sub-policies");
    let fmt = |s: &longtail::data::augment::autoaugment::Step| format!("{} {:?},{}", s.op.name(), s.p, s.m);
    for (n, a, b) in &rows {
        let ours = &CIFAR10_POLICY[n - 1];
        assert_eq!(fmt(&ours[0]), *a, "sub-policy {n}, op 1");
        assert_eq!(fmt(&ours[1]), *b, "sub-policy {n}, op 2");
    }
}
