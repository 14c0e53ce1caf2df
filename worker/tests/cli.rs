//! The binary's commands without Redis: `replay` of the sample (the values
//! the READMEs show), configuration precedence (flags, then environment,
//! then file, then defaults), errors that name the file, the key and the rule (exit 2),
//! and `--print-config` redaction.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::bin;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn worker_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs the binary with `args` in the repository root, with no
/// `COMPOSITE_METRICS_*` variable but those in `env`.
fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(bin());
    cmd.args(args).current_dir(repo());
    for (k, _) in std::env::vars() {
        if k.starts_with("COMPOSITE_METRICS_") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run composite-metrics")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The fenced block that follows the line `$ <command>` in `readme`.
fn shown_output(readme: &str, command: &str) -> String {
    let mut lines = readme.lines();
    lines
        .by_ref()
        .find(|l| l.trim() == format!("$ {command}"))
        .unwrap_or_else(|| panic!("no `$ {command}` in the README"));
    let mut out = String::new();
    for l in lines {
        if l.starts_with("```") {
            return out;
        }
        out.push_str(l);
        out.push('\n');
    }
    panic!("unterminated block after `$ {command}`");
}

#[test]
fn replay_of_the_sample_prints_what_the_readmes_show() {
    let out = run(&["replay", "worker/sample/capture.jsonl"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let printed = text(&out.stdout);
    let readme = std::fs::read_to_string(worker_dir().join("README.md")).expect("worker README");
    let shown = shown_output(
        &readme,
        "composite-metrics replay worker/sample/capture.jsonl",
    );
    assert_eq!(printed, shown, "the worker README's replay output is stale");
    // The root README's excerpt: every line it shows is a line printed.
    let root = std::fs::read_to_string(repo().join("README.md")).expect("README");
    let excerpt = shown_output(
        &root,
        "cargo run -p composite-metrics-worker -- replay worker/sample/capture.jsonl",
    );
    for line in excerpt
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.contains("..."))
    {
        assert!(
            printed.lines().any(|p| p == line),
            "README shows `{line}`, replay printed:\n{printed}"
        );
    }
    // A few values checked by hand against the capture: 4 runs of tools
    // with durations 2000, 1000, 3000, 500 ms and 250 ms (the retried Bash
    // post hook counts once); 3 accepted of 4 decisions.
    assert!(printed.contains("tools/tool_latency_p50"));
    let json = Command::new(bin())
        .args(["replay", "--format", "json", "-"])
        .stdin(std::fs::File::open(worker_dir().join("sample/capture.jsonl")).expect("sample"))
        .output()
        .expect("replay from stdin");
    assert!(json.status.success());
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("one JSON object");
    assert_eq!(v["events"], 24);
    assert_eq!(v["duplicates"], 1);
    assert_eq!(v["rejected"], 1);
    assert_eq!(v["metrics"]["tools/tool_latency_avg"], 1350.0);
    assert_eq!(v["metrics"]["session/acceptance_rate"], 75.0);
    assert_eq!(v["metrics"]["composite/productivity_score"], 74.5);
}

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).expect("write the config");
    p
}

/// The effective value of `table.key` as `--print-config` shows it.
fn effective(out: &Output, table: &str, key: &str) -> String {
    assert!(out.status.success(), "{}", text(&out.stderr));
    let parsed: toml::Table = toml::from_str(&text(&out.stdout)).expect("print-config is TOML");
    parsed[table][key].to_string()
}

#[test]
fn flags_win_over_environment_over_file_over_defaults() {
    let dir = support::temp_dir();
    let file = write(
        dir.path(),
        "w.toml",
        r#"
[scheduler]
strategy = "coalesce"
min_interval = "10s"

[source]
group = "from-file"
stream = "from-file"
count = 7
"#,
    );
    let f = file.to_str().expect("utf-8 path");
    let env = [
        ("COMPOSITE_METRICS_SOURCE__GROUP", "from-env"),
        ("COMPOSITE_METRICS_SOURCE__STREAM", "from-env"),
        ("COMPOSITE_METRICS_REDIS__URL", "redis://127.0.0.1:1/"),
    ];
    let out = run(
        &[
            "check-config",
            "--config",
            f,
            "--print-config",
            "--stream",
            "from-flag",
        ],
        &env,
    );
    // flag > env > file
    assert_eq!(effective(&out, "source", "stream"), "\"from-flag\"");
    // env > file
    assert_eq!(effective(&out, "source", "group"), "\"from-env\"");
    // file > default
    assert_eq!(effective(&out, "source", "count"), "7");
    assert_eq!(effective(&out, "scheduler", "min_interval"), "\"10s\"");
    // default
    assert_eq!(effective(&out, "source", "block"), "\"1s\"");
    assert_eq!(effective(&out, "worker", "shutdown_timeout"), "\"25s\"");
    // The config file also comes from COMPOSITE_METRICS_CONFIG.
    let out = run(
        &["check-config", "--print-config"],
        &[
            ("COMPOSITE_METRICS_CONFIG", f),
            ("COMPOSITE_METRICS_REDIS__URL", "redis://h/"),
        ],
    );
    assert_eq!(effective(&out, "source", "count"), "7");
    // An environment variable typed by the key: a number given for a string key stays a string.
    let out = run(
        &["check-config", "--print-config"],
        &[
            ("COMPOSITE_METRICS_SOURCE__CONSUMER", "42"),
            ("COMPOSITE_METRICS_REDIS__URL", "redis://h/"),
        ],
    );
    assert_eq!(effective(&out, "source", "consumer"), "\"42\"");
}

#[test]
fn print_config_redacts_passwords_in_urls() {
    let out = run(
        &[
            "run",
            "--print-config",
            "--redis-url",
            "redis://admin:s3cret@127.0.0.1:6379/0",
        ],
        &[(
            "COMPOSITE_METRICS_SOURCE__URL",
            "rediss://:hunter2@stream.example:6380/",
        )],
    );
    let printed = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        !printed.contains("s3cret") && !printed.contains("hunter2"),
        "{printed}"
    );
    assert!(
        printed.contains("redis://admin:***@127.0.0.1:6379/0"),
        "{printed}"
    );
    assert!(
        printed.contains("rediss://:***@stream.example:6380/"),
        "{printed}"
    );
}

/// Exit 2 and a message naming `needles` (file or variable, key, rule).
fn bad(args: &[&str], env: &[(&str, &str)], needles: &[&str]) {
    let out = run(args, env);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    for n in needles {
        assert!(err.contains(n), "`{n}` not in: {err}");
    }
}

#[test]
fn bad_configs_exit_2_naming_file_key_and_rule() {
    let dir = support::temp_dir();
    let f = |name: &str, body: &str| {
        write(dir.path(), name, body)
            .to_str()
            .expect("utf-8")
            .to_owned()
    };
    let url = [("COMPOSITE_METRICS_REDIS__URL", "redis://127.0.0.1:1/")];

    // An unknown key in a worker table: the file, the line and the key.
    let p = f("unknown.toml", "[source]\nstreem = \"x\"\n");
    bad(
        &["check-config", "--config", &p],
        &url,
        &[&p, "streem", "line 2"],
    );
    // An unknown key inside a library table.
    let p = f("lib.toml", "[memory]\nsession_tll = \"1h\"\n");
    bad(
        &["check-config", "--config", &p],
        &url,
        &[&p, "session_tll"],
    );
    // A wrong type: the library names the field.
    let p = f(
        "type.toml",
        "[scheduler]\nstrategy = \"coalesce\"\nmin_interval = 5\n",
    );
    bad(
        &["check-config", "--config", &p],
        &url,
        &[&p, "min_interval"],
    );
    // A rule: zero is not allowed; the key with its table and the file it came from.
    let p = f(
        "zero.toml",
        "[scheduler]\nstrategy = \"event-based\"\nevery = 0\n",
    );
    bad(
        &["run", "--config", &p],
        &url,
        &[&p, "scheduler.every", "greater than zero"],
    );
    let p = f("count.toml", "[source]\ncount = 0\n");
    bad(
        &["check-config", "--config", &p],
        &url,
        &[&p, "source.count", "greater than zero"],
    );
    // An unknown strategy.
    let p = f("strategy.toml", "[scheduler]\nstrategy = \"sometimes\"\n");
    bad(&["check-config", "--config", &p], &url, &[&p, "sometimes"]);
    // Syntax.
    let p = f("syntax.toml", "[source\n");
    bad(&["check-config", "--config", &p], &url, &[&p, "line 1"]);
    // A missing file.
    bad(
        &["check-config", "--config", "/nonexistent/w.toml"],
        &url,
        &["/nonexistent/w.toml"],
    );
    // From the environment: the variable, the key, the rule.
    bad(
        &["check-config"],
        &[("COMPOSITE_METRICS_SOURCE__COUNT", "zero"), url[0]],
        &["COMPOSITE_METRICS_SOURCE__COUNT", "source.count"],
    );
    bad(
        &["check-config"],
        &[("COMPOSITE_METRICS_WORKER__SHUTDOWN_TIMEOUT", "0s"), url[0]],
        &[
            "COMPOSITE_METRICS_WORKER__SHUTDOWN_TIMEOUT",
            "worker.shutdown_timeout",
            "greater than zero",
        ],
    );
    bad(
        &["check-config"],
        &[("COMPOSITE_METRICS_SOURCE__NOPE", "1"), url[0]],
        &["COMPOSITE_METRICS_SOURCE__NOPE", "nope"],
    );
    bad(
        &["check-config"],
        &[("COMPOSITE_METRICS_STREAM", "x"), url[0]],
        &["COMPOSITE_METRICS_STREAM", "<TABLE>__<KEY>"],
    );
    // From a flag.
    bad(
        &["check-config", "--listen", "nowhere"],
        &url,
        &["--listen", "http.listen", "nowhere"],
    );
    bad(
        &["check-config", "--strategy", "sometimes"],
        &url,
        &["--strategy", "scheduler.strategy", "sometimes"],
    );
    // A stream source needs a server.
    bad(&["check-config"], &[], &["source.url", "redis.url"]);
    // Usage errors are exit 2 as well.
    bad(&["run", "--no-such-flag"], &[], &["--no-such-flag"]);
}

#[test]
fn the_sample_config_is_valid_and_documents_every_option() {
    let sample = worker_dir().join("composite-metrics.toml");
    let out = run(
        &["check-config", "--config", sample.to_str().expect("utf-8")],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Every key of the effective configuration appears, commented or set, in the sample.
    let out = run(
        &[
            "check-config",
            "--print-config",
            "--config",
            sample.to_str().expect("utf-8"),
        ],
        &[],
    );
    let effective: toml::Table = toml::from_str(&text(&out.stdout)).expect("TOML");
    let body = std::fs::read_to_string(&sample).expect("sample");
    for (table, keys) in &effective {
        assert!(
            body.contains(&format!("[{table}]")),
            "[{table}] not in the sample"
        );
        if let toml::Value::Table(keys) = keys {
            for key in keys.keys() {
                assert!(
                    body.lines().any(|l| l
                        .trim_start_matches(['#', ' '])
                        .starts_with(&format!("{key} ="))),
                    "{table}.{key} not documented in the sample config"
                );
            }
        }
    }
}

#[test]
fn run_on_a_jsonl_file_applies_it_on_the_memory_backend_and_exits_0_at_its_end() {
    let out = run(
        &[
            "run",
            "--source",
            "jsonl",
            "--input",
            "worker/sample/capture.jsonl",
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ],
        &[("COMPOSITE_METRICS_SINKS__STDOUT", "true")],
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    // Metrics as JSON lines on stdout.
    let metrics: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert!(
        metrics
            .iter()
            .any(|m| m["metric"] == "tools/tool_latency_p50"),
        "{metrics:?}"
    );
    // Logs as JSON lines on stderr: the invalid line, the end of the input.
    let logs: Vec<serde_json::Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("`{l}` is not JSON: {e}")))
        .collect();
    let invalid: Vec<_> = logs
        .iter()
        .filter(|l| l["fields"]["message"] == "invalid event")
        .collect();
    assert_eq!(invalid.len(), 1, "{err}");
    assert_eq!(invalid[0]["fields"]["line"], 25);
    let end = logs
        .iter()
        .find(|l| l["fields"]["message"] == "end of input")
        .expect("an end-of-input line");
    // 26 lines: 1 invalid, 1 retried (a duplicate), 24 applied.
    assert_eq!(end["fields"]["applied"], 24, "{end}");
    assert_eq!(end["fields"]["dead_letters"], 1, "{end}");
}

#[test]
fn the_printed_config_is_a_config_file_that_prints_the_same() {
    let dir = support::temp_dir();
    let sample = worker_dir().join("composite-metrics.toml");
    let first = run(
        &[
            "check-config",
            "--print-config",
            "--config",
            sample.to_str().expect("utf-8"),
            "--strategy",
            "hybrid-lock",
        ],
        &[],
    );
    assert!(first.status.success(), "{}", text(&first.stderr));
    let again = write(dir.path(), "printed.toml", &text(&first.stdout));
    let second = run(
        &[
            "check-config",
            "--print-config",
            "--config",
            again.to_str().expect("utf-8"),
        ],
        &[],
    );
    assert!(second.status.success(), "{}", text(&second.stderr));
    assert_eq!(text(&first.stdout), text(&second.stdout));
    // The strategy changed by a flag: the shared parameters kept, `tick` dropped.
    let file = write(
        dir.path(),
        "coalesce.toml",
        "[scheduler]\nstrategy = \"coalesce\"\nmin_interval = \"10s\"\ntick = \"2s\"\n",
    );
    let out = run(
        &[
            "check-config",
            "--print-config",
            "--config",
            file.to_str().expect("utf-8"),
            "--strategy",
            "hybrid-lock",
        ],
        &[("COMPOSITE_METRICS_REDIS__URL", "redis://h/")],
    );
    assert_eq!(effective(&out, "scheduler", "strategy"), "\"hybrid-lock\"");
    assert_eq!(effective(&out, "scheduler", "min_interval"), "\"10s\"");
    let printed: toml::Table = toml::from_str(&text(&out.stdout)).expect("TOML");
    assert!(printed["scheduler"].get("tick").is_none(), "{printed:?}");
}
