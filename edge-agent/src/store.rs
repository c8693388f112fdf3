//! The edge's data directory: its identity, whom it trusts, and the last good
//! configuration snapshot. Every write is atomic (temp file, fsync, rename,
//! directory fsync), so a crash leaves either the old or the new file.

use std::{
    fs,
    io::Write,
    os::unix::fs::{DirBuilderExt, OpenOptionsExt},
    path::{Path, PathBuf},
};

use prost::Message;
use proto::edge::Snapshot;
use serde::{Deserialize, Serialize};

/// Paths in the data directory.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

/// What the edge knows about its controllers (written at subscription,
/// updated by snapshots).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControllerTrust {
    /// Organization name.
    pub organization: String,
    /// This edge's name.
    pub edge: String,
    /// This edge's FQDN.
    pub fqdn: String,
    /// Edge-port addresses, tried in order.
    pub endpoints: Vec<String>,
    /// SHA-256 (hex) of every controller certificate the edge accepts.
    pub controller_sha256: Vec<String>,
}

/// A data-dir file that could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// I/O on a named file.
    #[error("{action} {path}: {source}")]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
    /// A file that does not parse.
    #[error("{path} is damaged: {reason}")]
    Damaged { path: PathBuf, reason: String },
    /// `run` before `subscribe`.
    #[error(
        "{path} not found: subscribe this edge first (domainsec-edge subscribe --file NAME.subscription --data-dir {dir})"
    )]
    NotSubscribed { path: PathBuf, dir: String },
}

impl DataDir {
    /// A data dir at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The root path.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The edge's private key (0600; never leaves this directory).
    pub fn key(&self) -> PathBuf {
        self.root.join("identity/edge.key")
    }

    /// The edge's self-signed direct-trust certificate.
    pub fn certificate(&self) -> PathBuf {
        self.root.join("identity/edge.pem")
    }

    /// Whom the edge trusts.
    pub fn trust(&self) -> PathBuf {
        self.root.join("controllers.toml")
    }

    /// The last good snapshot (protobuf).
    pub fn snapshot(&self) -> PathBuf {
        self.root.join("config/snapshot.pb")
    }

    /// Creates the directory tree (0700).
    pub fn create(&self) -> Result<(), StoreError> {
        for dir in [self.root.clone(), self.root.join("identity"), self.root.join("config")] {
            fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir).map_err(|source| StoreError::Io {
                action: "create directory",
                path: dir.clone(),
                source,
            })?;
        }
        Ok(())
    }

    /// Reads the trust file.
    pub fn load_trust(&self) -> Result<ControllerTrust, StoreError> {
        let path = self.trust();
        let text = self.read_required(&path)?;
        toml::from_str(&text).map_err(|e| StoreError::Damaged { path, reason: e.to_string() })
    }

    /// Writes the trust file.
    pub fn store_trust(&self, trust: &ControllerTrust) -> Result<(), StoreError> {
        let text =
            toml::to_string(trust).map_err(|e| StoreError::Damaged { path: self.trust(), reason: e.to_string() })?;
        write_atomic(&self.trust(), text.as_bytes(), 0o600)
    }

    /// The last good snapshot, if any.
    pub fn load_snapshot(&self) -> Result<Option<Snapshot>, StoreError> {
        let path = self.snapshot();
        match fs::read(&path) {
            Ok(bytes) => Snapshot::decode(bytes.as_slice())
                .map(Some)
                .map_err(|e| StoreError::Damaged { path, reason: e.to_string() }),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StoreError::Io { action: "read", path, source }),
        }
    }

    /// Persists a snapshot as the last good one.
    pub fn store_snapshot(&self, snapshot: &Snapshot) -> Result<(), StoreError> {
        write_atomic(&self.snapshot(), &snapshot.encode_to_vec(), 0o600)
    }

    /// Reads a file that subscription must have written.
    pub fn read_required(&self, path: &Path) -> Result<String, StoreError> {
        fs::read_to_string(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                StoreError::NotSubscribed { path: path.to_owned(), dir: self.root.display().to_string() }
            } else {
                StoreError::Io { action: "read", path: path.to_owned(), source }
            }
        })
    }
}

/// Writes a file atomically with `mode` from creation on.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), StoreError> {
    let io = |action, source| StoreError::Io { action, path: path.to_owned(), source };
    let temp = path.with_extension("tmp");
    let _ = fs::remove_file(&temp);
    let mut file =
        fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&temp).map_err(|e| io("create", e))?;
    file.write_all(contents).map_err(|e| io("write", e))?;
    file.sync_all().map_err(|e| io("sync", e))?;
    fs::rename(&temp, path).map_err(|e| io("rename", e))?;
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    fs::File::open(parent).and_then(|dir| dir.sync_all()).map_err(|e| io("sync directory of", e))?;
    Ok(())
}
