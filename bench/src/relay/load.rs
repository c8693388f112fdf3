//! The load generator: workers that submit messages over reused connections, in phases.

use std::{
    io::Write as _,
    ops::Range,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use rustls::pki_types::ServerName;
use tokio::{
    io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader},
    net::TcpStream,
    task::JoinSet,
};
use tokio_rustls::TlsConnector;

use crate::{
    RunArgs, report,
    sink::{self, Arrivals},
    smtp::{Reply, read_reply},
    tls, unix_nanos,
};

/// What one phase (warm-up or measured) produced.
pub struct Phase {
    pub ids: Range<u64>,
    pub tally: Tally,
    /// From the first connection to the last worker done.
    pub submit_elapsed: Duration,
    /// From the first connection to the last arrival at the sink, if there is a sink.
    pub delivery_elapsed: Option<Duration>,
    /// Bench ids of this phase that arrived at the sink.
    pub delivered: u64,
    /// Bench ids the relay accepted (2xx after the dot) that had not arrived when the phase ended.
    pub lost: u64,
    /// Bench ids that arrived although the relay never acknowledged them to the load generator
    /// (the connection broke before its reply): the sender would send these again.
    pub arrived_unacknowledged: u64,
    /// Their end-to-end latencies, ns.
    pub end_to_end: Vec<u64>,
    /// The deadline passed before every accepted message arrived.
    pub timed_out: bool,
}

/// What the workers counted.
#[derive(Default)]
pub struct Tally {
    /// End of DATA → 2xx reply, ns, per accepted message.
    pub submit: Vec<u64>,
    /// Messages that got a reply other than 2xx (354 to DATA aside).
    pub rejected: u64,
    /// Messages lost to a connection error or the deadline, outcome unknown.
    pub failed: u64,
    /// Connections that failed (each worker then reconnects).
    pub connection_errors: u64,
    /// The first few rejections and errors.
    pub samples: Vec<String>,
    /// The message the worker is sending now.
    in_flight: Option<u64>,
}

/// Runs the warm-up and the measured phase and prints the report.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.concurrency > 0, "--concurrency must be at least 1");
    let total = args.warmup.checked_add(args.messages).context("too many messages")?;
    let arrivals = match args.sink_listen {
        Some(listen) => Some(sink::start(listen, args.starttls, total).await?),
        None => None,
    };
    let plan = Arc::new(Plan::new(&args, total)?);
    if args.warmup > 0 {
        let warmup = phase(&plan, 0..args.warmup, arrivals.as_deref(), &args).await;
        if warmup.timed_out {
            bail!("warm-up: {} of {} messages arrived before the deadline", warmup.delivered, args.warmup);
        }
    }
    let measured = phase(&plan, args.warmup..total, arrivals.as_deref(), &args).await;
    let summary = report::Summary::new(&args, &measured, arrivals.as_deref());
    if args.json {
        println!("{}", summary.json());
    } else {
        print!("{}", summary.table());
    }
    if measured.timed_out {
        bail!("deadline passed: {} of {} accepted messages arrived", measured.delivered, measured.accepted());
    }
    Ok(())
}

/// Everything the workers share, fixed for the run.
struct Plan {
    target: SocketAddrName,
    tls: Option<TlsConnector>,
    ehlo: Vec<u8>,
    mail_from: Vec<u8>,
    rcpt_to: Vec<u8>,
    /// Header lines after the bench ones, the blank line included.
    headers: Vec<u8>,
    /// Body lines making every message `--size` bytes.
    filler: Vec<u8>,
    /// Makes Message-IDs unique across runs.
    run_tag: u64,
    /// Per bench id: the relay accepted it.
    accepted: Vec<AtomicBool>,
}

/// The target and the name presented in TLS (its IP address: no SNI).
struct SocketAddrName {
    address: std::net::SocketAddr,
    server_name: ServerName<'static>,
}

/// The ids of one phase still to send.
struct Claims {
    next: AtomicU64,
    end: u64,
}

enum Outcome {
    /// 2xx after the dot; the submit latency in ns.
    Accepted(u64),
    /// Any other reply; the connection stays usable.
    Rejected(Reply),
}

// === impl Phase ===

impl Phase {
    pub fn accepted(&self) -> u64 {
        self.tally.submit.len() as u64
    }
}

// === impl Tally ===

impl Tally {
    fn note(&mut self, sample: String) {
        if self.samples.len() < MAX_SAMPLES {
            self.samples.push(sample);
        }
    }

    fn merge(&mut self, other: Tally) {
        self.submit.extend(other.submit);
        self.rejected += other.rejected;
        self.failed += other.failed;
        self.connection_errors += other.connection_errors;
        for sample in other.samples {
            self.note(sample);
        }
    }
}

// === impl Plan ===

impl Plan {
    fn new(args: &RunArgs, total: u64) -> anyhow::Result<Self> {
        let (sender, recipient) = (&args.sender, &args.recipient);
        let headers = format!(
            "From: <{sender}>\r\nTo: <{recipient}>\r\nSubject: relay-bench\r\nMIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=us-ascii\r\n\r\n"
        )
        .into_bytes();
        let mut plan = Self {
            target: SocketAddrName { address: args.target, server_name: ServerName::from(args.target.ip()) },
            tls: if args.starttls { Some(tls::connector()?) } else { None },
            ehlo: b"EHLO loadgen.bench.invalid\r\n".to_vec(),
            mail_from: format!("MAIL FROM:<{sender}> SIZE={}\r\n", args.size).into_bytes(),
            rcpt_to: format!("RCPT TO:<{recipient}>\r\n").into_bytes(),
            headers,
            filler: Vec::new(),
            run_tag: unix_nanos() / 1_000_000_000,
            accepted: (0..usize::try_from(total)?).map(|_| AtomicBool::new(false)).collect(),
        };
        let mut sample = Vec::new();
        plan.compose(&mut sample, 0, 0);
        plan.filler = filler(args.size.saturating_sub(sample.len() - END_OF_DATA.len()));
        Ok(plan)
    }

    /// The message for `id`, dot terminator included. Ids and timestamps are fixed-width
    /// (nanos have 19 digits until 2286), so every message has the same size.
    fn compose(&self, message: &mut Vec<u8>, id: u64, sent: u64) {
        message.clear();
        let _ = write!(
            message,
            "X-Bench-Id: {id:010}\r\nX-Bench-Sent: {sent:019}\r\nMessage-ID: <{id:010}.{}@loadgen.bench.invalid>\r\n",
            self.run_tag
        );
        message.extend_from_slice(&self.headers);
        message.extend_from_slice(&self.filler);
        message.extend_from_slice(END_OF_DATA);
    }

    fn mark_accepted(&self, id: u64) {
        if let Some(flag) = usize::try_from(id).ok().and_then(|id| self.accepted.get(id)) {
            flag.store(true, Ordering::Relaxed);
        }
    }

    fn is_accepted(&self, id: u64) -> bool {
        usize::try_from(id).ok().and_then(|id| self.accepted.get(id)).is_some_and(|f| f.load(Ordering::Relaxed))
    }
}

// === impl Claims ===

impl Claims {
    fn claim(&self) -> Option<u64> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        (id < self.end).then_some(id)
    }

    fn exhausted(&self) -> bool {
        self.next.load(Ordering::Relaxed) >= self.end
    }
}

async fn phase(plan: &Arc<Plan>, ids: Range<u64>, arrivals: Option<&Arrivals>, args: &RunArgs) -> Phase {
    let started = Instant::now();
    let started_unix = unix_nanos();
    let deadline = started + args.timeout;
    let claims = Arc::new(Claims { next: AtomicU64::new(ids.start), end: ids.end });
    let mut workers = JoinSet::new();
    for _ in 0..args.concurrency {
        workers.spawn(worker(plan.clone(), claims.clone(), deadline, args.reconnect_window));
    }
    let mut tally = Tally::default();
    while let Some(joined) = workers.join_next().await {
        match joined {
            Ok(worker_tally) => tally.merge(worker_tally),
            Err(error) => tally.note(format!("worker ended abnormally: {error}")),
        }
    }
    let submit_elapsed = started.elapsed();
    let mut phase = Phase {
        ids,
        tally,
        submit_elapsed,
        delivery_elapsed: None,
        delivered: 0,
        lost: 0,
        arrived_unacknowledged: 0,
        end_to_end: Vec::new(),
        timed_out: false,
    };
    let Some(arrivals) = arrivals else {
        return phase;
    };
    phase.timed_out = !wait_for_delivery(plan, arrivals, &phase.ids, deadline).await;
    phase.end_to_end = phase.ids.clone().filter_map(|id| arrivals.latency(id)).collect();
    phase.delivered = phase.end_to_end.len() as u64;
    for id in phase.ids.clone() {
        match (plan.is_accepted(id), arrivals.latency(id).is_some()) {
            (true, false) => phase.lost += 1,
            (false, true) => phase.arrived_unacknowledged += 1,
            _ => {}
        }
    }
    let last = arrivals.last_arrival.load(Ordering::Relaxed);
    phase.delivery_elapsed = (phase.delivered > 0).then(|| Duration::from_nanos(last.saturating_sub(started_unix)));
    phase
}

/// Waits until every accepted id of `ids` has arrived; false if the deadline passes first.
/// Called once the workers are done, so the accepted flags no longer change.
async fn wait_for_delivery(plan: &Plan, arrivals: &Arrivals, ids: &Range<u64>, deadline: Instant) -> bool {
    // Every id below `pending` is settled: not accepted, or arrived.
    let mut pending = ids.start;
    loop {
        while pending < ids.end && (!plan.is_accepted(pending) || arrivals.latency(pending).is_some()) {
            pending += 1;
        }
        if pending == ids.end {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Sends claimed messages until none are left, reconnecting after a connection error for as
/// long as connections keep failing within `reconnect_window` of the last one that worked.
async fn worker(plan: Arc<Plan>, claims: Arc<Claims>, deadline: Instant, reconnect_window: Duration) -> Tally {
    let mut tally = Tally::default();
    let mut failures_in_a_row = 0;
    let mut last_progress = Instant::now();
    while !claims.exhausted() {
        let accepted_before = tally.submit.len();
        let result = tokio::time::timeout_at(deadline.into(), connection(&plan, &claims, &mut tally)).await;
        let error = match result {
            Ok(Ok(())) => break,
            Ok(Err(error)) => error,
            Err(_elapsed) => {
                tally.failed += u64::from(tally.in_flight.take().is_some());
                tally.note("deadline passed while sending".to_owned());
                break;
            }
        };
        tally.failed += u64::from(tally.in_flight.take().is_some());
        tally.connection_errors += 1;
        tally.note(format!("connection: {error:#}"));
        if tally.submit.len() > accepted_before {
            failures_in_a_row = 1;
            last_progress = Instant::now();
        } else {
            failures_in_a_row += 1;
        }
        if last_progress.elapsed() >= reconnect_window || Instant::now() >= deadline {
            tally.note(format!("worker gave up after {failures_in_a_row} failed connections in a row"));
            break;
        }
        tokio::time::sleep(RECONNECT_DELAY).await;
    }
    tally
}

/// One connection: greeting, EHLO, STARTTLS + EHLO if configured, then transactions.
async fn connection(plan: &Plan, claims: &Claims, tally: &mut Tally) -> anyhow::Result<()> {
    let tcp = TcpStream::connect(plan.target.address).await.context("connect")?;
    tcp.set_nodelay(true)?;
    let mut stream = BufReader::new(tcp);
    let mut line = Vec::with_capacity(512);
    expect(&mut stream, &mut line, None, 220).await.context("greeting")?;
    let capabilities = expect(&mut stream, &mut line, Some(plan.ehlo.as_slice()), 250).await.context("EHLO")?;
    let Some(connector) = &plan.tls else {
        return transactions(&mut stream, &mut line, plan, claims, tally, pipelining(&capabilities)).await;
    };
    expect(&mut stream, &mut line, Some(b"STARTTLS\r\n".as_slice()), 220).await.context("STARTTLS")?;
    let tls = connector.connect(plan.target.server_name.clone(), stream.into_inner()).await.context("TLS handshake")?;
    let mut stream = BufReader::new(tls);
    let capabilities =
        expect(&mut stream, &mut line, Some(plan.ehlo.as_slice()), 250).await.context("EHLO after STARTTLS")?;
    transactions(&mut stream, &mut line, plan, claims, tally, pipelining(&capabilities)).await
}

fn pipelining(capabilities: &Reply) -> bool {
    capabilities.text.lines().any(|line| line.get(4..).is_some_and(|k| k.eq_ignore_ascii_case("PIPELINING")))
}

/// Sends `command` (if any) and requires `code` back.
async fn expect<S>(
    stream: &mut BufReader<S>,
    line: &mut Vec<u8>,
    command: Option<&[u8]>,
    code: u16,
) -> anyhow::Result<Reply>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if let Some(command) = command {
        stream.write_all(command).await?;
        stream.flush().await?;
    }
    let reply = read_reply(stream, line).await?;
    if reply.code != code {
        bail!("expected {code}, got {}", reply.text);
    }
    Ok(reply)
}

async fn transactions<S>(
    stream: &mut BufReader<S>,
    line: &mut Vec<u8>,
    plan: &Plan,
    claims: &Claims,
    tally: &mut Tally,
    pipelining: bool,
) -> anyhow::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut message = Vec::with_capacity(plan.filler.len() + 1024);
    while let Some(id) = claims.claim() {
        tally.in_flight = Some(id);
        let outcome = transaction(stream, line, &mut message, plan, id, pipelining).await?;
        tally.in_flight = None;
        match outcome {
            Outcome::Accepted(submit) => {
                plan.mark_accepted(id);
                tally.submit.push(submit);
            }
            Outcome::Rejected(reply) => {
                tally.rejected += 1;
                tally.note(reply.text.clone());
                if reply.is_closing() {
                    bail!("server is closing the connection");
                }
            }
        }
    }
    stream.write_all(b"QUIT\r\n").await?;
    stream.flush().await?;
    // The server may close before or after its 221: either ends the connection.
    let _ = read_reply(stream, line).await;
    Ok(())
}

/// MAIL, RCPT, DATA (pipelined when offered), the message and the dot.
async fn transaction<S>(
    stream: &mut BufReader<S>,
    line: &mut Vec<u8>,
    message: &mut Vec<u8>,
    plan: &Plan,
    id: u64,
    pipelining: bool,
) -> anyhow::Result<Outcome>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let sent = unix_nanos();
    let refusal = if pipelining {
        envelope_pipelined(stream, line, plan).await?
    } else {
        envelope_in_steps(stream, line, plan).await?
    };
    if let Some(refusal) = refusal {
        if !refusal.is_closing() {
            expect(stream, line, Some(b"RSET\r\n".as_slice()), 250).await.context("RSET")?;
        }
        return Ok(Outcome::Rejected(refusal));
    }
    plan.compose(message, id, sent);
    stream.write_all(message).await?;
    stream.flush().await?;
    let end_of_data = Instant::now();
    let reply = read_reply(stream, line).await?;
    let submit = u64::try_from(end_of_data.elapsed().as_nanos()).unwrap_or(u64::MAX);
    Ok(if reply.is_positive() { Outcome::Accepted(submit) } else { Outcome::Rejected(reply) })
}

/// MAIL, RCPT and DATA in one write; the first refusal, if any (then no 354 came).
async fn envelope_pipelined<S>(
    stream: &mut BufReader<S>,
    line: &mut Vec<u8>,
    plan: &Plan,
) -> anyhow::Result<Option<Reply>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut envelope = Vec::with_capacity(plan.mail_from.len() + plan.rcpt_to.len() + 6);
    envelope.extend_from_slice(&plan.mail_from);
    envelope.extend_from_slice(&plan.rcpt_to);
    envelope.extend_from_slice(b"DATA\r\n");
    stream.write_all(&envelope).await?;
    stream.flush().await?;
    let mail = read_reply(stream, line).await?;
    if mail.is_closing() {
        // 421 (e.g. the relay is shutting down): nothing more will be read on this connection.
        return Ok(Some(mail));
    }
    let rcpt = read_reply(stream, line).await?;
    let data = read_reply(stream, line).await?;
    if data.code != 354 {
        return Ok(Some([mail, rcpt].into_iter().find(|reply| !reply.is_positive()).unwrap_or(data)));
    }
    if let Some(refusal) = [mail, rcpt].into_iter().find(|reply| !reply.is_positive()) {
        // 354 despite a refused envelope: end the empty message, keep the refusal.
        stream.write_all(END_OF_DATA).await?;
        stream.flush().await?;
        read_reply(stream, line).await?;
        return Ok(Some(refusal));
    }
    Ok(None)
}

/// MAIL, RCPT and DATA one round trip each, for a server without PIPELINING.
async fn envelope_in_steps<S>(
    stream: &mut BufReader<S>,
    line: &mut Vec<u8>,
    plan: &Plan,
) -> anyhow::Result<Option<Reply>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    for (command, code) in
        [(plan.mail_from.as_slice(), 250), (plan.rcpt_to.as_slice(), 250), (b"DATA\r\n".as_slice(), 354)]
    {
        stream.write_all(command).await?;
        stream.flush().await?;
        let reply = read_reply(stream, line).await?;
        if reply.code != code {
            return Ok(Some(reply));
        }
    }
    Ok(None)
}

/// `len` bytes of 76-character text lines (none starts with a dot), CRLF-terminated.
fn filler(len: usize) -> Vec<u8> {
    if len < 2 {
        return Vec::new();
    }
    let mut body: Vec<u8> = (0..len)
        .map(|at| match at % 78 {
            76 => b'\r',
            77 => b'\n',
            column => b'a' + (column % 26) as u8,
        })
        .collect();
    body[len - 2..].copy_from_slice(b"\r\n");
    if len >= 3 && body[len - 3] == b'\r' {
        // Cut right after a CRLF plus one letter: no bare CR before the new line end.
        body[len - 3] = b'z';
    }
    body
}

const END_OF_DATA: &[u8] = b".\r\n";
const MAX_SAMPLES: usize = 5;
const RECONNECT_DELAY: Duration = Duration::from_millis(100);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filler_has_the_exact_length_and_only_crlf_line_ends() {
        for len in [2, 3, 77, 78, 79, 80, 1000, 4000] {
            let body = filler(len);
            assert_eq!(body.len(), len);
            assert!(body.ends_with(b"\r\n"));
            for (at, &byte) in body.iter().enumerate() {
                if byte == b'\r' {
                    assert_eq!(body.get(at + 1), Some(&b'\n'), "bare CR at {at} for {len}");
                }
                if byte == b'\n' {
                    assert_eq!(body[at - 1], b'\r');
                    assert_ne!(body.get(at + 1), Some(&b'.'));
                }
            }
        }
    }
}
