//! Issue 11 point 1: the `prometheus` example's code installs
//! `metrics-exporter-prometheus` on 127.0.0.1, replays events, and this test
//! scrapes `/metrics` over real HTTP and checks the exposition text.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
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

#[test]
fn the_example_serves_every_series_with_tool_labels_and_no_session() {
    let options = example::parse_args(&["--events".to_owned(), "300".to_owned()])
        .expect("arguments")
        .expect("not --help");
    let replay = example::install_and_replay(&options).expect("install and replay");
    let text = scrape_when_up(replay.addr);
    let samples = samples(&text);

    // Every series the calculators returned is served with their latest value.
    let mut latest: HashMap<String, f64> = HashMap::new();
    for m in &replay.metrics {
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
