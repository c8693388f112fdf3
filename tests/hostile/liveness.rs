//! E. Liveness: after everything above the edge still serves. Two floods start
//! before the first case (endless bytes without a line end; an endless DATA body)
//! and must be cut off by the session timeout; an over-long command line and
//! endless garbage get a reply or closure; the listener, the process and delivery
//! survive it all, and nothing the edge refused ever reached the maildir.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context as _, ensure};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
};

use crate::{
    attacker::{Session, message},
    delivered::unmarked,
    fixture::{Fixture, IDLE_TIMEOUT, MALLORY, POSTMASTER, SESSION_TIMEOUT},
    suite::{Case, Outcome},
};

/// The cases of group E (run last).
pub fn cases() -> Vec<Case> {
    vec![
        Case::new("E1", "the listener still answers EHLO (STARTTLS and CHUNKING offered)", still_answers),
        Case::new("E2", "a 10 KB command line ended by CRLF: 500 5.5.2, and the session goes on", long_line),
        Case::new("E3", "a 10 KB command line without CRLF, then silence: a reply or closure", long_line_unended),
        Case::new("E4", "endless garbage command lines: 421 and closure after the error limit", garbage_lines),
        Case::new(
            "E5",
            "endless bytes without a line end (since the start): cut off by the session timeout",
            no_line_end,
        ),
        Case::new("E6", "an endless DATA body (since the start): cut off by the session timeout", endless_body),
        Case::new("E7", "a clean message still goes through, unmarked", clean_message),
        Case::new("E8", "nothing the edge refused reached the maildir", nothing_refused_delivered),
        Case::new("E9", "the edge process is alive and logged no panic", process_alive),
    ]
}

/// Starts the floods E5 and E6 judge.
pub async fn start_floods(fixture: &Fixture) {
    let address = fixture.inet;
    let stream = TcpStream::connect(address).await.unwrap();
    let no_line_end = tokio::spawn(flood(stream, Vec::new()));
    let stream = TcpStream::connect(address).await.unwrap();
    let prelude = format!("EHLO flood.example\r\nMAIL FROM:<{MALLORY}>\r\nRCPT TO:<{POSTMASTER}>\r\nDATA\r\n");
    let endless_body = tokio::spawn(flood(stream, prelude.into_bytes()));
    fixture.floods.lock().unwrap().extend([(NO_LINE_END, no_line_end), (ENDLESS_BODY, endless_body)]);
}

async fn still_answers(fixture: Arc<Fixture>) -> Outcome {
    let mut session = Session::connect(fixture.inet).await?;
    let ehlo = session.expect("EHLO attacker.example", 250).await?;
    ensure!(ehlo.text.contains("STARTTLS") && ehlo.text.contains("CHUNKING"), "EHLO answered {ehlo}");
    session.quit().await;
    Ok(())
}

async fn long_line(fixture: Arc<Fixture>) -> Outcome {
    let mut session = Session::plain(fixture.inet).await?;
    let mut line = vec![b'A'; 10 * 1024];
    line.extend_from_slice(b"\r\n");
    session.write(&line).await?;
    let reply = session.reply().await?;
    ensure!(reply.is(500, "5.5.2"), "the 10 KB line answered {reply}, expected 500 5.5.2");
    session.expect("NOOP", 250).await?;
    session.quit().await;
    Ok(())
}

async fn long_line_unended(fixture: Arc<Fixture>) -> Outcome {
    let mut session = Session::plain(fixture.inet).await?;
    session.write(&vec![b'A'; 10 * 1024]).await?;
    let within = IDLE_TIMEOUT + Duration::from_secs(5);
    let answer =
        session.reply_within(within).await.with_context(|| format!("neither a reply nor closure within {within:?}"))?;
    if let Some(reply) = answer {
        ensure!(reply.code >= 400, "the unended line answered {reply}");
    }
    Ok(())
}

async fn garbage_lines(fixture: Arc<Fixture>) -> Outcome {
    let stream = TcpStream::connect(fixture.inet).await?;
    let (mut read, mut write) = stream.into_split();
    let writer = tokio::spawn(async move {
        for _ in 0..10_000 {
            if write.write_all(b"XYZZY plugh\r\n").await.is_err() {
                return;
            }
        }
    });
    let mut replies = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(20), read.read_to_end(&mut replies)).await;
    writer.abort();
    let text = String::from_utf8_lossy(&replies);
    ensure!(closed.is_ok(), "the connection was still open after 20 s of garbage; replies so far: {text}");
    ensure!(text.contains("\r\n421 4.7.0"), "no 421 4.7.0 before closure: {}", text.trim_end());
    Ok(())
}

async fn no_line_end(fixture: Arc<Fixture>) -> Outcome {
    judge_flood(&fixture, NO_LINE_END).await
}

async fn endless_body(fixture: Arc<Fixture>) -> Outcome {
    judge_flood(&fixture, ENDLESS_BODY).await
}

async fn clean_message(fixture: Arc<Fixture>) -> Outcome {
    let tag = "E7-clean";
    let mut session = Session::plain(fixture.inet).await?;
    let reply = session.send_with_data(MALLORY, POSTMASTER, &message("{HEAD}", tag, true)).await?;
    ensure!(reply.is(250, "2.6.0"), "{reply}\n{}", session.transcript());
    session.quit().await;
    unmarked(tag, &fixture.await_delivery(tag).await?)
}

async fn nothing_refused_delivered(fixture: Arc<Fixture>) -> Outcome {
    // E7's message was accepted after every refusal, and arrived: the queue is drained.
    let refused = fixture.refused.lock().unwrap().clone();
    let delivered: Vec<&String> = refused.iter().filter(|tag| !fixture.delivered(tag).is_empty()).collect();
    ensure!(delivered.is_empty(), "refused messages were delivered: {delivered:?}");
    Ok(())
}

async fn process_alive(fixture: Arc<Fixture>) -> Outcome {
    let log = {
        let mut edge = fixture.edge.lock().unwrap();
        ensure!(edge.is_running(), "the edge process exited (log: {})", edge.log.display());
        edge.log.clone()
    };
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let panics: Vec<&str> = text.lines().filter(|l| l.contains("panicked")).collect();
    ensure!(panics.is_empty(), "the edge logged panics ({}): {panics:?}", log.display());
    Ok(())
}

/// Writes `prelude`, then 16 KB without a line end every 20 ms until the edge
/// hangs up; returns everything the edge said and when it hung up.
async fn flood(stream: TcpStream, prelude: Vec<u8>) -> (String, Duration) {
    let started = Instant::now();
    let (mut read, mut write) = stream.into_split();
    let writer = tokio::spawn(async move {
        if write.write_all(&prelude).await.is_err() {
            return;
        }
        let chunk = vec![b'x'; 16 * 1024];
        let mut pace = tokio::time::interval(Duration::from_millis(20));
        loop {
            pace.tick().await;
            if write.write_all(&chunk).await.is_err() {
                return;
            }
        }
    });
    let mut said = Vec::new();
    let _ = read.read_to_end(&mut said).await;
    let closed_after = started.elapsed();
    writer.abort();
    (String::from_utf8_lossy(&said).into_owned(), closed_after)
}

/// The flood `name` must have been cut off within the session timeout (plus slack).
async fn judge_flood(fixture: &Fixture, name: &str) -> Outcome {
    let handle = {
        let mut floods = fixture.floods.lock().unwrap();
        let position = floods.iter().position(|(n, _)| *n == name).context("flood not started")?;
        floods.remove(position).1
    };
    let bound = SESSION_TIMEOUT + Duration::from_secs(10);
    // The flood began before the first case: it has had at least as long as this wait.
    let (said, closed_after) = match tokio::time::timeout(bound, handle).await {
        Ok(outcome) => outcome?,
        Err(_) => anyhow::bail!("the edge still took the flood more than {bound:?} after it began"),
    };
    ensure!(closed_after <= bound, "the edge cut the flood off only after {closed_after:?}");
    ensure!(said.starts_with("220"), "the flood was not even greeted: {said:?}");
    if name == ENDLESS_BODY {
        ensure!(said.contains("\r\n354 "), "the flood never got into DATA: {said:?}");
    }
    Ok(())
}

const NO_LINE_END: &str = "no line end";
const ENDLESS_BODY: &str = "endless body";
