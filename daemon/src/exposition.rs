//! Prometheus text exposition written by convention, in one place: every family
//! with `# HELP` and `# TYPE` once, counters named `…_total`, label values
//! escaped (backslash, quote, newline), so both daemons' pages pass
//! `promtool check metrics`.

use std::fmt::Write as _;

/// An exposition page being written.
#[derive(Debug, Default)]
pub struct Exposition {
    text: String,
}

impl Exposition {
    /// An empty page.
    pub fn new() -> Self {
        Self::default()
    }

    /// A counter without labels; `name` without `_total`, which is added.
    pub fn counter(&mut self, name: &str, help: &str, value: u64) -> &mut Self {
        self.counter_family(name, help, [(Vec::<(&str, &str)>::new(), value)])
    }

    /// A counter family, one sample per label set; `name` without `_total`.
    pub fn counter_family<'a, L>(
        &mut self,
        name: &str,
        help: &str,
        samples: impl IntoIterator<Item = (L, u64)>,
    ) -> &mut Self
    where
        L: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let name = format!("{name}_total");
        self.header(&name, help, "counter");
        for (labels, value) in samples {
            self.sample(&name, labels, &value.to_string());
        }
        self
    }

    /// A gauge without labels.
    pub fn gauge(&mut self, name: &str, help: &str, value: impl std::fmt::Display) -> &mut Self {
        self.header(name, help, "gauge");
        self.sample(name, Vec::<(&str, &str)>::new(), &value.to_string());
        self
    }

    /// A gauge family, one sample per label set (a family without samples still
    /// gets its HELP and TYPE, so an alert can be written before the first sample).
    pub fn gauge_family<'a, L>(
        &mut self,
        name: &str,
        help: &str,
        samples: impl IntoIterator<Item = (L, i64)>,
    ) -> &mut Self
    where
        L: IntoIterator<Item = (&'a str, &'a str)>,
    {
        self.header(name, help, "gauge");
        for (labels, value) in samples {
            self.sample(name, labels, &value.to_string());
        }
        self
    }

    /// A histogram: cumulative `(upper bound, count)` buckets, then the sum and count.
    pub fn histogram(&mut self, name: &str, help: &str, buckets: &[(f64, u64)], sum: f64, count: u64) -> &mut Self {
        self.header(name, help, "histogram");
        let bucket = format!("{name}_bucket");
        for (bound, value) in buckets {
            self.sample(&bucket, [("le", bound.to_string().as_str())], &value.to_string());
        }
        self.sample(&bucket, [("le", "+Inf")], &count.to_string());
        self.sample(&format!("{name}_sum"), Vec::<(&str, &str)>::new(), &sum.to_string());
        self.sample(&format!("{name}_count"), Vec::<(&str, &str)>::new(), &count.to_string());
        self
    }

    /// The page.
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.text)
    }

    fn header(&mut self, name: &str, help: &str, kind: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample<'a>(&mut self, name: &str, labels: impl IntoIterator<Item = (&'a str, &'a str)>, value: &str) {
        let labels: Vec<String> =
            labels.into_iter().map(|(key, value)| format!("{key}=\"{}\"", escape_label(value))).collect();
        let labels = if labels.is_empty() { String::new() } else { format!("{{{}}}", labels.join(",")) };
        let _ = writeln!(self.text, "{name}{labels} {value}");
    }
}

/// For tests: `promtool check metrics` on `page`, when promtool (Debian's
/// `prometheus` package) is installed; `None` when it is not.
#[doc(hidden)]
pub fn promtool_check(page: &str) -> Option<Result<(), String>> {
    use std::io::Write as _;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    let written = child.stdin.take().map(|mut stdin| stdin.write_all(page.as_bytes()));
    let output = child.wait_with_output().ok()?;
    let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    Some(match (written, output.status.success()) {
        (Some(Ok(())), true) => Ok(()),
        _ => Err(said),
    })
}

/// A label value as the text format needs it.
fn escape_label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_carry_help_and_type_and_counters_end_in_total() {
        let page = Exposition::new()
            .counter("domainsec_pushes", "Snapshots pushed", 3)
            .gauge("domainsec_queue_length", "Messages queued", 7)
            .counter_family("domainsec_failures", "By reason", [([("reason", "revoked")], 2)])
            .finish();
        assert_eq!(
            page,
            "# HELP domainsec_pushes_total Snapshots pushed\n# TYPE domainsec_pushes_total counter\n\
             domainsec_pushes_total 3\n# HELP domainsec_queue_length Messages queued\n\
             # TYPE domainsec_queue_length gauge\ndomainsec_queue_length 7\n\
             # HELP domainsec_failures_total By reason\n# TYPE domainsec_failures_total counter\n\
             domainsec_failures_total{reason=\"revoked\"} 2\n"
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let page = Exposition::new().counter_family("x", "y", [([("partner", "a\"b\\c\nd")], 1)]).finish();
        assert!(page.contains("x_total{partner=\"a\\\"b\\\\c\\nd\"} 1"), "{page}");
    }

    #[test]
    fn a_histogram_has_cumulative_buckets_sum_and_count() {
        let page = Exposition::new().histogram("lat_seconds", "Latency", &[(0.1, 1), (1.0, 2)], 0.75, 3).finish();
        assert!(page.contains("lat_seconds_bucket{le=\"0.1\"} 1\nlat_seconds_bucket{le=\"1\"} 2\n"), "{page}");
        assert!(page.ends_with("lat_seconds_bucket{le=\"+Inf\"} 3\nlat_seconds_sum 0.75\nlat_seconds_count 3\n"));
    }
}
