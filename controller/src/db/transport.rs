//! The transport config singleton.

use domainsec_model::{CrlProxy, DomainPattern, ProxyBypass, TransportConfig};
use sqlx::PgConnection;

use super::{Result, parse_stored_all, strings};

/// Reads the transport config.
pub async fn fetch(conn: &mut PgConnection) -> Result<TransportConfig> {
    let (send, receive, proxy, bypass): (Vec<String>, Vec<String>, Option<String>, Vec<String>) = sqlx::query_as(
        "SELECT tls_send_domain_secure_list, tls_receive_domain_secure_list, crl_proxy, crl_proxy_bypass
         FROM transport_config WHERE id = 1",
    )
    .fetch_one(conn)
    .await?;
    let proxy: Vec<String> = proxy.into_iter().collect();
    Ok(TransportConfig {
        tls_send_domain_secure_list: parse_stored_all("secure domain", &send, DomainPattern::parse)?,
        tls_receive_domain_secure_list: parse_stored_all("secure domain", &receive, DomainPattern::parse)?,
        crl_proxy: parse_stored_all("CRL proxy", &proxy, CrlProxy::parse)?.into_iter().next(),
        crl_proxy_bypass: parse_stored_all("CRL proxy bypass", &bypass, ProxyBypass::parse)?,
    })
}

/// Replaces the transport config.
pub async fn store(conn: &mut PgConnection, config: &TransportConfig) -> Result<()> {
    sqlx::query(
        "UPDATE transport_config SET tls_send_domain_secure_list = $1, tls_receive_domain_secure_list = $2,
             crl_proxy = $3, crl_proxy_bypass = $4 WHERE id = 1",
    )
    .bind(strings(&config.tls_send_domain_secure_list))
    .bind(strings(&config.tls_receive_domain_secure_list))
    .bind(config.crl_proxy.as_ref().map(ToString::to_string))
    .bind(strings(&config.crl_proxy_bypass))
    .execute(conn)
    .await?;
    Ok(())
}
