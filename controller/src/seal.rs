//! Encryption at rest for the one secret the directory must hold for a while: a
//! PFX on its way to edges. AES-256-GCM (ring) with a key kept in the state dir,
//! never in the database, so a database dump cannot open it.

use std::path::Path;

use ring::{
    aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey},
    rand::{SecureRandom, SystemRandom},
};

use crate::state_dir::{self, StateError};

/// The sealing key.
pub struct SealKey {
    key: LessSafeKey,
}

/// Sealing or opening failed.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The key file could not be read or made.
    #[error(transparent)]
    State(#[from] StateError),
    /// A key file of the wrong size, or a damaged sealed value.
    #[error("{0}")]
    Invalid(&'static str),
}

impl SealKey {
    /// Loads the 32-byte key at `path`, making it (mode 0600) on first use.
    pub fn load_or_create(path: &Path) -> Result<Self, SealError> {
        if !path.exists() {
            let mut bytes = [0u8; 32];
            SystemRandom::new().fill(&mut bytes).map_err(|_| SealError::Invalid("no randomness"))?;
            state_dir::write_file(path, &bytes, state_dir::PRIVATE)?;
        }
        let bytes =
            std::fs::read(path).map_err(|source| StateError::Io { action: "read", path: path.to_owned(), source })?;
        let unbound =
            UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| SealError::Invalid("the seal key must be 32 bytes"))?;
        Ok(Self { key: LessSafeKey::new(unbound) })
    }

    /// nonce ‖ ciphertext ‖ tag.
    pub fn seal(&self, plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).map_err(|_| SealError::Invalid("no randomness"))?;
        let mut sealed = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut sealed)
            .map_err(|_| SealError::Invalid("sealing failed"))?;
        let mut out = nonce.to_vec();
        out.extend(sealed);
        Ok(out)
    }

    /// The plaintext of [`Self::seal`]'s output.
    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        if sealed.len() < NONCE_LEN {
            return Err(SealError::Invalid("sealed value too short"));
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Invalid("bad nonce"))?;
        let mut buffer = ciphertext.to_vec();
        let plaintext = self
            .key
            .open_in_place(nonce, Aad::empty(), &mut buffer)
            .map_err(|_| SealError::Invalid("the sealed value does not open with this controller's key"))?;
        Ok(plaintext.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = SealKey::load_or_create(&dir.path().join("pfx.key")).unwrap();
        let sealed = key.seal(b"secret pfx").unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"secret"), "no plaintext in the sealed value");
        assert_eq!(key.open(&sealed).unwrap(), b"secret pfx");
        let again = SealKey::load_or_create(&dir.path().join("pfx.key")).unwrap();
        assert_eq!(again.open(&sealed).unwrap(), b"secret pfx", "the key persists");
        let other = SealKey::load_or_create(&dir.path().join("other.key")).unwrap();
        assert!(other.open(&sealed).is_err());
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dir.path().join("pfx.key")).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
    }
}
