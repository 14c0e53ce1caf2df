use std::path::PathBuf;
use std::process::Command;

/// The example binary `name` (feature `redis`) beside this test's own
/// executable, built with cargo if it is missing, in the same profile.
pub fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target profile dir")
        .to_path_buf();
    let bin = profile_dir.join("examples").join(name);
    if !bin.exists() {
        let mut build = Command::new(env!("CARGO"));
        build.args(["build", "--features", "redis", "--example", name]);
        if profile_dir.ends_with("release") {
            build.arg("--release");
        }
        let status = build.status().expect("run cargo build");
        assert!(status.success(), "building the {name} example failed");
    }
    bin
}
