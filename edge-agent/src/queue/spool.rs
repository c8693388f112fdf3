//! The on-disk spool: one file per message (envelope header block, then the
//! message), written to `tmp/`, fsynced, renamed into `msg/` and the directory
//! fsynced before the `250` goes out. Per-recipient outcomes are appended to
//! `state/ID` (fsynced) only when a message is partly done, so a restart neither
//! loses a message nor resends to a recipient already finished.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, Write as _},
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use tracing::warn;

use crate::smtp::address::Mailbox;

/// A queued message's envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Queue id: upper-case hex, unique on this edge.
    pub id: String,
    /// When the `250` was given.
    pub arrival: SystemTime,
    /// `None`: the null reverse-path (no DSN is ever sent for it).
    pub sender: Option<Mailbox>,
    /// RFC 3461 `ENVID`.
    pub envelope_id: Option<String>,
    /// Recipients, in the order given.
    pub recipients: Vec<Mailbox>,
    /// The receive connector it came in on (`edge\\connector`), or `dsn` for reports.
    pub source: String,
    /// The client's address, if it came over SMTP.
    pub client: Option<SocketAddr>,
}

/// What became of one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted by the next hop or the maildir.
    Delivered,
    /// Failed for good (a DSN went or goes to the sender).
    Failed(Failure),
}

/// A recipient's final failure: the enhanced status its DSN reports and the reply
/// line as the queue records it (`550 5.1.1 User unknown`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    status: String,
    text: String,
}

// === impl Failure ===

impl Failure {
    /// A failure this edge decides: `code status text`.
    pub fn new(code: u16, status: &str, text: impl std::fmt::Display) -> Self {
        Self { status: status.to_owned(), text: flat(&format!("{code} {status} {text}")) }
    }

    /// A reply line as a server sent it or the spool kept it (`550 5.1.1 …`): the
    /// one place an enhanced status is read from reply text; none is `5.0.0`.
    pub fn from_reply_line(line: &str) -> Self {
        let status = line
            .split_whitespace()
            .nth(1)
            .filter(|word| {
                let parts: Vec<&str> = word.split('.').collect();
                parts.len() == 3 && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            })
            .unwrap_or("5.0.0");
        Self { status: status.to_owned(), text: flat(line) }
    }

    /// The enhanced status, `5.1.1`.
    pub fn status(&self) -> &str {
        &self.status
    }

    /// The reply line, one line.
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// Reply text on one line (the state file holds one record per line).
fn flat(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

/// A message found in the spool at start-up.
#[derive(Debug)]
pub struct Recovered {
    /// Its envelope.
    pub envelope: Envelope,
    /// Outcomes recorded so far, by recipient index.
    pub outcomes: Vec<Option<Outcome>>,
    /// Size of the message on disk.
    pub size: u64,
}

/// The spool directory.
#[derive(Debug, Clone)]
pub struct Spool {
    root: PathBuf,
}

impl Spool {
    /// Opens (creating) the spool under `root` and clears half-written files.
    pub fn open(root: impl Into<PathBuf>) -> io::Result<Self> {
        let root = root.into();
        for dir in ["tmp", "msg", "state"] {
            fs::create_dir_all(root.join(dir))?;
        }
        for entry in fs::read_dir(root.join("tmp"))? {
            let _ = fs::remove_file(entry?.path());
        }
        Ok(Self { root })
    }

    /// A new queue id: the time in milliseconds, a counter and 16 random bits
    /// (the counter restarts with the process; the random bits keep ids apart
    /// across a restart). Without randomness there is no id, and the caller
    /// spools nothing (an SMTP client gets `451 4.3.0`).
    pub fn new_id() -> Result<String, NoRandomness> {
        id_from(|bytes| ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), bytes))
    }

    /// Stores a message durably: when this returns `Ok`, a crash cannot lose it.
    pub fn store(&self, envelope: &Envelope, message: &[u8]) -> io::Result<()> {
        let temporary = self.root.join("tmp").join(&envelope.id);
        let mut file = File::create(&temporary)?;
        file.write_all(encode_envelope(envelope).as_bytes())?;
        file.write_all(message)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temporary, self.message_path(&envelope.id))?;
        File::open(self.root.join("msg"))?.sync_all()
    }

    /// Every message in the spool, oldest first. Unreadable files are moved to
    /// `corrupt/` with a warning rather than stopping the edge.
    pub fn recover(&self) -> io::Result<Vec<Recovered>> {
        let mut found = Vec::new();
        for entry in fs::read_dir(self.root.join("msg"))? {
            let path = entry?.path();
            match self.load(&path) {
                Ok(recovered) => found.push(recovered),
                Err(error) => {
                    warn!(path = %path.display(), %error, "unreadable spool file moved to corrupt/");
                    let corrupt = self.root.join("corrupt");
                    let _ = fs::create_dir_all(&corrupt);
                    if let Some(name) = path.file_name() {
                        let _ = fs::rename(&path, corrupt.join(name));
                    }
                }
            }
        }
        // Orphaned state files (message removed before its state) are finished work.
        for entry in fs::read_dir(self.root.join("state"))? {
            let path = entry?.path();
            if let Some(name) = path.file_name()
                && !self.root.join("msg").join(name).exists()
            {
                let _ = fs::remove_file(&path);
            }
        }
        found.sort_by_key(|r| r.envelope.arrival);
        Ok(found)
    }

    /// The message bytes (without the envelope block).
    pub fn read_message(&self, id: &str) -> io::Result<Vec<u8>> {
        let bytes = fs::read(self.message_path(id))?;
        let start = find_body(&bytes).ok_or_else(|| invalid("no envelope terminator"))?;
        Ok(bytes[start..].to_vec())
    }

    /// Records recipients' outcomes durably (append + fsync).
    pub fn record(&self, id: &str, outcomes: &[(usize, Outcome)]) -> io::Result<()> {
        let mut text = String::new();
        for (index, outcome) in outcomes {
            match outcome {
                Outcome::Delivered => text.push_str(&format!("delivered {index}\n")),
                Outcome::Failed(failure) => text.push_str(&format!("failed {index} {}\n", failure.text())),
            }
        }
        let mut file = OpenOptions::new().create(true).append(true).open(self.root.join("state").join(id))?;
        file.write_all(text.as_bytes())?;
        file.sync_data()?;
        // A new state file must survive a crash too: its directory entry is synced.
        File::open(self.root.join("state"))?.sync_all()
    }

    /// Moves a message's files to `corrupt/` for an operator to look at: the
    /// message file as `corrupt/ID`, then its state file as `corrupt/ID.state`
    /// (message first: an orphaned state file is harmless). Files already gone
    /// are skipped. The directories are fsynced, so after a crash the message is
    /// neither back in the queue nor lost.
    pub fn quarantine(&self, id: &str) -> io::Result<()> {
        let corrupt = self.root.join("corrupt");
        fs::create_dir_all(&corrupt)?;
        move_if_present(&self.message_path(id), &corrupt.join(id))?;
        move_if_present(&self.root.join("state").join(id), &corrupt.join(format!("{id}.state")))?;
        for dir in [corrupt, self.root.join("msg"), self.root.join("state"), self.root.clone()] {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    }

    /// Removes a finished message (message first: an orphaned state file is harmless).
    pub fn remove(&self, id: &str) -> io::Result<()> {
        fs::remove_file(self.message_path(id))?;
        match fs::remove_file(self.root.join("state").join(id)) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
            _ => Ok(()),
        }
    }

    fn message_path(&self, id: &str) -> PathBuf {
        self.root.join("msg").join(id)
    }

    fn load(&self, path: &Path) -> io::Result<Recovered> {
        let bytes = fs::read(path)?;
        let body = find_body(&bytes).ok_or_else(|| invalid("no envelope terminator"))?;
        let header = std::str::from_utf8(&bytes[..body]).map_err(|_| invalid("envelope is not UTF-8"))?;
        let envelope = decode_envelope(header)?;
        // The id names files (msg/ID, state/ID, corrupt/ID): it must be this file's own
        // name and a queue id, never a path a damaged or planted file chooses.
        if !is_queue_id(&envelope.id) || path.file_name() != Some(std::ffi::OsStr::new(&envelope.id)) {
            return Err(invalid("the envelope's Id is not this file's name (upper-case hex)"));
        }
        let mut outcomes = vec![None; envelope.recipients.len()];
        if let Ok(state) = fs::read_to_string(self.root.join("state").join(&envelope.id)) {
            for line in state.lines() {
                let mut words = line.splitn(3, ' ');
                let (kind, index) = (words.next(), words.next().and_then(|i| i.parse::<usize>().ok()));
                let Some(slot) = index.and_then(|i| outcomes.get_mut(i)) else { continue };
                match kind {
                    Some("delivered") => *slot = Some(Outcome::Delivered),
                    Some("failed") => {
                        *slot = Some(Outcome::Failed(Failure::from_reply_line(words.next().unwrap_or_default())));
                    }
                    _ => {}
                }
            }
        }
        Ok(Recovered { envelope, outcomes, size: (bytes.len() - body) as u64 })
    }
}

/// The system's random number generator failed, so no queue id was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the system random number generator failed; no queue id was made")]
pub struct NoRandomness;

/// A queue id whose random part comes from `fill`; none when `fill` fails.
/// A queue id as [`Spool::new_id`] makes them: upper-case hex, at most 64 characters.
fn is_queue_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
}

fn id_from(fill: impl FnOnce(&mut [u8]) -> Result<(), ring::error::Unspecified>) -> Result<String, NoRandomness> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let millis = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
    let mut random = [0u8; 2];
    fill(&mut random).map_err(|_| NoRandomness)?;
    let count = COUNTER.fetch_add(1, Ordering::Relaxed) & 0xFFFF;
    Ok(format!("{millis:011X}{count:04X}{:04X}", u16::from_be_bytes(random)))
}

fn move_if_present(from: &Path, to: &Path) -> io::Result<()> {
    match fs::rename(from, to) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        result => result,
    }
}

const MAGIC: &str = "DomainSec-Queue: 1";

fn encode_envelope(envelope: &Envelope) -> String {
    let millis = envelope.arrival.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
    let mut text = format!("{MAGIC}\nId: {}\nArrival: {millis}\n", envelope.id);
    text.push_str(&format!("Sender: {}\n", envelope.sender.as_ref().map(ToString::to_string).unwrap_or_default()));
    if let Some(envid) = &envelope.envelope_id {
        text.push_str(&format!("Envelope-Id: {envid}\n"));
    }
    text.push_str(&format!("Source: {}\n", envelope.source));
    if let Some(client) = envelope.client {
        text.push_str(&format!("Client: {client}\n"));
    }
    for recipient in &envelope.recipients {
        text.push_str(&format!("Recipient: {recipient}\n"));
    }
    text.push('\n');
    text
}

fn decode_envelope(header: &str) -> io::Result<Envelope> {
    let mut lines = header.lines();
    if lines.next() != Some(MAGIC) {
        return Err(invalid("not a DomainSec queue file"));
    }
    let mut envelope = Envelope {
        id: String::new(),
        arrival: UNIX_EPOCH,
        sender: None,
        envelope_id: None,
        recipients: Vec::new(),
        source: String::new(),
        client: None,
    };
    for line in lines.take_while(|l| !l.is_empty()) {
        let (key, value) = line.split_once(": ").unwrap_or((line.trim_end_matches(':'), ""));
        match key {
            "Id" => envelope.id = value.to_owned(),
            "Arrival" => {
                let millis = value.parse().map_err(|_| invalid("bad Arrival"))?;
                envelope.arrival = UNIX_EPOCH + Duration::from_millis(millis);
            }
            "Sender" if value.is_empty() => envelope.sender = None,
            "Sender" => envelope.sender = Some(Mailbox::parse(value).map_err(|_| invalid("bad Sender"))?),
            "Envelope-Id" => envelope.envelope_id = Some(value.to_owned()),
            "Source" => envelope.source = value.to_owned(),
            "Client" => envelope.client = value.parse().ok(),
            "Recipient" => envelope.recipients.push(Mailbox::parse(value).map_err(|_| invalid("bad Recipient"))?),
            _ => {}
        }
    }
    if envelope.id.is_empty() || envelope.recipients.is_empty() {
        return Err(invalid("envelope without id or recipients"));
    }
    Ok(envelope)
}

fn find_body(bytes: &[u8]) -> Option<usize> {
    bytes.windows(2).position(|w| w == b"\n\n").map(|p| p + 2)
}

fn invalid(what: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_whose_id_is_not_its_name_goes_to_corrupt_and_names_no_path() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        // Found by the spool_record fuzz target: an Id line that is a path.
        for (name, id) in [("0123ABCD", "/etc/hostname"), ("0123ABCE", "../state/0123ABCE"), ("0123ABCF", "0123ABC0")] {
            let file = format!(
                "DomainSec-Queue: 1\nId: {id}\nArrival: 0\nSender: \nSource: x\nRecipient: a@contoso.com\n\nbody"
            );
            std::fs::write(dir.path().join("msg").join(name), file).unwrap();
        }
        assert!(spool.recover().unwrap().is_empty());
        let mut corrupt: Vec<String> = std::fs::read_dir(dir.path().join("corrupt"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        corrupt.sort();
        assert_eq!(corrupt, ["0123ABCD", "0123ABCE", "0123ABCF"]);
    }

    fn envelope(id: &str) -> Envelope {
        Envelope {
            id: id.to_owned(),
            arrival: UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
            sender: Some(Mailbox::parse("kim@woodgrovebank.com").unwrap()),
            envelope_id: Some("E1".into()),
            recipients: vec![Mailbox::parse("ted@contoso.com").unwrap(), Mailbox::parse("ann@contoso.com").unwrap()],
            source: "mail1\\Inet".into(),
            client: Some("127.0.0.1:4000".parse().unwrap()),
        }
    }

    #[test]
    fn a_stored_message_is_recovered_with_its_outcomes() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        let id = Spool::new_id().unwrap();
        spool.store(&envelope(&id), b"Subject: hi\r\n\r\nbody\r\n\r\n.text\r\n").unwrap();
        spool.record(&id, &[(1, Outcome::Failed(Failure::from_reply_line("550 5.1.1 unknown\r\nuser")))]).unwrap();

        let reopened = Spool::open(dir.path()).unwrap();
        let recovered = reopened.recover().unwrap();
        assert_eq!(recovered.len(), 1);
        assert_eq!(recovered[0].envelope, envelope(&id));
        let failure = Failure::from_reply_line("550 5.1.1 unknown  user");
        assert_eq!(failure.status(), "5.1.1");
        assert_eq!(recovered[0].outcomes, vec![None, Some(Outcome::Failed(failure))]);
        assert_eq!(reopened.read_message(&id).unwrap(), b"Subject: hi\r\n\r\nbody\r\n\r\n.text\r\n");
        reopened.remove(&id).unwrap();
        assert!(reopened.recover().unwrap().is_empty());
    }

    #[test]
    fn half_written_and_corrupt_files_do_not_stop_recovery() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        fs::write(dir.path().join("tmp/HALF"), b"DomainSec-Queue: 1\nId: HALF").unwrap();
        fs::write(dir.path().join("msg/BAD"), b"garbage").unwrap();
        fs::write(dir.path().join("state/GONE"), b"delivered 0\n").unwrap();
        let spool = Spool::open(dir.path()).map(|_| spool).unwrap();
        assert!(spool.recover().unwrap().is_empty());
        assert!(!dir.path().join("tmp/HALF").exists());
        assert!(dir.path().join("corrupt/BAD").exists());
        assert!(!dir.path().join("state/GONE").exists());
    }

    #[test]
    fn ids_are_unique() {
        let ids: std::collections::HashSet<_> = (0..1000).map(|_| Spool::new_id().unwrap()).collect();
        assert_eq!(ids.len(), 1000);
    }

    #[test]
    fn a_failed_random_fill_makes_no_queue_id() {
        assert_eq!(id_from(|_| Err(ring::error::Unspecified)), Err(NoRandomness));
    }

    #[test]
    fn a_quarantined_message_leaves_the_queue_for_corrupt_with_its_state() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        let id = Spool::new_id().unwrap();
        spool.store(&envelope(&id), b"Subject: hi\r\n\r\nbody\r\n").unwrap();
        spool.record(&id, &[(0, Outcome::Delivered)]).unwrap();

        spool.quarantine(&id).unwrap();
        assert!(dir.path().join("corrupt").join(&id).exists());
        assert_eq!(
            fs::read_to_string(dir.path().join("corrupt").join(format!("{id}.state"))).unwrap(),
            "delivered 0\n"
        );
        assert!(!dir.path().join("msg").join(&id).exists());
        assert!(!dir.path().join("state").join(&id).exists());
        assert!(Spool::open(dir.path()).unwrap().recover().unwrap().is_empty(), "it does not come back");
        // A message whose files are already gone is quarantined as far as it can be.
        spool.quarantine("GONE").unwrap();
    }
}
