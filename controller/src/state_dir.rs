//! The controller's state directory: the CA key and the admin API's key pair.
//!
//! These files never go to the database, so a database dump holds no private key.
//! Replicas of the controller share the directory (a Kubernetes Secret, say).

use std::{
    fs,
    io::Write,
    os::unix::fs::{DirBuilderExt, OpenOptionsExt},
    path::{Path, PathBuf},
};

/// Paths inside the state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

/// A state file that could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// I/O on a named file.
    #[error("{action} {path}: {source}")]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
    /// `init` found an existing CA key and will not overwrite it.
    #[error(
        "{path} already exists; this state dir belongs to an initialised controller (use another --state-dir, or remove it if the organization is gone)"
    )]
    AlreadyInitialised { path: PathBuf },
    /// `serve` or `admin-cert` found no CA.
    #[error("{path} not found; run `domainsec-controller init` first, or point --state-dir at the directory it wrote")]
    NotInitialised { path: PathBuf },
}

impl StateDir {
    /// A state dir rooted at `root` (not created yet).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The CA's private key.
    pub fn ca_key(&self) -> PathBuf {
        self.root.join("ca.key")
    }

    /// The CA's certificate.
    pub fn ca_certificate(&self) -> PathBuf {
        self.root.join("ca.pem")
    }

    /// The admin API's private key.
    pub fn admin_api_key(&self) -> PathBuf {
        self.root.join("admin-api.key")
    }

    /// The admin API's certificate.
    pub fn admin_api_certificate(&self) -> PathBuf {
        self.root.join("admin-api.pem")
    }

    /// The edge port's direct-trust key.
    pub fn edge_sync_key(&self) -> PathBuf {
        self.root.join("edge-sync.key")
    }

    /// The edge port's direct-trust certificate (self-signed).
    pub fn edge_sync_certificate(&self) -> PathBuf {
        self.root.join("edge-sync.pem")
    }

    /// The key that seals PFX bundles at rest (32 bytes, 0600).
    pub fn seal_key(&self) -> PathBuf {
        self.root.join("pfx-seal.key")
    }

    /// The staged next edge-port certificate and key: (certificate, key).
    pub fn next_edge_sync(&self) -> (PathBuf, PathBuf) {
        (self.root.join("edge-sync.next.pem"), self.root.join("edge-sync.next.key"))
    }

    /// Makes the staged edge-port certificate the current one.
    pub fn promote_next_edge_sync(&self) -> Result<(), StateError> {
        let (next_certificate, next_key) = self.next_edge_sync();
        for (from, to) in [(next_key, self.edge_sync_key()), (next_certificate, self.edge_sync_certificate())] {
            fs::rename(&from, &to).map_err(|source| StateError::Io { action: "rename", path: from.clone(), source })?;
        }
        Ok(())
    }

    /// Creates the directory (0700) if missing; refuses if a CA key is already there.
    pub fn create_fresh(&self) -> Result<(), StateError> {
        if self.ca_key().exists() {
            return Err(StateError::AlreadyInitialised { path: self.ca_key() });
        }
        fs::DirBuilder::new().recursive(true).mode(0o700).create(&self.root).map_err(|source| StateError::Io {
            action: "create state dir",
            path: self.root.clone(),
            source,
        })
    }

    /// Holds the state dir exclusively while the returned file is open. Replicas
    /// sharing one state dir may start at the same moment; whichever is first makes the
    /// keys `serve` creates on first use (edge-port identity, PFX seal key, admin API
    /// certificate) and the others, waiting here, load those instead of racing to write
    /// their own.
    pub fn lock(&self) -> Result<fs::File, StateError> {
        if !self.root.is_dir() {
            return Err(StateError::NotInitialised { path: self.ca_certificate() });
        }
        let path = self.root.join(".serve.lock");
        let io = |action, source| StateError::Io { action, path: path.clone(), source };
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(PRIVATE)
            .open(&path)
            .map_err(|e| io("open", e))?;
        file.lock().map_err(|e| io("lock", e))?;
        Ok(file)
    }

    /// Reads a file that `init` must have written.
    pub fn read(&self, path: &Path) -> Result<String, StateError> {
        if !path.exists() {
            return Err(StateError::NotInitialised { path: path.to_owned() });
        }
        fs::read_to_string(path).map_err(|source| StateError::Io { action: "read", path: path.to_owned(), source })
    }

    /// Removes everything `init` wrote, after a failed `init`.
    pub fn remove_written(&self) {
        for path in [self.ca_key(), self.ca_certificate(), self.admin_api_key(), self.admin_api_certificate()] {
            let _ = fs::remove_file(path);
        }
    }
}

/// Writes `contents` to `path` atomically (temp file, fsync, rename) with `mode`.
///
/// Keys use mode 0600 from the moment the file exists, never a wider one.
pub fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), StateError> {
    let io = |action, source| StateError::Io { action, path: path.to_owned(), source };
    let temp = path.with_extension("tmp");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&temp)
        .map_err(|e| io("create", e))?;
    file.write_all(contents).map_err(|e| io("write", e))?;
    file.sync_all().map_err(|e| io("sync", e))?;
    fs::rename(&temp, path).map_err(|e| io("rename", e))?;
    if let Some(parent) = path.parent() {
        let dir = if parent.as_os_str().is_empty() { Path::new(".") } else { parent };
        fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io("sync directory of", e))?;
    }
    Ok(())
}

/// Mode for private keys and credential bundles.
pub const PRIVATE: u32 = 0o600;
/// Mode for certificates.
pub const PUBLIC: u32 = 0o644;
