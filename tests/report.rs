//! The comparison's report formats parse back to the figures they were made
//! from: CSV and JSON field by field, the SVG as well-formed XML with one
//! series per strategy.

use std::time::Duration;

use composite_metrics::sim::{
    Comparison, LoadProfile, ProfileRuns, ReportSetup, RunReport, SimConfig, Simulator, Strategy,
};

fn comparison() -> Comparison {
    let sim = Simulator::new(SimConfig::default().with_workers(3).with_seed(7)).expect("sim");
    let strategies = Strategy::defaults();
    let setup = ReportSetup::new("virtual, \"quoted\"", 3, 7).with_machine("test box, 2 cores");
    let mut comparison = Comparison::new(setup);
    let minute = Duration::from_secs(60);
    for (profile, rate) in [
        (
            LoadProfile::poisson(1.0 / 60.0, minute * 30),
            Some(1.0 / 60.0),
        ),
        (LoadProfile::poisson(100.0, minute), Some(100.0)),
        (
            LoadProfile::bursty(
                500.0,
                Duration::from_secs(5),
                Duration::from_secs(25),
                minute,
            ),
            None,
        ),
    ] {
        let reports = sim.run_all(&strategies, &profile).expect("run");
        comparison
            .profiles
            .push(ProfileRuns::new(profile, rate, reports));
    }
    comparison
}

fn runs(c: &Comparison) -> Vec<(&ProfileRuns, &RunReport)> {
    c.profiles
        .iter()
        .flat_map(|p| p.reports.iter().map(move |r| (p, r)))
        .collect()
}

/// RFC 4180 fields of one record (quotes doubled inside quoted fields).
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                fields.last_mut().unwrap().push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(String::new()),
            (c, _) => fields.last_mut().unwrap().push(c),
        }
    }
    assert!(!quoted, "unterminated quote in {line}");
    fields
}

fn secs(d: Option<Duration>) -> Option<f64> {
    d.map(|d| d.as_secs_f64())
}

fn close(a: f64, b: f64, decimals: i32) -> bool {
    (a - b).abs() <= 0.5 * 10f64.powi(-decimals) * (1.0 + 1e-9)
}

#[test]
fn csv_parses_back_to_the_same_figures() {
    let c = comparison();
    let csv = c.to_csv();
    let mut lines = csv.lines();
    let header = csv_fields(lines.next().expect("header"));
    let col = |name: &str| header.iter().position(|h| h == name).expect(name);
    let rows: Vec<Vec<String>> = lines.map(csv_fields).collect();
    let all = runs(&c);
    assert_eq!(rows.len(), all.len());
    for (row, (p, r)) in rows.iter().zip(all) {
        assert_eq!(row.len(), header.len(), "{row:?}");
        let get = |name: &str| row[col(name)].as_str();
        let num = |name: &str| get(name).parse::<f64>().expect(name);
        assert_eq!(get("profile"), r.profile);
        assert_eq!(get("strategy"), r.strategy_name);
        assert_eq!(get("strategy_params"), r.strategy);
        assert_eq!(num("offered_rate"), r.offered_rate);
        assert_eq!(num("duration_s"), r.duration.as_secs_f64());
        for (name, value) in [
            ("workers", r.workers as u64),
            ("seed", r.seed),
            ("events", r.events),
            ("event_errors", r.event_errors),
            ("calcs", r.calcs),
            ("event_path_calcs", r.event_path_calcs),
            ("background_calcs", r.background_calcs),
            ("idle_calcs", r.idle_calcs),
            ("overlapping_calcs", r.overlapping_calcs),
            ("composite_reads", r.ops.composite_reads),
            ("lock_attempts", r.ops.lock_attempts),
            ("locks_acquired", r.ops.locks_acquired),
            ("unlocks", r.ops.unlocks),
            ("marker_reads", r.ops.marker_reads),
            ("composite_ops", r.ops.composite_ops()),
            ("reflected", r.lag.reflected),
            ("unreflected", r.lag.unreflected),
            ("process_outliers", r.process_outliers),
        ] {
            assert_eq!(get(name).parse::<u64>().expect(name), value, "{name}");
        }
        assert!(close(num("calcs_per_s"), r.calcs_per_sec(), 6));
        assert!(close(
            num("composite_ops_per_s"),
            r.composite_ops_per_sec(),
            6
        ));
        for (name, value) in [
            ("min_gap_s", secs(r.min_gap)),
            ("lag_p50_s", secs(r.lag.p50)),
            ("lag_p99_s", secs(r.lag.p99)),
            ("lag_max_s", secs(r.lag.max)),
            ("oldest_unreflected_s", secs(r.lag.oldest_unreflected)),
        ] {
            match value {
                None => assert_eq!(get(name), "", "{name}"),
                Some(v) => assert!(close(num(name), v, 6), "{name}: {} vs {v}", get(name)),
            }
        }
        match p.cpu_ratio(r) {
            None => assert_eq!(get("cpu_ratio_vs_never"), ""),
            Some(x) => assert!(close(num("cpu_ratio_vs_never"), x, 4)),
        }
    }
}

#[test]
fn json_parses_back_to_the_same_figures() {
    let c = comparison();
    let json: serde_json::Value = serde_json::from_str(&c.to_json().expect("json")).expect("parse");
    assert_eq!(json["mode"], c.setup.mode.as_str());
    assert_eq!(json["machine"], c.setup.machine.as_str());
    assert_eq!(json["workers"], c.setup.workers);
    assert_eq!(json["seed"], c.setup.seed);
    assert_eq!(json["calc_ms"], c.setup.calc_ms);
    let rows = json["runs"].as_array().expect("runs");
    let all = runs(&c);
    assert_eq!(rows.len(), all.len());
    // serde_json's default float parsing may be 1 ulp off the shortest
    // round-trip text it wrote: compare floats to within a few ulps.
    let same = |v: &serde_json::Value, x: Option<f64>| match (v.as_f64(), x) {
        (Some(a), Some(b)) => assert!((a - b).abs() <= 4.0 * f64::EPSILON * b.abs(), "{a} vs {b}"),
        (a, b) => assert_eq!(a, b),
    };
    for (j, (p, r)) in rows.iter().zip(all) {
        assert_eq!(j["profile"], r.profile.as_str());
        assert_eq!(j["strategy"], r.strategy_name);
        assert_eq!(j["strategy_params"], r.strategy.as_str());
        assert_eq!(j["mode"], r.mode);
        assert_eq!(j["events"], r.events);
        assert_eq!(j["calcs"], r.calcs);
        assert_eq!(j["event_path_calcs"], r.event_path_calcs);
        assert_eq!(j["background_calcs"], r.background_calcs);
        assert_eq!(j["idle_calcs"], r.idle_calcs);
        assert_eq!(j["overlapping_calcs"], r.overlapping_calcs);
        same(&j["offered_rate"], Some(r.offered_rate));
        same(&j["duration_s"], Some(r.duration.as_secs_f64()));
        same(&j["calcs_per_s"], Some(r.calcs_per_sec()));
        same(&j["composite_ops_per_s"], Some(r.composite_ops_per_sec()));
        same(&j["min_gap_s"], secs(r.min_gap));
        let ops = &j["ops"];
        assert_eq!(ops["records"], r.ops.records);
        assert_eq!(ops["record_round_trips"], r.ops.record_round_trips);
        assert_eq!(ops["composite_reads"], r.ops.composite_reads);
        assert_eq!(ops["lock_attempts"], r.ops.lock_attempts);
        assert_eq!(ops["locks_acquired"], r.ops.locks_acquired);
        assert_eq!(ops["unlocks"], r.ops.unlocks);
        assert_eq!(ops["marker_reads"], r.ops.marker_reads);
        let lag = &j["lag"];
        same(&lag["p50_s"], secs(r.lag.p50));
        same(&lag["p99_s"], secs(r.lag.p99));
        same(&lag["max_s"], secs(r.lag.max));
        assert_eq!(lag["reflected"], r.lag.reflected);
        assert_eq!(lag["unreflected"], r.lag.unreflected);
        same(&lag["oldest_unreflected_s"], secs(r.lag.oldest_unreflected));
        same(&j["cpu_ratio_vs_never"], p.cpu_ratio(r));
        same(&j["process_ns_per_event"], r.process_ns_per_event());
    }
}

#[test]
fn svg_is_well_formed_with_one_series_per_strategy() {
    let c = comparison();
    let svg = c.to_svg();
    let doc = roxmltree::Document::parse(&svg).expect("well-formed SVG");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let series: Vec<&str> = doc
        .descendants()
        .filter(|n| n.attribute("class") == Some("series"))
        .map(|n| n.attribute("data-strategy").expect("named series"))
        .collect();
    let mut sorted = series.clone();
    sorted.sort_unstable();
    let mut names = c.strategy_names();
    names.sort_unstable();
    assert_eq!(sorted, names);

    let markers = |name: &str| {
        let group = doc
            .descendants()
            .find(|n| n.attribute("data-strategy") == Some(name))
            .expect("series");
        group
            .descendants()
            .filter(|n| matches!(n.tag_name().name(), "circle" | "rect" | "polygon" | "path"))
            .count()
    };
    // `never` computes nothing: it is still marked at every load, on the
    // calculations panel's 0 row (and has no lag to draw).
    assert_eq!(markers("never"), c.profiles.len());
    // The others: a marker per profile in both panels, the bursty one included.
    for name in ["time-based", "event-based", "hybrid-lock", "background"] {
        assert_eq!(markers(name), 2 * c.profiles.len(), "{name}");
    }
    // The bursty profile has its guide, named.
    assert!(svg.contains(">bursty ≈ "));
}
