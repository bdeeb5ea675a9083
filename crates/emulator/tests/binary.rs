//! The `fabrik-emulator` binary: prints its address, serves, saves state on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn binary_prints_listening_line_serves_and_saves_state_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let config = dir.path().join("emu.yaml");
    std::fs::write(&config, "accept-any-token: true\npage_size: 5\n").unwrap();
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

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let status = rt.block_on(async {
        reqwest::Client::new()
            .post(format!("{url}/v1/workspaces"))
            .bearer_auth("any")
            .json(&serde_json::json!({"displayName": "from the binary"}))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert_eq!(status, 201);

    // SIGTERM (to our own child, by pid) triggers the graceful shutdown that saves the state.
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert!(child.wait().unwrap().success());
    let saved = std::fs::read_to_string(&state).unwrap();
    assert!(saved.contains("from the binary"));

    let bad = Command::new(env!("CARGO_BIN_EXE_fabrik-emulator"))
        .args(["--throttle", "fast"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("'fast'"));
}
