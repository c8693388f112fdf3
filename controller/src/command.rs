//! Command-line parsing and dispatch for `domainsec-controller`.

use std::{net::SocketAddr, path::PathBuf};

use anyhow::Context;
use clap::{Args, Parser, Subcommand, builder::TypedValueParser as _};
use controller::{
    bootstrap::{self, InitOptions, IssueOptions},
    config::{Config, ConfigFile, Overrides},
    db,
    state_dir::StateDir,
};
use domainsec_model::Role;
use tokio_util::sync::CancellationToken;

/// The DomainSec controller: the organization's directory and admin API.
#[derive(Debug, Parser)]
#[command(name = "domainsec-controller", version)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    log: domainsec_daemon::LogArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create the organization, its internal CA and the first org-admin credential.
    Init {
        /// Organization name, e.g. Contoso.
        #[arg(long = "org")]
        organization: String,
        /// Where to write the first admin's credential bundle (for dsctl).
        #[arg(long)]
        out_admin: PathBuf,
        /// Name of the first admin.
        #[arg(long, default_value = "admin")]
        admin_name: String,
        /// Admin API address(es) dsctl should use (default: the --admin-listen address).
        #[arg(long = "controller", value_delimiter = ',')]
        controllers: Vec<String>,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Serve the admin gRPC API and the edge port.
    Serve {
        #[command(flatten)]
        common: CommonArgs,
        /// Serve Prometheus metrics (connected edges, pushes, ACK latency), /healthz and
        /// /readyz in plain HTTP on this address.
        #[arg(long, value_name = "ADDRESS")]
        metrics_listen: Option<SocketAddr>,
        /// Serve gRPC health (grpc.health.v1) in plain HTTP/2, no client certificate, on
        /// this address: for grpc_health_probe, load balancers and Kubernetes grpc probes.
        #[arg(long, value_name = "ADDRESS")]
        health_listen: Option<SocketAddr>,
        #[command(flatten)]
        mta_sts: MtaStsArgs,
    },
    /// Manage admin credentials.
    #[command(subcommand)]
    AdminCert(AdminCertCommand),
    /// Rotate the edge-port certificate: `stage`, wait for the edges, `activate`, restart.
    RotateEdgeCertificate {
        /// stage: publish the next certificate to edges; activate: switch to it.
        #[arg(value_enum)]
        step: RotationStep,
        #[command(flatten)]
        common: CommonArgs,
    },
}

/// The MTA-STS policy host (`dsctl publish mta-sts` stores the policy it serves).
#[derive(Debug, Args)]
struct MtaStsArgs {
    /// Serve the MTA-STS policy over HTTPS on this address (GET /.well-known/mta-sts.txt);
    /// point mta-sts.DOMAIN of each accepted domain here (port 443 outside).
    #[arg(long, value_name = "ADDRESS", requires_all = ["mta_sts_certificate", "mta_sts_key"])]
    mta_sts_listen: Option<SocketAddr>,
    /// PEM certificate chain (leaf first) for the policy host; it must be valid for
    /// mta-sts.DOMAIN of every accepted domain, from a CA senders trust (RFC 8461 section 3.3).
    #[arg(long, value_name = "FILE", requires = "mta_sts_listen")]
    mta_sts_certificate: Option<PathBuf>,
    /// PEM private key of that certificate (PKCS#8, SEC1 or PKCS#1).
    #[arg(long, value_name = "FILE", requires = "mta_sts_listen")]
    mta_sts_key: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum RotationStep {
    /// Make the next certificate and send it to every edge to trust.
    Stage,
    /// Switch to it once every edge has ACKed (restart controllers afterwards).
    Activate,
}

#[derive(Debug, Subcommand)]
enum AdminCertCommand {
    /// List issued admin credentials.
    List {
        /// Output format: a table for people, JSON (one array) for scripts.
        #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Table)]
        format: OutputFormat,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Revoke every credential of an admin: the controller refuses them from the next call on.
    Revoke {
        /// The admin's name.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Issue a credential bundle for another admin.
    Issue {
        /// The admin's role (what the credential may do).
        #[arg(long, value_parser = role_parser())]
        role: Role,
        /// The admin's name.
        #[arg(long)]
        name: String,
        /// For server-admin: the edges this admin may manage (comma-separated).
        #[arg(long, value_delimiter = ',')]
        edges: Vec<String>,
        /// Validity in days.
        #[arg(long, default_value_t = 365)]
        days: i64,
        /// Where to write the bundle.
        #[arg(long)]
        out: PathBuf,
        /// Admin API address(es) dsctl should use (default: the --admin-listen address).
        #[arg(long = "controller", value_delimiter = ',')]
        controllers: Vec<String>,
        #[command(flatten)]
        common: CommonArgs,
    },
}

#[derive(Debug, Args)]
struct CommonArgs {
    /// TOML config file; flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// PostgreSQL URL of the directory.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Admin API listen address [default: 127.0.0.1:50052].
    #[arg(long)]
    admin_listen: Option<SocketAddr>,
    /// Edge port listen address [default: 127.0.0.1:50051].
    #[arg(long)]
    edge_listen: Option<SocketAddr>,
    /// Edge-port address for subscription files (repeatable) [default: the --edge-listen address].
    #[arg(long = "edge-endpoint")]
    edge_endpoints: Vec<String>,
    /// This replica's name in fleet status [default: HOSTNAME@EDGE_LISTEN].
    #[arg(long)]
    controller_id: Option<String>,
    /// Directory for the CA key and the controller's keys [default: ./domainsec-controller-state].
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Extra DNS name or IP for the admin API certificate (repeatable).
    #[arg(long = "admin-hostname")]
    admin_hostnames: Vec<String>,
}

impl CommonArgs {
    fn resolve(self) -> anyhow::Result<Config> {
        let file = match &self.config {
            Some(path) => ConfigFile::load(path)?,
            None => ConfigFile::default(),
        };
        Ok(Config::resolve(
            file,
            Overrides {
                database_url: self.database_url,
                admin_listen: self.admin_listen,
                edge_listen: self.edge_listen,
                edge_endpoints: self.edge_endpoints,
                controller_id: self.controller_id,
                state_dir: self.state_dir,
                admin_hostnames: self.admin_hostnames,
            },
        )?)
    }
}

/// Logs go to stderr; `RUST_LOG` filters (default `info`).
pub fn init_tracing(cli: &Cli) {
    domainsec_daemon::init_tracing("info,sqlx=warn", cli.log.log_format);
}

/// `-o`: how `admin-cert list` prints.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum OutputFormat {
    /// Aligned columns.
    Table,
    /// A JSON array.
    Json,
}

fn credential_state(credential: &db::admins::AdminCredential) -> &'static str {
    if credential.revoked_at.is_some() { "revoked" } else { "active" }
}

/// `--role`: the roles as possible values, so `--help` and completions list them.
fn role_parser() -> impl clap::builder::TypedValueParser<Value = Role> {
    clap::builder::PossibleValuesParser::new(Role::ALL.map(Role::as_str)).try_map(|word| word.parse::<Role>())
}

/// Runs one command.
pub async fn execute(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Init { organization, out_admin, admin_name, controllers, common } => {
            let config = common.resolve()?;
            let pool = db::connect(&config.database_url, 2).await.context("connect to the directory database")?;
            let options = InitOptions {
                organization,
                admin_name,
                controllers: default_controllers(controllers, &config),
                out_admin: out_admin.clone(),
                admin_hostnames: config.admin_hostnames.clone(),
            };
            let bundle = bootstrap::init(&pool, &StateDir::new(&config.state_dir), &options).await?;
            println!(
                "Initialised organization {:?}.\nState (CA key, admin API key): {}\nAdmin credential ({}, role {}): {}\nNext: domainsec-controller serve, then dsctl --credentials {} transport-config get",
                options.organization,
                config.state_dir.display(),
                bundle.name,
                bundle.role,
                out_admin.display(),
                out_admin.display(),
            );
            Ok(())
        }
        Command::Serve { common, metrics_listen, health_listen, mta_sts } => {
            serve(common.resolve()?, metrics_listen, health_listen, mta_sts).await
        }
        Command::RotateEdgeCertificate { step, common } => {
            let config = common.resolve()?;
            let pool = db::connect(&config.database_url, 2).await.context("connect to the directory database")?;
            let state = StateDir::new(&config.state_dir);
            match step {
                RotationStep::Stage => {
                    let version = controller::rotation::stage(&pool, &state).await?;
                    println!(
                        "Staged the next edge-port certificate in config version {version}. When `dsctl edge test-sync` \
                         shows every edge in sync, run: domainsec-controller rotate-edge-certificate activate"
                    );
                }
                RotationStep::Activate => {
                    let sha256 = controller::rotation::activate(&pool, &state).await?;
                    println!(
                        "Activated edge-port certificate {sha256}. Restart the controllers one at a time to present it."
                    );
                }
            }
            Ok(())
        }
        Command::AdminCert(AdminCertCommand::List { format, common }) => {
            let config = common.resolve()?;
            let pool = db::connect(&config.database_url, 2).await.context("connect to the directory database")?;
            let listed = db::admins::list(&pool).await?;
            match format {
                OutputFormat::Json => {
                    let rows: Vec<_> = listed
                        .iter()
                        .map(|db::admins::ListedCredential { sha256, credential }| {
                            serde_json::json!({
                                "name": credential.name,
                                "role": credential.role,
                                "edges": credential.edges,
                                "not_after": credential.not_after.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                                "state": credential_state(credential),
                                "revoked_at": credential.revoked_at.map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
                                "sha256": sha256,
                            })
                        })
                        .collect();
                    println!("{}", serde_json::to_string_pretty(&rows)?);
                }
                OutputFormat::Table => {
                    println!(
                        "{:<20}  {:<12}  {:<12}  {:<26}  {:<10}  SHA-256",
                        "NAME", "ROLE", "EDGES", "EXPIRES", "STATE"
                    );
                    for db::admins::ListedCredential { sha256, credential } in &listed {
                        let edges =
                            if credential.edges.is_empty() { "-".to_owned() } else { credential.edges.join(",") };
                        println!(
                            "{:<20}  {:<12}  {:<12}  {:<26}  {:<10}  {sha256}",
                            credential.name,
                            credential.role,
                            edges,
                            credential.not_after.format("%Y-%m-%d %H:%M:%SZ"),
                            credential_state(credential)
                        );
                    }
                }
            }
            Ok(())
        }
        Command::AdminCert(AdminCertCommand::Revoke { name, common }) => {
            let config = common.resolve()?;
            let pool = db::connect(&config.database_url, 2).await.context("connect to the directory database")?;
            match db::admins::revoke(&pool, &name).await? {
                0 => anyhow::bail!(
                    "no active credential for {name:?}; `domainsec-controller admin-cert list` shows them"
                ),
                n => println!("revoked {n} credential(s) of {name:?}"),
            }
            Ok(())
        }
        Command::AdminCert(AdminCertCommand::Issue { role, name, edges, days, out, controllers, common }) => {
            let config = common.resolve()?;
            let pool = db::connect(&config.database_url, 2).await.context("connect to the directory database")?;
            let options = IssueOptions {
                name,
                role,
                edges,
                days,
                controllers: default_controllers(controllers, &config),
                out: out.clone(),
            };
            let bundle = bootstrap::issue_admin(&pool, &StateDir::new(&config.state_dir), &options).await?;
            println!("Issued credential for {:?} (role {}): {}", bundle.name, bundle.role, out.display());
            Ok(())
        }
    }
}

async fn serve(
    config: Config,
    metrics_listen: Option<SocketAddr>,
    health_listen: Option<SocketAddr>,
    mta_sts: MtaStsArgs,
) -> anyhow::Result<()> {
    let mta_sts_tls = match (&mta_sts.mta_sts_certificate, &mta_sts.mta_sts_key) {
        (Some(certificate), Some(key)) => Some(
            controller::mta_sts_https::server_config(certificate, key)
                .context("load the MTA-STS policy host's certificate")?,
        ),
        _ => None,
    };
    let admin = tokio::net::TcpListener::bind(config.admin_listen)
        .await
        .with_context(|| format!("bind the admin API to {}", config.admin_listen))?;
    let edge = tokio::net::TcpListener::bind(config.edge_listen)
        .await
        .with_context(|| format!("bind the edge port to {}", config.edge_listen))?;
    let shutdown = CancellationToken::new();
    tokio::spawn(domainsec_daemon::cancel_on_signal(shutdown.clone(), CancellationToken::new()));
    let metrics = bind_optional(metrics_listen, "the metrics listener").await?;
    let health = bind_optional(health_listen, "the health listener").await?;
    let mta_sts = match (bind_optional(mta_sts.mta_sts_listen, "the MTA-STS listener").await?, mta_sts_tls) {
        (Some(listener), Some(tls)) => Some((listener, tls)),
        _ => None,
    };
    controller::run(config, controller::Listeners { admin, edge, metrics, health, mta_sts }, shutdown).await
}

async fn bind_optional(address: Option<SocketAddr>, what: &str) -> anyhow::Result<Option<tokio::net::TcpListener>> {
    let Some(address) = address else { return Ok(None) };
    let listener = tokio::net::TcpListener::bind(address).await.with_context(|| format!("bind {what} to {address}"))?;
    Ok(Some(listener))
}

fn default_controllers(given: Vec<String>, config: &Config) -> Vec<String> {
    if given.is_empty() { vec![config.admin_listen.to_string()] } else { given }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    /// Every flag and positional argument of every command says what it is for.
    #[test]
    fn every_argument_has_help() {
        let missing = domainsec_daemon::arguments_without_help(&super::Cli::command());
        assert!(missing.is_empty(), "{} arguments without help:\n{}", missing.len(), missing.join("\n"));
    }
}
