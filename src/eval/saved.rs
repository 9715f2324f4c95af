//! A finished (or paused) run opened for what its weights show: its config, training state,
//! device and data, and the network built as the run built it, ready to take any of the run's
//! weight files. `eval`, `select` and the analyses after training all start here.
use std::path::Path;

use anyhow::{Context, Result};
use tch::{nn, Device};

use crate::config::{self, Config};
use crate::model::Network;
use crate::run::{self, RunDir, TrainState};
use crate::score::metrics::{Group, GroupRule};
use crate::score::predict::{score, Scored, TestSet};
use crate::store;
use crate::train::checkpoint;
use crate::train::setup::{load_data, resolve_device, RunData};

pub struct SavedRun {
    pub dir: RunDir,
    pub cfg: Config,
    pub state: TrainState,
    pub device: Device,
    pub data: RunData,
    /// Many / Medium / Few of each class, by the run's training counts.
    pub groups: Vec<Group>,
    pub vs: nn::VarStore,
    pub net: Network,
}

impl SavedRun {
    /// Open the run in `run_dir`, its images read from `data` (else the run's config and the
    /// usual search). Nothing in the run directory is written.
    pub fn open(run_dir: &Path, data: Option<&Path>) -> Result<SavedRun> {
        let dir = RunDir::new(run_dir);
        let cfg = config::load(&dir.file(run::CONFIG_FILE), &[])?;
        let device = resolve_device(&cfg.device)?;
        let state: TrainState = store::read_json(&dir.file(run::STATE_FILE))
            .with_context(|| format!("{} is not a run directory with saved weights", run_dir.display()))?;
        let data = load_data(&cfg, data)?;
        let vs = nn::VarStore::new(device);
        let net = Network::new(&vs.root(), &cfg.model, data.train.num_classes as i64, data.train.shape)?;
        if cfg.train.channels_last {
            Network::to_channels_last(&vs);
        }
        let groups = cfg.group_rule().assign(&data.train_counts);
        Ok(SavedRun { dir, cfg, state, device, data, groups, vs, net })
    }

    pub fn num_classes(&self) -> usize {
        self.data.train.num_classes
    }

    pub fn group_rule(&self) -> GroupRule {
        self.cfg.group_rule()
    }

    /// Load the weights of the run's file `name` (a checkpoint, `best.ot`, kept weights).
    pub fn load(&mut self, name: &str) -> Result<()> {
        checkpoint::load(&self.dir.file(name), &mut self.vs).map(|_| ())
    }

    /// The run's test set, on its device and in its memory layout.
    pub fn test_set(&self) -> TestSet {
        TestSet::new(&self.data.test, self.device, self.cfg.train.channels_last)
    }

    /// The loaded weights' predictions on `set`, scored by the run's groups.
    pub fn score(&self, set: &TestSet) -> Scored {
        score(&self.net, set, self.cfg.eval.batch_size, self.num_classes(), &self.groups)
    }
}
