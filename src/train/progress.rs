//! What a training shows while it runs: a progress bar per epoch (hidden with `--plain`), and one
//! line per finished epoch with the loss, the exit shares, the speed, the test score and the ETA.
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::run::{EpochRecord, EpochScore};
use crate::score::metrics::fmt_group;

pub fn progress_bar(total: usize, plain: bool) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(
        Some(total as u64),
        if plain { ProgressDrawTarget::hidden() } else { ProgressDrawTarget::stderr() },
    );
    pb.set_style(
        ProgressStyle::with_template("{prefix} [{bar:25}] {pos}/{len} {msg} · epoch ETA {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    pb
}

pub fn format_duration(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else {
        format!("{}m{:02}s", s / 60, s % 60)
    }
}

/// The seconds of the epochs this invocation trained, for the time the rest will take.
#[derive(Default)]
pub struct EpochClock {
    seconds: Vec<f64>,
}

impl EpochClock {
    pub fn record(&mut self, seconds: f64) {
        self.seconds.push(seconds);
    }

    /// The time `epochs_left` epochs take at this invocation's mean, or "…" before the first.
    pub fn eta(&self, epochs_left: usize) -> String {
        if self.seconds.is_empty() {
            return "…".to_string();
        }
        let mean = self.seconds.iter().sum::<f64>() / self.seconds.len() as f64;
        format_duration(mean * epochs_left as f64)
    }
}

/// The text beside the bar while an epoch trains.
pub fn step_message(loss: f64, lr: f64, images_per_second: f64, last: Option<&EpochScore>) -> String {
    format!(
        "loss {loss:.3} · lr {lr:.2e} · {images_per_second:.0} img/s · last test {}",
        last.map_or("—".into(), |l| format!("{:.2}% (ep {})", l.overall, l.epoch))
    )
}

/// The line printed when an epoch ends.
pub fn epoch_line(record: &EpochRecord, epochs: usize, best: Option<&EpochScore>, eta: &str) -> String {
    let test_part = match &record.test {
        Some(a) => format!(
            " | test {:.2} (many {} med {} few {}) best {:.2}@{}",
            a.overall,
            fmt_group(a.many),
            fmt_group(a.medium),
            fmt_group(a.few),
            best.map_or(0.0, |b| b.overall),
            best.map_or(0, |b| b.epoch)
        ),
        None => String::new(),
    };
    let percents = |f: &Vec<f64>| f.iter().map(|x| format!("{:.0}", 100.0 * x)).collect::<Vec<_>>().join("/");
    // The Few shares beside the overall ones: whether the tail still reaches the final head.
    let few_part = record.train_exit_fractions_by_group.as_ref().and_then(|g| g.few.as_ref());
    let exits_part = record.train_exit_fractions.as_ref().map_or(String::new(), |f| match few_part {
        Some(few) => format!(" exits {}% (few {}%)", percents(f), percents(few)),
        None => format!(" exits {}%", percents(f)),
    });
    format!(
        "epoch {}/{epochs} lr {:.2e} loss {:.4} train {:.2}%{exits_part} {:.0} img/s {:.1}s{test_part} · ETA {eta}",
        record.epoch, record.lr, record.train_loss, record.train_acc, record.images_per_second, record.seconds
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_minutes_or_hours() {
        assert_eq!(format_duration(59.9), "0m59s");
        assert_eq!(format_duration(754.0), "12m34s");
        assert_eq!(format_duration(3600.0 * 2.0 + 61.0), "2h01m");
        assert_eq!(format_duration(-3.0), "0m00s");
    }

    #[test]
    fn the_eta_is_the_mean_epoch_times_the_epochs_left() {
        let mut clock = EpochClock::default();
        assert_eq!(clock.eta(10), "…");
        clock.record(50.0);
        clock.record(70.0);
        assert_eq!(clock.eta(10), "10m00s");
        assert_eq!(clock.eta(0), "0m00s");
    }
}
