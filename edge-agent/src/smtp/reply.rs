//! SMTP replies: a basic code, an RFC 3463 enhanced status code on every line
//! (ENHANCEDSTATUSCODES, RFC 2034), and text. Pure formatting, no I/O.

use std::fmt::Write as _;

/// One reply, possibly multi-line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// 3-digit code.
    pub code: u16,
    /// `x.y.z`, or empty for the greeting and EHLO (which carry none by RFC 2034).
    pub status: &'static str,
    /// One entry per line.
    pub lines: Vec<String>,
}

impl Reply {
    /// A one-line reply.
    pub fn new(code: u16, status: &'static str, text: impl Into<String>) -> Self {
        Self { code, status, lines: vec![sanitize(text.into())] }
    }

    /// A reply without an enhanced code (greeting, EHLO).
    pub fn plain(code: u16, lines: Vec<String>) -> Self {
        Self { code, status: "", lines: lines.into_iter().map(sanitize).collect() }
    }

    /// `2xx`.
    pub fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// The wire form, CRLF-terminated.
    pub fn to_wire(&self) -> String {
        let mut out = String::new();
        let last = self.lines.len().saturating_sub(1);
        for (index, line) in self.lines.iter().enumerate() {
            let separator = if index == last { ' ' } else { '-' };
            let _ = match self.status {
                "" => write!(out, "{}{separator}{line}\r\n", self.code),
                status => write!(out, "{}{separator}{status} {line}\r\n", self.code),
            };
        }
        if self.lines.is_empty() {
            let _ = write!(out, "{} {}\r\n", self.code, self.status);
        }
        out
    }

    /// The first line without CRLF, for logs.
    pub fn summary(&self) -> String {
        let wire = self.to_wire();
        wire.lines().next().unwrap_or_default().to_owned()
    }
}

/// Reply text never carries CR or LF (no reply splitting from echoed input).
fn sanitize(text: String) -> String {
    if text.contains(['\r', '\n']) { text.replace(['\r', '\n'], " ") } else { text }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_single_and_multi_line_replies() {
        assert_eq!(Reply::new(250, "2.1.0", "Sender OK").to_wire(), "250 2.1.0 Sender OK\r\n");
        let ehlo = Reply::plain(250, vec!["mail1.contoso.com Hello".into(), "PIPELINING".into(), "SIZE 100".into()]);
        assert_eq!(ehlo.to_wire(), "250-mail1.contoso.com Hello\r\n250-PIPELINING\r\n250 SIZE 100\r\n");
        assert_eq!(Reply::new(550, "5.7.1", "a\r\nb").to_wire(), "550 5.7.1 a  b\r\n");
    }
}
