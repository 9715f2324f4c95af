//! Numeric precision of the training forward pass: fp32 (default) or bf16 autocast.
//!
//! bf16 autocast runs convolutions and matrix products in bfloat16 while the weights, the
//! gradients' accumulation, the optimiser and the loss stay in fp32 (PyTorch's
//! `torch.autocast(dtype=torch.bfloat16)` semantics). It only pays on hardware with native bf16
//! arithmetic, so on a CPU it is refused unless the CPU reports AVX512-BF16 or AMX-BF16.
//! Evaluation always runs in fp32 on the fp32 weights.
use std::marker::PhantomData;

use serde::{Deserialize, Serialize};
use tch::Device;
use thiserror::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    Fp32,
    Bf16,
}

impl Precision {
    /// The config value's spelling ("fp32", "bf16"), as tables print it.
    pub fn name(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Bf16 => "bf16",
        }
    }
}

#[derive(Debug, Error, PartialEq)]
pub enum PrecisionError {
    #[error(
        "train.precision = \"bf16\" needs a CPU with AVX512-BF16 or AMX-BF16 (this one reports neither in \
         /proc/cpuinfo); without them bf16 is emulated and slower than fp32. Use \"fp32\" or a GPU"
    )]
    NoBf16Cpu,
    #[error(
        "train.precision = \"bf16\" needs libtorch's C++ headers at build time, and this longtail was built \
         without them (see the build warning); rebuild after scripts/setup.sh, or use \"fp32\""
    )]
    NotBuilt,
    #[error("bf16 autocast on {device:?}: {message}")]
    Libtorch { device: Device, message: String },
    #[error("train.precision = \"bf16\" supports the CPU and CUDA devices, not {0:?}")]
    Device(Device),
}

/// Whether this CPU does bf16 arithmetic natively (Linux: the `avx512_bf16` or `amx_bf16` flag).
pub fn cpu_has_native_bf16() -> bool {
    std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|info| cpuinfo_has_bf16(&info))
}

fn cpuinfo_has_bf16(info: &str) -> bool {
    info.lines()
        .filter(|l| l.starts_with("flags"))
        .any(|l| l.split_whitespace().any(|f| f == "avx512_bf16" || f == "amx_bf16"))
}

/// Can `precision` train on `device`? Checked once before a run or benchmark starts, so that
/// [`Autocast::enter`] cannot fail in the middle of training.
pub fn check(precision: Precision, device: Device) -> Result<(), PrecisionError> {
    if precision == Precision::Fp32 {
        return Ok(());
    }
    match device {
        Device::Cpu if !cpu_has_native_bf16() => return Err(PrecisionError::NoBf16Cpu),
        Device::Cpu | Device::Cuda(_) => {}
        other => return Err(PrecisionError::Device(other)),
    }
    // Switch it on and off once: proves the shim is linked and libtorch accepts the device.
    Autocast::enter(precision, device).map(drop)
}

/// bf16 autocast switched on for the current thread while this guard lives; when it drops,
/// switched back off (clearing libtorch's process-wide cache of casted weights) unless it was
/// already on when the guard was made. A no-op guard for fp32. Not `Send`: autocast is a
/// thread-local switch, so the guard must drop on the thread that made it.
pub struct Autocast {
    /// The device type (true: CUDA) whose autocast this guard switched on, if it did.
    switched_on: Option<bool>,
    _thread_bound: PhantomData<*const ()>,
}

impl Autocast {
    pub fn enter(precision: Precision, device: Device) -> Result<Self, PrecisionError> {
        let guard = |switched_on| Autocast { switched_on, _thread_bound: PhantomData };
        if precision == Precision::Fp32 {
            return Ok(guard(None));
        }
        let cuda = match device {
            Device::Cpu => false,
            Device::Cuda(_) => true,
            other => return Err(PrecisionError::Device(other)),
        };
        if shim::enabled(cuda) {
            return Ok(guard(None));
        }
        shim::set(cuda, true).map_err(|message| PrecisionError::Libtorch { device, message })?;
        Ok(guard(Some(cuda)))
    }
}

impl Drop for Autocast {
    fn drop(&mut self) {
        if let Some(cuda) = self.switched_on {
            // Switching off cannot meaningfully fail once switching on succeeded.
            let _ = shim::set(cuda, false);
        }
    }
}

/// Is autocast on for this device type on the current thread? (For tests.)
pub fn is_enabled(device: Device) -> bool {
    shim::enabled(matches!(device, Device::Cuda(_)))
}

#[cfg(longtail_autocast)]
mod shim {
    use std::os::raw::{c_char, c_int};

    extern "C" {
        fn longtail_autocast_bf16(cuda: c_int, enabled: c_int, err: *mut c_char, len: usize) -> c_int;
        fn longtail_autocast_enabled(cuda: c_int) -> c_int;
    }

    pub fn set(cuda: bool, on: bool) -> Result<(), String> {
        let mut err = vec![0 as c_char; 512];
        // SAFETY: the shim writes at most `err.len()` bytes, NUL-terminated, and catches every
        // C++ exception.
        let rc = unsafe { longtail_autocast_bf16(cuda as c_int, on as c_int, err.as_mut_ptr(), err.len()) };
        if rc == 0 {
            return Ok(());
        }
        // SAFETY: NUL-terminated by the shim (or still all zeros).
        Err(unsafe { std::ffi::CStr::from_ptr(err.as_ptr()) }.to_string_lossy().into_owned())
    }

    pub fn enabled(cuda: bool) -> bool {
        // SAFETY: reads a thread-local flag; no pointers.
        unsafe { longtail_autocast_enabled(cuda as c_int) != 0 }
    }
}

#[cfg(not(longtail_autocast))]
mod shim {
    pub fn set(_cuda: bool, _on: bool) -> Result<(), String> {
        Err(super::PrecisionError::NotBuilt.to_string())
    }

    pub fn enabled(_cuda: bool) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Kind, Tensor};

    #[test]
    fn reads_bf16_flags_from_cpuinfo() {
        assert!(cpuinfo_has_bf16("processor : 0\nflags\t\t: fpu avx512f avx512_bf16 amx_tile\n"));
        assert!(cpuinfo_has_bf16("flags : fpu amx_bf16\n"));
        // A flag's prefix is not the flag, and only the `flags` line counts.
        assert!(!cpuinfo_has_bf16("flags : fpu avx512_bf16x avx512f\nmodel name : avx512_bf16\n"));
        assert!(!cpuinfo_has_bf16(""));
    }

    #[test]
    fn fp32_is_always_allowed_and_changes_nothing() {
        check(Precision::Fp32, Device::Cpu).unwrap();
        let _g = Autocast::enter(Precision::Fp32, Device::Cpu).unwrap();
        assert!(!is_enabled(Device::Cpu));
    }

    #[test]
    fn precision_names_in_toml() {
        #[derive(Deserialize)]
        struct T {
            p: Precision,
        }
        assert_eq!(toml::from_str::<T>("p = \"bf16\"").unwrap().p, Precision::Bf16);
        assert_eq!(toml::from_str::<T>("p = \"fp32\"").unwrap().p, Precision::Fp32);
        assert!(toml::from_str::<T>("p = \"fp16\"").is_err());
    }

    /// On a CPU with native bf16: inside the guard a matrix product comes out in bf16 and close to
    /// the fp32 one; after the guard it is fp32 again. Elsewhere: `check` refuses with the reason.
    #[test]
    fn bf16_guard_casts_matmuls_and_switches_off() {
        if !cpu_has_native_bf16() {
            assert_eq!(check(Precision::Bf16, Device::Cpu), Err(PrecisionError::NoBf16Cpu));
            return;
        }
        check(Precision::Bf16, Device::Cpu).unwrap();
        let a = Tensor::randn([8, 16], (Kind::Float, Device::Cpu));
        let b = Tensor::randn([16, 4], (Kind::Float, Device::Cpu));
        let exact = a.matmul(&b);
        {
            let _g = Autocast::enter(Precision::Bf16, Device::Cpu).unwrap();
            assert!(is_enabled(Device::Cpu));
            let low = a.matmul(&b);
            assert_eq!(low.kind(), Kind::BFloat16);
            let err = (low.to_kind(Kind::Float) - &exact).abs().max().double_value(&[]);
            assert!(err < 0.25, "bf16 matmul off by {err}");
        }
        assert!(!is_enabled(Device::Cpu));
        assert_eq!(a.matmul(&b).kind(), Kind::Float);
        // Nested guards: the inner one leaves autocast on for the outer one.
        let outer = Autocast::enter(Precision::Bf16, Device::Cpu).unwrap();
        drop(Autocast::enter(Precision::Bf16, Device::Cpu).unwrap());
        assert!(is_enabled(Device::Cpu));
        drop(outer);
        assert!(!is_enabled(Device::Cpu));
    }
}
