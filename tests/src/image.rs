//! The container image build cannot run here (no container engine), so this guards
//! what breaks it: every workspace member and every path a build script or macro
//! reads must be copied into the builder stage, and nothing it copies may be
//! missing or excluded by the build context's ignore file.

use std::path::{Path, PathBuf};

/// The repository root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The paths the builder stage copies (`COPY src dest` lines before the second `FROM`).
fn copied() -> Vec<String> {
    let dockerfile = std::fs::read_to_string(root().join("deploy/docker/Dockerfile")).unwrap();
    let builder = dockerfile.split("\nFROM ").nth(1).unwrap_or_default();
    builder
        .lines()
        .filter_map(|line| line.strip_prefix("COPY "))
        .filter(|line| !line.starts_with("--from"))
        .flat_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            words[..words.len().saturating_sub(1)].iter().map(|w| (*w).to_owned()).collect::<Vec<_>>()
        })
        .collect()
}

/// The workspace members named in the root Cargo.toml.
fn members() -> Vec<String> {
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let start = manifest.find("members = [").unwrap() + "members = [".len();
    let end = start + manifest[start..].find(']').unwrap();
    manifest[start..end].split(',').map(|m| m.trim().trim_matches('"').to_owned()).filter(|m| !m.is_empty()).collect()
}

#[test]
fn every_workspace_member_and_build_input_is_copied_into_the_image() {
    let copied = copied();
    let mut needed = members();
    // sqlx::migrate!("../migrations") in the controller; the lock file for --locked.
    needed.extend(["migrations".to_owned(), "Cargo.toml".to_owned(), "Cargo.lock".to_owned()]);
    for path in &needed {
        assert!(copied.contains(path), "deploy/docker/Dockerfile does not COPY {path}, which the build reads");
    }
}

#[test]
fn everything_the_image_copies_exists_and_is_not_ignored() {
    let ignore = std::fs::read_to_string(root().join("deploy/docker/Dockerfile.dockerignore")).unwrap();
    let ignored: Vec<&str> = ignore.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    for path in copied() {
        assert!(root().join(&path).exists(), "the Dockerfile copies {path}, which does not exist");
        let dir = format!("{}/", path.trim_end_matches('/'));
        assert!(!ignored.contains(&dir.as_str()), "{path} is copied but excluded by Dockerfile.dockerignore");
    }
}
