//! The report section of runs against other topologies than the single-node `chat-sys serve`
//! (the scale-out roles of `scripts/bench-scaleout.sh`): their fanout table, and how they
//! compare with the single-node run at the same offered rate.

use std::fmt::Write as _;

use crate::results::{LoadOutcome, Record, SINGLE_NODE};

use super::mib;

/// The topology name `scripts/bench-scaleout.sh` passes to `chat-bench run --topology`.
pub const SCALE_OUT: &str = "scale-out";

/// Splits `records` into the single-node run's and every other topology's.
pub(super) fn split(records: &[Record]) -> (Vec<Record>, Vec<Record>) {
    records.iter().cloned().partition(|r| r.topology_name() == SINGLE_NODE)
}

fn fanout_loads(records: &[Record]) -> impl Iterator<Item = (&Record, &LoadOutcome)> {
    records
        .iter()
        .filter(|r| r.scenario == "fanout" || r.scenario == "fanout-half")
        .filter_map(|r| r.load.as_ref().map(|o| (r, o)))
}

fn system_label(rec: &Record) -> String {
    if rec.scenario == "fanout-half" { format!("{} (half load)", rec.system) } else { rec.system.clone() }
}

const HEADER: &str = "| system | offered msg/s | acked msg/s | deliveries/s | p50 ms | p99 ms | p99.9 ms | max ms | server CPU-s | server cores | deliveries per server CPU-s | server peak RSS (sum) | errors | lost/dup/order |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";

fn row(rec: &Record, o: &LoadOutcome) -> String {
    format!(
        "| {} | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.0} | {} | {} | {}/{}/{} |\n",
        system_label(rec),
        o.offered_per_sec,
        o.acked_per_sec,
        o.delivered_per_sec,
        o.latency.p50_us / 1e3,
        o.latency.p99_us / 1e3,
        o.latency.p999_us / 1e3,
        o.latency.max_us / 1e3,
        o.server_cpu_secs,
        o.server_cores(),
        o.delivered_per_cpu_sec(),
        mib(o.server_peak_rss_bytes as f64),
        o.errors,
        o.integrity.lost,
        o.integrity.duplicates,
        o.integrity.order_violations + o.integrity.seq_violations,
    )
}

/// Whether two runs had the same load shape (only the topology differs).
fn same_shape(a: &Record, b: &Record) -> bool {
    ["connections", "members", "senders", "body_bytes", "duration_s"]
        .iter()
        .all(|k| a.params.get(*k) == b.params.get(*k))
}

/// Appends one `## Fanout: TOPOLOGY topology` section per topology found in `others` (in
/// order of appearance), comparing its chat-sys rows with the single-node chat-sys fanout
/// rows of `single` at the same offered rate.
pub(super) fn sections(others: &[Record], single: &[Record], md: &mut String) {
    let mut names: Vec<&str> = Vec::new();
    for r in others {
        if !names.contains(&r.topology_name()) {
            names.push(r.topology_name());
        }
    }
    for name in names {
        let recs: Vec<Record> = others.iter().filter(|r| r.topology_name() == name).cloned().collect();
        let fan: Vec<_> = fanout_loads(&recs).collect();
        let Some((first, _)) = fan.iter().find(|(r, _)| r.system == "chat-sys") else { continue };
        let p = |k: &str| first.params.get(k).cloned().unwrap_or_default();
        let what = if name == SCALE_OUT {
            "chat-sys as separate role processes started by `scripts/bench-scaleout.sh` (`chat-sys core`, \
             `chat-sys fanout`, two `chat-sys gateway`s) on PostgreSQL, Redis and Kafka on this machine"
                .to_string()
        } else {
            format!("chat-sys deployed as `{name}`")
        };
        let _ = writeln!(
            md,
            "## Fanout: {name} topology\n\nThe same fanout load against {what}: {} connections spread round-robin \
             over the gateways \
             (the members of a conversation sit on different gateways), conversations of {}, {} senders, \
             {}-byte bodies, {} s warm-up, {} s measured per offered rate. Server CPU-seconds (in the measured \
             window) and peak RSS are summed over the {} role processes; PostgreSQL, Redis and Kafka are not \
             counted, and they share the machine's cores with the roles and the load generator.\n",
            p("connections"),
            p("members"),
            p("senders"),
            p("body_bytes"),
            p("warmup_s"),
            p("duration_s"),
            p("server_processes"),
        );
        md.push_str(HEADER);
        for (rec, o) in &fan {
            md.push_str(&row(rec, o));
        }
        md.push('\n');
        let mut lines = Vec::new();
        for (rec, o) in fan.iter().filter(|(r, _)| r.system == "chat-sys" && r.scenario == "fanout") {
            let same = fanout_loads(single).find(|(r, s)| {
                r.system == "chat-sys"
                    && r.scenario == "fanout"
                    && s.offered_per_sec == o.offered_per_sec
                    && same_shape(r, rec)
            });
            if let Some((_, s)) = same {
                lines.push(format!(
                    "| {:.0} | {:.0} / {:.0} | {:.2} / {:.2} | {:.0} / {:.0} | {:.2}x |",
                    o.offered_per_sec,
                    s.delivered_per_sec,
                    o.delivered_per_sec,
                    s.latency.p99_us / 1e3,
                    o.latency.p99_us / 1e3,
                    s.delivered_per_cpu_sec(),
                    o.delivered_per_cpu_sec(),
                    o.delivered_per_cpu_sec() / s.delivered_per_cpu_sec().max(1e-9),
                ));
            }
        }
        if !lines.is_empty() {
            let _ = writeln!(
                md,
                "{name} against single-node chat-sys at the same offered rate (single-node / {name}):\n\n\
                 | offered msg/s | deliveries/s | p99 ms | deliveries per server CPU-s | CPU efficiency of {name} |\n\
                 |---|---|---|---|---|\n{}\n",
                lines.join("\n")
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Percentiles;

    fn rec(topology: Option<&str>, scenario: &str, rate: f64, cpu: f64) -> Record {
        let mut r = Record {
            scenario: scenario.into(),
            system: "chat-sys".into(),
            topology: topology.map(Into::into),
            ..Default::default()
        };
        r.params.insert("connections".into(), 20.into());
        r.params.insert("server_processes".into(), 4.into());
        r.load = Some(LoadOutcome {
            offered_per_sec: rate,
            delivered_per_sec: rate * 10.0,
            acked_total: 1,
            server_cpu_secs: cpu,
            window_secs: 1.0,
            latency: Percentiles { count: 1, p50_us: 100.0, p99_us: 900.0, p999_us: 1000.0, max_us: 2000.0 },
            ..Default::default()
        });
        r
    }

    #[test]
    fn a_section_per_topology_compared_with_single_node() {
        let all = vec![
            rec(None, "fanout", 100.0, 1.0),
            rec(Some("scale-out"), "fanout", 100.0, 2.0),
            rec(Some("scale-out"), "fanout-half", 50.0, 1.0),
        ];
        let (single, others) = split(&all);
        assert_eq!((single.len(), others.len()), (1, 2));
        let mut md = String::new();
        sections(&others, &single, &mut md);
        assert!(md.contains("## Fanout: scale-out topology"), "{md}");
        assert!(md.contains("summed over the 4 role processes"), "{md}");
        assert!(md.contains("| chat-sys (half load) | 50 |"), "{md}");
        // 1000 deliveries in 1 s: 1000 per CPU-s single-node, 500 scale-out.
        assert!(md.contains("| 100 | 1000 / 1000 | 0.90 / 0.90 | 1000 / 500 | 0.50x |"), "{md}");
    }

    #[test]
    fn no_section_without_other_topologies() {
        let mut md = String::new();
        sections(&[], &[rec(None, "fanout", 1.0, 1.0)], &mut md);
        assert!(md.is_empty());
    }

    #[test]
    fn compared_only_with_a_run_of_the_same_shape() {
        let mut bigger = rec(None, "fanout", 100.0, 1.0);
        bigger.params.insert("connections".into(), 2000.into());
        let mut md = String::new();
        sections(&[rec(Some("scale-out"), "fanout", 100.0, 2.0)], &[bigger], &mut md);
        assert!(md.contains("## Fanout: scale-out topology") && !md.contains("against single-node"), "{md}");
    }
}
