//! `domainsec-testca`: a throwaway certificate authority for trying DomainSec
//! (README, quickstart, tests): it signs the PKCS#10 requests edges make.
//! Not for production: its key is a plain file.

use std::{os::unix::fs::OpenOptionsExt, path::PathBuf};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};

/// A test CA that signs edge certificate requests.
#[derive(Debug, Parser)]
#[command(name = "domainsec-testca", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Make the CA: DIR/ca.pem and DIR/ca.key (0600).
    Init {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value = "DomainSec Test Third-Party CA")]
        name: String,
    },
    /// Sign a request; writes the certificate followed by the CA certificate (PEM).
    Sign {
        #[arg(long)]
        dir: PathBuf,
        /// The PKCS#10 request (PEM).
        #[arg(long)]
        csr: PathBuf,
        /// Where to write the issued certificate chain.
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 365)]
        days: i64,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Init { dir, name } => {
            let key_path = dir.join("ca.key");
            if key_path.exists() {
                bail!("{} exists; this directory already holds a CA", key_path.display());
            }
            std::fs::create_dir_all(&dir)?;
            let key = KeyPair::generate()?;
            let mut params = CertificateParams::new(Vec::<String>::new())?;
            params.distinguished_name.push(DnType::CommonName, name);
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            let now = OffsetDateTime::now_utc();
            params.not_before = now - Duration::hours(1);
            params.not_after = now + Duration::days(3650);
            let certificate = params.self_signed(&key)?;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&key_path)
                .and_then(|mut file| std::io::Write::write_all(&mut file, key.serialize_pem().as_bytes()))?;
            std::fs::write(dir.join("ca.pem"), certificate.pem())?;
            println!("test CA in {} (trust ca.pem; keep ca.key private)", dir.display());
            Ok(())
        }
        Command::Sign { dir, csr, out, days } => {
            let ca_pem = std::fs::read_to_string(dir.join("ca.pem")).context("read ca.pem (run init first)")?;
            let key = KeyPair::from_pem(&std::fs::read_to_string(dir.join("ca.key")).context("read ca.key")?)?;
            let issuer = Issuer::from_ca_cert_pem(&ca_pem, key)?;
            let text = std::fs::read_to_string(&csr).with_context(|| format!("read {}", csr.display()))?;
            let mut request = CertificateSigningRequestParams::from_pem(&text).context("not a PKCS#10 request")?;
            let now = OffsetDateTime::now_utc();
            request.params.not_before = now - Duration::hours(1);
            request.params.not_after = now + Duration::days(days);
            let certificate = request.signed_by(&issuer)?;
            std::fs::write(&out, format!("{}{}", certificate.pem(), ca_pem))?;
            println!("signed {} -> {}", csr.display(), out.display());
            Ok(())
        }
    }
}
