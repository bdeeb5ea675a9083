//! The `fabrik-emulator` binary: prints its address, serves, saves state on SIGTERM and on
//! SIGINT.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// Starts the binary with a state file and returns it with its base URL.
fn start(state: &std::path::Path, config: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fabrik-emulator"))
        .args([
            "--port",
            "0",
            "--config",
            config.to_str().unwrap(),
            "--state",
            state.to_str().unwrap(),
            "--seed",
            "3",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    (child, url)
}

fn create_workspace(url: &str, name: &str) -> u16 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        reqwest::Client::new()
            .post(format!("{url}/v1/workspaces"))
            .bearer_auth("any")
            .json(&serde_json::json!({"displayName": name}))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    })
}

#[test]
fn binary_prints_listening_line_serves_and_saves_state_on_sigterm_and_sigint() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("emu.yaml");
    std::fs::write(&config, "accept-any-token: true\npage_size: 5\n").unwrap();
    for signal in ["-TERM", "-INT"] {
        let state = dir.path().join(format!("state{signal}.json"));
        let (mut child, url) = start(&state, &config);
        let name = format!("saved on {signal}");
        assert_eq!(create_workspace(&url, &name), 201);
        // The signal (to our own child, by pid) triggers the graceful shutdown that saves
        // the state.
        let sent = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        assert!(child.wait().unwrap().success(), "{signal}");
        let saved = std::fs::read_to_string(&state).unwrap();
        assert!(saved.contains(&name), "{signal}: {saved}");
    }

    let bad = Command::new(env!("CARGO_BIN_EXE_fabrik-emulator"))
        .args(["--throttle", "fast"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("'fast'"));
}
