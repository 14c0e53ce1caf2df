//! The Grafana dashboard (`grafana/dashboard.json`) against a running
//! worker: every panel has queries, and every series each query names is in
//! a scrape of the worker's `/metrics` after it handled a little traffic
//! (tool runs, decisions, prompts, a session end, an invalid entry) with a
//! strategy that computes the score under a lock (`hybrid-lock`: the
//! library counts lock results in `composite_metrics_lock_total` for
//! `hybrid-lock` and `background`, not for `coalesce`).

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use support::{
    free_port, http_get, parse_scrape, series_name, wait_for, wait_ready, RedisServer, Worker,
};

/// Every `composite_metrics_*` identifier in a PromQL expression.
fn series_in(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = expr;
    while let Some(i) = rest.find("composite_metrics_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        out.insert(tail[..end].to_owned());
        rest = &tail[end..];
    }
    out
}

#[test]
fn every_panel_queries_series_the_running_worker_exports() {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("grafana/dashboard.json"),
    )
    .expect("the dashboard");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(panels.len() >= 10, "{} panels", panels.len());
    let mut wanted: Vec<(String, BTreeSet<String>)> = Vec::new();
    for p in panels {
        let title = p["title"].as_str().expect("title").to_owned();
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "panel {title} has no query");
        for t in targets {
            let expr = t["expr"].as_str().expect("expr");
            let names = series_in(expr);
            assert!(!names.is_empty(), "panel {title}: `{expr}` names no series");
            wanted.push((format!("{title}: {expr}"), names));
        }
    }

    let dir = support::temp_dir();
    let server = RedisServer::start();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let cfg = dir.path().join("w.toml");
    std::fs::write(
        &cfg,
        format!(
            "[scheduler]\nstrategy = \"hybrid-lock\"\nmax_staleness = \"1s\"\nmin_interval = \"1s\"\n\
             every_events = 5\nlease = \"1s\"\n\n[redis]\nurl = \"{}\"\n\n\
             [source]\nblock = \"100ms\"\nlag_every = \"100ms\"\n",
            server.url()
        ),
    )
    .expect("config");
    let w = Worker::spawn(
        "w",
        dir.path(),
        &[
            "run",
            "--config",
            cfg.to_str().expect("utf-8"),
            "--consumer",
            "w",
            "--listen",
            &listen,
        ],
        &[],
    );
    wait_ready(&w, port, 200, Duration::from_secs(20));
    let events = [
        r#"{"event_type":"session_start","session_id":"s1","timestamp":"2024-05-01T12:00:00Z"}"#,
        r#"{"event_type":"user_prompt","session_id":"s1","timestamp":"2024-05-01T12:00:01Z","payload":{"prompt_length":40}}"#,
        r#"{"event_type":"tool_use","session_id":"s1","timestamp":"2024-05-01T12:00:02Z","tool_name":"Bash","duration_ms":120,"payload":{"success":true}}"#,
        r#"{"event_type":"tool_use","session_id":"s1","timestamp":"2024-05-01T12:00:03Z","tool_name":"Edit","duration_ms":80,"payload":{"success":false}}"#,
        r#"{"event_type":"file_edit","session_id":"s1","timestamp":"2024-05-01T12:00:04Z","payload":{"accepted":true}}"#,
        r#"{"event_type":"file_edit","session_id":"s1","timestamp":"2024-05-01T12:00:05Z","payload":{"accepted":false}}"#,
        r#"{"event_type":"tool_use","session_id":"s1","timestamp":"2024-05-01T12:00:06Z""#,
        r#"{"event_type":"session_end","session_id":"s1","timestamp":"2024-05-01T12:01:00Z"}"#,
    ];
    for e in events {
        let _: String = server.cmd(&["XADD", "telemetry:events", "*", "event", e]);
    }
    let all: BTreeSet<String> = wanted.iter().flat_map(|(_, n)| n.iter().cloned()).collect();
    let scraped = |()| -> BTreeSet<String> {
        http_get(port, "/metrics")
            .map(|(_, body)| {
                parse_scrape(&body)
                    .keys()
                    .map(|k| series_name(k).to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    // Counters and the timing summary appear once something happened: wait
    // (bounded) until every series is there, then check each query.
    let found = wait_for(
        Duration::from_secs(20),
        "every dashboard series in the scrape",
        || {
            let s = scraped(());
            format!(
                "missing: {:?}\n{}",
                all.difference(&s).collect::<Vec<_>>(),
                w.stderr()
            )
        },
        || {
            let s = scraped(());
            all.is_subset(&s).then_some(s)
        },
    );
    for (query, names) in &wanted {
        for n in names {
            assert!(found.contains(n), "{query}: `{n}` is not in the scrape");
        }
    }
    let scrape = parse_scrape(&http_get(port, "/metrics").expect("scrape").1);
    assert_eq!(scrape["composite_metrics_worker_dead_letters_total"], 1.0);
    assert!(scrape
        .keys()
        .any(|k| k.starts_with("composite_metrics_lock_total{") && k.contains("acquired")));
}
