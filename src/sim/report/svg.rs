use std::fmt::Write as _;

use super::format::rate_label;
use super::{Comparison, ProfileRuns};
use crate::sim::RunReport;

/// What a panel plots for one run: a positive value and whether it is only a
/// lower bound, or `Ok(None)` for "none at all" (drawn on the panel's `0`
/// row), or `Err(())` for nothing to draw.
type Measure = fn(&RunReport) -> Result<Option<(f64, bool)>, ()>;

/// A line's colour, dash pattern, width and marker, per strategy.
struct Style {
    color: &'static str,
    dash: &'static str,
    width: f64,
    marker: Marker,
}

#[derive(Clone, Copy)]
enum Marker {
    Plus,
    Square,
    Triangle,
    Diamond,
    Circle,
}

fn style(strategy: &str) -> Style {
    let (color, dash, width, marker) = match strategy {
        "time-based" => ("#d62728", "", 2.0, Marker::Square),
        "event-based" => ("#ff7f0e", "9,3", 2.0, Marker::Triangle),
        "hybrid-lock" => ("#2ca02c", "5,4", 2.0, Marker::Diamond),
        // Drawn wide and first: lines lying on it stay visible on top.
        "background" => ("#1f77b4", "", 4.5, Marker::Circle),
        "coalesce" => ("#9467bd", "12,3,2,3", 2.5, Marker::Plus),
        _ => ("#7f7f7f", "2,3", 2.0, Marker::Plus),
    };
    Style {
        color,
        dash,
        width,
        marker,
    }
}

fn marker(s: &mut String, m: Marker, x: f64, y: f64, color: &str, hollow: bool) {
    let fill = if hollow { "white" } else { color };
    let paint = format!(r#"fill="{fill}" stroke="{color}" stroke-width="2""#);
    let _ = match m {
        Marker::Circle => writeln!(s, r#"<circle cx="{x:.1}" cy="{y:.1}" r="4.5" {paint}/>"#),
        Marker::Square => writeln!(
            s,
            r#"<rect x="{:.1}" y="{:.1}" width="8" height="8" {paint}/>"#,
            x - 4.0,
            y - 4.0
        ),
        Marker::Triangle => writeln!(
            s,
            r#"<polygon points="{:.1},{:.1} {:.1},{:.1} {:.1},{:.1}" {paint}/>"#,
            x,
            y - 5.5,
            x + 5.0,
            y + 4.0,
            x - 5.0,
            y + 4.0
        ),
        Marker::Diamond => writeln!(
            s,
            r#"<polygon points="{:.1},{:.1} {:.1},{:.1} {:.1},{:.1} {:.1},{:.1}" {paint}/>"#,
            x,
            y - 6.0,
            x + 5.0,
            y,
            x,
            y + 6.0,
            x - 5.0,
            y
        ),
        Marker::Plus => writeln!(
            s,
            r#"<path d="M{:.1},{y:.1}H{:.1}M{x:.1},{:.1}V{:.1}" fill="none" stroke="{color}" stroke-width="2.5"/>"#,
            x - 5.0,
            x + 5.0,
            y - 5.0,
            y + 5.0
        ),
    };
}

fn dash_attr(dash: &str) -> String {
    if dash.is_empty() {
        String::new()
    } else {
        format!(r#" stroke-dasharray="{dash}""#)
    }
}

/// One panel's geometry: log-log, with a `0` row under the log range.
struct Panel {
    x0: f64,
    /// Whether it has a `0` row (for counts; a lag is never zero).
    zero_row: bool,
    lo_x: f64,
    hi_x: f64,
    lo_y: f64,
    hi_y: f64,
}

const PW: f64 = 380.0;
const Y0: f64 = 50.0;
/// Height of the log range.
const LOG_H: f64 = 300.0;
/// The `0` row, under the log range.
const ZERO_Y: f64 = Y0 + LOG_H + 22.0;
/// The panel's bottom edge.
const BOTTOM: f64 = Y0 + LOG_H + 36.0;

impl Panel {
    fn px(&self, rate: f64) -> f64 {
        self.x0 + (rate.log10() - self.lo_x) / (self.hi_x - self.lo_x) * PW
    }

    fn py(&self, v: f64) -> f64 {
        Y0 + LOG_H - (v.log10() - self.lo_y) / (self.hi_y - self.lo_y) * LOG_H
    }
}

fn decades(values: impl Iterator<Item = f64> + Clone) -> Option<(f64, f64)> {
    let lo = values.clone().fold(f64::INFINITY, f64::min);
    let hi = values.fold(0.0, f64::max);
    (lo.is_finite() && lo > 0.0).then(|| {
        let lo = lo.log10().floor();
        (lo, hi.log10().ceil().max(lo + 1.0))
    })
}

impl Comparison {
    /// Two log-log panels against the offered load (events per second, all
    /// workers): composite calculations per second, and the worst reflect
    /// lag. One `<g class="series" data-strategy="NAME">` per strategy holds
    /// its line and markers in both panels. A run with no calculation at all
    /// is marked on the panel's `0` row; a lag that is only a lower bound
    /// (an event was never reflected) has a hollow marker; `never` has no
    /// lag line (it reflects nothing). Non-steady profiles (the bursty one)
    /// are drawn as unjoined markers at their mean load, on a dotted guide
    /// named after the profile. Lines that coincide stay apart: each
    /// strategy has its own marker, dash pattern and a small sideways offset.
    pub fn to_svg(&self) -> String {
        let names = self.strategy_names();
        let all: Vec<&ProfileRuns> = self.profiles.iter().collect();
        let loads: Vec<f64> = all.iter().map(|p| p.load()).filter(|l| *l > 0.0).collect();
        let (w, h) = (1000.0, 500.0);
        let mut s = String::new();
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
        let _ = writeln!(
            s,
            r#"<text x="{}" y="22" text-anchor="middle" font-size="15">Composite scheduling strategies: {} workers, seed {} (log scales)</text>"#,
            w / 2.0,
            self.setup.workers,
            self.setup.seed
        );
        let calcs: Measure = |r| {
            let v = r.calcs_per_sec();
            Ok((v > 0.0).then_some((v, false)))
        };
        let lag: Measure = |r| {
            if r.strategy_name == "never" {
                return Err(());
            }
            r.lag
                .worst()
                .map(|d| Some((d.as_secs_f64().max(1e-4), r.lag.worst_is_lower_bound())))
                .ok_or(())
        };
        let specs: [(f64, &str, Measure, bool); 2] = [
            (
                70.0,
                "composite calculations per second (all workers)",
                calcs,
                true,
            ),
            (
                570.0,
                "max reflect lag, seconds (hollow: lower bound)",
                lag,
                false,
            ),
        ];
        let mut panels = Vec::new();
        for (x0, title, measure, zero_row) in specs {
            let values = all.iter().flat_map(|p| {
                p.reports
                    .iter()
                    .filter_map(move |r| measure(r).ok().flatten().map(|v| v.0))
            });
            let (Some((lo_x, hi_x)), Some((lo_y, hi_y))) =
                (decades(loads.iter().copied()), decades(values))
            else {
                continue;
            };
            let panel = Panel {
                x0,
                zero_row,
                lo_x,
                hi_x,
                lo_y,
                hi_y,
            };
            self.axes(&mut s, &panel, title);
            panels.push((panel, measure));
        }
        let n = names.len() as f64;
        // Background first: the others' thinner lines stay visible on its wide one.
        let mut order: Vec<(usize, &str)> = names.iter().copied().enumerate().collect();
        order.sort_by_key(|(_, name)| *name != "background");
        for (i, name) in order {
            let st = style(name);
            let dx = (i as f64 - (n - 1.0) / 2.0) * 6.0;
            let _ = writeln!(s, r#"<g class="series" data-strategy="{name}">"#);
            for (panel, measure) in &panels {
                let mut line: Vec<(f64, f64)> = Vec::new();
                let mut marks = Vec::new();
                for p in &all {
                    let Some(r) = p.report(name) else { continue };
                    let Ok(value) = measure(r) else { continue };
                    let load = p.load();
                    if load <= 0.0 {
                        continue;
                    }
                    let x = panel.px(load) + dx;
                    let (y, hollow) =
                        value.map_or((ZERO_Y, false), |(v, open)| (panel.py(v), open));
                    if p.steady_rate.is_some() {
                        match value {
                            Some(_) => line.push((x, y)),
                            None => flush(&mut s, &mut line, &st),
                        }
                    }
                    marks.push((x, y, hollow));
                }
                flush(&mut s, &mut line, &st);
                for (x, y, hollow) in marks {
                    marker(&mut s, st.marker, x, y, st.color, hollow);
                }
            }
            s.push_str("</g>\n");
        }
        self.legend(&mut s, &names, h);
        s.push_str("</svg>\n");
        s
    }

    fn axes(&self, s: &mut String, p: &Panel, title: &str) {
        let x0 = p.x0;
        let _ = writeln!(
            s,
            r##"<rect x="{x0}" y="{Y0}" width="{PW}" height="{}" fill="none" stroke="#333"/>"##,
            BOTTOM - Y0
        );
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle" font-size="13">{title}</text>"#,
            x0 + PW / 2.0,
            Y0 - 8.0
        );
        let mut e = p.lo_y;
        while e <= p.hi_y + 1e-9 {
            let y = p.py(10f64.powf(e));
            let _ = writeln!(
                s,
                r##"<line x1="{x0}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">1e{}</text>"##,
                x0 + PW,
                x0 - 5.0,
                y + 4.0,
                e as i32
            );
            e += 1.0;
        }
        // The `0` row: runs with nothing to put on a log scale.
        if p.zero_row {
            let _ = writeln!(
                s,
                r##"<line x1="{x0}" y1="{:.1}" x2="{}" y2="{:.1}" stroke="#bbb" stroke-dasharray="3,3"/><text x="{}" y="{:.1}" text-anchor="end">0</text>"##,
                Y0 + LOG_H + 10.0,
                x0 + PW,
                Y0 + LOG_H + 10.0,
                x0 - 5.0,
                ZERO_Y + 4.0
            );
        }
        let mut e = p.lo_x;
        while e <= p.hi_x + 1e-9 {
            let x = p.px(10f64.powf(e));
            let _ = writeln!(
                s,
                r##"<line x1="{x:.1}" y1="{Y0}" x2="{x:.1}" y2="{BOTTOM}" stroke="#eee"/>"##
            );
            e += 1.0;
        }
        for runs in &self.profiles {
            let load = runs.load();
            if load <= 0.0 {
                continue;
            }
            let x = p.px(load);
            if runs.steady_rate.is_some() {
                let _ = writeln!(
                    s,
                    r##"<line x1="{x:.1}" y1="{BOTTOM}" x2="{x:.1}" y2="{}" stroke="#333"/><text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"##,
                    BOTTOM + 5.0,
                    BOTTOM + 18.0,
                    rate_label(load)
                );
            } else {
                let _ = writeln!(
                    s,
                    r##"<line x1="{x:.1}" y1="{Y0}" x2="{x:.1}" y2="{BOTTOM}" stroke="#888" stroke-dasharray="1,3"/><text x="{:.1}" y="{}" fill="#555" font-size="11">{} ≈ {}<title>{}</title></text>"##,
                    x + 4.0,
                    Y0 + 13.0,
                    xml_escape(short_name(runs.profile.name())),
                    rate_label_short(load),
                    xml_escape(runs.profile.name())
                );
            }
        }
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">offered load, events per second (all workers)</text>"#,
            x0 + PW / 2.0,
            BOTTOM + 34.0
        );
    }

    fn legend(&self, s: &mut String, names: &[&str], h: f64) {
        let mut x = 70.0;
        let y = h - 42.0;
        for name in names {
            let st = style(name);
            let _ = writeln!(
                s,
                r#"<line x1="{x}" y1="{y}" x2="{}" y2="{y}" stroke="{}" stroke-width="{}"{}/>"#,
                x + 30.0,
                st.color,
                st.width,
                dash_attr(st.dash),
            );
            marker(s, st.marker, x + 15.0, y, st.color, false);
            let _ = writeln!(s, r#"<text x="{}" y="{}">{name}</text>"#, x + 36.0, y + 4.0);
            x += 125.0;
        }
        let _ = writeln!(
            s,
            r##"<text x="70" y="{}" fill="#555">On the 0 row: no calculation at all at that load. Dotted guide: a non-steady profile at its mean load (markers not joined).</text>"##,
            y + 22.0
        );
        let _ = writeln!(
            s,
            r##"<text x="70" y="{}" fill="#555">Each strategy is offset a few pixels sideways, so equal values stay visible side by side.</text>"##,
            y + 38.0
        );
    }
}

/// Draws the pending segment of a line, then starts a new one.
fn flush(s: &mut String, line: &mut Vec<(f64, f64)>, st: &Style) {
    if line.len() > 1 {
        let path: Vec<String> = line.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
        let _ = writeln!(
            s,
            r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="{}" stroke-linejoin="round"{}/>"#,
            path.join(" "),
            st.color,
            st.width,
            dash_attr(st.dash)
        );
    }
    line.clear();
}

/// A profile's name up to its parameters: `bursty` for `bursty(15s@2000, ...)`.
fn short_name(name: &str) -> &str {
    name.split_once('(')
        .map_or(name, |(head, _)| head.trim_end())
}

fn rate_label_short(rate: f64) -> String {
    format!("{}/s", super::format::sig(rate))
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
