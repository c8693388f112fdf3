//! SMTP commands (RFC 5321 §4.1 with the ESMTP parameters we offer): pure parsing,
//! no I/O. A line arrives here without its CRLF.

use super::address::{AddressError, Mailbox};

/// One client command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `EHLO name`.
    Ehlo(String),
    /// `HELO name`.
    Helo(String),
    /// `MAIL FROM:<path> [params]`; `None` is the null reverse-path `<>`.
    Mail { from: Option<Mailbox>, params: MailParams },
    /// `RCPT TO:<path>`.
    Rcpt { to: Mailbox },
    /// `DATA`.
    Data,
    /// `BDAT size [LAST]` (RFC 3030).
    Bdat { size: u64, last: bool },
    /// `RSET`.
    Rset,
    /// `NOOP`.
    Noop,
    /// `QUIT`.
    Quit,
    /// `VRFY`, answered without disclosing anything.
    Vrfy,
    /// `EXPN`.
    Expn,
    /// `HELP`.
    Help,
    /// `STARTTLS` (RFC 3207).
    StartTls,
    /// `AUTH` (not offered).
    Auth,
}

/// `MAIL` parameters we understand.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailParams {
    /// `SIZE=` (RFC 1870).
    pub size: Option<u64>,
    /// `BODY=8BITMIME` (RFC 6152) or `BODY=7BIT`.
    pub eight_bit: bool,
    /// `ENVID=` (RFC 3461), kept for DSNs.
    pub envelope_id: Option<String>,
}

/// Why a line is not a command we accept; [`SyntaxError::reply_text`] names the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyntaxError {
    /// The verb is not one we know.
    #[error("command unrecognized")]
    Unknown,
    /// A command that takes no argument got one, or a required argument is missing.
    #[error("syntax error in parameters: {0}")]
    Parameters(&'static str),
    /// The path is not `<...>`.
    #[error("syntax error in path: {0}")]
    Path(&'static str),
    /// The address inside the path is invalid.
    #[error("bad address: {0}")]
    Address(#[from] AddressError),
    /// A `MAIL` parameter we do not support (RFC 5321 §4.1.1.11: 555).
    #[error("parameter {0:?} not supported")]
    UnsupportedParameter(String),
    /// A non-ASCII or control byte in the command line.
    #[error("command line holds non-ASCII or control characters")]
    Bytes,
}

impl Command {
    /// Parses one command line (without CRLF).
    pub fn parse(line: &[u8]) -> Result<Self, SyntaxError> {
        let line = std::str::from_utf8(line).map_err(|_| SyntaxError::Bytes)?;
        if line.chars().any(|c| c.is_control() && c != '\t') {
            return Err(SyntaxError::Bytes);
        }
        let (verb, rest) = match line.find(' ') {
            Some(space) => (&line[..space], line[space + 1..].trim()),
            None => (line, ""),
        };
        match verb.to_ascii_uppercase().as_str() {
            "EHLO" => Ok(Self::Ehlo(hello_name(rest)?)),
            "HELO" => Ok(Self::Helo(hello_name(rest)?)),
            "MAIL" => mail(rest),
            "RCPT" => rcpt(rest),
            "DATA" => no_argument(rest, Self::Data),
            "BDAT" => bdat(rest),
            "RSET" => no_argument(rest, Self::Rset),
            "NOOP" => Ok(Self::Noop),
            "QUIT" => no_argument(rest, Self::Quit),
            "VRFY" => Ok(Self::Vrfy),
            "EXPN" => Ok(Self::Expn),
            "HELP" => Ok(Self::Help),
            "STARTTLS" => no_argument(rest, Self::StartTls),
            "AUTH" => Ok(Self::Auth),
            _ => Err(SyntaxError::Unknown),
        }
    }
}

fn no_argument(rest: &str, command: Command) -> Result<Command, SyntaxError> {
    if rest.is_empty() { Ok(command) } else { Err(SyntaxError::Parameters("this command takes no argument")) }
}

fn hello_name(rest: &str) -> Result<String, SyntaxError> {
    let name = rest.split_whitespace().next().ok_or(SyntaxError::Parameters("EHLO/HELO needs a host name"))?;
    if name.len() > 255 {
        return Err(SyntaxError::Parameters("host name too long"));
    }
    Ok(name.to_owned())
}

fn mail(rest: &str) -> Result<Command, SyntaxError> {
    let rest = strip_keyword(rest, "FROM:").ok_or(SyntaxError::Parameters("expected MAIL FROM:<address>"))?;
    let (path, params) = split_path(rest)?;
    let from = if path.is_empty() { None } else { Some(Mailbox::parse(path)?) };
    let mut parsed = MailParams::default();
    for param in params.split_whitespace() {
        let (key, value) = param.split_once('=').unwrap_or((param, ""));
        match key.to_ascii_uppercase().as_str() {
            "SIZE" => {
                parsed.size = Some(value.parse().map_err(|_| SyntaxError::Parameters("SIZE must be a number"))?);
            }
            "BODY" => match value.to_ascii_uppercase().as_str() {
                "8BITMIME" => parsed.eight_bit = true,
                "7BIT" => parsed.eight_bit = false,
                _ => return Err(SyntaxError::UnsupportedParameter(param.to_owned())),
            },
            "ENVID" if !value.is_empty() && value.len() <= 100 => parsed.envelope_id = Some(value.to_owned()),
            _ => return Err(SyntaxError::UnsupportedParameter(param.to_owned())),
        }
    }
    Ok(Command::Mail { from, params: parsed })
}

fn rcpt(rest: &str) -> Result<Command, SyntaxError> {
    let rest = strip_keyword(rest, "TO:").ok_or(SyntaxError::Parameters("expected RCPT TO:<address>"))?;
    let (path, params) = split_path(rest)?;
    if let Some(param) = params.split_whitespace().next() {
        return Err(SyntaxError::UnsupportedParameter(param.to_owned()));
    }
    if path.is_empty() {
        return Err(SyntaxError::Path("a recipient cannot be empty"));
    }
    // RFC 5321 §4.1.1.3: "Postmaster" without a domain is accepted by servers; we
    // require a domain to route on.
    Ok(Command::Rcpt { to: Mailbox::parse(path)? })
}

fn bdat(rest: &str) -> Result<Command, SyntaxError> {
    let mut words = rest.split_whitespace();
    let size = words.next().and_then(|w| w.parse().ok()).ok_or(SyntaxError::Parameters("BDAT needs a chunk size"))?;
    let last = match words.next() {
        None => false,
        Some(word) if word.eq_ignore_ascii_case("LAST") => true,
        Some(_) => return Err(SyntaxError::Parameters("BDAT takes a size and optionally LAST")),
    };
    if words.next().is_some() {
        return Err(SyntaxError::Parameters("BDAT takes a size and optionally LAST"));
    }
    Ok(Command::Bdat { size, last })
}

/// `FROM:` / `TO:` case-insensitively, tolerating a space after the colon.
fn strip_keyword<'a>(rest: &'a str, keyword: &str) -> Option<&'a str> {
    let head = rest.get(..keyword.len())?;
    head.eq_ignore_ascii_case(keyword).then(|| rest[keyword.len()..].trim_start())
}

/// Splits `<path> params` and drops an RFC 5321 source route (`<@a,@b:user@c>`).
fn split_path(rest: &str) -> Result<(&str, &str), SyntaxError> {
    let inner = rest.strip_prefix('<').ok_or(SyntaxError::Path("the address must be in angle brackets"))?;
    let close = inner.find('>').ok_or(SyntaxError::Path("missing '>'"))?;
    let (path, params) = (&inner[..close], inner[close + 1..].trim());
    let path = match path.strip_prefix('@') {
        Some(routed) => {
            routed.split_once(':').map(|(_, mailbox)| mailbox).ok_or(SyntaxError::Path("bad source route"))?
        }
        None => path,
    };
    Ok((path, params))
}

impl SyntaxError {
    /// The reply to a command line that does not parse.
    pub fn reply(&self) -> super::reply::Reply {
        use super::reply::Reply;
        match self {
            Self::Unknown => Reply::new(500, "5.5.1", "Command unrecognized"),
            Self::UnsupportedParameter(_) => Reply::new(555, "5.5.4", self.to_string()),
            Self::Address(_) => Reply::new(501, "5.1.3", self.to_string()),
            Self::Bytes | Self::Parameters(_) | Self::Path(_) => Reply::new(501, "5.5.4", self.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Command, SyntaxError> {
        Command::parse(line.as_bytes())
    }

    #[test]
    fn parses_the_envelope_commands() {
        assert_eq!(parse("ehlo mail.woodgrovebank.com"), Ok(Command::Ehlo("mail.woodgrovebank.com".into())));
        let Ok(Command::Mail { from: Some(from), params }) =
            parse("MAIL FROM:<kim@woodgrovebank.com> SIZE=1024 BODY=8BITMIME ENVID=x1")
        else {
            panic!("MAIL not parsed")
        };
        assert_eq!(from.to_string(), "kim@woodgrovebank.com");
        assert_eq!(params, MailParams { size: Some(1024), eight_bit: true, envelope_id: Some("x1".into()) });
        assert!(matches!(parse("MAIL FROM:<>"), Ok(Command::Mail { from: None, .. })));
        assert!(matches!(parse("mail from: <a@b.com>"), Ok(Command::Mail { from: Some(_), .. })));
        assert!(
            matches!(parse("RCPT TO:<@relay.example:ted@contoso.com>"), Ok(Command::Rcpt { to }) if to.to_string() == "ted@contoso.com")
        );
        assert_eq!(parse("BDAT 100 LAST"), Ok(Command::Bdat { size: 100, last: true }));
        assert_eq!(parse("DATA"), Ok(Command::Data));
    }

    #[test]
    fn refuses_bad_commands_with_the_rule() {
        assert_eq!(parse("HELLO x"), Err(SyntaxError::Unknown));
        assert_eq!(parse("EHLO"), Err(SyntaxError::Parameters("EHLO/HELO needs a host name")));
        assert_eq!(parse("MAIL kim@x.com"), Err(SyntaxError::Parameters("expected MAIL FROM:<address>")));
        assert_eq!(parse("MAIL FROM:kim@x.com"), Err(SyntaxError::Path("the address must be in angle brackets")));
        assert_eq!(parse("MAIL FROM:<> AUTH=x"), Err(SyntaxError::UnsupportedParameter("AUTH=x".into())));
        assert_eq!(parse("MAIL FROM:<> SIZE=lots"), Err(SyntaxError::Parameters("SIZE must be a number")));
        assert_eq!(parse("RCPT TO:<>"), Err(SyntaxError::Path("a recipient cannot be empty")));
        assert_eq!(parse("DATA now"), Err(SyntaxError::Parameters("this command takes no argument")));
        assert_eq!(parse("BDAT"), Err(SyntaxError::Parameters("BDAT needs a chunk size")));
        assert_eq!(Command::parse(b"NOOP \xff"), Err(SyntaxError::Bytes));
        assert_eq!(Command::parse(b"NO\0OP"), Err(SyntaxError::Bytes));
    }
}
