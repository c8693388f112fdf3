//! The controller's configuration: a TOML file, overridden by flags and `DATABASE_URL`.

use std::{net::SocketAddr, path::PathBuf};

use serde::Deserialize;

/// Settings for `domainsec-controller serve` (and the paths `init` writes to).
#[derive(Debug, Clone)]
pub struct Config {
    /// PostgreSQL URL of the organization's directory.
    pub database_url: String,
    /// Where the admin gRPC API listens (mutual TLS).
    pub admin_listen: SocketAddr,
    /// Where the edge port (subscription and EdgeSync, mutual TLS) listens.
    pub edge_listen: SocketAddr,
    /// Edge-port addresses written into subscription files (`host:port`), for
    /// edges to try in order; defaults to `edge_listen`. List every replica.
    pub edge_endpoints: Vec<String>,
    /// This replica's name in fleet status; defaults to `HOST@edge_listen`.
    pub controller_id: String,
    /// Directory holding the internal CA's key and the controller's own keys (mode 0700).
    pub state_dir: PathBuf,
    /// Extra DNS names or IP addresses for the admin API's certificate, besides
    /// `domainsec-controller`, `localhost` and `127.0.0.1`.
    pub admin_hostnames: Vec<String>,
    /// Largest number of pooled database connections.
    pub max_database_connections: u32,
}

/// The same fields, all optional, as read from a TOML file before flags apply.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// See [`Config::database_url`].
    pub database_url: Option<String>,
    /// See [`Config::admin_listen`].
    pub admin_listen: Option<SocketAddr>,
    /// See [`Config::edge_listen`].
    pub edge_listen: Option<SocketAddr>,
    /// See [`Config::edge_endpoints`].
    #[serde(default)]
    pub edge_endpoints: Vec<String>,
    /// See [`Config::controller_id`].
    pub controller_id: Option<String>,
    /// See [`Config::state_dir`].
    pub state_dir: Option<PathBuf>,
    /// See [`Config::admin_hostnames`].
    #[serde(default)]
    pub admin_hostnames: Vec<String>,
    /// See [`Config::max_database_connections`].
    pub max_database_connections: Option<u32>,
}

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    /// The file is not valid TOML for this schema.
    #[error("config file {path}: {source}")]
    Parse { path: PathBuf, source: toml::de::Error },
    /// No database URL anywhere.
    #[error("no database URL: set DATABASE_URL, pass --database-url, or set database_url in the config file")]
    MissingDatabaseUrl,
}

impl ConfigFile {
    /// Reads and parses a config file.
    pub fn load(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse { path: path.to_owned(), source })
    }
}

/// Values given on the command line (or from the environment via clap).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--database-url` / `DATABASE_URL`.
    pub database_url: Option<String>,
    /// `--admin-listen`.
    pub admin_listen: Option<SocketAddr>,
    /// `--edge-listen`.
    pub edge_listen: Option<SocketAddr>,
    /// `--edge-endpoint` (repeatable).
    pub edge_endpoints: Vec<String>,
    /// `--controller-id`.
    pub controller_id: Option<String>,
    /// `--state-dir`.
    pub state_dir: Option<PathBuf>,
    /// `--admin-hostname` (repeatable).
    pub admin_hostnames: Vec<String>,
}

impl Config {
    /// Merges a config file (if any) with command-line overrides; flags win.
    pub fn resolve(file: ConfigFile, overrides: Overrides) -> Result<Self, ConfigError> {
        let database_url = overrides.database_url.or(file.database_url).ok_or(ConfigError::MissingDatabaseUrl)?;
        let mut admin_hostnames = file.admin_hostnames;
        admin_hostnames.extend(overrides.admin_hostnames);
        let edge_listen = overrides.edge_listen.or(file.edge_listen).unwrap_or_else(default_edge_listen);
        let edge_endpoints = match (overrides.edge_endpoints, file.edge_endpoints) {
            (flags, _) if !flags.is_empty() => flags,
            (_, file) if !file.is_empty() => file,
            _ => vec![edge_listen.to_string()],
        };
        let controller_id =
            overrides.controller_id.or(file.controller_id).unwrap_or_else(|| format!("{}@{edge_listen}", host_name()));
        Ok(Self {
            database_url,
            edge_listen,
            edge_endpoints,
            controller_id,
            admin_listen: overrides.admin_listen.or(file.admin_listen).unwrap_or_else(default_admin_listen),
            state_dir: overrides.state_dir.or(file.state_dir).unwrap_or_else(default_state_dir),
            admin_hostnames,
            max_database_connections: file.max_database_connections.unwrap_or_else(default_max_connections),
        })
    }
}

fn default_admin_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 50052))
}

fn default_edge_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 50051))
}

/// The machine's host name, for the default controller id.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "controller".to_owned())
}

fn default_state_dir() -> PathBuf {
    PathBuf::from("domainsec-controller-state")
}

fn default_max_connections() -> u32 {
    10
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_parses_and_sets_every_field() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/controller.example.toml");
        let file = ConfigFile::load(&path).unwrap();
        assert!(file.database_url.is_some() && file.admin_listen.is_some() && file.state_dir.is_some());
        assert!(file.max_database_connections.is_some());
        let config = Config::resolve(file, Overrides::default()).unwrap();
        assert_eq!(config.admin_listen, default_admin_listen());
    }

    #[test]
    fn flags_override_the_file_and_unknown_keys_are_refused() {
        let file: ConfigFile = toml::from_str("database_url = \"postgres://a/b\"").unwrap();
        let config =
            Config::resolve(file, Overrides { database_url: Some("postgres://c/d".into()), ..Overrides::default() })
                .unwrap();
        assert_eq!(config.database_url, "postgres://c/d");
        assert!(toml::from_str::<ConfigFile>("database_ur = \"x\"").is_err());
        assert!(matches!(
            Config::resolve(ConfigFile::default(), Overrides::default()),
            Err(ConfigError::MissingDatabaseUrl)
        ));
    }
}
