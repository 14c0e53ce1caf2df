//! Issue 11 point 1: the `prometheus` example's code installs
//! `metrics-exporter-prometheus` on 127.0.0.1, replays events, and this test
//! scrapes `/metrics` over real HTTP and checks the exposition text.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

#[allow(dead_code, unreachable_pub)]
#[path = "../examples/prometheus.rs"]
mod example;

/// `GET /metrics` over a plain TCP connection; the body of a 200 answer.
fn scrape(addr: SocketAddr) -> String {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let (head, body) = response.split_once("\r\n\r\n").expect("HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body.to_owned()
}

/// The listener starts on its own thread: retry the connection for a bounded time.
fn scrape_when_up(addr: SocketAddr) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return scrape(addr);
        }
        assert!(Instant::now() < deadline, "nothing listens on {addr}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `name{labels} value` lines of the exposition text, by `name{labels}`.
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// The example's replay of 300 events, run once per test binary (it
/// installs the global recorder, which can be done once per process).
fn replay() -> &'static example::Replay {
    static REPLAY: OnceLock<example::Replay> = OnceLock::new();
    REPLAY.get_or_init(|| {
        let options = example::parse_args(&["--events".to_owned(), "300".to_owned()])
            .expect("arguments")
            .expect("not --help");
        example::install_and_replay(&options).expect("install and replay")
    })
}

#[test]
fn the_example_serves_every_series_with_tool_labels_and_no_session() {
    let replay = replay();
    let text = scrape_when_up(replay.addr);
    let samples = samples(&text);

    // Every series the calculators returned is served with their latest
    // value, but the tool shares (refreshed together: checked below).
    let mut latest: HashMap<String, f64> = HashMap::new();
    for m in replay.metrics.iter().filter(|m| m.name != "tool_frequency") {
        let name = format!("composite_metrics_{}_{}", m.category, m.name);
        let series = match (&m.tool, m.name) {
            (Some(tool), "tool_success_rate" | "tool_frequency") => {
                format!("{name}{{tool=\"{tool}\"}}")
            }
            _ => name,
        };
        latest.insert(series, m.value);
    }
    assert!(latest.keys().any(|k| k.contains("{tool=\"")), "{latest:?}");
    for (series, value) in &latest {
        let served = samples
            .get(series)
            .unwrap_or_else(|| panic!("{series} not served:\n{text}"));
        assert!(
            (served - value).abs() <= 1e-9 * value.abs().max(1.0),
            "{series}: served {served}, computed {value}"
        );
    }

    // Health: decisions of both workers, as counted by the calculators.
    let events: u64 = replay.stats.iter().map(|s| s.events).sum();
    let composites: u64 = replay.stats.iter().map(|s| s.composites).sum();
    assert_eq!(events, 300);
    let decisions = |outcome: &str| {
        samples
            .get(&format!(
                "composite_metrics_decisions_total{{strategy=\"hybrid-lock\",outcome=\"{outcome}\"}}"
            ))
            .copied()
            .unwrap_or(0.0)
    };
    assert_eq!(decisions("compute"), composites as f64);
    assert_eq!(decisions("compute") + decisions("skip"), events as f64);
    assert!(composites >= 2, "{composites}");
    assert_eq!(
        samples.get("composite_metrics_calculation_seconds_count"),
        Some(&(composites as f64))
    );
    assert!(text.contains("# HELP composite_metrics_tools_tool_latency_p50 "));
    assert!(text.contains("# TYPE composite_metrics_decisions_total counter"));
    assert!(!text.contains("session=") && !text.contains("session_id"));
}

/// Issue 21, point 7: the tool shares a dashboard reads add up to 100 %
/// (within rounding) and equal what PromQL divides from the per-tool run
/// counters; the success rate divided from the counters is the calculators'.
#[test]
fn tool_shares_add_up_to_100_and_the_counters_divide_correctly() {
    let replay = replay();
    let text = scrape_when_up(replay.addr);
    let samples = samples(&text);
    let per_tool = |name: &str| -> HashMap<String, f64> {
        let prefix = format!("{name}{{tool=\"");
        samples
            .iter()
            .filter_map(|(series, v)| {
                let tool = series.strip_prefix(&prefix)?.strip_suffix("\"}")?;
                Some((tool.to_owned(), *v))
            })
            .collect()
    };
    let shares = per_tool("composite_metrics_tools_tool_frequency");
    let runs = per_tool("composite_metrics_tool_runs_total");
    let successes = per_tool("composite_metrics_tool_successes_total");
    let failures = per_tool("composite_metrics_tool_failures_total");
    assert!(shares.len() >= 2, "{text}");

    // The shares add up to 100 % within rounding.
    let sum: f64 = shares.values().sum();
    assert!(
        (sum - 100.0).abs() < 1e-6,
        "shares add up to {sum} %: {shares:?}"
    );

    // Every named tool run the calculators applied is counted, once.
    let named_runs = replay
        .metrics
        .iter()
        .filter(|m| m.name == "tool_frequency")
        .count();
    let total: f64 = runs.values().sum();
    assert_eq!(total, named_runs as f64);

    // share = runs / total runs, as PromQL divides the counters.
    assert_eq!(
        shares.keys().collect::<std::collections::BTreeSet<_>>(),
        runs.keys().collect()
    );
    for (tool, share) in &shares {
        let divided = 100.0 * runs[tool] / total;
        assert!(
            (share - divided).abs() < 1e-9,
            "{tool}: {share} vs {divided}"
        );
    }
    // The latest tool_frequency metric (of the replay's last named run) was
    // computed against the final total: the counters give the same share.
    let last = replay
        .metrics
        .iter()
        .rev()
        .find(|m| m.name == "tool_frequency")
        .expect("a named tool run");
    let tool = last.tool.as_deref().expect("a tool");
    assert!((100.0 * runs[tool] / total - last.value).abs() < 1e-9);

    // success rate = successes / (successes + failures), as the calculators
    // computed it last for each tool (one fresh state, all-time counts).
    let mut checked = 0;
    for m in replay
        .metrics
        .iter()
        .filter(|m| m.name == "tool_success_rate")
    {
        let tool = m.tool.as_deref().expect("a tool");
        let is_last = replay
            .metrics
            .iter()
            .rev()
            .find(|n| n.name == "tool_success_rate" && n.tool.as_deref() == Some(tool))
            .is_some_and(|n| std::ptr::eq(n, m));
        if !is_last {
            continue;
        }
        let (ok, bad) = (
            successes.get(tool).copied().unwrap_or(0.0),
            failures.get(tool).copied().unwrap_or(0.0),
        );
        let divided = 100.0 * ok / (ok + bad);
        assert!(
            (divided - m.value).abs() < 1e-9,
            "{tool}: {divided} vs {}",
            m.value
        );
        checked += 1;
    }
    assert!(checked >= 2, "{checked}");
    assert!(text.contains("# TYPE composite_metrics_tool_runs_total counter"));
}
