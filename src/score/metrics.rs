//! Accuracy overall, per class, per Many/Medium/Few group, and the confusion matrix.
//!
//! Group accuracy is the mean of the per-class accuracies of the classes in the group
//! (docs/methods.md §9), so it does not depend on how many test images each class has.
use serde::{Deserialize, Serialize};

/// How classes are split into Many / Medium / Few.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case", deny_unknown_fields)]
pub enum GroupRule {
    /// Fixed class-index ranges: many = [0, bounds[0]), medium = [bounds[0], bounds[1]),
    /// few = [bounds[1], C). ResLT's CIFAR-10 evaluation uses bounds [3, 6] (3/3/4 classes).
    Index { bounds: [usize; 2] },
    /// By training count: many n > many_above, few n < few_below, medium otherwise
    /// (RIDE and most LT code: 100 and 20).
    Count { many_above: usize, few_below: usize },
}

/// The three groups the long-tail literature reports, by how many training images a class has
/// (or by class index, for the rules that fix them so).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Group {
    Many,
    Medium,
    Few,
}

impl Group {
    pub const ALL: [Group; 3] = [Group::Many, Group::Medium, Group::Few];

    /// Its place in [`Group::ALL`], for tables kept per group.
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            Group::Many => "many",
            Group::Medium => "medium",
            Group::Few => "few",
        }
    }
}

impl GroupRule {
    /// The group of each class.
    pub fn assign(&self, train_counts: &[usize]) -> Vec<Group> {
        train_counts
            .iter()
            .enumerate()
            .map(|(c, &n)| match *self {
                GroupRule::Index { bounds } => {
                    if c < bounds[0] {
                        Group::Many
                    } else if c < bounds[1] {
                        Group::Medium
                    } else {
                        Group::Few
                    }
                }
                GroupRule::Count { many_above, few_below } => {
                    if n > many_above {
                        Group::Many
                    } else if n < few_below {
                        Group::Few
                    } else {
                        Group::Medium
                    }
                }
            })
            .collect()
    }

    pub fn describe(&self) -> String {
        match self {
            GroupRule::Index { bounds } => {
                format!(
                    "class-index ranges: many 0–{}, medium {}–{}, few {}–end",
                    bounds[0] - 1,
                    bounds[0],
                    bounds[1] - 1,
                    bounds[1]
                )
            }
            GroupRule::Count { many_above, few_below } => {
                format!("training counts: many n>{many_above}, medium {few_below}≤n≤{many_above}, few n<{few_below}")
            }
        }
    }
}

/// One group's accuracy; `None` when the group has no class (e.g. Few on CIFAR-10 by counts).
pub type GroupAcc = Option<f64>;

/// Test-set accuracy in percent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Accuracy {
    pub overall: f64,
    pub many: GroupAcc,
    pub medium: GroupAcc,
    pub few: GroupAcc,
    pub per_class: Vec<f64>,
}

/// Full evaluation: accuracy plus the confusion matrix (rows = true class).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub accuracy: Accuracy,
    pub confusion: Vec<Vec<u32>>,
}

pub fn evaluate_predictions(preds: &[i64], labels: &[i64], num_classes: usize, groups: &[Group]) -> Evaluation {
    assert_eq!(preds.len(), labels.len(), "one prediction per label");
    let mut confusion = vec![vec![0u32; num_classes]; num_classes];
    for (&p, &y) in preds.iter().zip(labels) {
        confusion[y as usize][p as usize] += 1;
    }
    let per_class: Vec<f64> = confusion
        .iter()
        .enumerate()
        .map(|(c, row)| {
            let total: u32 = row.iter().sum();
            if total == 0 {
                0.0
            } else {
                100.0 * row[c] as f64 / total as f64
            }
        })
        .collect();
    let correct: u32 = (0..num_classes).map(|c| confusion[c][c]).sum();
    let overall = if preds.is_empty() { 0.0 } else { 100.0 * correct as f64 / preds.len() as f64 };
    let group_mean = |g: Group| -> GroupAcc {
        let accs: Vec<f64> = per_class.iter().zip(groups).filter(|(_, &gg)| gg == g).map(|(a, _)| *a).collect();
        (!accs.is_empty()).then(|| accs.iter().sum::<f64>() / accs.len() as f64)
    };
    Evaluation {
        accuracy: Accuracy {
            overall,
            many: group_mean(Group::Many),
            medium: group_mean(Group::Medium),
            few: group_mean(Group::Few),
            per_class,
        },
        confusion,
    }
}

/// The share of a group's training samples that left at each exit over an epoch; `None` for a
/// group with no class (or no sample seen).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupExitFractions {
    pub many: Option<Vec<f64>>,
    pub medium: Option<Vec<f64>>,
    pub few: Option<Vec<f64>>,
}

/// Exit shares from per-exit, per-class sample counts (`counts[k][c]`): overall (fractions of
/// all samples) and per group (fractions of that group's samples, pooled over its classes, so
/// the Few line says how much of the tail the deeper exits still see).
pub fn exit_fractions(counts: &[Vec<f64>], groups: &[Group]) -> (Vec<f64>, GroupExitFractions) {
    let shares = |keep: &dyn Fn(usize) -> bool| -> Option<Vec<f64>> {
        let per_exit: Vec<f64> =
            counts.iter().map(|row| row.iter().enumerate().filter(|(c, _)| keep(*c)).map(|(_, n)| n).sum()).collect();
        let total: f64 = per_exit.iter().sum();
        (total > 0.0).then(|| per_exit.iter().map(|n| n / total).collect())
    };
    let group = |g: Group| shares(&|c| groups.get(c) == Some(&g));
    let overall = shares(&|_| true).unwrap_or_else(|| vec![0.0; counts.len()]);
    (overall, GroupExitFractions { many: group(Group::Many), medium: group(Group::Medium), few: group(Group::Few) })
}

/// Format a group accuracy for tables.
pub fn fmt_group(a: GroupAcc) -> String {
    a.map_or_else(|| "—".to_string(), |v| format!("{v:.2}"))
}

/// The parts of a network that can answer alone, in the order every table lists them: ResLT's
/// three branches (head, medium, tail), then each early exit. One labelling for `train`, `eval`
/// and the run report, so their rows always read the same.
pub fn parts_alone<'a>(branches: &'a [Accuracy], exits: &'a [Accuracy]) -> Vec<(String, &'a Accuracy)> {
    const BRANCHES: [&str; 3] = ["head branch alone", "medium branch alone", "tail branch alone"];
    let branches = BRANCHES.iter().zip(branches).map(|(name, acc)| (name.to_string(), acc));
    let exits = exits.iter().enumerate().map(|(k, acc)| (format!("exit {} alone", k + 1), acc));
    branches.chain(exits).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use Group::{Few as F, Many as M, Medium as D};

    #[test]
    fn parts_alone_names_branches_then_exits() {
        let acc = |overall| Accuracy { overall, many: None, medium: None, few: None, per_class: vec![] };
        let (b, e) = ([acc(1.0), acc(2.0), acc(3.0)], [acc(4.0), acc(5.0)]);
        let named: Vec<(String, f64)> = parts_alone(&b, &e).into_iter().map(|(n, a)| (n, a.overall)).collect();
        let expect = [
            ("head branch alone", 1.0),
            ("medium branch alone", 2.0),
            ("tail branch alone", 3.0),
            ("exit 1 alone", 4.0),
            ("exit 2 alone", 5.0),
        ];
        assert_eq!(named, expect.map(|(n, v)| (n.to_string(), v)));
        assert_eq!(parts_alone(&[], &e)[0].0, "exit 1 alone");
        assert!(parts_alone(&[], &[]).is_empty());
    }

    #[test]
    fn exit_fractions_by_hand() {
        // 2 exits × 3 classes; groups: class 0 many, classes 1–2 few, no medium class.
        let counts = vec![vec![6.0, 1.0, 0.0], vec![2.0, 1.0, 2.0]];
        let (overall, g) = exit_fractions(&counts, &[M, F, F]);
        assert_eq!(overall, vec![7.0 / 12.0, 5.0 / 12.0]);
        assert_eq!(g.many, Some(vec![0.75, 0.25]));
        assert_eq!(g.medium, None);
        assert_eq!(g.few, Some(vec![0.25, 0.75]));
        // A group whose classes saw no sample this epoch has no shares, not 0/0.
        let (_, g) = exit_fractions(&[vec![1.0, 0.0], vec![0.0, 0.0]], &[M, F]);
        assert_eq!(g.few, None);
    }

    #[test]
    fn groups_by_index_and_by_count() {
        let counts = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50];
        assert_eq!(GroupRule::Index { bounds: [3, 6] }.assign(&counts), vec![M, M, M, D, D, D, F, F, F, F]);
        let by_count = GroupRule::Count { many_above: 100, few_below: 20 }.assign(&counts);
        assert_eq!(by_count, vec![M, M, M, M, M, M, M, M, D, D]);
        assert_eq!(GroupRule::Count { many_above: 100, few_below: 20 }.assign(&[101, 100, 20, 19]), vec![M, D, D, F]);
    }

    #[test]
    fn hand_made_predictions() {
        // 3 classes, groups many={0}, medium={1}, few={2}.
        let labels = [0, 0, 0, 0, 1, 1, 2, 2, 2, 2];
        let preds = [0, 0, 0, 1, 1, 0, 2, 0, 0, 0];
        let e = evaluate_predictions(&preds, &labels, 3, &[M, D, F]);
        assert_eq!(e.confusion, vec![vec![3, 1, 0], vec![1, 1, 0], vec![3, 0, 1]]);
        assert_eq!(e.accuracy.per_class, vec![75.0, 50.0, 25.0]);
        assert!((e.accuracy.overall - 50.0).abs() < 1e-12);
        assert_eq!(e.accuracy.many, Some(75.0));
        assert_eq!(e.accuracy.few, Some(25.0));
        // group mean is a mean of class accuracies, not of images
        let e = evaluate_predictions(&preds, &labels, 3, &[M, M, D]);
        assert_eq!(e.accuracy.many, Some(62.5));
        assert_eq!(e.accuracy.few, None);
        assert_eq!(fmt_group(e.accuracy.few), "—");
    }
}
