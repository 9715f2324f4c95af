//! Typed run configuration, resolved in layers: recipe defaults < config file < `--set` flags.
//! An unknown or mistyped key anywhere is an error that names the key.
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::check::{self, BadValue};
use crate::data::augment::AugmentConfig;
use crate::data::cifar::Cifar;
use crate::data::Dataset;
use crate::loss::LossConfig;
use crate::model::ModelConfig;
use crate::optim::schedule::LrSchedule;
use crate::score::metrics::GroupRule;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{origin}: {message}")]
    Invalid { origin: String, message: String },
    #[error("--set {0:?}: expected key=value, e.g. train.epochs=2")]
    BadOverride(String),
    #[error("train.recipe = {0:?} is not known; available: ldam, reslt")]
    UnknownRecipe(String),
    #[error(transparent)]
    BadValue(#[from] BadValue),
    #[error("{0} is empty: a config names at least its [train] recipe or one setting; start from one in configs/")]
    Empty(String),
}

/// The whole configuration of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Run name (default: the config file's stem).
    #[serde(default)]
    pub name: Option<String>,
    /// Seed for weight init, data order and augmentation.
    #[serde(default)]
    pub seed: u64,
    /// `auto` (CUDA when available), `cpu`, `cuda` or `cuda:N`.
    #[serde(default = "default_device")]
    pub device: String,
    #[serde(default)]
    pub data: DataConfig,
    #[serde(default)]
    pub model: ModelConfig,
    #[serde(default)]
    pub loss: LossConfig,
    pub train: TrainConfig,
    #[serde(default)]
    pub eval: EvalConfig,
}

fn default_device() -> String {
    "auto".into()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// `cifar10` or `cifar100`; `folder` below replaces it with an image-folder dataset.
    pub dataset: Cifar,
    /// Imbalance ratio ρ = n_max / n_min; 1 keeps the full balanced training set.
    pub rho: f64,
    /// Seed of numpy's legacy RNG that picks the subset (0 is the community standard).
    pub subset_seed: u32,
    pub augment: AugmentConfig,
    /// Keep at most this many training images per class after the long-tailed selection
    /// (quick experiments and smoke tests; unset for real runs).
    pub max_per_class: Option<usize>,
    /// An image-folder dataset (ImageNet-LT / Places-LT layout, `data::folder`) instead of CIFAR.
    pub folder: Option<FolderConfig>,
}

/// `[data.folder]`: images under `root`, listed with their labels in the `train` and `test`
/// list files (`relative/path label` a line). The training list is the long-tailed subset
/// itself, so `data.rho` stays 1. `--data DIR` replaces `root`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FolderConfig {
    /// The dataset's name in results (`folder:<name>`).
    pub name: String,
    pub root: PathBuf,
    /// List files, relative to `root` unless absolute.
    pub train: PathBuf,
    pub test: PathBuf,
    /// Number of classes; labels run from 0 to classes − 1.
    pub classes: usize,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            dataset: Cifar::Cifar10,
            rho: 100.0,
            subset_seed: 0,
            augment: AugmentConfig::default(),
            max_per_class: None,
            folder: None,
        }
    }
}

/// Optimiser, schedule and loop settings. Every field is filled by the recipe unless given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Name of the preset that filled the defaults (`ldam`, Cao et al. 2019, or `reslt`, Cui et al. 2022
    /// (ResLT); docs/methods.md §2).
    pub recipe: String,
    pub epochs: usize,
    pub batch_size: usize,
    pub drop_last: bool,
    pub lr: f64,
    pub momentum: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
    pub warmup_epochs: usize,
    /// Warm-up starts at this fraction of the base LR: 0 (ldam) or 1/3 (reslt).
    pub warmup_start_factor: f64,
    /// Epochs (0-based) at which the LR is multiplied by `gamma`, cumulatively.
    pub milestones: Vec<usize>,
    pub gamma: f64,
    /// Data worker threads.
    pub workers: usize,
    /// libtorch intra-op threads; 0 leaves libtorch's default (one per physical core).
    pub threads: usize,
    /// Keep activations and conv weights in channels-last layout (faster on CPU, same math).
    pub channels_last: bool,
    /// Training forward pass in `fp32` or `bf16` autocast (src/model/precision.rs).
    #[serde(default)]
    pub precision: crate::model::precision::Precision,
}

impl TrainConfig {
    /// Every number of the optimiser and the loop, finite and in range: a NaN or negative
    /// learning rate would train (or "diverge") instead of being refused.
    pub fn validate(&self) -> Result<(), BadValue> {
        check::count_up_to("train.epochs", self.epochs, 100_000)?;
        check::count_up_to("train.batch_size", self.batch_size, 1 << 20)?;
        check::positive("train.lr", self.lr)?;
        check::unit_open("train.momentum", self.momentum)?;
        check::non_negative("train.weight_decay", self.weight_decay)?;
        check::positive("train.gamma", self.gamma)?;
        check::unit_closed("train.warmup_start_factor", self.warmup_start_factor)?;
        check::require(
            self.milestones.windows(2).all(|w| w[0] < w[1]),
            "train.milestones",
            format!("{:?}", self.milestones),
            "must be strictly ascending epochs",
        )?;
        check::count_up_to("train.workers", self.workers, 256)?;
        check::require(
            self.threads <= 1024,
            "train.threads",
            self.threads,
            "must be in 0..=1024 (0: libtorch's default)",
        )
    }

    pub fn schedule(&self) -> LrSchedule {
        LrSchedule {
            base: self.lr,
            warmup_epochs: self.warmup_epochs,
            warmup_start_factor: self.warmup_start_factor,
            milestones: self.milestones.clone(),
            gamma: self.gamma,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    /// Evaluate every `every` epochs before `dense_from`, every epoch from it on, and always at
    /// the last epoch.
    pub every: usize,
    /// Default: the first LR milestone, where the best epoch lies.
    pub dense_from: Option<usize>,
    /// Many/Medium/Few rule. Default: index ranges 0–2/3–5/6–9 on CIFAR-10 (the convention of ResLT's
    /// evaluation code), counts >100 / 20–100 / <20 on CIFAR-100 (docs/methods.md §9).
    pub groups: Option<GroupRule>,
    pub batch_size: usize,
    /// Evaluate on the first N test images only (smoke tests; unset for real runs).
    pub max_test_images: Option<usize>,
    /// Early-exit inference threshold τ_infer (default: the training `loss.exit_threshold`).
    pub exit_threshold: Option<f64>,
}

impl EvalConfig {
    pub fn validate(&self) -> Result<(), BadValue> {
        check::count_up_to("eval.batch_size", self.batch_size, 1 << 20)?;
        if let Some(n) = self.max_test_images {
            check::at_least_one("eval.max_test_images", n)?;
        }
        if let Some(tau) = self.exit_threshold {
            check::confidence("eval.exit_threshold", tau)?;
        }
        Ok(())
    }
}

impl Default for EvalConfig {
    fn default() -> Self {
        EvalConfig {
            every: 10,
            dense_from: None,
            groups: None,
            batch_size: 500,
            max_test_images: None,
            exit_threshold: None,
        }
    }
}

impl Config {
    /// The dataset as results name it.
    pub fn dataset(&self) -> Dataset {
        match &self.data.folder {
            Some(folder) => Dataset::Folder(folder.name.clone()),
            None => Dataset::Cifar(self.data.dataset),
        }
    }

    pub fn num_classes(&self) -> usize {
        self.data.folder.as_ref().map_or(self.data.dataset.num_classes(), |f| f.classes)
    }

    /// Many / Medium / Few: `eval.groups`, else ResLT's class-index split on CIFAR-10 and the
    /// training-count rule of the larger benchmarks (CIFAR-100, ImageNet-LT, Places-LT) elsewhere.
    pub fn group_rule(&self) -> GroupRule {
        self.eval.groups.clone().unwrap_or(match self.dataset() {
            Dataset::Cifar(Cifar::Cifar10) => GroupRule::Index { bounds: [3, 6] },
            _ => GroupRule::Count { many_above: 100, few_below: 20 },
        })
    }

    /// The τ of early-exit inference: the eval section's own, else the training decision's.
    pub fn inference_exit_threshold(&self) -> f64 {
        self.eval.exit_threshold.unwrap_or(self.loss.exits.exit_threshold)
    }

    /// Whether to evaluate after epoch `epoch` (0-based).
    pub fn eval_at(&self, epoch: usize) -> bool {
        let dense_from = self.eval.dense_from.or(self.train.milestones.first().copied()).unwrap_or(usize::MAX);
        epoch + 1 == self.train.epochs
            || epoch >= dense_from
            || (self.eval.every > 0 && (epoch + 1).is_multiple_of(self.eval.every))
    }

    /// Checks serde cannot express: each section's own numbers (validated where the section is
    /// defined), then what one section requires of another.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(name) = &self.name {
            check::plain_name("name", name)?;
        }
        self.train.validate()?;
        self.eval.validate()?;
        self.data.augment.validate()?;
        self.loss.validate(self.num_classes(), self.model.exits.is_some())?;
        self.validate_data()?;
        if let Some(GroupRule::Index { bounds }) = &self.eval.groups {
            check::require(
                bounds[0] <= bounds[1] && bounds[1] <= self.num_classes(),
                "eval.groups.bounds",
                format!("{bounds:?}"),
                "must be ascending and within the class count",
            )?;
        }
        let (exits, last) = self.model.head_outputs();
        self.loss.plan(exits, last)?;
        self.model.validate().map_err(|e| ConfigError::Invalid { origin: "model".into(), message: e.to_string() })?;
        Ok(())
    }

    /// ρ must leave the rarest class at least one image; a folder dataset is long-tailed already.
    fn validate_data(&self) -> Result<(), BadValue> {
        // Finite and ≥ 1 is checked by `check_rho`, or implied by ρ = 1 for a folder dataset.
        let rho = self.data.rho;
        if let Some(n) = self.data.max_per_class {
            check::at_least_one("data.max_per_class", n)?;
        }
        let Some(folder) = &self.data.folder else {
            let d = self.data.dataset;
            return crate::data::subset::check_rho("data.rho", rho, d.train_images(), d.num_classes());
        };
        check::require(
            rho == 1.0,
            "data.rho",
            rho,
            "must be 1 with data.folder: its training list is the long-tailed subset already",
        )?;
        check::require(
            (2..=crate::data::folder::MAX_CLASSES).contains(&folder.classes),
            "data.folder.classes",
            folder.classes,
            "must be in 2..=65536",
        )?;
        check::plain_name("data.folder.name", &folder.name)
    }
}

/// Defaults of a named recipe as a TOML table under `train`.
fn recipe_defaults(name: &str) -> Result<toml::Table, ConfigError> {
    let text = match name {
        // Cao et al. 2019: LDAM-DRW's standard CIFAR-LT recipe (docs/methods.md §2).
        "ldam" => {
            "epochs = 200\nbatch_size = 128\ndrop_last = false\nlr = 0.1\nmomentum = 0.9\nnesterov = false\n\
             weight_decay = 2e-4\nwarmup_epochs = 5\nwarmup_start_factor = 0.0\nmilestones = [160, 180]\ngamma = 0.01\n"
        }
        // Cui et al. 2022 (ResLT): ResLT's CIFAR recipe (docs/methods.md §2).
        "reslt" => {
            "epochs = 200\nbatch_size = 128\ndrop_last = true\nlr = 0.1\nmomentum = 0.9\nnesterov = true\n\
             weight_decay = 5e-4\nwarmup_epochs = 5\nwarmup_start_factor = 0.3333333333333333\nmilestones = [160, 180]\ngamma = 0.1\n"
        }
        other => return Err(ConfigError::UnknownRecipe(other.to_string())),
    };
    let mut t: toml::Table = text.parse().expect("recipe tables are valid TOML");
    t.insert("recipe".into(), toml::Value::String(name.into()));
    t.insert("workers".into(), toml::Value::Integer(1));
    t.insert("threads".into(), toml::Value::Integer(0));
    t.insert("channels_last".into(), toml::Value::Boolean(true));
    t.insert("precision".into(), toml::Value::String("fp32".into()));
    Ok(t)
}

/// Recursively lay `over` on top of `base`.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// Parse `a.b.c=value` into a nested table. The value is read as TOML (numbers, booleans,
/// arrays, quoted strings) and falls back to a bare string.
pub fn parse_override(s: &str) -> Result<toml::Table, ConfigError> {
    let (key, value) = s.split_once('=').ok_or_else(|| ConfigError::BadOverride(s.to_string()))?;
    let key = key.trim();
    if key.is_empty() || key.split('.').any(|p| p.is_empty()) {
        return Err(ConfigError::BadOverride(s.to_string()));
    }
    let value = value.trim();
    let parsed: toml::Value = format!("v = {value}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_string()));
    let mut table = toml::Table::new();
    let parts: Vec<&str> = key.split('.').collect();
    let mut cur = &mut table;
    for p in &parts[..parts.len() - 1] {
        cur = cur
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .expect("freshly inserted table");
    }
    cur.insert(parts[parts.len() - 1].to_string(), parsed);
    Ok(table)
}

/// Resolve a config from TOML text plus overrides. `origin` names the source in errors.
pub fn resolve(text: &str, origin: &str, overrides: &[String]) -> Result<Config, ConfigError> {
    let invalid = |origin: &str, message: String| ConfigError::Invalid { origin: origin.to_string(), message };
    let file: toml::Table = text.parse().map_err(|e: toml::de::Error| invalid(origin, e.to_string()))?;
    // The file alone first, so a bad `--set` value is blamed on the command line, not the file.
    let deserialize = |table: toml::Table, origin: &str| -> Result<Config, ConfigError> {
        let recipe =
            table.get("train").and_then(|t| t.get("recipe")).and_then(|r| r.as_str()).unwrap_or("ldam").to_string();
        let mut root = toml::Table::new();
        root.insert("train".into(), toml::Value::Table(recipe_defaults(&recipe)?));
        merge(&mut root, table);
        let loss = root.get("loss").and_then(|l| l.as_table()).cloned();
        toml::Value::Table(root).try_into().map_err(|e: toml::de::Error| {
            // `[loss]` is read in parts, and serde then knows only the section a bad value is in:
            // name its key, as every other section's error does.
            let message = e.to_string();
            let named = loss
                .as_ref()
                .and_then(LossConfig::unreadable_key)
                .map(|key| message.replace("in `loss`", &format!("in `loss.{key}`")));
            invalid(origin, named.unwrap_or(message))
        })
    };
    let mut cfg = deserialize(file.clone(), origin)?;
    if !overrides.is_empty() {
        let mut table = file;
        for o in overrides {
            merge(&mut table, parse_override(o)?);
        }
        let shown: Vec<String> = overrides.iter().map(|o| format!("--set {o}")).collect();
        cfg = deserialize(table, &shown.join(" "))?;
    }
    read_legacy_spellings(&mut cfg);
    cfg.validate()?;
    Ok(cfg)
}

/// Configs written before each head's loss was resolved against the head's outputs (up to
/// commit 4c0d8a1) said `loss.exit_loss = "ce"` for ResLT exits, and those exits trained with
/// the ResLT loss (the report's models 6, 14, 15 and 16). Such a config is read as what it
/// trained with, `"reslt"`, so its runs resume, re-evaluate and reproduce unchanged; CE on a
/// ResLT exit's fused logits is no longer spelt that way by any config.
fn read_legacy_spellings(cfg: &mut Config) {
    use crate::loss::LossKind;
    use crate::model::exits::ExitKind;
    let reslt_exits = cfg.model.exits.as_ref().is_some_and(|e| e.kind == ExitKind::Reslt);
    if reslt_exits && cfg.loss.exits.exit_loss == Some(LossKind::Ce) {
        cfg.loss.exits.exit_loss = Some(LossKind::Reslt);
    }
}

/// Load and resolve a config file.
pub fn load(path: &Path, overrides: &[String]) -> Result<Config, ConfigError> {
    let text = crate::store::read_regular_string(path)
        .map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
    // A file with no setting at all is a mistake (an empty or truncated file), not "train every
    // default for 200 epochs".
    let empty = text.parse::<toml::Table>().map(|t| t.is_empty()).unwrap_or(false);
    if empty {
        return Err(ConfigError::Empty(path.display().to_string()));
    }
    let mut cfg = resolve(&text, &path.display().to_string(), overrides)?;
    if cfg.name.is_none() {
        cfg.name = path.file_stem().map(|s| s.to_string_lossy().into_owned());
        if let Some(name) = &cfg.name {
            check::plain_name("name (the config file's stem)", name)?;
        }
    }
    Ok(cfg)
}

impl Config {
    /// The resolved config as TOML, saved in every run directory.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("config serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::HeadLoss;

    #[test]
    fn recipe_fills_defaults_and_file_wins() {
        let cfg = resolve("[train]\nrecipe = \"reslt\"\nepochs = 3\n", "t", &[]).unwrap();
        assert_eq!(cfg.train.epochs, 3);
        assert!(cfg.train.nesterov && cfg.train.drop_last);
        assert_eq!(cfg.train.weight_decay, 5e-4);
        let cfg = resolve("", "t", &["train.lr=0.05".into(), "data.rho=50".into()]).unwrap();
        assert_eq!(cfg.train.recipe, "ldam");
        assert_eq!(cfg.train.lr, 0.05);
        assert_eq!(cfg.data.rho, 50.0);
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = resolve("[train]\nepoch = 3\n", "cfg.toml", &[]).unwrap_err().to_string();
        assert!(err.contains("cfg.toml") && err.contains("epoch"), "{err}");
        let err = resolve("", "cfg.toml", &["model.widht=[1,2,3]".into()]).unwrap_err().to_string();
        assert!(err.contains("widht"), "{err}");
        let err = resolve("[train]\nrecipe = \"fast\"\n", "c", &[]).unwrap_err().to_string();
        assert!(err.contains("fast"), "{err}");
        assert!(resolve("", "c", &["nokey".into()]).is_err());
        let err = resolve("[data]\nrho = 0.5\n", "c", &[]).unwrap_err().to_string();
        assert!(err.contains("data.rho"), "{err}");
    }

    #[test]
    fn round_trips_through_toml() {
        let cfg = resolve(
            "name = \"x\"\n[eval]\ngroups = { rule = \"count\", many_above = 100, few_below = 20 }\n",
            "c",
            &[],
        )
        .unwrap();
        let again = resolve(&cfg.to_toml(), "again", &[]).unwrap();
        assert_eq!(cfg, again);
    }

    #[test]
    fn route_warmup_needs_routed_exits() {
        let routed = "[model]\nhead = \"grouped\"\nwidths = [16, 32, 48]\n[model.exits]\nkind = \"plain\"\n\
                      classifier = \"linear\"\n[loss]\nkind = \"reslt\"\nexit_mode = \"route\"\nroute_warmup_epochs = 20\n";
        let loss = resolve(routed, "c", &[]).unwrap().loss;
        use crate::loss::routing::LossMode;
        assert_eq!(
            (loss.exits.exit_mode_at(0), loss.exits.exit_mode_at(19)),
            (LossMode::Accumulate, LossMode::Accumulate)
        );
        assert_eq!((loss.exits.exit_mode_at(20), loss.exits.exit_mode_at(199)), (LossMode::Route, LossMode::Route));
        let err = resolve(routed, "c", &["loss.exit_mode=\"accumulate\"".into()]).unwrap_err().to_string();
        assert!(err.contains("loss.route_warmup_epochs") && err.contains("route"), "{err}");
        let err = resolve("[loss]\nroute_warmup_epochs = 5\n", "c", &[]).unwrap_err().to_string();
        assert!(err.contains("loss.route_warmup_epochs"), "{err}");
        // Without a warm-up, route is route from epoch 0; accumulate never changes.
        let plain = resolve(routed, "c", &["loss.route_warmup_epochs=0".into()]).unwrap().loss;
        assert_eq!(plain.exits.exit_mode_at(0), LossMode::Route);
    }

    #[test]
    fn exit_weights_are_checked_and_need_exits() {
        let elf = "[model]\nhead = \"cosine\"\n[model.exits]\nkind = \"conv_fc\"\nclassifier = \"cosine\"\n\
                   [loss]\nkind = \"ldam\"\n";
        assert_eq!(resolve(elf, "c", &[]).unwrap().loss.exits.exit_weights, [1.0, 1.0]);
        let set = |v: &str| resolve(elf, "c", &[format!("loss.exit_weights={v}")]);
        assert_eq!(set("[0.3, 0.5]").unwrap().loss.exits.exit_weights, [0.3, 0.5]);
        assert_eq!(set("[0, 0]").unwrap().loss.exits.exit_weights, [0.0, 0.0]);
        for bad in ["[-0.1, 1]", "[1, nan]", "[1, inf]"] {
            let err = set(bad).unwrap_err().to_string();
            assert!(err.contains("loss.exit_weights") && err.contains("≥ 0"), "{bad}: {err}");
        }
        // One factor per early exit: a third (or a missing second) is a type error naming the key.
        for bad in ["[0.5]", "[0.5, 0.5, 0.5]"] {
            let err = set(bad).unwrap_err().to_string();
            assert!(err.contains("exit_weights"), "{bad}: {err}");
        }
        let err = resolve("[loss]\nexit_weights = [0.3, 0.3]\n", "c", &[]).unwrap_err().to_string();
        assert!(err.contains("loss.exit_weights") && err.contains("[model.exits]"), "{err}");
        // The default needs nothing.
        assert!(resolve("[loss]\nexit_weights = [1, 1]\n", "c", &[]).is_ok());
    }

    #[test]
    fn exit_normaliser_names_and_needs_exits() {
        use crate::loss::routing::ExitNormaliser;
        let elf = "[model]\nhead = \"cosine\"\n[model.exits]\nkind = \"conv_fc\"\nclassifier = \"cosine\"\n\
                   [loss]\nkind = \"ldam\"\n";
        assert_eq!(resolve(elf, "c", &[]).unwrap().loss.exits.exit_normaliser, ExitNormaliser::Subset);
        let set = |v: &str| resolve(elf, "c", &[format!("loss.exit_normaliser={v}")]);
        assert_eq!(set("\"batch\"").unwrap().loss.exits.exit_normaliser, ExitNormaliser::Batch);
        assert_eq!(set("\"subset\"").unwrap().loss.exits.exit_normaliser, ExitNormaliser::Subset);
        let err = set("\"mean\"").unwrap_err().to_string();
        assert!(err.contains("exit_normaliser") || err.contains("mean"), "{err}");
        let err = resolve("[loss]\nexit_normaliser = \"batch\"\n", "c", &[]).unwrap_err().to_string();
        assert!(err.contains("loss.exit_normaliser") && err.contains("[model.exits]"), "{err}");
    }

    #[test]
    fn closing_exits_needs_accumulating_exits() {
        let elf = "[model]\nhead = \"cosine\"\n[model.exits]\nkind = \"conv_fc\"\nclassifier = \"cosine\"\n\
                   [loss]\nkind = \"ldam\"\nexits_close_epoch = 160\n";
        let loss = resolve(elf, "c", &[]).unwrap().loss;
        assert!(!loss.exits.exits_closed_at(0) && !loss.exits.exits_closed_at(159));
        assert!(loss.exits.exits_closed_at(160) && loss.exits.exits_closed_at(199));
        assert!(!LossConfig::default().exits.exits_closed_at(199));
        let err = resolve(elf, "c", &["loss.exit_mode=\"route\"".into()]).unwrap_err().to_string();
        assert!(err.contains("loss.exits_close_epoch") && err.contains("accumulate"), "{err}");
        let err = resolve("[loss]\nexits_close_epoch = 160\n", "c", &[]).unwrap_err().to_string();
        assert!(err.contains("loss.exits_close_epoch") && err.contains("[model.exits]"), "{err}");
    }

    #[test]
    fn margin_exit_decision_needs_ldam_exits() {
        let elf = "[model]\nhead = \"cosine\"\n[model.exits]\nkind = \"conv_fc\"\nclassifier = \"cosine\"\n\
                   [loss]\nkind = \"ldam\"\nexit_decision = \"margin\"\n";
        assert_eq!(resolve(elf, "c", &[]).unwrap().loss.exits.exit_decision, crate::loss::ExitDecision::Margin);
        // Without exits, and with CE exits, there is no margin to read.
        let err = resolve("[loss]\nexit_decision = \"margin\"\n", "c", &[]).unwrap_err().to_string();
        assert!(err.contains("loss.exit_decision") && err.contains("LDAM"), "{err}");
        let ce_exits =
            "[model.exits]\nkind = \"conv_fc\"\nclassifier = \"linear\"\n[loss]\nexit_decision = \"margin\"\n";
        let err = resolve(ce_exits, "c", &[]).unwrap_err().to_string();
        assert!(err.contains("loss.exit_decision"), "{err}");
    }

    #[test]
    fn eval_cadence() {
        let cfg = resolve("", "c", &[]).unwrap();
        let at: Vec<usize> = (0..200).filter(|&e| cfg.eval_at(e)).collect();
        assert_eq!(&at[..3], &[9, 19, 29]);
        assert!(at.contains(&159) && at.contains(&160) && at.contains(&199));
        assert!(!at.contains(&158));
        assert_eq!(at.len(), 16 + 40);
    }

    #[test]
    fn a_reslt_loss_on_exits_without_branches_is_refused_by_its_key() {
        let text = "[model]\nhead = \"grouped\"\nwidths = [16, 32, 48]\n[model.exits]\nkind = \"plain\"\n\
                    classifier = \"linear\"\n[loss]\nkind = \"reslt\"\nexit_loss = \"reslt\"\n[train]\nrecipe = \"reslt\"\n";
        let err = resolve(text, "t", &[]).unwrap_err().to_string();
        assert!(err.contains("loss.exit_loss = \"reslt\"") && err.contains("needs ResLT branches"), "{err}");
        // Left to its default, the exit loss of plain exits under a ResLT loss is CE.
        let ok = resolve(&text.replace("exit_loss = \"reslt\"\n", ""), "t", &[]).unwrap();
        let (exits, last) = ok.model.head_outputs();
        let plan = ok.loss.plan(exits, last).unwrap();
        assert_eq!((plan.exits, plan.last), (Some(HeadLoss::CrossEntropy), HeadLoss::Reslt));
    }

    /// Each head's loss is checked against what that head outputs, final head and exits alike,
    /// and the refusal names the key that chose the loss.
    #[test]
    fn a_loss_that_does_not_fit_its_head_is_refused_by_its_key() {
        let refused = |text: &str| resolve(text, "t", &[]).unwrap_err().to_string();
        let e = refused("[model]\nhead = \"linear\"\n[loss]\nkind = \"ldam\"\n");
        assert!(e.contains("loss.kind = \"ldam\"") && e.contains("cosine"), "{e}");
        let e = refused("[model]\nhead = \"cosine\"\n[loss]\nkind = \"ce\"\n");
        assert!(e.contains("loss.kind = \"ce\"") && e.contains("cannot become confident"), "{e}");
        let e = refused("[loss]\nkind = \"reslt\"\n");
        assert!(e.contains("loss.kind = \"reslt\"") && e.contains("branches"), "{e}");
        // LDAM's default exit loss on linear exits: the key is the default's, and so is the fix.
        let e = refused(
            "[model]\nhead = \"cosine\"\n[model.exits]\nkind = \"conv_fc\"\nclassifier = \"linear\"\n[loss]\nkind = \"ldam\"\n",
        );
        assert!(e.contains("loss.exit_loss (default) = \"ldam\"") && e.contains("cosine"), "{e}");
        // LDAM on a ResLT head lowers every branch (the report's model 5 does it on its exits).
        let ok =
            resolve("[model]\nhead = \"grouped\"\nwidths = [16, 32, 48]\n[loss]\nkind = \"ldam\"\n", "t", &[]).unwrap();
        let (exits, last) = ok.model.head_outputs();
        assert_eq!(ok.loss.plan(exits, last).unwrap().last, HeadLoss::LdamOnBranches);
    }

    /// Configs from before the plan said `exit_loss = "ce"` on ResLT exits, which trained them
    /// with the ResLT loss: they read as "reslt", and resolve equal to the config that says so.
    #[test]
    fn the_old_spelling_of_a_reslt_exit_loss_reads_as_what_it_trained_with() {
        let text = "[model]\nhead = \"grouped\"\nwidths = [16, 32, 48]\n[model.exits]\nkind = \"reslt\"\n\
                    [loss]\nkind = \"reslt\"\nexit_loss = \"ce\"\n[train]\nrecipe = \"reslt\"\n";
        let old = resolve(text, "t", &[]).unwrap();
        assert_eq!(old.loss.exits.exit_loss, Some(crate::loss::LossKind::Reslt));
        assert_eq!(old, resolve(&text.replace("exit_loss = \"ce\"", "exit_loss = \"reslt\""), "t", &[]).unwrap());
        let (exits, last) = old.model.head_outputs();
        assert_eq!(old.loss.plan(exits, last).unwrap().exits, Some(HeadLoss::Reslt));
        // On plain exits "ce" is cross-entropy, as it always was.
        let plain = resolve(
            &text.replace("kind = \"reslt\"\n[loss]", "kind = \"plain\"\nclassifier = \"linear\"\n[loss]"),
            "t",
            &[],
        );
        let plain = plain.unwrap();
        assert_eq!(plain.loss.exits.exit_loss, Some(crate::loss::LossKind::Ce));
    }

    /// The `[loss]` table is read in parts; a key no part knows is still refused by name, and
    /// the section is written back whole and in a fixed order.
    #[test]
    fn the_loss_section_refuses_unknown_keys_and_round_trips_in_order() {
        let e = resolve("[loss]\nmax_mm = 0.5\n", "t", &[]).unwrap_err().to_string();
        assert!(e.contains("loss.max_mm = 0.5") && e.contains("not a key of [loss]"), "{e}");
        let e = resolve("", "t", &["loss.alhpa=0.9".into()]).unwrap_err().to_string();
        assert!(e.contains("loss.alhpa"), "{e}");
        // A value of the wrong type is named by its key, as in every other section.
        let e = resolve("[loss]\nkind = \"ldam\"\nmax_m = \"big\"\n", "t", &[]).unwrap_err().to_string();
        assert!(e.contains("in `loss.max_m`") && e.contains("big"), "{e}");
        let e = resolve("[loss]\nexit_mode = \"rout\"\n", "t", &[]).unwrap_err().to_string();
        assert!(e.contains("in `loss.exit_mode`") && e.contains("rout"), "{e}");
        let text = "[loss]\nkind = \"ldam\"\ndrw_epoch = 160\nbranch_starts = [3, 6]\nexits_close_epoch = 9\n\
                    [model]\nhead = \"cosine\"\n[model.exits]\nkind = \"gap_fc\"\n";
        let cfg = resolve(text, "t", &[]).unwrap();
        let written = cfg.to_toml();
        let loss = &written[written.find("[loss]").unwrap()..];
        let keys: Vec<&str> = loss
            .lines()
            .skip(1)
            .take_while(|l| !l.starts_with('['))
            .filter(|l| l.contains(" = "))
            .filter_map(|l| l.split(' ').next())
            .collect();
        assert_eq!(
            keys,
            [
                "kind",
                "label_smoothing",
                "alpha",
                "branch_starts",
                "max_m",
                "scale",
                "drw_epoch",
                "drw_beta",
                "exit_threshold",
                "exit_mode",
                "route_warmup_epochs",
                "exit_decision",
                "exits_close_epoch",
                "exit_normaliser",
                "exit_weights"
            ]
        );
        assert_eq!(resolve(&written, "t", &[]).unwrap(), cfg);
    }

    #[test]
    fn a_folder_dataset_is_named_and_counted_by_its_config() {
        let text = "[data]\nrho = 1\n[data.folder]\nname = \"toy\"\nroot = \"r\"\ntrain = \"a\"\ntest = \"b\"\nclasses = 365\n";
        let cfg = resolve(text, "t", &[]).unwrap();
        assert_eq!(cfg.dataset().to_string(), "folder:toy");
        assert_eq!(cfg.num_classes(), 365);
        assert_eq!(cfg.group_rule(), GroupRule::Count { many_above: 100, few_below: 20 });
        let err = resolve(&text.replace("\"toy\"", "\"../x\""), "t", &[]).unwrap_err().to_string();
        assert!(err.contains("data.folder.name"), "{err}");
    }
}
