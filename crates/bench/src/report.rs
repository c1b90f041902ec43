//! `docs/benchmarks.md` and its PNG plots, from a [`Results`] file.
//!
//! Plots are drawn by plotters' bitmap backend with the DejaVu Sans font compiled in
//! (`assets/DejaVuSans.ttf`, through `ab_glyph`): no system font library is needed.

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;

use crate::BenchError;
use crate::results::{LoadOutcome, Record, Results};

mod scaleout;

static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// Every chat-sys record that lost, duplicated or reordered something, or had errors.
pub fn integrity_failures(r: &Results) -> Vec<String> {
    let mut out = Vec::new();
    for rec in r.records.iter().filter(|r| r.system == "chat-sys") {
        if let Some(o) = &rec.load {
            if !o.integrity.is_clean() || o.errors > 0 {
                out.push(format!("{} chat-sys: errors {} {:?}", rec.scenario, o.errors, o.integrity));
            }
            if o.acked_total == 0 {
                out.push(format!("{} chat-sys: nothing was acknowledged", rec.scenario));
            }
        }
        for k in ["lost", "duplicates", "order_violations"] {
            if rec.metrics.get(k).copied().unwrap_or(0.0) > 0.0 {
                out.push(format!("{} chat-sys: {k} = {}", rec.scenario, rec.metrics[k]));
            }
        }
    }
    out
}

fn loads<'a>(r: &'a Results, scenario: &'a str) -> impl Iterator<Item = (&'a Record, &'a LoadOutcome)> + 'a {
    r.records.iter().filter(move |x| x.scenario == scenario).filter_map(|x| x.load.as_ref().map(|o| (x, o)))
}

fn members(rec: &Record) -> f64 {
    rec.params.get("members").and_then(|v| v.as_f64()).unwrap_or(1.0)
}

fn mib(b: f64) -> String {
    format!("{:.1} MiB", b / 1048576.0)
}

fn load_row(rec: &Record, o: &LoadOutcome) -> String {
    format!(
        "| {} | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.0} | {} | {} | {}/{}/{} |\n",
        rec.system,
        o.offered_per_sec,
        o.acked_per_sec,
        o.delivered_per_sec,
        o.latency.p50_us / 1e3,
        o.latency.p99_us / 1e3,
        o.latency.p999_us / 1e3,
        o.latency.max_us / 1e3,
        o.server_cores(),
        o.client_cpu_secs / o.window_secs.max(1e-9),
        o.delivered_per_cpu_sec(),
        mib(o.server_peak_rss_bytes as f64),
        o.errors,
        o.integrity.lost,
        o.integrity.duplicates,
        o.integrity.order_violations + o.integrity.seq_violations,
    )
}

const LOAD_HEADER: &str = "| system | offered msg/s | acked msg/s | deliveries/s | p50 ms | p99 ms | p99.9 ms | max ms | server cores | client cores | deliveries per server CPU-s | server peak RSS | errors | lost/dup/order |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";

/// Writes the markdown report to `out` and the plots into `plots`; the hand-written analysis
/// in `plots/findings.md` (bottlenecks, profiles), when present, is appended.
///
/// # Errors
/// [`BenchError::Io`] when a file cannot be written; [`BenchError::Plot`] when drawing fails.
pub fn write(r: &Results, out: &Path, plots: &Path) -> Result<(), BenchError> {
    // The main sections and plots are the single-node run's; other topologies (merged in
    // from their own results files) get a section of their own after the fanout.
    let (single, others) = scaleout::split(&r.records);
    let all = r;
    let r = &Results { records: single, ..all.clone() };
    std::fs::create_dir_all(plots).map_err(|e| BenchError::Io(format!("creating {}", plots.display()), e))?;
    let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    let rel = |name: &str| -> String {
        let p = plots.join(name);
        match (out.parent(), p.strip_prefix(out.parent().unwrap_or(Path::new("")))) {
            (Some(_), Ok(rel)) => rel.display().to_string(),
            _ => p.display().to_string(),
        }
    };
    let mut md = String::new();
    let _ = writeln!(md, "# Benchmarks\n");
    let _ = writeln!(
        md,
        "Measured by `chat-bench` (`crates/bench`), all systems in the same run on the same machine. \
         Regenerate with `scripts/bench.sh` (full run, then `chat-bench report`).\n"
    );
    let m = &r.machine;
    let _ = writeln!(
        md,
        "**Machine**: {} ({} logical CPUs, {}), Linux {}. Server build: `{}`. Load generator and servers share the machine's cores.\n",
        m.cpu,
        m.cores,
        mib(m.memory_bytes as f64),
        m.kernel,
        r.profile
    );
    let _ = writeln!(md, "**Commands**:\n\n```sh");
    for c in &r.commands {
        let _ = writeln!(md, "{c}");
    }
    let _ = writeln!(md, "```\n");
    let _ = writeln!(
        md,
        "Method: open loop (each sender has a fixed schedule; latency is measured from the *scheduled* send time \
         to the delivery, so a slow server cannot hide latency by slowing the clients down). Loss, duplicates and \
         order are counted from a marker in every body (stream, number) and, for chat-sys, the per-conversation `seq`. \
         Server CPU seconds come from `/proc/<pid>/stat` over the measurement window; peak RSS is the process's \
         lifetime high-water mark (`VmHWM` in `/proc/<pid>/status`), so for a peer that was already running it may \
         predate the run.\n"
    );
    targets(r, &mut md);

    // Fanout.
    let fan: Vec<_> = loads(r, "fanout").chain(loads(r, "fanout-half")).collect();
    if !fan.is_empty() {
        let first = fan[0].0;
        let _ = writeln!(
            md,
            "## Fanout\n\n{} connections in conversations of {} ({} conversations), {} senders, {}-byte bodies, \
             {} s warm-up, {} s measured per offered rate. chat-sys persists every message before delivering it; \
             its message events {} `conversationMemberIds` (`--member-ids {}`).\n",
            first.params.get("connections").cloned().unwrap_or_default(),
            first.params.get("members").cloned().unwrap_or_default(),
            first.params.get("conversations").cloned().unwrap_or_default(),
            first.params.get("senders").cloned().unwrap_or_default(),
            first.params.get("body_bytes").cloned().unwrap_or_default(),
            first.params.get("warmup_s").cloned().unwrap_or_default(),
            first.params.get("duration_s").cloned().unwrap_or_default(),
            if member_ids(first) == "include" { "carry" } else { "leave out" },
            member_ids(first),
        );
        md.push_str(LOAD_HEADER);
        for (rec, o) in &fan {
            let mut row = load_row(rec, o);
            if rec.scenario == "fanout-half" {
                row = row.replacen("| chat-sys |", "| chat-sys (half load) |", 1);
            }
            md.push_str(&row);
        }
        md.push('\n');
        ratios(&fan, &mut md);
        throughput_plot(&fan, &plots.join("fanout-throughput.png"))?;
        latency_plot(&fan, &plots.join("fanout-latency.png"))?;
        let _ = writeln!(md, "![throughput against offered rate]({})\n", rel("fanout-throughput.png"));
        let _ = writeln!(md, "![latency distribution]({})\n", rel("fanout-latency.png"));
    }
    scaleout::sections(&others, &r.records, &mut md);
    // Ingest.
    let ing: Vec<_> = loads(r, "ingest").collect();
    if !ing.is_empty() {
        let _ = writeln!(md, "## Ingest\n");
        let (rec, o) = ing[0];
        let _ = writeln!(
            md,
            "{} connections, conversations of {}, {} senders each keeping {} sends unacknowledged; a RECEIPT comes after the commit.\n",
            rec.params.get("connections").cloned().unwrap_or_default(),
            rec.params.get("members").cloned().unwrap_or_default(),
            rec.params.get("senders").cloned().unwrap_or_default(),
            rec.params.get("window").cloned().unwrap_or_default(),
        );
        let _ = writeln!(
            md,
            "| system | acked sends/s | ack p50 ms | ack p99 ms | ack max ms | server cores | acked per server CPU-s | errors | lost/dup/order |\n|---|---|---|---|---|---|---|---|---|"
        );
        let _ = writeln!(
            md,
            "| chat-sys | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.0} | {} | {}/{}/{} |",
            o.acked_per_sec,
            o.ack_latency.p50_us / 1e3,
            o.ack_latency.p99_us / 1e3,
            o.ack_latency.max_us / 1e3,
            o.server_cores(),
            o.acked_per_cpu_sec(),
            o.errors,
            o.integrity.lost,
            o.integrity.duplicates,
            o.integrity.order_violations + o.integrity.seq_violations
        );
        if let Some(lim) = r.records.iter().find(|x| x.scenario == "ingest" && x.system == "sqlite-limit") {
            let rate = lim.metrics.get("rows_per_sec").copied().unwrap_or(0.0);
            let _ = writeln!(
                md,
                "| SQLite raw inserts (limit), batches of {} | {:.0} | | | | | | | |\n\nchat-sys reaches **{:.0}%** of SQLite's raw insert rate of the same rows.\n",
                lim.params.get("batch").cloned().unwrap_or_default(),
                rate,
                100.0 * o.acked_per_sec / rate.max(1e-9)
            );
        }
    }
    if let Some((rec, _)) = ing.first()
        && let (Some(c), Some(b)) = (rec.metrics.get("commits"), rec.metrics.get("avg_batch"))
    {
        let _ = writeln!(
            md,
            "Group commit (the server's `chat_core_send_batch_size`, whole run): {c:.0} commits, {b:.1} sends per commit.\n"
        );
    }
    // Idle.
    let idle: Vec<_> = r.records.iter().filter(|x| x.scenario == "idle").collect();
    if !idle.is_empty() {
        let _ = writeln!(
            md,
            "## Idle connections\n\nServer RSS before and after opening the connections (authenticated and subscribed, heart-beats off).\n"
        );
        let _ =
            writeln!(md, "| system | connections | RSS before | RSS after | per connection |\n|---|---|---|---|---|");
        for rec in &idle {
            if let Some(per) = rec.metrics.get("rss_per_connection_bytes") {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {:.1} KB |",
                    rec.system,
                    rec.params.get("connections").cloned().unwrap_or_default(),
                    mib(rec.metrics.get("rss_before_bytes").copied().unwrap_or(0.0)),
                    mib(rec.metrics.get("rss_after_bytes").copied().unwrap_or(0.0)),
                    per / 1000.0
                );
            }
        }
        md.push('\n');
    }
    // Catch-up.
    for rec in r.records.iter().filter(|x| x.scenario == "catchup") {
        let g = |k: &str| rec.metrics.get(k).copied().unwrap_or(0.0);
        let _ = writeln!(
            md,
            "## Catch-up\n\nA member missed {} messages and resumes with `resume: <conversation>:<seq>`; time from starting \
             to connect until the last missed event arrived, {} repetition(s).\n\n| min ms | median ms | max ms | lost | duplicates | order violations |\n|---|---|---|---|---|---|\n| {:.1} | {:.1} | {:.1} | {} | {} | {} |\n",
            rec.params.get("events").cloned().unwrap_or_default(),
            rec.params.get("reps").cloned().unwrap_or_default(),
            g("catchup_ms_min"),
            g("catchup_ms_median"),
            g("catchup_ms_max"),
            g("lost"),
            g("duplicates"),
            g("order_violations")
        );
    }
    // Notes.
    let mut notes: Vec<String> = Vec::new();
    for rec in &all.records {
        for n in &rec.notes {
            let line = format!("{} ({}): {n}", rec.system, rec.scenario);
            if !notes.contains(&line) {
                notes.push(line);
            }
        }
    }
    if !notes.is_empty() {
        let _ = writeln!(md, "## Notes\n");
        for n in notes {
            let _ = writeln!(md, "- {n}");
        }
        md.push('\n');
    }
    if let Ok(findings) = std::fs::read_to_string(plots.join("findings.md")) {
        md.push_str(&findings);
    }
    std::fs::write(out, md).map_err(|e| BenchError::Io(format!("writing {}", out.display()), e))
}

fn targets(r: &Results, md: &mut String) {
    let _ = writeln!(md, "## Targets\n\n| target | measured | met |\n|---|---|---|");
    let yes = |b: bool| if b { "yes" } else { "**no**" };
    if let Some((_, o)) = loads(r, "ingest").find(|(x, _)| x.system == "chat-sys") {
        let _ = writeln!(
            md,
            "| ingest ≥ 50,000 acked sends/s on SQLite | {:.0}/s | {} |",
            o.acked_per_sec,
            yes(o.acked_per_sec >= 50_000.0)
        );
        if let Some(lim) = r.records.iter().find(|x| x.scenario == "ingest" && x.system == "sqlite-limit") {
            let f = o.acked_per_sec / lim.metrics.get("rows_per_sec").copied().unwrap_or(f64::MAX);
            let _ =
                writeln!(md, "| ingest ≥ 70% of SQLite's raw insert rate | {:.0}% | {} |", 100.0 * f, yes(f >= 0.7));
        }
    }
    if let Some(rec) = r.records.iter().find(|x| x.scenario == "idle" && x.system == "chat-sys") {
        let per = rec.metrics.get("rss_per_connection_bytes").copied().unwrap_or(0.0);
        let _ = writeln!(
            md,
            "| ≤ 8 KB RSS per idle connection (at {} connections) | {:.1} KB | {} |",
            rec.params.get("connections").cloned().unwrap_or_default(),
            per / 1000.0,
            yes(per <= 8_000.0)
        );
    }
    if let Some((rec, o)) = loads(r, "fanout-half").next() {
        let _ = writeln!(
            md,
            "| fanout p99 < 5 ms at half the highest sustained rate ({:.0} msg/s) | {:.2} ms | {} |",
            o.offered_per_sec,
            o.latency.p99_us / 1e3,
            yes(o.latency.count > 0 && o.integrity.is_clean() && o.latency.p99_us < 5_000.0)
        );
        let _ = rec;
    }
    let fan: Vec<_> = loads(r, "fanout").collect();
    for (peer, factor) in [("rabbitmq-web-stomp", 3.0), ("centrifugo", 1.0)] {
        let mut best: Option<(f64, f64, f64)> = None;
        for (rec, o) in fan.iter().filter(|(x, _)| x.system == "chat-sys") {
            if let Some((_, p)) = fan.iter().find(|(x, p)| x.system == peer && p.offered_per_sec == o.offered_per_sec) {
                let _ = rec;
                let ratio = o.delivered_per_cpu_sec() / p.delivered_per_cpu_sec().max(1e-9);
                if best.is_none_or(|b| o.offered_per_sec > b.0) {
                    best = Some((o.offered_per_sec, ratio, p.delivered_per_cpu_sec()));
                }
            }
        }
        if let Some((rate, ratio, _)) = best {
            let want = if factor > 1.0 { format!("≥ {factor:.0}x") } else { "more than".into() };
            let _ = writeln!(
                md,
                "| fanout deliveries per server CPU-s {want} {peer} (at {rate:.0} msg/s) | {ratio:.2}x | {} |",
                yes(if factor > 1.0 { ratio >= factor } else { ratio > 1.0 })
            );
        }
    }
    if let Some(rec) = r.records.iter().find(|x| x.scenario == "catchup") {
        let ms = rec.metrics.get("catchup_ms_median").copied().unwrap_or(0.0);
        let _ = writeln!(
            md,
            "| catch-up of {} events < 100 ms | {:.1} ms (median) | {} |",
            rec.params.get("events").cloned().unwrap_or_default(),
            ms,
            yes(ms < 100.0)
        );
    }
    md.push('\n');
}

fn ratios(fan: &[(&Record, &LoadOutcome)], md: &mut String) {
    let chat: Vec<_> = fan.iter().filter(|(x, _)| x.system == "chat-sys" && x.scenario == "fanout").collect();
    let mut lines = Vec::new();
    for (_, o) in &chat {
        let mut cells = Vec::new();
        for peer in ["broadcast-limit", "rabbitmq-web-stomp", "centrifugo"] {
            if let Some((_, p)) = fan.iter().find(|(x, p)| x.system == peer && p.offered_per_sec == o.offered_per_sec) {
                cells.push(format!(
                    "{:.2}x / {:.2}x",
                    o.delivered_per_cpu_sec() / p.delivered_per_cpu_sec().max(1e-9),
                    o.delivered_per_sec / p.delivered_per_sec.max(1e-9)
                ));
            } else {
                cells.push("–".into());
            }
        }
        lines.push(format!("| {:.0} | {} |", o.offered_per_sec, cells.join(" | ")));
    }
    if !lines.is_empty() {
        let _ = writeln!(
            md,
            "chat-sys relative to each system at the same offered rate (deliveries per server CPU-second / deliveries per second):\n\n| offered msg/s | vs broadcast limit | vs RabbitMQ Web-STOMP | vs Centrifugo |\n|---|---|---|---|\n{}\n",
            lines.join("\n")
        );
    }
}

fn systems<'a>(fan: &[(&'a Record, &'a LoadOutcome)]) -> Vec<&'a str> {
    let mut s: Vec<&str> = Vec::new();
    for (r, _) in fan {
        if r.scenario == "fanout" && !s.contains(&r.system.as_str()) {
            s.push(&r.system);
        }
    }
    s
}

const COLORS: [RGBColor; 5] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
];

fn plot_err(path: &Path) -> impl Fn(String) -> BenchError + '_ {
    move |e| BenchError::Plot(path.display().to_string(), e)
}

fn throughput_plot(fan: &[(&Record, &LoadOutcome)], path: &Path) -> Result<(), BenchError> {
    let err = plot_err(path);
    let root = BitMapBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let max =
        fan.iter().map(|(r, o)| (o.offered_per_sec * members(r)).max(o.delivered_per_sec)).fold(1.0f64, f64::max) * 1.1;
    let mut chart = ChartBuilder::on(&root)
        .caption("Fanout: deliveries/s against offered deliveries/s", ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..max, 0f64..max)
        .map_err(|e| err(e.to_string()))?;
    chart
        .configure_mesh()
        .x_desc("offered deliveries/s (rate × members)")
        .y_desc("deliveries/s")
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| err(e.to_string()))?;
    chart
        .draw_series(LineSeries::new([(0.0, 0.0), (max, max)], BLACK.mix(0.3)))
        .map_err(|e| err(e.to_string()))?
        .label("offered")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK.mix(0.3)));
    for (i, sys) in systems(fan).into_iter().enumerate() {
        let c = COLORS[i % COLORS.len()];
        let mut pts: Vec<(f64, f64)> = fan
            .iter()
            .filter(|(r, _)| r.system == sys && r.scenario == "fanout")
            .map(|(r, o)| (o.offered_per_sec * members(r), o.delivered_per_sec))
            .collect();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        chart
            .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
            .map_err(|e| err(e.to_string()))?
            .label(sys)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], c.stroke_width(2)));
        chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 4, c.filled()))).map_err(|e| err(e.to_string()))?;
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.9))
        .label_font(("sans-serif", 14))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| err(e.to_string()))?;
    root.present().map_err(|e| err(e.to_string()))
}

/// x position of a percentile on the "nines" scale: -log10(1 - p).
fn nines(p: f64) -> f64 {
    -(1.0 - (p / 100.0).min(0.99999)).log10()
}

fn latency_plot(fan: &[(&Record, &LoadOutcome)], path: &Path) -> Result<(), BenchError> {
    let err = plot_err(path);
    // The highest offered rate every system ran at.
    let sys = systems(fan);
    let rate = fan
        .iter()
        .filter(|(r, _)| r.scenario == "fanout")
        .map(|(_, o)| o.offered_per_sec)
        .filter(|rate| sys.iter().all(|s| fan.iter().any(|(r, o)| r.system == *s && o.offered_per_sec == *rate)))
        .fold(0.0, f64::max);
    let series: Vec<(&str, Vec<(f64, f64)>)> = sys
        .iter()
        .filter_map(|s| {
            fan.iter()
                .find(|(r, o)| r.system == *s && r.scenario == "fanout" && o.offered_per_sec == rate)
                .map(|(_, o)| (*s, o.distribution.iter().map(|(p, us)| (nines(*p), (us / 1e3).max(0.001))).collect()))
        })
        .collect();
    let ymax = series.iter().flat_map(|(_, v)| v.iter().map(|p| p.1)).fold(1.0, f64::max) * 2.0;
    let ymin = series.iter().flat_map(|(_, v)| v.iter().map(|p| p.1)).fold(ymax, f64::min) / 2.0;
    let root = BitMapBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("Fanout: send→deliver latency at {rate:.0} msg/s"), ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..5.0, (ymin.max(0.001)..ymax).log_scale())
        .map_err(|e| err(e.to_string()))?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency ms (log)")
        .x_labels(6)
        .x_label_formatter(&|x| match x.round() as i32 {
            0 => "0".into(),
            1 => "90".into(),
            2 => "99".into(),
            3 => "99.9".into(),
            4 => "99.99".into(),
            _ => "99.999".into(),
        })
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| err(e.to_string()))?;
    for (i, (name, pts)) in series.into_iter().enumerate() {
        let c = COLORS[i % COLORS.len()];
        chart
            .draw_series(LineSeries::new(pts, c.stroke_width(2)))
            .map_err(|e| err(e.to_string()))?
            .label(name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], c.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.9))
        .label_font(("sans-serif", 14))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| err(e.to_string()))?;
    root.present().map_err(|e| err(e.to_string()))
}

/// The `member_ids` parameter of a chat-sys record; `include` when absent (records made
/// before `--member-ids` existed carried the member ids).
fn member_ids(rec: &Record) -> &str {
    rec.params.get("member_ids").and_then(|v| v.as_str()).unwrap_or("include")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Percentiles;

    fn rec(system: &str, rate: f64, delivered: f64) -> Record {
        let mut r = Record { scenario: "fanout".into(), system: system.into(), ..Default::default() };
        r.params.insert("members".into(), 10.into());
        r.load = Some(LoadOutcome {
            offered_per_sec: rate,
            delivered_per_sec: delivered,
            acked_total: 1,
            server_cpu_secs: 1.0,
            window_secs: 1.0,
            latency: Percentiles { count: 1, p50_us: 100.0, p99_us: 900.0, p999_us: 1000.0, max_us: 2000.0 },
            distribution: vec![(0.0, 50.0), (50.0, 100.0), (99.0, 900.0), (100.0, 2000.0)],
            ..Default::default()
        });
        r
    }

    #[test]
    fn writes_markdown_and_pngs() {
        let dir = tempfile::tempdir().unwrap();
        let r = Results {
            records: vec![
                rec("chat-sys", 100.0, 1000.0),
                rec("centrifugo", 100.0, 1000.0),
                rec("chat-sys", 200.0, 1900.0),
            ],
            ..Default::default()
        };
        let out = dir.path().join("benchmarks.md");
        write(&r, &out, &dir.path().join("bench")).unwrap();
        let md = std::fs::read_to_string(&out).unwrap();
        assert!(md.contains("## Fanout") && md.contains("bench/fanout-latency.png"), "{md}");
        for f in ["fanout-latency.png", "fanout-throughput.png"] {
            let bytes = std::fs::read(dir.path().join("bench").join(f)).unwrap();
            assert!(bytes.starts_with(b"\x89PNG"), "{f}");
        }
        assert!(integrity_failures(&r).is_empty());
    }

    #[test]
    fn other_topologies_get_their_own_section_not_the_main_table() {
        let dir = tempfile::tempdir().unwrap();
        let mut scaled = rec("chat-sys", 100.0, 700.0);
        scaled.topology = Some("scale-out".into());
        let r = Results { records: vec![rec("chat-sys", 100.0, 1000.0), scaled], ..Default::default() };
        let out = dir.path().join("benchmarks.md");
        write(&r, &out, &dir.path().join("bench")).unwrap();
        let md = std::fs::read_to_string(&out).unwrap();
        let (main, rest) = md.split_once("## Fanout: scale-out topology").expect("scale-out section");
        assert!(main.contains("| chat-sys | 100 | 0 | 1000 |") && !main.contains("| 700 |"), "{md}");
        assert!(rest.contains("| chat-sys | 100 | 0 | 700 |"), "{md}");
    }

    #[test]
    fn integrity_failures_name_the_scenario() {
        let mut r = rec("chat-sys", 1.0, 1.0);
        if let Some(o) = r.load.as_mut() {
            o.integrity.lost = 2;
        }
        let res = Results { records: vec![r], ..Default::default() };
        assert_eq!(integrity_failures(&res).len(), 1);
    }
}
