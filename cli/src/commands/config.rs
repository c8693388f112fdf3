//! `dsctl config export|apply|rollback`: the organization's whole configuration as
//! one declarative document, applied as one change, and earlier versions restored.

use std::{io::Read as _, path::PathBuf};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use proto::admin as pb;
use serde::Serialize;

use super::Context;
use crate::output::Format;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the whole configuration as YAML (schema domainsec.config/v1; JSON with -o json):
    /// transport config, accepted domains, edges, connectors, trusted roots. No keys, no credentials.
    Export {
        /// An earlier config version instead of the current one.
        #[arg(long)]
        version: Option<u64>,
    },
    /// Make the directory hold what a document says, as one change (one version, one audit entry).
    Apply(ApplyArgs),
    /// Restore the configuration of an earlier version, as one new version.
    Rollback(RollbackArgs),
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The document (YAML or JSON), or - for standard input.
    #[arg(short = 'f', long = "file")]
    file: PathBuf,
    /// Print the differences and change nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The config version whose configuration to restore (dsctl audit shows versions).
    #[arg(long)]
    to_version: u64,
    /// Print the differences and change nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Serialize)]
pub(super) struct DifferenceView<'a> {
    path: &'a str,
    removed: &'a [String],
    added: &'a [String],
}

#[derive(Serialize)]
struct AppliedView<'a> {
    written: bool,
    dry_run: bool,
    config_version: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    audit_id: Option<i64>,
    differences: Vec<DifferenceView<'a>>,
}

pub async fn run(context: &mut Context, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Export { version } => export(context, version).await,
        Command::Apply(args) => {
            let document = read_document(&args.file)?;
            let request = pb::ApplyConfigRequest { document, dry_run: args.dry_run };
            let reply = context.client.apply_config(request).await?.into_inner();
            report(context.format, &reply, args.dry_run, None)
        }
        Command::Rollback(args) => {
            let request = pb::RollbackConfigRequest { to_version: args.to_version, dry_run: args.dry_run };
            let reply = context.client.rollback_config(request).await?.into_inner();
            report(context.format, &reply, args.dry_run, Some(args.to_version))
        }
    }
}

async fn export(context: &mut Context, version: Option<u64>) -> anyhow::Result<()> {
    let request = pb::ExportConfigRequest { version: version.unwrap_or_default() };
    let reply = context.client.export_config(request).await?.into_inner();
    match context.format {
        Format::Json => println!("{}", reply.document_json),
        Format::Table => print!("{}", reply.document_yaml),
    }
    Ok(())
}

fn read_document(file: &PathBuf) -> anyhow::Result<String> {
    if file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).context("read the document from standard input")?;
        return Ok(text);
    }
    std::fs::read_to_string(file).with_context(|| format!("read {}", file.display()))
}

fn report(
    format: Format,
    reply: &pb::ApplyConfigResponse,
    dry_run: bool,
    rollback_to: Option<u64>,
) -> anyhow::Result<()> {
    let audit_id = reply.written.then_some(reply.audit_id);
    if format == Format::Json {
        let view = AppliedView {
            written: reply.written,
            dry_run,
            config_version: reply.config_version,
            audit_id,
            differences: views(&reply.differences),
        };
        println!("{}", serde_json::to_string_pretty(&view)?);
        return Ok(());
    }
    let version = reply.config_version;
    let count = reply.differences.len();
    if count == 0 {
        println!("no changes (config version {version})");
        return Ok(());
    }
    print!("{}", render_differences(&reply.differences));
    let changes = if count == 1 { "1 change".to_owned() } else { format!("{count} changes") };
    let what = match rollback_to {
        Some(to) => format!("version {to}'s configuration"),
        None => "the document".to_owned(),
    };
    if reply.written {
        println!("\napplied {what}: {changes} as config version {version} (dsctl audit show {})", reply.audit_id);
    } else {
        println!("\ndry run: {changes} from {what}, nothing written (config version stays {version})");
    }
    Ok(())
}

/// The JSON form of differences.
pub(super) fn views(differences: &[pb::ConfigDifference]) -> Vec<DifferenceView<'_>> {
    differences.iter().map(|d| DifferenceView { path: &d.path, removed: &d.removed, added: &d.added }).collect()
}

/// Differences for people: the path, then `  - old` and `  + new` lines.
pub(super) fn render_differences(differences: &[pb::ConfigDifference]) -> String {
    let mut text = String::new();
    for difference in differences {
        if !difference.path.is_empty() {
            text.push_str(&difference.path);
            text.push('\n');
        }
        for line in &difference.removed {
            text.push_str(&format!("  - {line}\n"));
        }
        for line in &difference.added {
            text.push_str(&format!("  + {line}\n"));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_print_as_minus_and_plus_lines_under_their_path() {
        let differences = vec![
            pb::ConfigDifference {
                path: "transport.tls_send_domain_secure_list".into(),
                removed: vec!["fabrikam.com".into()],
                added: vec!["woodgrovebank.com".into()],
            },
            pb::ConfigDifference { path: String::new(), removed: vec![], added: vec!["contoso.com".into()] },
        ];
        assert_eq!(
            render_differences(&differences),
            "transport.tls_send_domain_secure_list\n  - fabrikam.com\n  + woodgrovebank.com\n  + contoso.com\n"
        );
    }
}
