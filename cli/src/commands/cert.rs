//! `dsctl cert …` (the paper's *-ExchangeCertificate cmdlets). The edge does the
//! key work: each command queues a task and, unless `--no-wait`, waits for it.

use std::{path::PathBuf, time::Duration};

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use proto::admin as pb;
use serde::Serialize;

use super::Context;
use crate::{
    output::{self, Render},
    words::{KeyAlgorithm, Service},
};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// New-ExchangeCertificate: a self-signed certificate (12 months), or with
    /// --generate-request a PKCS#10 request; the key is made on the edge.
    New(NewArgs),
    /// Import-ExchangeCertificate: bind an issued certificate (PEM/DER, with its chain) to the
    /// pending key it was requested with, on each edge; or install a PFX (certificate, chain and
    /// key) on one or several edges.
    Import(ImportArgs),
    /// Enable-ExchangeCertificate: the certificate the edge's SMTP service presents.
    Enable {
        /// The edge that holds the certificate.
        #[arg(long)]
        edge: String,
        /// The certificate's thumbprint (SHA-1, as `dsctl cert get` lists it).
        #[arg(long)]
        thumbprint: String,
        /// Services to enable it for (comma-separated).
        #[arg(long, value_enum, value_delimiter = ',', default_value = "smtp")]
        services: Vec<Service>,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Remove-ExchangeCertificate (or a pending request: --thumbprint pending:ID).
    Remove {
        /// The edge that holds the certificate.
        #[arg(long)]
        edge: String,
        /// The certificate's thumbprint (SHA-1, as `dsctl cert get` lists it).
        #[arg(long)]
        thumbprint: String,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Get-ExchangeCertificate: the first listed for a domain is the one SMTP would use.
    Get {
        /// Only this edge's certificates.
        #[arg(long)]
        edge: Option<String>,
        /// Only the certificate with this thumbprint.
        #[arg(long)]
        thumbprint: Option<String>,
        /// Only certificates valid for this domain, best first (the one SMTP would use).
        #[arg(long)]
        domain_name: Option<String>,
    },
    /// Clone: a new certificate (or request) with the same subject and names and a new key.
    Clone {
        /// The edge that holds the certificate.
        #[arg(long)]
        edge: String,
        /// The certificate's thumbprint (SHA-1, as `dsctl cert get` lists it).
        #[arg(long)]
        thumbprint: String,
        /// Make a PKCS#10 request (written to --path) instead of a self-signed certificate.
        #[arg(long, requires = "path")]
        generate_request: bool,
        /// Where to write the request.
        #[arg(long)]
        path: Option<PathBuf>,
        /// The new key's algorithm.
        #[arg(long, value_enum, default_value_t = KeyAlgorithm::EcdsaP256)]
        key_algorithm: KeyAlgorithm,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// certutil -verify, on the edge: chain (platform roots + trusted roots), dates, key usage.
    Verify {
        /// The edge that holds the certificate.
        #[arg(long)]
        edge: String,
        /// The certificate's thumbprint (SHA-1, as `dsctl cert get` lists it).
        #[arg(long)]
        thumbprint: String,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Export a certificate (public part only, DER).
    Export {
        /// The edge that holds the certificate.
        #[arg(long)]
        edge: String,
        /// The certificate's thumbprint (SHA-1, as `dsctl cert get` lists it).
        #[arg(long)]
        thumbprint: String,
        /// Where to write the DER file.
        #[arg(long)]
        path: PathBuf,
    },
    /// Show a certificate task; for a finished request, --path writes the PKCS#10 file.
    Task {
        /// The task id a certificate command printed.
        id: String,
        /// For a finished request: where to write the PKCS#10 file.
        #[arg(long)]
        path: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct NewArgs {
    /// The edge that makes the key.
    #[arg(long)]
    edge: String,
    /// X.500 subject, e.g. "DC=com,DC=Contoso,CN=mail1.contoso.com" [default: CN=<edge FQDN>].
    #[arg(long)]
    subject_name: Option<String>,
    /// Subject alternative names (comma-separated), e.g. mail.contoso.com,*.contoso.com.
    #[arg(long, value_delimiter = ',')]
    domain_name: Vec<String>,
    /// Add every accepted domain as a subject alternative name.
    #[arg(long)]
    include_accepted_domains: bool,
    /// A name to tell certificates apart in listings.
    #[arg(long, default_value = "")]
    friendly_name: String,
    /// Make a PKCS#10 request (written to --path) instead of a self-signed certificate.
    #[arg(long, requires = "path")]
    generate_request: bool,
    /// Where to write the request.
    #[arg(long)]
    path: Option<PathBuf>,
    /// The key's algorithm (made on the edge; RSA for partners that need it).
    #[arg(long, value_enum, default_value_t = KeyAlgorithm::EcdsaP256)]
    key_algorithm: KeyAlgorithm,
    /// Enable for services once made (or once imported, for a request), e.g. smtp.
    #[arg(long, value_enum, value_delimiter = ',')]
    enable: Vec<Service>,
    #[command(flatten)]
    wait: WaitArgs,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Edges (comma-separated).
    #[arg(long, value_delimiter = ',', required = true)]
    edge: Vec<String>,
    /// The issued certificate: .cer/.pem/.crt (PEM or DER, chain allowed), a .p7b chain, or a .pfx.
    #[arg(long)]
    path: PathBuf,
    /// Enable for services, e.g. smtp.
    #[arg(long, value_enum, value_delimiter = ',')]
    enable: Vec<Service>,
    /// A name to tell certificates apart in listings.
    #[arg(long, default_value = "")]
    friendly_name: String,
    /// For a .pfx/.p12: a file holding its password (an empty file for none).
    #[arg(long)]
    password_file: Option<PathBuf>,
    #[command(flatten)]
    wait: WaitArgs,
}

#[derive(Debug, Args)]
pub struct WaitArgs {
    /// Return once the task is queued (see it later with dsctl cert task ID).
    #[arg(long)]
    no_wait: bool,
    /// How long to wait for the edge.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

#[derive(Serialize)]
struct TaskView {
    id: String,
    edge: String,
    kind: String,
    state: String,
    thumbprint: String,
    error: String,
    /// Notes on the request that did not stop it (e.g. a key no published TLSA record matches).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<String>,
}

impl Render for TaskView {
    fn headers() -> &'static [&'static str] {
        &["TASK", "EDGE", "KIND", "STATE", "THUMBPRINT", "ERROR"]
    }
    fn row(&self) -> Vec<String> {
        let dash = |s: &str| if s.is_empty() { "-".to_owned() } else { s.to_owned() };
        vec![
            self.id.clone(),
            self.edge.clone(),
            self.kind.clone(),
            self.state.clone(),
            dash(&self.thumbprint),
            dash(&self.error),
        ]
    }
}

fn task_view(task: &pb::CertificateTask) -> TaskView {
    TaskView {
        id: task.id.clone(),
        edge: task.edge.clone(),
        kind: task.kind.clone(),
        state: task.state.clone(),
        thumbprint: task.thumbprint.clone(),
        error: task.error.clone(),
        warnings: Vec::new(),
    }
}

#[derive(Serialize)]
struct CertificateView {
    #[serde(flatten)]
    certificate: CertificateFields,
}

#[derive(Serialize)]
struct CertificateFields {
    edge: String,
    thumbprint: String,
    sha256: String,
    subject: String,
    issuer: String,
    serial: String,
    dns_names: Vec<String>,
    not_before: String,
    not_after: String,
    services: Vec<String>,
    key_status: String,
    friendly_name: String,
}

impl Render for CertificateView {
    fn headers() -> &'static [&'static str] {
        &["EDGE", "THUMBPRINT", "SUBJECT", "NAMES", "SERVICES", "KEY", "NOT AFTER"]
    }
    fn row(&self) -> Vec<String> {
        let c = &self.certificate;
        vec![
            c.edge.clone(),
            c.thumbprint.clone(),
            c.subject.clone(),
            output::join(&c.dns_names),
            output::join(&c.services),
            c.key_status.clone(),
            if c.not_after.is_empty() { "-".into() } else { output::time(&c.not_after) },
        ]
    }
}

pub async fn run(context: &mut Context, command: Command) -> anyhow::Result<()> {
    match command {
        Command::New(args) => new(context, args).await,
        Command::Import(args) => import(context, args).await,
        Command::Enable { edge, thumbprint, services, wait } => {
            let tasks = context
                .client
                .enable_certificate(pb::EnableCertificateRequest {
                    edge,
                    thumbprint,
                    services: Service::words(&services),
                })
                .await?
                .into_inner();
            finish(context, tasks, &wait, None).await
        }
        Command::Remove { edge, thumbprint, wait } => {
            let tasks = context
                .client
                .remove_certificate(pb::RemoveCertificateRequest { edge, thumbprint })
                .await?
                .into_inner();
            finish(context, tasks, &wait, None).await
        }
        Command::Clone { edge, thumbprint, generate_request, path, key_algorithm, wait } => {
            if let Some(path) = &path
                && path.exists()
            {
                bail!("{} already exists; choose another --path", path.display());
            }
            let tasks = context
                .client
                .clone_certificate(pb::CloneCertificateRequest {
                    edge,
                    thumbprint,
                    generate_request,
                    key_algorithm: key_algorithm.as_str().to_owned(),
                })
                .await?
                .into_inner();
            finish(context, tasks, &wait, path.as_deref()).await
        }
        Command::Verify { edge, thumbprint, wait } => {
            let tasks = context
                .client
                .verify_certificate(pb::VerifyCertificateRequest { edge, thumbprint })
                .await?
                .into_inner();
            let Some(task) = tasks.tasks.into_iter().next() else { bail!("the controller queued no task") };
            let task = if wait.no_wait { task } else { wait_for(context, task, wait.timeout).await? };
            if context.format == crate::output::Format::Json {
                println!(
                    "{}",
                    serde_json::json!({ "task": task.id, "state": task.state, "verified": task.verified, "steps": task.steps, "error": task.error })
                );
            } else {
                for step in &task.steps {
                    println!("{step}");
                }
            }
            match (task.state.as_str(), task.verified) {
                ("done", true) => {
                    if context.format == crate::output::Format::Table {
                        println!("verified");
                    }
                    Ok(())
                }
                ("done", false) => bail!("the certificate did not verify"),
                ("failed", _) => bail!("{}", task.error),
                _ => Ok(()),
            }
        }
        Command::Get { edge, thumbprint, domain_name } => get(context, edge, thumbprint, domain_name).await,
        Command::Export { edge, thumbprint, path } => export(context, edge, thumbprint, &path).await,
        Command::Task { id, path } => {
            let task = context.client.get_certificate_task(pb::GetCertificateTaskRequest { id }).await?.into_inner();
            if let Some(path) = path {
                write_request(&task, &path)?;
            }
            output::list(context.format, &[task_view(&task)])
        }
    }
}

async fn new(context: &mut Context, args: NewArgs) -> anyhow::Result<()> {
    if let Some(path) = &args.path
        && path.exists()
    {
        bail!("{} already exists; choose another --path", path.display());
    }
    let tasks = context
        .client
        .new_certificate(pb::NewCertificateRequest {
            edge: args.edge,
            subject_name: args.subject_name.unwrap_or_default(),
            domain_names: args.domain_name,
            include_accepted_domains: args.include_accepted_domains,
            friendly_name: args.friendly_name,
            generate_request: args.generate_request,
            key_algorithm: args.key_algorithm.as_str().to_owned(),
            services: Service::words(&args.enable),
        })
        .await?
        .into_inner();
    finish(context, tasks, &args.wait, args.path.as_deref()).await
}

async fn import(context: &mut Context, args: ImportArgs) -> anyhow::Result<()> {
    let data = std::fs::read(&args.path).with_context(|| format!("read {}", args.path.display()))?;
    let lower = args.path.to_string_lossy().to_ascii_lowercase();
    if lower.ends_with(".pfx") || lower.ends_with(".p12") {
        let Some(password_file) = &args.password_file else {
            bail!("a PFX needs --password-file FILE (an empty file if it has no password)");
        };
        let password = std::fs::read_to_string(password_file)
            .with_context(|| format!("read {}", password_file.display()))?
            .trim_end_matches(['\r', '\n'])
            .to_owned();
        let tasks = context
            .client
            .import_pfx(pb::ImportPfxRequest {
                edges: args.edge,
                pfx: data,
                password,
                services: Service::words(&args.enable),
                friendly_name: args.friendly_name,
            })
            .await?
            .into_inner();
        return finish(context, tasks, &args.wait, None).await;
    }
    let tasks = context
        .client
        .import_certificate(pb::ImportCertificateRequest {
            edges: args.edge,
            data,
            services: Service::words(&args.enable),
            friendly_name: args.friendly_name,
        })
        .await?
        .into_inner();
    finish(context, tasks, &args.wait, None).await
}

/// Prints the controller's warnings (stderr; in JSON, on each task), waits for the
/// tasks (unless --no-wait), prints them, fails if any failed. A warning never
/// changes the exit code.
async fn finish(
    context: &mut Context,
    tasks: pb::CertificateTasks,
    wait: &WaitArgs,
    request_path: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    for warning in &tasks.warnings {
        eprintln!("warning: {warning}");
    }
    let mut done = Vec::new();
    for task in tasks.tasks {
        if wait.no_wait {
            done.push(task);
            continue;
        }
        done.push(wait_for(context, task, wait.timeout).await?);
    }
    if let Some(path) = request_path {
        for task in done.iter().filter(|t| t.state == "done") {
            write_request(task, path)?;
            eprintln!("wrote the certificate request to {}", path.display());
        }
    }
    let views: Vec<TaskView> =
        done.iter().map(|task| TaskView { warnings: tasks.warnings.clone(), ..task_view(task) }).collect();
    output::list(context.format, &views)?;
    let failed: Vec<&pb::CertificateTask> = done.iter().filter(|t| t.state == "failed").collect();
    if let Some(first) = failed.first() {
        bail!("{} task(s) failed on the edge: {}", failed.len(), first.error);
    }
    Ok(())
}

async fn wait_for(
    context: &mut Context,
    task: pb::CertificateTask,
    timeout: Duration,
) -> anyhow::Result<pb::CertificateTask> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut announced = false;
    let mut current = task;
    while current.state == "queued" {
        if !announced && context.format == crate::output::Format::Table {
            eprintln!(
                "waiting for edge {} to run task {} (an offline edge runs it when it reconnects)…",
                current.edge, current.id
            );
            announced = true;
        }
        if tokio::time::Instant::now() >= deadline {
            let waited = humantime::format_duration(timeout).to_string();
            return Err(crate::exit::Incomplete::StillQueued { task: current.id, waited }.into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        current = context
            .client
            .get_certificate_task(pb::GetCertificateTaskRequest { id: current.id.clone() })
            .await?
            .into_inner();
    }
    Ok(current)
}

fn write_request(task: &pb::CertificateTask, path: &std::path::Path) -> anyhow::Result<()> {
    if task.request_pem.is_empty() {
        bail!("task {} has no certificate request (state {})", task.id, task.state);
    }
    std::fs::write(path, &task.request_pem).with_context(|| format!("write {}", path.display()))
}

async fn get(
    context: &mut Context,
    edge: Option<String>,
    thumbprint: Option<String>,
    domain_name: Option<String>,
) -> anyhow::Result<()> {
    let single = thumbprint.is_some();
    let certificates = context
        .client
        .list_certificates(pb::ListCertificatesRequest {
            edge: edge.unwrap_or_default(),
            thumbprint: thumbprint.unwrap_or_default(),
            domain_name: domain_name.unwrap_or_default(),
        })
        .await?
        .into_inner()
        .certificates;
    let views: Vec<CertificateView> = certificates
        .into_iter()
        .map(|c| CertificateView {
            certificate: CertificateFields {
                edge: c.edge,
                thumbprint: c.thumbprint,
                sha256: c.sha256,
                subject: c.subject,
                issuer: c.issuer,
                serial: c.serial,
                dns_names: c.dns_names,
                not_before: c.not_before,
                not_after: c.not_after,
                services: c.services,
                key_status: c.key_status,
                friendly_name: c.friendly_name,
            },
        })
        .collect();
    match (single, views.as_slice()) {
        (true, [view]) => {
            let c = &view.certificate;
            let fields = vec![
                ("Edge", c.edge.clone()),
                ("Thumbprint", c.thumbprint.clone()),
                ("SHA256", c.sha256.clone()),
                ("Subject", c.subject.clone()),
                ("Issuer", c.issuer.clone()),
                ("SerialNumber", c.serial.clone()),
                ("CertificateDomains", output::join(&c.dns_names)),
                ("NotBefore", c.not_before.clone()),
                ("NotAfter", c.not_after.clone()),
                ("Services", output::join(&c.services)),
                ("KeyStatus", c.key_status.clone()),
                ("FriendlyName", c.friendly_name.clone()),
            ];
            output::object(context.format, view, fields)
        }
        _ => output::list(context.format, &views),
    }
}

async fn export(context: &mut Context, edge: String, thumbprint: String, path: &std::path::Path) -> anyhow::Result<()> {
    let certificates = context
        .client
        .list_certificates(pb::ListCertificatesRequest {
            edge: edge.clone(),
            thumbprint: thumbprint.clone(),
            domain_name: String::new(),
        })
        .await?
        .into_inner()
        .certificates;
    let Some(certificate) = certificates.into_iter().find(|c| !c.certificate_pem.is_empty()) else {
        bail!("no certificate {thumbprint} on edge {edge} (dsctl cert get --edge {edge} lists them)");
    };
    let der = pem::parse(&certificate.certificate_pem).context("the stored certificate is not PEM")?.into_contents();
    std::fs::write(path, der).with_context(|| format!("write {}", path.display()))?;
    println!("wrote {} (DER, public certificate only)", path.display());
    Ok(())
}
