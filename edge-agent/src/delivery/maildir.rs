//! The local maildir: the embedded default for the organization's own domains.
//!
//! Each address has its own maildir at `root/<domain>/<local part>/{tmp,new,cur}`.
//! [`Maildir::deliver`] follows the maildir protocol: write `tmp/<unique>`,
//! fsync it, rename it into `new/`, fsync `new/`. Directories it creates are
//! made durable too (their parent is fsynced), so an accepted message survives
//! a crash once `deliver` returns.
//!
//! Addresses are mapped to paths conservatively (see [`Maildir::mailbox`]): no
//! address can name a path outside its domain's directory.
//!
//! The code is synchronous `std::fs`; async callers run it in `spawn_blocking`.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, Write as _},
    path::{Path, PathBuf},
    sync::{
        OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

/// A tree of maildirs, one per recipient address.
#[derive(Debug, Clone)]
pub struct Maildir {
    root: PathBuf,
}

/// Why a message could not be delivered into the maildir tree.
#[derive(Debug, thiserror::Error)]
pub enum MaildirError {
    /// The address cannot be mapped to a safe path.
    #[error("cannot map address {address:?} to a mailbox: {reason}")]
    BadAddress {
        /// The address as given.
        address: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A disk operation failed.
    #[error("maildir I/O failed at {}", path.display())]
    Io {
        /// The file or directory the operation was on.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

// === impl Maildir ===

impl Maildir {
    /// A maildir tree under `root`; nothing is created until the first delivery.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Delivers durably into [`Maildir::mailbox`]`/{tmp,new,cur}`: writes
    /// `tmp/<unique>`, fsyncs the file, renames it into `new/` and fsyncs `new/`
    /// (and the parent of every directory it had to create). Returns the final path.
    pub fn deliver(&self, recipient: &str, message: &[u8]) -> Result<PathBuf, MaildirError> {
        let mailbox = self.mailbox(recipient)?;
        let tmp_dir = mailbox.join("tmp");
        let new_dir = mailbox.join("new");
        for sub_dir in [&tmp_dir, &new_dir, &mailbox.join("cur")] {
            create_dirs_durably(sub_dir)?;
        }

        let (name, tmp_path) = write_unique(&tmp_dir, message)?;
        let new_path = new_dir.join(&name);
        if let Err(source) = fs::rename(&tmp_path, &new_path) {
            let _ = fs::remove_file(&tmp_path);
            return Err(io_error(&new_path, source));
        }
        sync_dir(&new_dir)?;
        tracing::debug!(path = %new_path.display(), "delivered to maildir");
        Ok(new_path)
    }

    /// The mailbox directory of an address (for tests and the README: where to look).
    ///
    /// The address is split at its last `@`. The domain must look like a DNS
    /// name (letters, digits, `-`, dot-separated non-empty labels) and is
    /// lowercased. The local part is lowercased, keeps letters, digits and
    /// `. _ + - =`, and every other byte becomes `_`; it must be 1 to 64 bytes
    /// and must not start with `.`.
    pub fn mailbox(&self, recipient: &str) -> Result<PathBuf, MaildirError> {
        let bad = |reason| MaildirError::BadAddress { address: recipient.to_owned(), reason };
        let (local_part, domain) = recipient.rsplit_once('@').ok_or_else(|| bad("no '@'"))?;
        let domain = domain_directory(domain).map_err(bad)?;
        let local_part = local_part_directory(local_part).map_err(bad)?;
        Ok(self.root.join(domain).join(local_part))
    }
}

// === address mapping ===

fn domain_directory(domain: &str) -> Result<String, &'static str> {
    if domain.is_empty() {
        return Err("empty domain");
    }
    if domain.len() > MAX_DOMAIN_BYTES {
        return Err("domain longer than 253 bytes");
    }
    for label in domain.split('.') {
        if label.is_empty() {
            return Err("domain has an empty label");
        }
        if label.len() > MAX_LABEL_BYTES {
            return Err("domain label longer than 63 bytes");
        }
        if !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err("domain has a character other than letters, digits, '-' and '.'");
        }
    }
    Ok(domain.to_ascii_lowercase())
}

fn local_part_directory(local_part: &str) -> Result<String, &'static str> {
    if local_part.is_empty() {
        return Err("empty local part");
    }
    if local_part.len() > MAX_LOCAL_PART_BYTES {
        return Err("local part longer than 64 bytes");
    }
    if local_part.starts_with('.') {
        // Also refuses "." and "..".
        return Err("local part starts with '.'");
    }
    let directory = local_part
        .bytes()
        .map(|byte| match byte {
            b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'+' | b'-' | b'=' => char::from(byte),
            b'A'..=b'Z' => char::from(byte.to_ascii_lowercase()),
            _ => '_',
        })
        .collect();
    Ok(directory)
}

// === disk ===

/// Creates `path` and any missing ancestors; after each creation its parent
/// is fsynced so the new entry is durable.
fn create_dirs_durably(path: &Path) -> Result<(), MaildirError> {
    let mut missing = Vec::new();
    let mut current = path;
    loop {
        match fs::metadata(current) {
            Ok(_) => break,
            Err(error) if error.kind() == io::ErrorKind::NotFound => missing.push(current),
            Err(error) => return Err(io_error(current, error)),
        }
        match current.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => current = parent,
            _ => break,
        }
    }
    for directory in missing.into_iter().rev() {
        match fs::create_dir(directory) {
            Ok(()) => {}
            // Another delivery created it first; it made it durable too.
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
            Err(error) => return Err(io_error(directory, error)),
        }
        sync_dir(parent_directory(directory))?;
    }
    Ok(())
}

/// Writes `message` to a new file with a unique name in `directory` and
/// fsyncs it. Returns the name and the path.
fn write_unique(directory: &Path, message: &[u8]) -> Result<(String, PathBuf), MaildirError> {
    loop {
        let name = unique_name();
        let path = directory.join(&name);
        let mut file = match create_new(&path) {
            Ok(file) => file,
            // Only if the clock went back within this process; take the next counter.
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(error) => return Err(io_error(&path, error)),
        };
        let written = file.write_all(message).and_then(|()| file.sync_all());
        if let Err(error) = written {
            drop(file);
            let _ = fs::remove_file(&path);
            return Err(io_error(&path, error));
        }
        return Ok((name, path));
    }
}

fn create_new(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        // Mail is private to the mailbox owner, as with other delivery agents.
        options.mode(0o600);
    }
    options.open(path)
}

#[cfg(unix)]
fn sync_dir(directory: &Path) -> Result<(), MaildirError> {
    File::open(directory).and_then(|handle| handle.sync_all()).map_err(|error| io_error(directory, error))
}

/// Directories cannot be opened for fsync here; renames are durable on NTFS.
#[cfg(not(unix))]
fn sync_dir(_directory: &Path) -> Result<(), MaildirError> {
    Ok(())
}

fn parent_directory(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

fn io_error(path: &Path, source: io::Error) -> MaildirError {
    MaildirError::Io { path: path.to_owned(), source }
}

/// `<secs>.<micros>_<pid>_<counter>.<host>`: unique per process (counter) and
/// across processes sharing the tree (pid), with no `/` or `:`.
fn unique_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    format!(
        "{}.{:06}_{}_{count}.{}",
        since_epoch.as_secs(),
        since_epoch.subsec_micros(),
        std::process::id(),
        host_name()
    )
}

/// The kernel's host name reduced to `[a-z0-9.-]`, or `edge`.
fn host_name() -> &'static str {
    static HOST_NAME: OnceLock<String> = OnceLock::new();
    HOST_NAME.get_or_init(|| {
        ["/proc/sys/kernel/hostname", "/etc/hostname"]
            .iter()
            .filter_map(|path| fs::read_to_string(path).ok())
            .map(|raw| {
                raw.trim()
                    .bytes()
                    .filter(|b| b.is_ascii_alphanumeric() || *b == b'.' || *b == b'-')
                    .map(|b| char::from(b.to_ascii_lowercase()))
                    .collect::<String>()
            })
            .find(|name| !name.is_empty())
            .unwrap_or_else(|| "edge".to_owned())
    })
}

const MAX_LOCAL_PART_BYTES: usize = 64;
const MAX_DOMAIN_BYTES: usize = 253;
const MAX_LABEL_BYTES: usize = 63;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn tree() -> (tempfile::TempDir, Maildir) {
        let dir = tempfile::TempDir::new().unwrap();
        let maildir = Maildir::new(dir.path().join("mail"));
        (dir, maildir)
    }

    fn entries(directory: &Path) -> Vec<PathBuf> {
        let mut paths: Vec<PathBuf> = fs::read_dir(directory).unwrap().map(|entry| entry.unwrap().path()).collect();
        paths.sort();
        paths
    }

    fn refusal(maildir: &Maildir, address: &str) -> &'static str {
        match maildir.mailbox(address) {
            Err(MaildirError::BadAddress { reason, .. }) => reason,
            other => panic!("{address:?} was not refused: {other:?}"),
        }
    }

    #[test]
    fn delivers_into_new_with_exact_content() {
        let (dir, maildir) = tree();
        let message = b"From: a@example.org\r\n\r\nhello\r\n";
        let path = maildir.deliver("bob@example.net", message).unwrap();

        let mailbox = dir.path().join("mail/example.net/bob");
        assert_eq!(path.parent().unwrap(), mailbox.join("new"));
        assert_eq!(fs::read(&path).unwrap(), message);
        assert!(mailbox.join("cur").is_dir());
        assert_eq!(entries(&mailbox.join("tmp")), Vec::<PathBuf>::new());
    }

    #[test]
    fn file_name_follows_maildir_convention() {
        let (_dir, maildir) = tree();
        let path = maildir.deliver("bob@example.net", b"x").unwrap();
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(!name.contains(':') && !name.contains('/'));
        let (seconds, rest) = name.split_once('.').unwrap();
        assert!(seconds.parse::<u64>().is_ok(), "{name}");
        assert!(rest.contains('_'), "{name}");
    }

    #[test]
    fn two_deliveries_make_two_files() {
        let (_dir, maildir) = tree();
        let first = maildir.deliver("bob@example.net", b"one").unwrap();
        let second = maildir.deliver("bob@example.net", b"two").unwrap();
        assert_ne!(first, second);
        assert_eq!(entries(first.parent().unwrap()), {
            let mut both = vec![first.clone(), second.clone()];
            both.sort();
            both
        });
        assert_eq!(fs::read(&first).unwrap(), b"one");
        assert_eq!(fs::read(&second).unwrap(), b"two");
        let tmp = first.parent().unwrap().parent().unwrap().join("tmp");
        assert_eq!(entries(&tmp), Vec::<PathBuf>::new());
    }

    #[test]
    fn case_variants_share_one_mailbox() {
        let (_dir, maildir) = tree();
        let lower = maildir.deliver("bob@example.net", b"1").unwrap();
        let upper = maildir.deliver("BoB@EXAMPLE.Net", b"2").unwrap();
        assert_eq!(lower.parent(), upper.parent());
        assert_eq!(maildir.mailbox("BoB@EXAMPLE.Net").unwrap(), maildir.mailbox("bob@example.net").unwrap());
    }

    #[test]
    fn splits_at_the_last_at_sign() {
        let (dir, maildir) = tree();
        assert_eq!(maildir.mailbox("\"a@b\"@example.net").unwrap(), dir.path().join("mail/example.net/_a_b_"));
    }

    #[test]
    fn unsafe_local_part_bytes_become_underscores() {
        let (dir, maildir) = tree();
        assert_eq!(maildir.mailbox("a/b@d.com").unwrap(), dir.path().join("mail/d.com/a_b"));
        assert_eq!(maildir.mailbox("a\\b c+tag=x@d.com").unwrap(), dir.path().join("mail/d.com/a_b_c+tag=x"));
        assert_eq!(maildir.mailbox("a..b@d.com").unwrap(), dir.path().join("mail/d.com/a..b"));
    }

    #[test]
    fn refuses_path_traversal_in_local_part() {
        let (_dir, maildir) = tree();
        assert_eq!(refusal(&maildir, "../x@d.com"), "local part starts with '.'");
        assert_eq!(refusal(&maildir, "..@d.com"), "local part starts with '.'");
        assert_eq!(refusal(&maildir, ".@d.com"), "local part starts with '.'");
        assert_eq!(refusal(&maildir, ".hidden@d.com"), "local part starts with '.'");
    }

    #[test]
    fn refuses_path_traversal_in_domain() {
        let (_dir, maildir) = tree();
        assert_eq!(refusal(&maildir, "a@../../etc"), "domain has an empty label");
        assert_eq!(refusal(&maildir, "a@d..com"), "domain has an empty label");
        assert_eq!(refusal(&maildir, "a@d.com/x"), "domain has a character other than letters, digits, '-' and '.'");
        assert_eq!(
            refusal(&maildir, "a@[192.0.2.1]"),
            "domain has a character other than letters, digits, '-' and '.'"
        );
    }

    #[test]
    fn refuses_empty_parts_and_missing_at() {
        let (_dir, maildir) = tree();
        assert_eq!(refusal(&maildir, "a@"), "empty domain");
        assert_eq!(refusal(&maildir, "@d.com"), "empty local part");
        assert_eq!(refusal(&maildir, "no-at-sign"), "no '@'");
    }

    #[test]
    fn refuses_overlong_local_part() {
        let (_dir, maildir) = tree();
        assert!(maildir.mailbox(&format!("{}@d.com", "a".repeat(64))).is_ok());
        assert_eq!(refusal(&maildir, &format!("{}@d.com", "a".repeat(65))), "local part longer than 64 bytes");
    }

    #[test]
    fn refused_address_creates_nothing() {
        let (dir, maildir) = tree();
        assert!(matches!(maildir.deliver("../x@d.com", b"x"), Err(MaildirError::BadAddress { .. })));
        assert!(!dir.path().join("mail").exists());
    }

    #[test]
    fn disk_errors_name_the_path() {
        let (dir, maildir) = tree();
        // A file where the domain directory should be.
        fs::create_dir_all(dir.path().join("mail")).unwrap();
        fs::write(dir.path().join("mail/d.com"), b"not a directory").unwrap();
        match maildir.deliver("a@d.com", b"x") {
            Err(MaildirError::Io { path, .. }) => assert!(path.starts_with(dir.path())),
            other => panic!("expected an I/O error, got {other:?}"),
        }
    }
}
