//! Crash test with real processes: three `stream_worker` processes read one
//! stream in one group; one is killed with SIGKILL after it applied a batch
//! and before it acknowledged it. The others claim its entries and finish:
//! every valid entry is counted exactly once, every invalid one is in the
//! dead-letter stream, and the group's pending list is empty.

mod support;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

use support::{example_binary, RedisServer};

const STREAM: &str = "events";
const GROUP: &str = "metrics";
const NS: &str = "crash";
const ENTRIES: usize = 100_000;
/// Every 50th entry is invalid (2 000 of them).
const INVALID_EVERY: usize = 50;

fn entry(i: usize) -> String {
    if i % INVALID_EVERY == INVALID_EVERY - 1 {
        // Alternately malformed JSON and a negative duration.
        return if i.is_multiple_of(2) {
            format!("{{\"event_type\":\"tool_use\",\"session_id\":\"s{i}\"")
        } else {
            format!(
                r#"{{"event_type":"tool_use","session_id":"s{}","timestamp":"2024-05-01T12:00:00Z","duration_ms":-{i}}}"#,
                i % 64
            )
        };
    }
    match i % 4 {
        3 => format!(
            r#"{{"event_type":"file_edit","session_id":"s{}","timestamp":"2024-05-01T12:00:00Z","payload":{{"accepted":{}}}}}"#,
            i % 64,
            i.is_multiple_of(3)
        ),
        _ => format!(
            r#"{{"event_type":"tool_use","session_id":"s{}","timestamp":"2024-05-01T12:00:00Z","tool_name":"bash","duration_ms":{},"payload":{{"success":{}}}}}"#,
            i % 64,
            i % 250,
            !i.is_multiple_of(5)
        ),
    }
}

fn field(stdout: &str, name: &str) -> u64 {
    stdout
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix(name))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {stdout}"))
}

#[test]
fn a_killed_worker_loses_nothing_and_nothing_counts_twice() {
    let server = RedisServer::start();
    let mut con = server.connection();
    let mut invalid_ids = HashSet::new();
    for chunk in (0..ENTRIES).collect::<Vec<_>>().chunks(2_000) {
        let mut pipe = redis::pipe();
        for &i in chunk {
            pipe.cmd("XADD")
                .arg(STREAM)
                .arg("*")
                .arg("event")
                .arg(entry(i));
        }
        let ids: Vec<String> = pipe.query(&mut con).expect("XADD");
        for (&i, id) in chunk.iter().zip(ids) {
            if i % INVALID_EVERY == INVALID_EVERY - 1 {
                invalid_ids.insert(id);
            }
        }
    }
    let valid = (ENTRIES - invalid_ids.len()) as u64;
    assert_eq!(invalid_ids.len(), ENTRIES / INVALID_EVERY);

    let bin = example_binary("stream_worker");
    let spawn = |consumer: &str, ack_delay_ms: &str| {
        Command::new(&bin)
            .args([
                &server.url(),
                STREAM,
                GROUP,
                consumer,
                NS,
                ack_delay_ms,
                "1000",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn stream_worker")
    };
    // The victim holds each acknowledgement back for 2 s after applying its
    // batch: killed in that window, it dies in the middle of a batch.
    let mut victim = spawn("victim", "2000");
    let survivors: Vec<_> = ["w1", "w2"].iter().map(|c| spawn(c, "0")).collect();

    let stdout = victim.stdout.take().expect("victim stdout");
    let mut lines = BufReader::new(stdout).lines();
    let first = lines
        .next()
        .expect("the victim applied a batch")
        .expect("line");
    assert!(first.starts_with("applied "), "{first}");
    victim.kill().expect("SIGKILL the victim");
    let status = victim.wait().expect("victim exit");
    assert_eq!(status.signal(), Some(9), "killed by SIGKILL");

    let (mut applied, mut duplicates, mut claimed) = (0, 0, 0);
    for w in survivors {
        let out = w.wait_with_output().expect("worker output");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let last = stdout.lines().last().unwrap_or_default().to_owned();
        assert!(
            out.status.success(),
            "worker failed: {last}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        applied += field(&last, "applied=");
        duplicates += field(&last, "duplicates=");
        claimed += field(&last, "claimed=");
    }

    // Every valid entry counted exactly once.
    let events: u64 = server.cmd(&["HGET", &format!("{{{NS}}}:totals"), "events"]);
    assert_eq!(events, valid);
    // The victim's batch was applied but not acknowledged: claimed by the
    // others and found to be duplicates, not counted again.
    assert!(claimed > 0, "nothing was claimed from the victim");
    assert!(
        duplicates > 0,
        "the victim's applied batch was not redelivered"
    );
    assert!(
        applied + duplicates >= valid - 200,
        "{applied} + {duplicates}"
    );
    // Every invalid entry is in the dead-letter stream, once, with its error.
    let dead: Vec<(String, Vec<String>)> =
        server.cmd(&["XRANGE", &format!("{STREAM}:dead"), "-", "+"]);
    let dead_ids: HashSet<String> = dead
        .iter()
        .map(|(_, fields)| {
            assert_eq!(fields[0], "entry_id");
            assert_eq!(fields[2], "error");
            assert!(fields[3].starts_with("invalid event"), "{fields:?}");
            fields[1].clone()
        })
        .collect();
    assert_eq!(dead.len(), invalid_ids.len());
    assert_eq!(dead_ids, invalid_ids);
    // Nothing left pending.
    let summary: redis::Value = server.cmd(&["XPENDING", STREAM, GROUP]);
    match summary {
        redis::Value::Array(parts) => assert_eq!(parts.first(), Some(&redis::Value::Int(0))),
        other => panic!("XPENDING: {other:?}"),
    }
}
