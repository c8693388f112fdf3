//! CPU time from /proc, and pinning processes to cores with taskset(1): the
//! benchmark reports what the controller itself costs, apart from its neighbours.

use std::process::Command;

/// Clock ticks per second of /proc/PID/stat's utime and stime.
pub fn ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
        .unwrap_or(100)
}

/// utime + stime of `pid` (or "self") in ticks; 0 once the process is gone.
pub fn ticks(pid: &str) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0 };
    // The command name may hold spaces: fields are counted after its closing parenthesis.
    let Some((_, rest)) = stat.rsplit_once(')') else { return 0 };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime and stime are fields 14 and 15.
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    field(14) + field(15)
}

/// The PostgreSQL server's processes (postmaster and backends) on this machine.
pub fn postgres_pids() -> Vec<String> {
    Command::new("pgrep")
        .args(["-x", "postgres"])
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// CPU ticks of every PostgreSQL process now.
pub fn postgres_ticks() -> u64 {
    postgres_pids().iter().map(|pid| ticks(pid)).sum()
}

/// Pins every thread of `pid` to `cpus` (a taskset list such as "1" or "0-1").
pub fn pin(pid: &str, cpus: &str) -> bool {
    Command::new("taskset")
        .args(["-a", "-cp", cpus, pid])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A snapshot of the CPU time spent by the controllers, this process (the simulated
/// edges and the measuring) and PostgreSQL.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    pub controllers: u64,
    pub simulator: u64,
    pub postgres: u64,
    pub at: Option<std::time::Instant>,
}

impl Sample {
    pub fn take(controller_pids: &[u32]) -> Self {
        Self {
            controllers: controller_pids.iter().map(|pid| ticks(&pid.to_string())).sum(),
            simulator: ticks("self"),
            postgres: postgres_ticks(),
            at: Some(std::time::Instant::now()),
        }
    }
}

/// CPU spent between two samples, in milliseconds, and the wall time between them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Spent {
    pub controllers_ms: f64,
    pub simulator_ms: f64,
    pub postgres_ms: f64,
    pub wall_ms: f64,
}

impl Spent {
    pub fn between(before: Sample, after: Sample, hz: u64) -> Self {
        let ms = |a: u64, b: u64| b.saturating_sub(a) as f64 * 1000.0 / hz as f64;
        Self {
            controllers_ms: ms(before.controllers, after.controllers),
            simulator_ms: ms(before.simulator, after.simulator),
            postgres_ms: ms(before.postgres, after.postgres),
            wall_ms: match (before.at, after.at) {
                (Some(a), Some(b)) => b.duration_since(a).as_secs_f64() * 1000.0,
                _ => 0.0,
            },
        }
    }
}
