//! Stopping on request: SIGTERM (what a cluster scheduler sends before it preempts or cancels a
//! job), SIGINT (Ctrl-C) and SIGUSR1 (SLURM's `--signal`) ask a training to stop at the next
//! step boundary, where it writes a checkpoint and exits with [`EXIT_INTERRUPTED`]; resuming from
//! there continues as if it had never stopped. Ground floor: no crate imports.
//!
//! The handler only records the signal (an atomic store is all a handler may safely do). A second
//! signal at least [`FORCE_AFTER_MS`] after the first ends the process at once, for a user who
//! does not want to wait for the checkpoint; one closer to the first is the same request
//! arriving twice (a scheduler signals every process of a job, and `reproduce` also forwards it
//! to its trainings), so it is ignored.
use std::sync::atomic::{AtomicI32, AtomicI64, Ordering};

/// Exit status of a run stopped by a signal, resumable (EX_TEMPFAIL of sysexits.h: "try again").
pub const EXIT_INTERRUPTED: i32 = 75;
/// A repeat of the signal sooner than this is a duplicate, not a second request.
pub const FORCE_AFTER_MS: i64 = 1000;

/// The signals that ask for a clean stop.
pub const SIGNALS: [libc::c_int; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGUSR1];

static RECEIVED: AtomicI32 = AtomicI32::new(0);
static FIRST_AT_MS: AtomicI64 = AtomicI64::new(0);

fn monotonic_ms() -> i64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the timespec it is given and is async-signal-safe.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec * 1000 + ts.tv_nsec / 1_000_000
}

extern "C" fn on_signal(sig: libc::c_int) {
    let now = monotonic_ms();
    if RECEIVED.compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
        FIRST_AT_MS.store(now, Ordering::SeqCst);
    } else if now - FIRST_AT_MS.load(Ordering::SeqCst) >= FORCE_AFTER_MS {
        // SAFETY: _exit is async-signal-safe; it ends the process without unwinding.
        unsafe { libc::_exit(128 + sig) };
    }
}

/// Route [`SIGNALS`] to the handler (once per process; calling it again is harmless).
pub fn install() {
    for sig in SIGNALS {
        // SAFETY: a zeroed sigaction with an empty mask and a handler that only touches atomics
        // and calls async-signal-safe functions. SA_RESTART keeps interrupted reads going.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
            libc::sigemptyset(&mut action.sa_mask);
            action.sa_flags = libc::SA_RESTART;
            libc::sigaction(sig, &action, std::ptr::null_mut());
        }
    }
}

/// The signal that asked for a stop, if one has arrived since [`install`].
pub fn requested() -> Option<i32> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        sig => Some(sig),
    }
}

/// Ask for a stop as a signal would (tests, and the test hook of the training loop).
pub fn raise(sig: i32) {
    // SAFETY: raise delivers the signal to this thread; the handler above runs.
    unsafe { libc::raise(sig) };
}

/// Send `sig` to the process `pid` (a child training); errors (the child already gone) are
/// ignored, since it has then nothing left to stop.
pub fn send(pid: u32, sig: i32) {
    // SAFETY: kill has no memory effects on this process.
    unsafe { libc::kill(pid as libc::pid_t, sig) };
}

/// The signal's name as a user knows it.
pub fn name(sig: i32) -> &'static str {
    match sig {
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGUSR1 => "SIGUSR1",
        _ => "a signal",
    }
}
