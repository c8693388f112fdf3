//! SMTP line and reply I/O shared by the sink and the load generator.

use std::{fmt, str::FromStr};

use anyhow::{Context, bail};
use tokio::io::{self, AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

/// A mailbox for MAIL FROM / RCPT TO and the headers: `local@domain`.
#[derive(Debug, Clone)]
pub struct Mailbox(String);

/// One SMTP reply; `text` holds every line of a multi-line reply, newline-separated.
#[derive(Debug)]
pub struct Reply {
    pub code: u16,
    pub text: String,
}

/// Reads one line (up to [`MAX_LINE`] bytes) into `line`, CRLF included; 0 at end of stream.
pub async fn read_line<R: AsyncBufRead + Unpin>(reader: &mut R, line: &mut Vec<u8>) -> io::Result<usize> {
    line.clear();
    (&mut *reader).take(MAX_LINE).read_until(b'\n', line).await
}

/// Reads a whole (possibly multi-line) reply.
pub async fn read_reply<R: AsyncBufRead + Unpin>(reader: &mut R, line: &mut Vec<u8>) -> anyhow::Result<Reply> {
    let mut text = String::new();
    loop {
        if read_line(reader, line).await? == 0 {
            bail!("connection closed by the server");
        }
        let code = line
            .get(..3)
            .and_then(|digits| std::str::from_utf8(digits).ok())
            .and_then(|digits| digits.parse::<u16>().ok())
            .with_context(|| format!("malformed reply {:?}", String::from_utf8_lossy(line)))?;
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(String::from_utf8_lossy(line).trim_end());
        if line.get(3) != Some(&b'-') {
            return Ok(Reply { code, text });
        }
    }
}

// === impl Mailbox ===

impl FromStr for Mailbox {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let Some((local, domain)) = s.split_once('@') else {
            return Err(format!("{s:?} is not local@domain"));
        };
        let forbidden = |b: u8| b.is_ascii_whitespace() || b.is_ascii_control() || b"<>".contains(&b);
        if local.is_empty() || domain.is_empty() || s.bytes().any(forbidden) {
            return Err(format!("{s:?} is not a plain local@domain mailbox"));
        }
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Display for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// === impl Reply ===

impl Reply {
    /// 2xx.
    pub fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// 421: the server is closing the connection.
    pub fn is_closing(&self) -> bool {
        self.code == 421
    }
}

/// Longest line read in one piece; a longer one arrives in pieces (no bench peer sends one).
const MAX_LINE: u64 = 64 * 1024;
