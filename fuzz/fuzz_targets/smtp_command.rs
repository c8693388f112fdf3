//! Fuzzes `edge::smtp::command::Command::parse`, the first code that reads a
//! client's bytes.
//!
//! INVARIANT, for every input line:
//! - `Command::parse` never panics;
//! - an `Ok` command never comes from a line holding CR, LF, NUL or another
//!   control character (no command smuggling through the parser);
//! - the verb of an `Ok` command is the line's first word (ASCII case ignored);
//! - a parsed `MAIL`/`RCPT` mailbox re-parses with `Mailbox::parse` from its
//!   `Display` to an equal value;
//! - `EHLO`/`HELO` names are non-empty whitespace-free words of at most 255
//!   octets, `ENVID` values non-empty words of at most 100;
//! - the command rendered back to its canonical line (`MAIL FROM:<a@b> SIZE=…`)
//!   parses to the same command.
#![no_main]

use edge::smtp::{address::Mailbox, command::Command};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|line: &[u8]| {
    let Ok(command) = Command::parse(line) else { return };
    let text = std::str::from_utf8(line).expect("an Ok command comes from UTF-8");
    assert!(!text.chars().any(|c| c.is_control() && c != '\t'), "control character accepted in {text:?}");
    let verb = text.split(' ').next().unwrap_or_default().to_ascii_uppercase();
    assert_eq!(verb, verb_of(&command), "verb of {text:?} parsed as {command:?}");
    match &command {
        Command::Ehlo(name) | Command::Helo(name) => {
            assert!(!name.is_empty() && name.len() <= 255, "hello name {name:?}");
            assert!(!name.contains(char::is_whitespace), "hello name {name:?} holds whitespace");
        }
        Command::Mail { from, params } => {
            if let Some(from) = from {
                reparses(from);
            }
            if let Some(envid) = &params.envelope_id {
                assert!(!envid.is_empty() && envid.len() <= 100, "ENVID {envid:?}");
                assert!(!envid.contains(char::is_whitespace), "ENVID {envid:?} holds whitespace");
            }
        }
        Command::Rcpt { to } => reparses(to),
        _ => {}
    }
    let canonical = render(&command);
    assert_eq!(
        Command::parse(canonical.as_bytes()).as_ref(),
        Ok(&command),
        "{text:?} parsed as {command:?}, but its canonical form {canonical:?} does not parse back to it"
    );
});

fn reparses(mailbox: &Mailbox) {
    let shown = mailbox.to_string();
    assert_eq!(Mailbox::parse(&shown).as_ref(), Ok(mailbox), "mailbox {mailbox:?} shown as {shown:?}");
}

fn verb_of(command: &Command) -> &'static str {
    match command {
        Command::Ehlo(_) => "EHLO",
        Command::Helo(_) => "HELO",
        Command::Mail { .. } => "MAIL",
        Command::Rcpt { .. } => "RCPT",
        Command::Data => "DATA",
        Command::Bdat { .. } => "BDAT",
        Command::Rset => "RSET",
        Command::Noop => "NOOP",
        Command::Quit => "QUIT",
        Command::Vrfy => "VRFY",
        Command::Expn => "EXPN",
        Command::Help => "HELP",
        Command::StartTls => "STARTTLS",
        Command::Auth => "AUTH",
    }
}

/// The line a well-behaved client would send for `command`.
fn render(command: &Command) -> String {
    match command {
        Command::Ehlo(name) => format!("EHLO {name}"),
        Command::Helo(name) => format!("HELO {name}"),
        Command::Mail { from, params } => {
            let mut line = format!("MAIL FROM:<{}>", from.as_ref().map(ToString::to_string).unwrap_or_default());
            if let Some(size) = params.size {
                line.push_str(&format!(" SIZE={size}"));
            }
            if params.eight_bit {
                line.push_str(" BODY=8BITMIME");
            }
            if let Some(envid) = &params.envelope_id {
                line.push_str(&format!(" ENVID={envid}"));
            }
            line
        }
        Command::Rcpt { to } => format!("RCPT TO:<{to}>"),
        Command::Bdat { size, last: true } => format!("BDAT {size} LAST"),
        Command::Bdat { size, last: false } => format!("BDAT {size}"),
        other => verb_of(other).to_owned(),
    }
}
