//! Azurite, Microsoft's Azure Storage emulator, for tests: installed once, started per test.
//!
//! [`Azurite::start`] installs the npm package under `<target>/azurite` the first time
//! (`npm install azurite@3.37`, guarded by a file lock so parallel test processes install it
//! once), starts `azurite-blob` on 127.0.0.1 with a free port, and waits until it answers
//! HTTP (polling, so a loaded machine only makes it slower). Dropping it kills the process.
//! [`Azurite::stop`] and [`Azurite::restart`] take it down and bring it back on the same port
//! with the same data (when started with [`Azurite::start_persistent`]).
//!
//! The SDK has no shared-key authentication, so [`Azurite::sas`] signs an account SAS with
//! Azurite's well-known development key (HMAC-SHA256, as Azure documents it).

use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The npm package and version the tests run against.
pub const AZURITE_PACKAGE: &str = "azurite@3.37";
/// Azurite's development account.
pub const ACCOUNT: &str = "devstoreaccount1";
/// Azurite's well-known development key (public, documented by Microsoft).
const ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// A running Azurite blob service on 127.0.0.1.
#[derive(Debug)]
pub struct Azurite {
    port: u16,
    child: Option<Child>,
    /// Our end of the shell's stdin: closing it stops Azurite.
    stdin: Option<ChildStdin>,
    data: Option<tempfile::TempDir>,
    log: PathBuf,
}

/// Where the package is installed: `$CARGO_TARGET_DIR/azurite` or the workspace's
/// `target/azurite` (`FABRIK_AZURITE_DIR` overrides).
pub fn install_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("FABRIK_AZURITE_DIR") {
        return PathBuf::from(dir);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("azurite")
}

/// Installs Azurite under [`install_dir`] unless it is there; returns its `main.js`.
/// Concurrent callers (test threads and processes) wait on a lock file and install once.
pub fn ensure_installed() -> Result<PathBuf, String> {
    let dir = install_dir();
    let main = dir.join("node_modules/azurite/dist/src/blob/main.js");
    if main.is_file() {
        return Ok(main);
    }
    fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    let lock_path = dir.join(".install.lock");
    let lock = File::create(&lock_path).map_err(|e| format!("{}: {e}", lock_path.display()))?;
    lock.lock()
        .map_err(|e| format!("lock {}: {e}", lock_path.display()))?;
    if main.is_file() {
        return Ok(main); // another process installed it while we waited
    }
    let out = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--prefix"])
        .arg(&dir)
        .arg(AZURITE_PACKAGE)
        .output()
        .map_err(|e| {
            format!("cannot run npm to install {AZURITE_PACKAGE} (is Node.js installed?): {e}")
        })?;
    if !out.status.success() || !main.is_file() {
        return Err(format!(
            "npm install {AZURITE_PACKAGE} into {} failed ({}): {}",
            dir.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(main)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

impl Azurite {
    /// Starts Azurite with in-memory storage (fast; data dies with the process).
    pub fn start() -> Self {
        Self::launch(false)
    }

    /// Starts Azurite storing data in a temporary directory, so [`restart`](Self::restart)
    /// keeps it.
    pub fn start_persistent() -> Self {
        Self::launch(true)
    }

    fn launch(persistent: bool) -> Self {
        let data = persistent.then(|| tempfile::tempdir().expect("temp dir for Azurite"));
        let log = std::env::temp_dir().join(format!(
            "fabrik-azurite-{}-{}.log",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        let mut me = Self {
            port: 0,
            child: None,
            stdin: None,
            data,
            log,
        };
        // A port picked free may be taken before Azurite binds it: pick another and retry.
        let mut last = String::new();
        for _ in 0..3 {
            me.port = free_port();
            match me.spawn_and_wait() {
                Ok(()) => return me,
                Err(e) => last = e,
            }
        }
        panic!("Azurite did not start: {last}");
    }

    fn spawn_and_wait(&mut self) -> Result<(), String> {
        let main = ensure_installed()?;
        let log = File::create(&self.log).map_err(|e| e.to_string())?;
        // Node runs under a small shell that stops it (SIGTERM, so a persistent Azurite saves
        // its data) as soon as our end of its stdin closes: when `stop` drops it, and when
        // this process exits in any way, so no Azurite outlives its tests (a `static` one is
        // never dropped). The shell exits when node does.
        let script =
            r#"exec 3<&0; node "$@" <&- & pid=$!; (read _ <&3; kill $pid 2>/dev/null) & wait $pid"#;
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script, "azurite"])
            .arg(main)
            .args(["--blobHost", "127.0.0.1", "--blobPort"])
            .arg(self.port.to_string())
            .args(["--skipApiVersionCheck", "--disableTelemetry", "--loose"]);
        match &self.data {
            Some(dir) => {
                cmd.arg("--location").arg(dir.path());
            }
            None => {
                cmd.arg("--inMemoryPersistence");
            }
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start node through sh: {e}"))?;
        self.stdin = child.stdin.take();
        self.child = Some(child);
        self.wait_ready()
    }

    /// Polls until Azurite answers HTTP on its port (up to 120 s on a loaded machine).
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(120);
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                self.stdin = None;
                return Err(format!(
                    "Azurite exited ({status}): {}",
                    fs::read_to_string(&self.log).unwrap_or_default()
                ));
            }
            if answers_http(addr) {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.kill();
                return Err("Azurite did not answer within 120 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT/devstoreaccount1/CONTAINER`, without credentials.
    pub fn container_url(&self, container: &str) -> String {
        format!("http://127.0.0.1:{}/{ACCOUNT}/{container}", self.port)
    }

    /// The container URL with an account SAS in its query string.
    pub fn url_with_sas(&self, container: &str) -> String {
        format!("{}?{}", self.container_url(container), Self::sas())
    }

    /// An account SAS for the blob service, all permissions, valid until 2099.
    pub fn sas() -> String {
        let (sv, ss, srt, sp, se, spr) = (
            "2021-08-06",
            "b",
            "sco",
            "rwdlacup",
            "2099-01-01T00:00:00Z",
            "https,http",
        );
        // Account SAS string-to-sign for versions 2020-12-06 and later.
        let to_sign = format!("{ACCOUNT}\n{sp}\n{ss}\n{srt}\n\n{se}\n\n{spr}\n{sv}\n\n");
        let key = STANDARD.decode(ACCOUNT_KEY).expect("well-known key");
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &key);
        let sig = STANDARD.encode(aws_lc_rs::hmac::sign(&key, to_sign.as_bytes()).as_ref());
        let sig: String = url::form_urlencoded::byte_serialize(sig.as_bytes()).collect();
        format!("sv={sv}&ss={ss}&srt={srt}&sp={sp}&se={se}&spr={spr}&sig={sig}")
    }

    /// Stops Azurite (SIGTERM, so a persistent one saves its data, as the real service
    /// keeps acknowledged writes through an outage), keeping the port for [`restart`].
    ///
    /// [`restart`]: Self::restart
    pub fn stop(&mut self) {
        self.kill();
    }

    /// Starts Azurite again on the same port (with its data if persistent).
    pub fn restart(&mut self) {
        self.kill();
        let mut last = String::new();
        for _ in 0..3 {
            match self.spawn_and_wait() {
                Ok(()) => return,
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("Azurite did not restart on port {}: {last}", self.port);
    }

    /// Closes node's lifeline (its shell then sends SIGTERM) and waits for it to exit; a
    /// node that does not exit in 30 s has its shell killed.
    fn kill(&mut self) {
        self.stdin = None;
        if let Some(mut child) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if !matches!(child.try_wait(), Ok(None)) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        self.kill();
        let _ = fs::remove_file(&self.log);
    }
}

/// Whether something on `addr` answers an HTTP request with a status line.
fn answers_http(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 12];
    matches!(s.read(&mut buf), Ok(n) if n >= 5 && buf.starts_with(b"HTTP/"))
}
