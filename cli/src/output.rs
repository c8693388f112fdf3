//! Rendering results: aligned tables for people, JSON for scripts.

use serde::Serialize;

/// The output format chosen with `-o`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns.
    Table,
    /// One JSON document.
    Json,
}

/// Something dsctl prints: as a table, or as JSON.
pub trait Render: Serialize {
    /// Column headers.
    fn headers() -> &'static [&'static str];
    /// One row per item.
    fn row(&self) -> Vec<String>;
}

/// Prints a list.
pub fn list<T: Render>(format: Format, items: &[T]) -> anyhow::Result<()> {
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(items)?),
        Format::Table => print!("{}", table(T::headers(), items.iter().map(Render::row).collect())),
    }
    Ok(())
}

/// Prints one object: `KEY  value` lines for people.
pub fn object<T: Serialize>(format: Format, item: &T, fields: Vec<(&str, String)>) -> anyhow::Result<()> {
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(item)?),
        Format::Table => {
            let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
            for (key, value) in fields {
                println!("{key:<width$}  {value}");
            }
        }
    }
    Ok(())
}

/// Prints a one-line confirmation, or `{"config_version": N, ...}` as JSON.
pub fn done(format: Format, message: &str, config_version: u64) -> anyhow::Result<()> {
    match format {
        Format::Json => println!("{}", serde_json::json!({ "result": message, "config_version": config_version })),
        Format::Table => println!("{message} (config version {config_version})"),
    }
    Ok(())
}

/// Lays out rows under headers, columns two spaces apart.
pub fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<&str>, out: &mut String| {
        let last = cells.len().saturating_sub(1);
        for (index, (cell, width)) in cells.iter().zip(&widths).enumerate() {
            if index == last {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}  "));
            }
        }
        out.push('\n');
    };
    line(headers.to_vec(), &mut out);
    if rows.is_empty() {
        out.push_str("(none)\n");
    }
    for row in &rows {
        line(row.iter().map(String::as_str).collect(), &mut out);
    }
    out
}

/// Joins a list for a table cell; `-` when empty.
pub fn join(values: &[String]) -> String {
    if values.is_empty() { "-".to_owned() } else { values.join(",") }
}

/// An RFC 3339 UTC time shortened for a table: `2026-11-28 23:20:32Z`.
pub fn time(rfc3339: &str) -> String {
    match (rfc3339.get(..10), rfc3339.get(11..19)) {
        (Some(date), Some(clock)) if rfc3339.ends_with("+00:00") || rfc3339.ends_with('Z') => {
            format!("{date} {clock}Z")
        }
        _ => rfc3339.to_owned(),
    }
}

/// A byte count the way Exchange shows limits (`10 MB`).
pub fn size(bytes: u64) -> String {
    const KB: u64 = 1024;
    match bytes {
        b if b >= KB * KB && b % (KB * KB) == 0 => format!("{} MB", b / (KB * KB)),
        b if b >= KB && b % KB == 0 => format!("{} KB", b / KB),
        b => format!("{b} B"),
    }
}

/// Awaits `work`, showing on a terminal's stderr, once a second, how long it has
/// waited of `limit` (nothing when stderr is not a terminal: scripts get no noise).
pub async fn with_progress<T>(what: &str, limit: std::time::Duration, work: impl std::future::Future<Output = T>) -> T {
    use std::io::{IsTerminal as _, Write as _};
    if !std::io::stderr().is_terminal() {
        return work.await;
    }
    let started = tokio::time::Instant::now();
    let mut ticker =
        tokio::time::interval_at(started + std::time::Duration::from_secs(1), std::time::Duration::from_secs(1));
    tokio::pin!(work);
    let mut shown = false;
    let result = loop {
        tokio::select! {
            result = &mut work => break result,
            _ = ticker.tick() => {
                let waited = started.elapsed().as_secs();
                eprint!("\r{what}: {waited} s of at most {} s", limit.as_secs());
                let _ = std::io::stderr().flush();
                shown = true;
            }
        }
    };
    if shown {
        eprintln!();
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let text = table(&["NAME", "X"], vec![vec!["Internet".into(), "1".into()], vec!["a".into(), "22".into()]]);
        assert_eq!(text, "NAME      X\nInternet  1\na         22\n");
    }

    #[test]
    fn empty_tables_say_none() {
        assert_eq!(table(&["A"], vec![]), "A\n(none)\n");
    }

    #[test]
    fn sizes_use_binary_units() {
        assert_eq!(size(10 * 1024 * 1024), "10 MB");
        assert_eq!(size(1536), "1536 B");
        assert_eq!(size(2048), "2 KB");
    }
}
