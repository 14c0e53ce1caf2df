use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// A Python interpreter with redis-py installed: a virtual environment under
/// the target dir (`CARGO_TARGET_TMPDIR/py-venv`), created (`python3 -m
/// venv`, `pip install redis`) on first use and reused after. Panics with
/// what to install when that cannot be done.
pub fn python_with_redis() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("py-venv");
            let python = venv.join("bin").join("python");
            let has_redis = |p: &PathBuf| {
                Command::new(p)
                    .args(["-c", "import redis"])
                    .output()
                    .map(|o| o.status.success())
                    .unwrap_or(false)
            };
            if has_redis(&python) {
                return python;
            }
            let out = Command::new("python3")
                .args(["-m", "venv", "--clear"])
                .arg(&venv)
                .output()
                .unwrap_or_else(|e| {
                    panic!(
                        "python3 is needed for the producer test ({e}): install it with \
                         `sudo apt-get install python3 python3-venv`, or run scripts/test-all.sh"
                    )
                });
            assert!(
                out.status.success(),
                "`python3 -m venv` failed: install the venv module with \
                 `sudo apt-get install python3-venv` (or run scripts/test-all.sh, which does):\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let out = Command::new(&python)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "redis",
                ])
                .output()
                .expect("run pip");
            assert!(
                out.status.success(),
                "`pip install redis` into {} failed (is PyPI reachable?):\n{}{}",
                venv.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                has_redis(&python),
                "redis-py not importable after pip install"
            );
            python
        })
        .clone()
}
