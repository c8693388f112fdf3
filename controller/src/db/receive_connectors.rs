//! Receive connectors, each belonging to one edge.

use chrono::{DateTime, Utc};
use domainsec_model::{
    AuthMechanism, Binding, Domain, InvalidField, IpRange, ObjectName, PermissionGroup, ProtocolLoggingLevel,
    ReceiveConnector,
};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{
    Error, Result, edges, is_unique_violation, parse_stored, parse_stored_all, size_column, stored_size, strings,
};

/// A receive connector with its last change time.
#[derive(Debug, Clone)]
pub struct StoredReceiveConnector {
    /// The connector.
    pub connector: ReceiveConnector,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct Row {
    edge: String,
    name: String,
    bindings: Vec<String>,
    remote_ip_ranges: Vec<String>,
    fqdn: Option<String>,
    auth_mechanisms: Vec<String>,
    domain_secure_enabled: bool,
    permission_groups: Vec<String>,
    protocol_logging_level: String,
    max_message_size: i64,
    updated_at: DateTime<Utc>,
}

const SELECT: &str = "SELECT e.name AS edge, c.name, c.bindings, c.remote_ip_ranges, c.fqdn, c.auth_mechanisms,
        c.domain_secure_enabled, c.permission_groups, c.protocol_logging_level, c.max_message_size, c.updated_at
    FROM receive_connectors c JOIN edges e ON e.id = c.edge_id";

/// Receive connectors of one edge, or of all edges, by edge then name.
pub async fn list(conn: &mut PgConnection, edge: Option<&ObjectName>) -> Result<Vec<StoredReceiveConnector>> {
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{SELECT} WHERE ($1::text IS NULL OR e.name = $1) ORDER BY e.name, c.name"
    )))
    .bind(edge.map(ObjectName::as_str))
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(Row::into_model).collect()
}

/// The named connector of an edge; `lock` takes a row lock for a read-modify-write.
pub async fn fetch(
    conn: &mut PgConnection,
    edge: &ObjectName,
    name: &ObjectName,
    lock: bool,
) -> Result<StoredReceiveConnector> {
    let lock = if lock { " FOR UPDATE OF c" } else { "" };
    let row: Option<Row> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("{SELECT} WHERE e.name = $1 AND c.name = $2{lock}")))
            .bind(edge.as_str())
            .bind(name.as_str())
            .fetch_optional(conn)
            .await?;
    row.ok_or_else(|| not_found(edge, name))?.into_model()
}

/// Inserts a new connector on its edge.
pub async fn insert(conn: &mut PgConnection, connector: &ReceiveConnector) -> Result<()> {
    let edge_id = edges::resolve(&mut *conn, "edge", &connector.edge).await?;
    check_binding_conflicts(&mut *conn, edge_id, connector).await?;
    sqlx::query(
        "INSERT INTO receive_connectors (id, edge_id, name, bindings, remote_ip_ranges, fqdn, auth_mechanisms,
             domain_secure_enabled, permission_groups, protocol_logging_level, max_message_size)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(Uuid::new_v4())
    .bind(edge_id)
    .bind(connector.name.as_str())
    .bind(strings(&connector.bindings))
    .bind(strings(&connector.remote_ip_ranges))
    .bind(connector.fqdn.as_ref().map(Domain::to_string))
    .bind(words(&connector.auth_mechanisms, |m| m.as_str()))
    .bind(connector.domain_secure_enabled)
    .bind(words(&connector.permission_groups, |g| g.as_str()))
    .bind(connector.protocol_logging_level.as_str())
    .bind(size_column(connector.max_message_size))
    .execute(&mut *conn)
    .await
    .map_err(|error| {
        if is_unique_violation(&error) {
            Error::AlreadyExists { kind: "receive connector", name: format!("{}/{}", connector.edge, connector.name) }
        } else {
            error.into()
        }
    })?;
    Ok(())
}

/// Replaces the named connector's settings (edge and name do not change).
pub async fn update(conn: &mut PgConnection, connector: &ReceiveConnector) -> Result<()> {
    let edge_id = edges::resolve(&mut *conn, "edge", &connector.edge).await?;
    check_binding_conflicts(&mut *conn, edge_id, connector).await?;
    let result = sqlx::query(
        "UPDATE receive_connectors SET bindings = $3, remote_ip_ranges = $4, fqdn = $5, auth_mechanisms = $6,
             domain_secure_enabled = $7, permission_groups = $8, protocol_logging_level = $9,
             max_message_size = $10, updated_at = now()
         WHERE edge_id = $1 AND name = $2",
    )
    .bind(edge_id)
    .bind(connector.name.as_str())
    .bind(strings(&connector.bindings))
    .bind(strings(&connector.remote_ip_ranges))
    .bind(connector.fqdn.as_ref().map(Domain::to_string))
    .bind(words(&connector.auth_mechanisms, |m| m.as_str()))
    .bind(connector.domain_secure_enabled)
    .bind(words(&connector.permission_groups, |g| g.as_str()))
    .bind(connector.protocol_logging_level.as_str())
    .bind(size_column(connector.max_message_size))
    .execute(conn)
    .await?;
    if result.rows_affected() == 0 {
        return Err(not_found(&connector.edge, &connector.name));
    }
    Ok(())
}

/// Removes the named connector of an edge.
pub async fn delete(conn: &mut PgConnection, edge: &ObjectName, name: &ObjectName) -> Result<()> {
    let result = sqlx::query(
        "DELETE FROM receive_connectors c USING edges e WHERE e.id = c.edge_id AND e.name = $1 AND c.name = $2",
    )
    .bind(edge.as_str())
    .bind(name.as_str())
    .execute(conn)
    .await?;
    if result.rows_affected() == 0 {
        return Err(not_found(edge, name));
    }
    Ok(())
}

/// Two connectors of one edge may share a binding only with different remote IP
/// ranges (as in Exchange, where that is how one port serves two kinds of sender).
async fn check_binding_conflicts(conn: &mut PgConnection, edge_id: Uuid, connector: &ReceiveConnector) -> Result<()> {
    let others: Vec<(String, Vec<String>, Vec<String>)> = sqlx::query_as(
        "SELECT name, bindings, remote_ip_ranges FROM receive_connectors WHERE edge_id = $1 AND name <> $2",
    )
    .bind(edge_id)
    .bind(connector.name.as_str())
    .fetch_all(conn)
    .await?;
    let mut ranges = strings(&connector.remote_ip_ranges);
    ranges.sort();
    for (other, bindings, mut other_ranges) in others {
        other_ranges.sort();
        if other_ranges != ranges {
            continue;
        }
        for (index, binding) in connector.bindings.iter().enumerate() {
            if bindings.contains(&binding.to_string()) {
                return Err(Error::Invalid(InvalidField::new(
                    format!("bindings[{index}]"),
                    binding.to_string(),
                    format!(
                        "receive connector {other:?} on this edge already listens there for the same remote IP \
                         ranges; give one of them other remote_ip_ranges or another binding"
                    ),
                )));
            }
        }
    }
    Ok(())
}

fn words<T: Copy>(values: &[T], word: impl Fn(T) -> &'static str) -> Vec<String> {
    values.iter().map(|v| word(*v).to_owned()).collect()
}

fn not_found(edge: &ObjectName, name: &ObjectName) -> Error {
    Error::NotFound { kind: "receive connector", name: format!("{edge}/{name}") }
}

impl Row {
    fn into_model(self) -> Result<StoredReceiveConnector> {
        let connector = ReceiveConnector {
            edge: parse_stored("edge name", &self.edge, ObjectName::parse)?,
            name: parse_stored("connector name", &self.name, ObjectName::parse)?,
            bindings: parse_stored_all("binding", &self.bindings, Binding::parse)?,
            remote_ip_ranges: parse_stored_all("remote IP range", &self.remote_ip_ranges, IpRange::parse)?,
            fqdn: self.fqdn.as_deref().map(|f| parse_stored("fqdn", f, Domain::parse)).transpose()?,
            auth_mechanisms: parse_stored_all("auth mechanism", &self.auth_mechanisms, str::parse::<AuthMechanism>)?,
            domain_secure_enabled: self.domain_secure_enabled,
            permission_groups: parse_stored_all(
                "permission group",
                &self.permission_groups,
                str::parse::<PermissionGroup>,
            )?,
            protocol_logging_level: parse_stored(
                "protocol logging level",
                &self.protocol_logging_level,
                str::parse::<ProtocolLoggingLevel>,
            )?,
            max_message_size: stored_size(self.max_message_size)?,
        };
        Ok(StoredReceiveConnector { connector, updated_at: self.updated_at })
    }
}
