//! Buffered SMTP I/O for one connection: command lines with the RFC 5321 length
//! limit, DATA with dot-unstuffing and smuggling-safe end detection, BDAT chunks,
//! and replies batched so pipelined commands are answered in order with one write.

use std::time::Duration;

use tokio::{
    io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _},
    time::Instant,
};

use super::budget::Reservation;
use crate::smtp::reply::Reply;

/// What reading a command line produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A line without its CRLF.
    Command(Vec<u8>),
    /// Longer than the limit; the rest up to the next LF was discarded.
    TooLong,
    /// Terminated by a bare LF (not CRLF).
    BareLf,
}

/// Why reading stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The client closed the connection.
    #[error("client closed the connection")]
    Closed,
    /// Nothing arrived within the idle timeout, or the session ran past its total time.
    #[error("timeout")]
    Timeout,
    /// Socket or TLS error.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// A message body read with DATA: the bytes (unstuffed, CRLF line ends) and the
/// first rule it broke, if any (the caller still answers only after the end).
#[derive(Debug, Default)]
pub struct Body {
    /// The message, up to the size limit.
    pub bytes: Vec<u8>,
    /// Total octets received (also beyond the limit).
    pub received: u64,
    /// A bare CR or LF was seen.
    pub bare_line_ending: bool,
    /// A NUL octet was seen.
    pub nul: bool,
    /// A line longer than the text line limit was seen.
    pub long_line: bool,
    /// The edge's memory budget for bodies was exhausted; the rest was dropped.
    pub over_budget: bool,
}

/// Timeouts for reads.
#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    /// Longest wait for the next bytes.
    pub idle: Duration,
    /// End of the whole session.
    pub session_end: Instant,
}

/// A connection: the stream with its read and write buffers.
pub struct Connection<S> {
    stream: S,
    input: Vec<u8>,
    start: usize,
    output: Vec<u8>,
    deadlines: Deadlines,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    /// Wraps a stream, keeping bytes already read (none for a fresh socket).
    pub fn new(stream: S, deadlines: Deadlines) -> Self {
        Self { stream, input: Vec::with_capacity(4096), start: 0, output: Vec::with_capacity(1024), deadlines }
    }

    /// Queues a reply; it is written before the next read would block.
    pub fn reply(&mut self, reply: &Reply) {
        self.output.extend_from_slice(reply.to_wire().as_bytes());
    }

    /// Writes queued replies now, within the same deadlines as reads: a client
    /// that pipelines and never reads cannot hold the session (and its slot) forever.
    pub async fn flush(&mut self) -> std::io::Result<()> {
        if self.output.is_empty() {
            return Ok(());
        }
        let deadline = (Instant::now() + self.deadlines.idle).min(self.deadlines.session_end);
        let write = async {
            self.stream.write_all(&self.output).await?;
            self.stream.flush().await
        };
        match tokio::time::timeout_at(deadline, write).await {
            Ok(result) => result?,
            Err(_) => return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "client does not read replies")),
        }
        self.output.clear();
        Ok(())
    }

    /// True when a complete line is already buffered (the client pipelined).
    pub fn has_buffered_line(&self) -> bool {
        self.input[self.start..].contains(&b'\n')
    }

    /// Drops buffered input: after STARTTLS nothing sent in plain text may be
    /// taken as sent under TLS (CVE-2011-0411 command injection).
    pub fn discard_buffered(&mut self) -> usize {
        let dropped = self.input.len() - self.start;
        self.input.clear();
        self.start = 0;
        dropped
    }

    /// Gives back the stream (for the TLS upgrade).
    pub fn into_stream(self) -> S {
        self.stream
    }

    /// Reads one command line of at most `limit` octets including CRLF.
    pub async fn read_command(&mut self, limit: usize) -> Result<Line, ReadError> {
        let mut too_long = false;
        loop {
            let pending = &self.input[self.start..];
            if let Some(newline) = pending.iter().position(|&b| b == b'\n') {
                let line_end = self.start + newline;
                let line = &self.input[self.start..line_end];
                let result = if too_long || newline + 1 > limit {
                    Line::TooLong
                } else if line.last() == Some(&b'\r') {
                    Line::Command(line[..line.len() - 1].to_vec())
                } else {
                    Line::BareLf
                };
                self.start = line_end + 1;
                return Ok(result);
            }
            if pending.len() > limit {
                // Keep discarding until the end of this over-long line.
                too_long = true;
                self.input.clear();
                self.start = 0;
            }
            self.fill().await?;
        }
    }

    /// Reads a DATA body up to the lone `.` line. Only CRLF `.` CRLF ends it (a
    /// bare-LF variant is content, so no message can be smuggled past this edge).
    pub async fn read_data(
        &mut self,
        size_limit: u64,
        line_limit: usize,
        reservation: &mut Reservation,
    ) -> Result<Body, ReadError> {
        let mut body = Body::default();
        // True while in the tail of an over-long line taken in pieces: neither a
        // terminator nor dot-stuffing can start mid-line.
        let mut continuing = false;
        // The terminator must follow a CRLF: after a bare LF, ".\r\n" is content
        // (else `x\n.\r\n` would end the message and smuggle what follows).
        let mut after_crlf = true;
        loop {
            let pending = &self.input[self.start..];
            let Some(newline) = pending.iter().position(|&b| b == b'\n') else {
                if pending.len() > line_limit {
                    // A very long line: take what we have as content and go on.
                    body.long_line = true;
                    continuing = true;
                    let chunk = pending.to_vec();
                    self.start = self.input.len();
                    take(&mut body, &chunk, size_limit, reservation);
                }
                self.fill().await?;
                continue;
            };
            let line = &self.input[self.start..self.start + newline + 1];
            let crlf = newline >= 1 && line[newline - 1] == b'\r';
            if line == b".\r\n" && !continuing && after_crlf {
                self.start += newline + 1;
                return Ok(body);
            }
            if !crlf || line[..line.len() - if crlf { 2 } else { 1 }].contains(&b'\r') {
                body.bare_line_ending = true;
            }
            if line.contains(&0) {
                body.nul = true;
            }
            if line.len() > line_limit {
                body.long_line = true;
            }
            let unstuffed = if line.first() == Some(&b'.') && !continuing { &line[1..] } else { line };
            continuing = false;
            after_crlf = crlf;
            let chunk = unstuffed.to_vec();
            self.start += newline + 1;
            take(&mut body, &chunk, size_limit, reservation);
        }
    }

    /// Reads exactly `size` octets of a BDAT chunk, appending to `into` while it
    /// stays within `size_limit` and the memory `reservation`. Returns false when
    /// either was exceeded.
    pub async fn read_chunk(
        &mut self,
        size: u64,
        into: &mut Vec<u8>,
        size_limit: u64,
        reservation: &mut Reservation,
    ) -> Result<bool, ReadError> {
        let mut remaining = size;
        let mut within = true;
        while remaining > 0 {
            if self.start == self.input.len() {
                self.fill().await?;
            }
            let available = (self.input.len() - self.start) as u64;
            let take_now = available.min(remaining) as usize;
            let chunk = &self.input[self.start..self.start + take_now];
            if within && (into.len() + chunk.len()) as u64 <= size_limit && reservation.grow(chunk.len()) {
                into.extend_from_slice(chunk);
            } else {
                within = false;
            }
            self.start += take_now;
            remaining -= take_now as u64;
        }
        Ok(within)
    }

    /// Reads more bytes, flushing queued replies first (the client may be waiting).
    async fn fill(&mut self) -> Result<(), ReadError> {
        self.flush().await?;
        if self.start > 0 && self.start == self.input.len() {
            self.input.clear();
            self.start = 0;
        } else if self.start > 64 * 1024 {
            self.input.drain(..self.start);
            self.start = 0;
        }
        let deadline = (Instant::now() + self.deadlines.idle).min(self.deadlines.session_end);
        let mut buffer = [0u8; 16 * 1024];
        let read = tokio::time::timeout_at(deadline, self.stream.read(&mut buffer)).await;
        match read {
            Err(_) => Err(ReadError::Timeout),
            Ok(Ok(0)) => Err(ReadError::Closed),
            Ok(Ok(n)) => {
                self.input.extend_from_slice(&buffer[..n]);
                Ok(())
            }
            Ok(Err(error)) => Err(ReadError::Io(error)),
        }
    }
}

fn take(body: &mut Body, chunk: &[u8], size_limit: u64, reservation: &mut Reservation) {
    body.received += chunk.len() as u64;
    if body.received > size_limit || body.over_budget {
        return;
    }
    if reservation.grow(chunk.len()) {
        body.bytes.extend_from_slice(chunk);
    } else {
        body.over_budget = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unlimited() -> Reservation {
        super::super::budget::BodyBudget::new(usize::MAX).reservation()
    }

    #[tokio::test]
    async fn a_body_past_the_memory_budget_is_read_but_not_kept() {
        let mut conn = connection(b"0123456789\r\n0123456789\r\n.\r\n").await;
        let budget = super::super::budget::BodyBudget::new(15);
        let body = conn.read_data(1000, 1000, &mut budget.reservation()).await.unwrap();
        assert!(body.over_budget);
        assert_eq!(body.bytes, b"0123456789\r\n");
        assert_eq!(budget.used(), 0, "given back when the message is done");
    }

    fn deadlines() -> Deadlines {
        Deadlines { idle: Duration::from_secs(5), session_end: Instant::now() + Duration::from_secs(60) }
    }

    /// Feeds `input` one byte per read, as the slowest client would.
    async fn connection(input: &[u8]) -> Connection<tokio::io::DuplexStream> {
        let (client, server) = tokio::io::duplex(1);
        let input = input.to_vec();
        tokio::spawn(async move {
            let mut client = client;
            for byte in input {
                if client.write_all(&[byte]).await.is_err() {
                    return;
                }
            }
            let _ = client.shutdown().await;
            // Keep reading so server writes never block.
            let mut sink = [0u8; 64];
            while matches!(client.read(&mut sink).await, Ok(n) if n > 0) {}
        });
        Connection::new(server, deadlines())
    }

    #[tokio::test]
    async fn lines_split_at_every_byte_are_reassembled() {
        let mut conn = connection(b"EHLO a\r\nNOOP\nQUIT\r\n").await;
        assert_eq!(conn.read_command(512).await.unwrap(), Line::Command(b"EHLO a".to_vec()));
        assert_eq!(conn.read_command(512).await.unwrap(), Line::BareLf);
        assert_eq!(conn.read_command(512).await.unwrap(), Line::Command(b"QUIT".to_vec()));
        assert!(matches!(conn.read_command(512).await, Err(ReadError::Closed)));
    }

    #[tokio::test]
    async fn an_overlong_command_is_refused_and_the_next_line_still_read() {
        let mut input = vec![b'N'; 600];
        input.extend_from_slice(b"\r\nNOOP\r\n");
        let mut conn = connection(&input).await;
        assert_eq!(conn.read_command(512).await.unwrap(), Line::TooLong);
        assert_eq!(conn.read_command(512).await.unwrap(), Line::Command(b"NOOP".to_vec()));
    }

    #[tokio::test]
    async fn data_ends_only_at_crlf_dot_crlf_and_is_unstuffed() {
        let mut conn = connection(b"a\r\n..b\r\nc\n.\nd\r\n.\r\nNOOP\r\n").await;
        let body = conn.read_data(1000, 1000, &mut unlimited()).await.unwrap();
        assert_eq!(body.bytes, b"a\r\n.b\r\nc\n\nd\r\n");
        assert!(body.bare_line_ending, "bare LF is flagged, and does not end the message");
        assert_eq!(conn.read_command(512).await.unwrap(), Line::Command(b"NOOP".to_vec()));
    }

    #[tokio::test]
    async fn a_dot_line_after_a_bare_lf_does_not_end_the_message() {
        let mut conn = connection(b"x\n.\r\nMAIL FROM:<evil@x.com>\r\n.\r\nNOOP\r\n").await;
        let body = conn.read_data(1000, 1000, &mut unlimited()).await.unwrap();
        assert!(body.bare_line_ending);
        assert!(body.bytes.ends_with(b"MAIL FROM:<evil@x.com>\r\n"), "{:?}", String::from_utf8_lossy(&body.bytes));
        assert_eq!(conn.read_command(512).await.unwrap(), Line::Command(b"NOOP".to_vec()));
    }

    #[tokio::test]
    async fn data_over_the_size_limit_is_read_to_the_end_but_not_kept() {
        let mut conn = connection(b"0123456789\r\n0123456789\r\n.\r\n").await;
        let body = conn.read_data(15, 1000, &mut unlimited()).await.unwrap();
        assert_eq!(body.received, 24);
        assert_eq!(body.bytes, b"0123456789\r\n");
    }

    #[tokio::test]
    async fn nul_and_long_lines_are_flagged() {
        let mut conn = connection(b"a\0b\r\n0123456789\r\n.\r\n").await;
        let body = conn.read_data(1000, 8, &mut unlimited()).await.unwrap();
        assert!(body.nul && body.long_line && !body.bare_line_ending);
    }

    #[tokio::test]
    async fn bdat_chunks_are_exact_and_binary() {
        let mut conn = connection(b"\r\n.\r\nxyzNOOP\r\n").await;
        let mut message = Vec::new();
        assert!(conn.read_chunk(8, &mut message, 100, &mut unlimited()).await.unwrap());
        assert_eq!(message, b"\r\n.\r\nxyz");
        assert_eq!(conn.read_command(512).await.unwrap(), Line::Command(b"NOOP".to_vec()));
    }
}
