//! The transport config singleton.

use domainsec_model::{DomainPattern, TransportConfig};
use sqlx::PgConnection;

use super::{Result, parse_stored_all, strings};

/// Reads the transport config.
pub async fn fetch(conn: &mut PgConnection) -> Result<TransportConfig> {
    let (send, receive): (Vec<String>, Vec<String>) = sqlx::query_as(
        "SELECT tls_send_domain_secure_list, tls_receive_domain_secure_list FROM transport_config WHERE id = 1",
    )
    .fetch_one(conn)
    .await?;
    Ok(TransportConfig {
        tls_send_domain_secure_list: parse_stored_all("secure domain", &send, DomainPattern::parse)?,
        tls_receive_domain_secure_list: parse_stored_all("secure domain", &receive, DomainPattern::parse)?,
    })
}

/// Replaces the transport config.
pub async fn store(conn: &mut PgConnection, config: &TransportConfig) -> Result<()> {
    sqlx::query(
        "UPDATE transport_config SET tls_send_domain_secure_list = $1, tls_receive_domain_secure_list = $2 WHERE id = 1",
    )
    .bind(strings(&config.tls_send_domain_secure_list))
    .bind(strings(&config.tls_receive_domain_secure_list))
    .execute(conn)
    .await?;
    Ok(())
}
