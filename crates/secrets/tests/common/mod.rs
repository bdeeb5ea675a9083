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

/// Stands in for the `az` executable: answers `az account get-access-token` with `output`
/// (fails like a signed-out CLI when it is empty) and records every command line it is given;
/// any other program or command fails as a missing executable would.
#[derive(Debug, Clone, Default)]
pub struct FakeAz {
    output: String,
    calls: Arc<Mutex<Vec<String>>>,
}

impl FakeAz {
    /// A CLI that answers with `output`.
    pub fn answering(output: impl Into<String>) -> Self {
        Self {
            output: output.into(),
            calls: Arc::default(),
        }
    }

    /// A CLI nobody signed in to.
    pub fn signed_out() -> Self {
        Self::default()
    }

    /// The commands run, each as `program arg…`.
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl azure_identity::Executor for FakeAz {
    async fn run(
        &self,
        program: &std::ffi::OsStr,
        args: &[&std::ffi::OsStr],
    ) -> std::io::Result<std::process::Output> {
        use std::os::unix::process::ExitStatusExt;
        let line = std::iter::once(program)
            .chain(args.iter().copied())
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        self.calls.lock().unwrap().push(line.clone());
        // azure_identity runs `/bin/sh -c "cd /bin && az account get-access-token …"`.
        let is_az_token = program == "/bin/sh"
            && args.first().is_some_and(|a| *a == "-c")
            && args.get(1).is_some_and(|c| {
                c.to_string_lossy()
                    .contains("&& az account get-access-token ")
            });
        if !is_az_token {
            return Err(std::io::Error::from_raw_os_error(127));
        }
        let ok = !self.output.is_empty();
        Ok(std::process::Output {
            status: std::process::ExitStatus::from_raw(if ok { 0 } else { 1 << 8 }),
            stdout: self.output.clone().into_bytes(),
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
