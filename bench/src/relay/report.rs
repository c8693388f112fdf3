//! Percentiles and the two output forms.

use std::{fmt::Write as _, sync::atomic::Ordering};

use serde_json::{Value, json};

use crate::{RunArgs, load::Phase, sink::Arrivals};

/// The measured phase, ready to print.
pub struct Summary {
    json: Value,
    table: String,
}

/// Nearest-rank percentiles, in ns.
struct Percentiles {
    p50: u64,
    p90: u64,
    p99: u64,
    max: u64,
}

// === impl Summary ===

impl Summary {
    pub fn new(args: &RunArgs, phase: &Phase, arrivals: Option<&Arrivals>) -> Self {
        let submit = Percentiles::of(phase.tally.submit.clone());
        let end_to_end = Percentiles::of(phase.end_to_end.clone());
        let accepted = phase.accepted();
        let submit_seconds = phase.submit_elapsed.as_secs_f64();
        let delivery_seconds = phase.delivery_elapsed.map(|elapsed| elapsed.as_secs_f64());
        let delivered_per_second = delivery_seconds.map(|seconds| rate(phase.delivered, seconds));
        let sink = arrivals.map(|arrivals| {
            let errors = arrivals.first_errors.lock().map(|errors| errors.clone()).unwrap_or_default();
            json!({
                "messages": arrivals.messages.load(Ordering::Relaxed),
                "duplicates": arrivals.duplicates.load(Ordering::Relaxed),
                "untracked": arrivals.untracked.load(Ordering::Relaxed),
                "connection_errors": arrivals.connection_errors.load(Ordering::Relaxed),
                "connection_error_samples": errors,
            })
        });
        let json = json!({
            "target": args.target.to_string(),
            "starttls": args.starttls,
            "messages": phase.ids.end - phase.ids.start,
            "concurrency": args.concurrency,
            "size": args.size,
            "warmup": args.warmup,
            "accepted": accepted,
            "rejected": phase.tally.rejected,
            "failed": phase.tally.failed,
            "connection_errors": phase.tally.connection_errors,
            "error_samples": phase.tally.samples,
            "submit_seconds": submit_seconds,
            "accepted_per_second": rate(accepted, submit_seconds),
            "delivered": arrivals.map(|_| phase.delivered),
            "lost": arrivals.map(|_| phase.lost),
            "arrived_unacknowledged": arrivals.map(|_| phase.arrived_unacknowledged),
            "delivery_seconds": delivery_seconds,
            "delivered_per_second": delivered_per_second,
            "timed_out": phase.timed_out,
            "submit_latency_ms": submit.as_ref().map(Percentiles::json),
            "end_to_end_latency_ms": end_to_end.as_ref().map(Percentiles::json),
            "sink": sink,
        });
        let table = table(args, phase, submit.as_ref(), end_to_end.as_ref());
        Self { json, table }
    }

    pub fn json(&self) -> String {
        self.json.to_string()
    }

    pub fn table(&self) -> &str {
        &self.table
    }
}

fn table(args: &RunArgs, phase: &Phase, submit: Option<&Percentiles>, end_to_end: Option<&Percentiles>) -> String {
    let mut out = String::new();
    let tls = if args.starttls { "STARTTLS" } else { "plain" };
    let _ = writeln!(
        out,
        "relay-bench: {} messages of {} bytes over {} connections ({tls}) to {}",
        phase.ids.end - phase.ids.start,
        args.size,
        args.concurrency,
        args.target
    );
    let _ = writeln!(out, "{:<30}{:>10}{:>10}{:>12}", "", "messages", "seconds", "msgs/s");
    let submit_seconds = phase.submit_elapsed.as_secs_f64();
    let accepted = phase.accepted();
    let _ = writeln!(
        out,
        "{:<30}{accepted:>10}{submit_seconds:>10.3}{:>12.1}",
        "accepted by the relay",
        rate(accepted, submit_seconds)
    );
    if let Some(elapsed) = phase.delivery_elapsed {
        let seconds = elapsed.as_secs_f64();
        let _ = writeln!(
            out,
            "{:<30}{:>10}{seconds:>10.3}{:>12.1}",
            "delivered at the sink",
            phase.delivered,
            rate(phase.delivered, seconds)
        );
    }
    let tally = &phase.tally;
    let _ = writeln!(
        out,
        "errors: {} rejected, {} lost to connection errors, {} connection errors{}",
        tally.rejected,
        tally.failed,
        tally.connection_errors,
        if phase.timed_out { "; DEADLINE PASSED before all arrived" } else { "" }
    );
    for sample in &tally.samples {
        let _ = writeln!(out, "  {sample}");
    }
    let _ = writeln!(out, "{:<30}{:>10}{:>10}{:>10}{:>10}", "latency (ms)", "p50", "p90", "p99", "max");
    for (name, percentiles) in [("submit (end of DATA → 250)", submit), ("end to end (sent → sink)", end_to_end)] {
        let Some(p) = percentiles else { continue };
        let _ = writeln!(out, "{name:<30}{:>10.2}{:>10.2}{:>10.2}{:>10.2}", ms(p.p50), ms(p.p90), ms(p.p99), ms(p.max));
    }
    out
}

// === impl Percentiles ===

impl Percentiles {
    fn of(mut samples: Vec<u64>) -> Option<Self> {
        samples.sort_unstable();
        let last = *samples.last()?;
        let rank = |q: f64| {
            let rank = (q * samples.len() as f64).ceil() as usize;
            samples[rank.clamp(1, samples.len()) - 1]
        };
        Some(Self { p50: rank(0.50), p90: rank(0.90), p99: rank(0.99), max: last })
    }

    fn json(&self) -> Value {
        json!({ "p50": ms(self.p50), "p90": ms(self.p90), "p99": ms(self.p99), "max": ms(self.max) })
    }
}

fn ms(nanos: u64) -> f64 {
    (nanos as f64 / 1e3).round() / 1e3
}

fn rate(count: u64, seconds: f64) -> f64 {
    if seconds > 0.0 { (count as f64 / seconds * 10.0).round() / 10.0 } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let p = Percentiles::of((1..=100).collect()).expect("samples");
        assert_eq!((p.p50, p.p90, p.p99, p.max), (50, 90, 99, 100));
        assert!(Percentiles::of(Vec::new()).is_none());
    }
}
