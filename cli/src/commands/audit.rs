//! `dsctl audit` and `dsctl whoami`.

use clap::{Args, Subcommand};
use proto::admin as pb;
use serde::Serialize;
use serde_json::Value;

use super::Context;
use crate::{
    output::{self, Render},
    words,
};

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AuditArgs {
    #[command(subcommand)]
    command: Option<AuditCommand>,
    /// How many entries, newest first.
    #[arg(long, default_value_t = 20)]
    limit: u32,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// One entry with its before and after as differences (- removed, + added).
    Show {
        /// The entry's ID (the first column of `dsctl audit`).
        id: i64,
    },
}

#[derive(Serialize)]
struct AuditView {
    id: i64,
    at: String,
    actor: String,
    actor_role: String,
    action: String,
    target: String,
    config_version: u64,
    before: Value,
    after: Value,
}

impl From<pb::AuditEntry> for AuditView {
    fn from(entry: pb::AuditEntry) -> Self {
        Self {
            id: entry.id,
            at: entry.at,
            actor: entry.actor,
            actor_role: entry.actor_role,
            action: entry.action,
            target: entry.target,
            config_version: entry.config_version,
            before: serde_json::from_str(&entry.before_json).unwrap_or(Value::Null),
            after: serde_json::from_str(&entry.after_json).unwrap_or(Value::Null),
        }
    }
}

impl Render for AuditView {
    fn headers() -> &'static [&'static str] {
        &["ID", "AT", "ACTOR", "ROLE", "ACTION", "TARGET", "VERSION", "CHANGE"]
    }
    fn row(&self) -> Vec<String> {
        vec![
            self.id.to_string(),
            output::time(&self.at),
            self.actor.clone(),
            self.actor_role.clone(),
            self.action.clone(),
            self.target.clone(),
            self.config_version.to_string(),
            change_summary(&self.before, &self.after),
        ]
    }
}

/// `field: old -> new` for each top-level field that differs.
fn change_summary(before: &Value, after: &Value) -> String {
    match (before, after) {
        (Value::Object(old), Value::Object(new)) => {
            let mut changes = Vec::new();
            for (key, new_value) in new {
                let old_value = old.get(key).unwrap_or(&Value::Null);
                if old_value != new_value {
                    changes.push(format!("{key}: {} -> {}", compact(old_value), compact(new_value)));
                }
            }
            if changes.is_empty() { "-".to_owned() } else { changes.join("; ") }
        }
        (Value::Null, Value::Object(_)) => "created".to_owned(),
        (Value::Object(_), Value::Null) => "removed".to_owned(),
        (Value::Null, new) => format!("created {}", compact(new)),
        (old, Value::Null) => format!("removed {}", compact(old)),
        (old, new) => format!("{} -> {}", compact(old), compact(new)),
    }
}

fn compact(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Array(items) => format!("[{}]", items.iter().map(compact).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

pub async fn run(context: &mut Context, args: AuditArgs) -> anyhow::Result<()> {
    if let Some(AuditCommand::Show { id }) = args.command {
        return show(context, id).await;
    }
    let entries = context
        .client
        .list_audit_entries(pb::ListAuditEntriesRequest { limit: args.limit })
        .await?
        .into_inner()
        .entries;
    let views: Vec<AuditView> = entries.into_iter().map(AuditView::from).collect();
    output::list(context.format, &views)
}

#[derive(Serialize)]
struct AuditDetailView<'a> {
    #[serde(flatten)]
    entry: AuditView,
    differences: Vec<super::config::DifferenceView<'a>>,
}

/// `dsctl audit show ID`: the entry, then what it changed.
async fn show(context: &mut Context, id: i64) -> anyhow::Result<()> {
    let detail = context.client.get_audit_entry(pb::GetAuditEntryRequest { id }).await?.into_inner();
    let entry = detail.entry.unwrap_or_default();
    let view = AuditView::from(entry);
    if context.format == output::Format::Json {
        let detail_view = AuditDetailView { entry: view, differences: super::config::views(&detail.differences) };
        println!("{}", serde_json::to_string_pretty(&detail_view)?);
        return Ok(());
    }
    let fields = vec![
        ("ID", view.id.to_string()),
        ("At", output::time(&view.at)),
        ("Actor", view.actor.clone()),
        ("Role", view.actor_role.clone()),
        ("Action", view.action.clone()),
        ("Target", view.target.clone()),
        ("ConfigVersion", view.config_version.to_string()),
    ];
    output::object(context.format, &view, fields)?;
    println!();
    if detail.differences.is_empty() {
        println!("(no differences recorded)");
    } else {
        print!("{}", super::config::render_differences(&detail.differences));
    }
    Ok(())
}

#[derive(Serialize)]
struct WhoAmIView {
    name: String,
    role: String,
    edges: Vec<String>,
    organization: String,
    config_version: u64,
}

pub async fn whoami(context: &mut Context) -> anyhow::Result<()> {
    let me = context.client.who_am_i(pb::WhoAmIRequest {}).await?.into_inner();
    let view = WhoAmIView {
        name: me.name,
        role: words::role_word(me.role),
        edges: me.edges,
        organization: me.organization,
        config_version: me.config_version,
    };
    let fields = vec![
        ("Name", view.name.clone()),
        ("Role", view.role.clone()),
        ("Edges", output::join(&view.edges)),
        ("Organization", view.organization.clone()),
        ("ConfigVersion", view.config_version.to_string()),
    ];
    output::object(context.format, &view, fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_name_changed_fields() {
        let before = serde_json::json!({"a": ["x.com"], "b": 1});
        let after = serde_json::json!({"a": ["x.com", "y.com"], "b": 1});
        assert_eq!(change_summary(&before, &after), "a: [x.com] -> [x.com,y.com]");
        assert_eq!(change_summary(&Value::Null, &serde_json::json!("c.com")), "created c.com");
    }
}
