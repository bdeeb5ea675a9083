//! Shared test helpers: a clock synced to wall time, a fake `az` executable, log capture.
//! The CI OIDC stand-in is in [`standin`]; everything else runs against the emulator.
#![allow(dead_code, unreachable_pub)]

pub mod standin;

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use fabrik_core::Clock;
use fabrik_core::time::ManualClock;

/// A manual clock moved to the real wall time, because the SDK stamps expiry with real time.
pub fn synced_clock() -> ManualClock {
    let clock = ManualClock::new();
    clock.advance(
        SystemTime::now()
            .duration_since(clock.system_now())
            .unwrap(),
    );
    clock
}

/// Stands in for the `az` executable: prints `self.0` and succeeds, or fails like a
/// signed-out CLI when it is empty.
#[derive(Debug)]
pub struct FakeAz(pub String);

#[async_trait::async_trait]
impl azure_identity::Executor for FakeAz {
    async fn run(
        &self,
        _: &std::ffi::OsStr,
        _: &[&std::ffi::OsStr],
    ) -> std::io::Result<std::process::Output> {
        use std::os::unix::process::ExitStatusExt;
        let ok = !self.0.is_empty();
        Ok(std::process::Output {
            status: std::process::ExitStatus::from_raw(if ok { 0 } else { 1 << 8 }),
            stdout: self.0.clone().into_bytes(),
            stderr: if ok {
                vec![]
            } else {
                b"ERROR: Please run 'az login' to setup account.".to_vec()
            },
        })
    }
}

/// Captures every log line (all levels) for one test.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
    pub fn install(&self) -> tracing::subscriber::DefaultGuard {
        let w = self.clone();
        let sub = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || w.clone())
            .finish();
        tracing::subscriber::set_default(sub)
    }
}
