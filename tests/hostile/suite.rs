//! Named sub-cases run one after another against the shared fixture, each in its
//! own task with a deadline, so one failure (or panic, or hang) is reported and
//! the rest still run. `HOSTILE_CASES=A1,D` runs only the cases whose id starts
//! with one of the given prefixes (the liveness cases expect the others to have run).

use std::{future::Future, pin::Pin, sync::Arc, time::Duration, time::Instant};

use crate::fixture::Fixture;

/// What a case returns: `Err` says what the edge did wrong (with the transcript).
pub type Outcome = anyhow::Result<()>;

type Run = Box<dyn Fn(Arc<Fixture>) -> Pin<Box<dyn Future<Output = Outcome> + Send>> + Send + Sync>;

/// One named attack.
pub struct Case {
    /// `A1`, `B7`, …
    pub id: &'static str,
    /// The attack, in words.
    pub name: &'static str,
    run: Run,
}

/// How the cases went.
pub struct Report {
    lines: Vec<String>,
    failures: Vec<String>,
}

// === impl Case ===

impl Case {
    /// A case running `run(fixture)`.
    pub fn new<F, Fut>(id: &'static str, name: &'static str, run: F) -> Self
    where
        F: Fn(Arc<Fixture>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Outcome> + Send + 'static,
    {
        Self { id, name, run: Box::new(move |fixture| Box::pin(run(fixture))) }
    }
}

// === impl Report ===

impl Report {
    /// Fails the test with every failed case, after listing all of them.
    pub fn assert_all_passed(&self) {
        let table = self.lines.join("\n");
        println!("{table}");
        assert!(
            self.failures.is_empty(),
            "{} hostile case(s) failed:\n\n{}\n\nsummary:\n{table}",
            self.failures.len(),
            self.failures.join("\n\n")
        );
    }
}

/// Runs `cases` in order (those selected by `HOSTILE_CASES`).
pub async fn run(fixture: &Arc<Fixture>, cases: Vec<Case>) -> Report {
    let selected = std::env::var("HOSTILE_CASES").ok();
    let wanted =
        |id: &str| selected.as_deref().is_none_or(|list| list.split(',').any(|prefix| id.starts_with(prefix.trim())));
    let mut report = Report { lines: Vec::new(), failures: Vec::new() };
    for case in cases.into_iter().filter(|c| wanted(c.id)) {
        let started = Instant::now();
        let task = tokio::spawn((case.run)(fixture.clone()));
        let abort = task.abort_handle();
        let outcome = match tokio::time::timeout(CASE_DEADLINE, task).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(join)) => Err(anyhow::anyhow!("panicked: {}", panic_text(join))),
            Err(_) => {
                abort.abort();
                Err(anyhow::anyhow!("did not finish within {CASE_DEADLINE:?}"))
            }
        };
        let took = started.elapsed().as_secs_f32();
        let verdict = if outcome.is_ok() { "pass" } else { "FAIL" };
        let line = format!("{verdict}  {:<4} {} ({took:.1}s)", case.id, case.name);
        eprintln!("{line}");
        if let Err(error) = outcome {
            report.failures.push(format!("FAIL {} {}: {error:#}", case.id, case.name));
        }
        report.lines.push(line);
    }
    report
}

fn panic_text(join: tokio::task::JoinError) -> String {
    match join.try_into_panic() {
        Ok(payload) => payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "(no message)".to_owned()),
        Err(join) => join.to_string(),
    }
}

/// The longest one case may take.
const CASE_DEADLINE: Duration = Duration::from_secs(60);
