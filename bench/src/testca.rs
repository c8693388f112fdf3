//! `domainsec-testca`: a throwaway certificate authority for trying DomainSec
//! (README, quickstart, tests): it signs the PKCS#10 requests edges make, revokes,
//! and serves its CRL over HTTP (signed afresh on each request, valid briefly, so a
//! revocation is seen within `--next-update`). Not for production: its key is a plain file.

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
        /// CRL distribution point to write into the certificate (e.g. http://127.0.0.1:8089/ca.crl).
        #[arg(long)]
        crl_url: Option<String>,
    },
    /// Put a certificate on the CRL (by its file, or its serial in hex).
    Revoke {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, conflicts_with = "serial")]
        cert: Option<PathBuf>,
        #[arg(long)]
        serial: Option<String>,
    },
    /// Serve the CRL over HTTP (any path) until interrupted.
    Serve {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value = "127.0.0.1:8089")]
        listen: std::net::SocketAddr,
        /// nextUpdate of each CRL served: how long a relying party may cache it.
        #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
        next_update: std::time::Duration,
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
        Command::Sign { dir, csr, out, days, crl_url } => {
            let ca_pem = std::fs::read_to_string(dir.join("ca.pem")).context("read ca.pem (run init first)")?;
            let key = KeyPair::from_pem(&std::fs::read_to_string(dir.join("ca.key")).context("read ca.key")?)?;
            let issuer = Issuer::from_ca_cert_pem(&ca_pem, key)?;
            let text = std::fs::read_to_string(&csr).with_context(|| format!("read {}", csr.display()))?;
            let mut request = CertificateSigningRequestParams::from_pem(&text).context("not a PKCS#10 request")?;
            let now = OffsetDateTime::now_utc();
            request.params.not_before = now - Duration::hours(1);
            request.params.not_after = now + Duration::days(days);
            if let Some(url) = crl_url {
                request.params.crl_distribution_points = vec![rcgen::CrlDistributionPoint { uris: vec![url] }];
            }
            let mut serial = [0u8; 8];
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut serial)
                .map_err(|_| anyhow::anyhow!("no randomness for a serial number"))?;
            serial[0] &= 0x7f;
            request.params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
            let certificate = request.signed_by(&issuer)?;
            std::fs::write(&out, format!("{}{}", certificate.pem(), ca_pem))?;
            println!("signed {} -> {} (serial {})", csr.display(), out.display(), hex(&serial));
            Ok(())
        }
        Command::Revoke { dir, cert, serial } => {
            let serial = match (cert, serial) {
                (Some(path), _) => {
                    let text = std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
                    let block = pem::parse(&text).context("not a PEM certificate")?;
                    let (_, parsed) = x509_parser::parse_x509_certificate(block.contents())
                        .map_err(|e| anyhow::anyhow!("not a certificate: {e}"))?;
                    hex(parsed.raw_serial())
                }
                (None, Some(serial)) => serial.to_ascii_lowercase(),
                (None, None) => bail!("give --cert FILE or --serial HEX"),
            };
            let mut revoked = std::fs::read_to_string(dir.join("revoked.txt")).unwrap_or_default();
            revoked.push_str(&format!("{serial}\n"));
            std::fs::write(dir.join("revoked.txt"), revoked)?;
            println!("revoked serial {serial}; the CRL served from now on lists it");
            Ok(())
        }
        Command::Serve { dir, listen, next_update } => serve(&dir, listen, next_update),
    }
}

/// Serves a freshly signed CRL for every request on `listen`.
fn serve(dir: &std::path::Path, listen: std::net::SocketAddr, next_update: std::time::Duration) -> anyhow::Result<()> {
    let ca_pem = std::fs::read_to_string(dir.join("ca.pem")).context("read ca.pem (run init first)")?;
    let key_pem = std::fs::read_to_string(dir.join("ca.key")).context("read ca.key")?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async move {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("listen on {listen}"))?;
        println!("serving the CRL on http://{listen}/ (nextUpdate +{})", humantime::format_duration(next_update));
        loop {
            let (mut stream, _) = listener.accept().await?;
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request).await;
            let body = match crl(dir, &ca_pem, &key_pem, next_update) {
                Ok(der) => der,
                Err(error) => {
                    eprintln!("cannot make the CRL: {error:#}");
                    let _ = stream.write_all(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n").await;
                    continue;
                }
            };
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/pkix-crl\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(&body).await;
        }
    })
}

/// The CRL listing every serial in `revoked.txt`, signed now.
fn crl(
    dir: &std::path::Path,
    ca_pem: &str,
    key_pem: &str,
    next_update: std::time::Duration,
) -> anyhow::Result<Vec<u8>> {
    let issuer = Issuer::from_ca_cert_pem(ca_pem, KeyPair::from_pem(key_pem)?)?;
    let now = OffsetDateTime::now_utc();
    let revoked = std::fs::read_to_string(dir.join("revoked.txt")).unwrap_or_default();
    let revoked_certs = revoked
        .lines()
        .filter_map(|line| unhex(line.trim()))
        .map(|serial| rcgen::RevokedCertParams {
            serial_number: rcgen::SerialNumber::from_slice(&serial),
            revocation_time: now - Duration::minutes(1),
            reason_code: None,
            invalidity_date: None,
        })
        .collect();
    let params = rcgen::CertificateRevocationListParams {
        this_update: now - Duration::minutes(1),
        next_update: now + next_update,
        crl_number: rcgen::SerialNumber::from(u64::try_from(now.unix_timestamp()).unwrap_or(1)),
        issuing_distribution_point: None,
        revoked_certs,
        key_identifier_method: rcgen::KeyIdMethod::Sha256,
    };
    Ok(params.signed_by(&issuer)?.der().to_vec())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.is_empty() || !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok()).collect()
}
