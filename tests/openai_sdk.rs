//! Runs the `openai` Python SDK suite in `tests/openai_sdk/` against the built `ember`
//! binary, on cpu and (when a Vulkan driver is present) wgpu. Skips with the reason when
//! Python, `openai`, `pytest` or `requests` is missing (`.ci/run` installs them).

use std::process::Command;

#[path = "server_support/mod.rs"]
mod server_support;

fn python() -> Option<String> {
    ["python3", "python"].into_iter().map(str::to_string).find(|p| {
        Command::new(p).args(["-c", "import openai, pytest, requests"]).output().is_ok_and(|o| o.status.success())
    })
}

#[test]
fn openai_python_sdk_suite() {
    let Some(python) = python() else {
        eprintln!("skipping the openai SDK suite: no python with openai, pytest and requests (pip install openai pytest requests)");
        return;
    };
    let mut backends = vec!["cpu"];
    match server_support::wgpu_available() {
        Ok(()) => backends.push("wgpu"),
        Err(reason) => eprintln!("openai SDK suite without wgpu: {reason}"),
    }
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/openai_sdk");
    let status = Command::new(python)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", dir])
        .env("EMBER_BIN", env!("CARGO_BIN_EXE_ember"))
        .env("EMBER_BACKENDS", backends.join(","))
        .status()
        .expect("run pytest");
    assert!(status.success(), "the openai SDK suite failed (output above)");
}
