//! Admin API handlers: authenticate → parse → directory call → encode.

use proto::admin::{self as pb, admin_server::Admin as AdminApi};
use tonic::{Request, Response, Status};

use super::{authenticate, convert};
use crate::{
    authz::Admin,
    directory::Directory,
    publication::{mta_sts, tls_rpt, tlsa::SmtpPort},
};

/// Most protocol log records one call returns.
const MAX_LOG_RECORDS: u32 = 5000;

/// Implements `domainsec.admin.v1.Admin`.
pub struct AdminService {
    directory: Directory,
}

impl AdminService {
    /// A service over the directory.
    pub fn new(directory: Directory) -> Self {
        Self { directory }
    }

    async fn caller<T>(&self, request: &Request<T>) -> Result<Admin, Status> {
        let admin = authenticate(self.directory.pool(), request).await?;
        tracing::debug!(admin = %admin.name, role = %admin.role, "authenticated");
        Ok(admin)
    }

    async fn change_queued(
        &self,
        request: Request<pb::QueuedMessageRequest>,
        action: proto::edge::QueueAction,
    ) -> Result<Response<pb::QueuedMessageResponse>, Status> {
        let admin = self.caller(&request).await?;
        let request = request.into_inner();
        let edge = convert::object_name("edge", &request.edge).map_err(invalid)?;
        let id = request.message_id;
        if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Status::invalid_argument(format!(
                "message_id {id:?}: queue ids are hexadecimal, as dsctl queue list shows them"
            )));
        }
        self.directory.change_queued(&admin, &edge, action, &id).await?;
        Ok(Response::new(pb::QueuedMessageResponse { message_id: id }))
    }

    async fn version(&self) -> Result<u64, Status> {
        Ok(self.directory.organization().await?.1)
    }
}

type Reply<T> = Result<Response<T>, Status>;

fn invalid(error: domainsec_model::InvalidField) -> Status {
    Status::invalid_argument(error.to_string())
}

#[tonic::async_trait]
impl AdminApi for AdminService {
    async fn who_am_i(&self, request: Request<pb::WhoAmIRequest>) -> Reply<pb::WhoAmIResponse> {
        let admin = self.caller(&request).await?;
        let (organization, config_version) = self.directory.organization().await?;
        Ok(Response::new(pb::WhoAmIResponse {
            name: admin.name,
            role: convert::role_reply(admin.role) as i32,
            edges: admin.edges.iter().map(ToString::to_string).collect(),
            organization,
            config_version,
        }))
    }

    async fn get_transport_config(
        &self,
        request: Request<pb::GetTransportConfigRequest>,
    ) -> Reply<pb::TransportConfig> {
        self.caller(&request).await?;
        let (config, version) = self.directory.transport_config().await?;
        Ok(Response::new(convert::transport_config(&config, version)))
    }

    async fn set_transport_config(
        &self,
        request: Request<pb::SetTransportConfigRequest>,
    ) -> Reply<pb::TransportConfig> {
        let admin = self.caller(&request).await?;
        let change = convert::transport_change(request.into_inner()).map_err(invalid)?;
        let (config, version) = self.directory.set_transport_config(&admin, change).await?;
        Ok(Response::new(convert::transport_config(&config, version)))
    }

    async fn add_accepted_domain(&self, request: Request<pb::AddAcceptedDomainRequest>) -> Reply<pb::AcceptedDomain> {
        let admin = self.caller(&request).await?;
        let domain = convert::domain_pattern("domain", &request.get_ref().domain).map_err(invalid)?;
        let added = self.directory.add_accepted_domain(&admin, domain).await?;
        Ok(Response::new(convert::accepted_domain(&added)))
    }

    async fn list_accepted_domains(
        &self,
        request: Request<pb::ListAcceptedDomainsRequest>,
    ) -> Reply<pb::ListAcceptedDomainsResponse> {
        self.caller(&request).await?;
        let domains = self.directory.accepted_domains().await?;
        Ok(Response::new(pb::ListAcceptedDomainsResponse {
            accepted_domains: domains.iter().map(convert::accepted_domain).collect(),
        }))
    }

    async fn remove_accepted_domain(
        &self,
        request: Request<pb::RemoveAcceptedDomainRequest>,
    ) -> Reply<pb::RemoveAcceptedDomainResponse> {
        let admin = self.caller(&request).await?;
        let domain = convert::domain_pattern("domain", &request.get_ref().domain).map_err(invalid)?;
        let config_version = self.directory.remove_accepted_domain(&admin, domain).await?;
        Ok(Response::new(pb::RemoveAcceptedDomainResponse { config_version }))
    }

    async fn create_send_connector(&self, request: Request<pb::SendConnectorSpec>) -> Reply<pb::SendConnector> {
        let admin = self.caller(&request).await?;
        let connector = convert::send_connector(request.into_inner()).map_err(invalid)?;
        let stored = self.directory.create_send_connector(&admin, connector).await?;
        Ok(Response::new(convert::send_connector_reply(&stored, self.version().await?)))
    }

    async fn update_send_connector(
        &self,
        request: Request<pb::UpdateSendConnectorRequest>,
    ) -> Reply<pb::SendConnector> {
        let admin = self.caller(&request).await?;
        let (name, change) = convert::send_connector_change(request.into_inner()).map_err(invalid)?;
        let stored = self.directory.update_send_connector(&admin, name, change).await?;
        Ok(Response::new(convert::send_connector_reply(&stored, self.version().await?)))
    }

    async fn get_send_connector(&self, request: Request<pb::GetSendConnectorRequest>) -> Reply<pb::SendConnector> {
        self.caller(&request).await?;
        let name = convert::object_name("name", &request.get_ref().name).map_err(invalid)?;
        let stored = self.directory.send_connector(&name).await?;
        Ok(Response::new(convert::send_connector_reply(&stored, self.version().await?)))
    }

    async fn list_send_connectors(
        &self,
        request: Request<pb::ListSendConnectorsRequest>,
    ) -> Reply<pb::ListSendConnectorsResponse> {
        self.caller(&request).await?;
        let connectors = self.directory.send_connectors().await?;
        let version = self.version().await?;
        Ok(Response::new(pb::ListSendConnectorsResponse {
            send_connectors: connectors.iter().map(|c| convert::send_connector_reply(c, version)).collect(),
        }))
    }

    async fn remove_send_connector(
        &self,
        request: Request<pb::RemoveSendConnectorRequest>,
    ) -> Reply<pb::RemoveSendConnectorResponse> {
        let admin = self.caller(&request).await?;
        let name = convert::object_name("name", &request.get_ref().name).map_err(invalid)?;
        let config_version = self.directory.remove_send_connector(&admin, name).await?;
        Ok(Response::new(pb::RemoveSendConnectorResponse { config_version }))
    }

    async fn create_receive_connector(
        &self,
        request: Request<pb::ReceiveConnectorSpec>,
    ) -> Reply<pb::ReceiveConnector> {
        let admin = self.caller(&request).await?;
        let connector = convert::receive_connector(request.into_inner()).map_err(invalid)?;
        let stored = self.directory.create_receive_connector(&admin, connector).await?;
        Ok(Response::new(convert::receive_connector_reply(&stored, self.version().await?)))
    }

    async fn update_receive_connector(
        &self,
        request: Request<pb::UpdateReceiveConnectorRequest>,
    ) -> Reply<pb::ReceiveConnector> {
        let admin = self.caller(&request).await?;
        let (edge, name, change) = convert::receive_connector_change(request.into_inner()).map_err(invalid)?;
        let stored = self.directory.update_receive_connector(&admin, edge, name, change).await?;
        Ok(Response::new(convert::receive_connector_reply(&stored, self.version().await?)))
    }

    async fn get_receive_connector(
        &self,
        request: Request<pb::GetReceiveConnectorRequest>,
    ) -> Reply<pb::ReceiveConnector> {
        self.caller(&request).await?;
        let edge = convert::object_name("edge", &request.get_ref().edge).map_err(invalid)?;
        let name = convert::object_name("name", &request.get_ref().name).map_err(invalid)?;
        let stored = self.directory.receive_connector(&edge, &name).await?;
        Ok(Response::new(convert::receive_connector_reply(&stored, self.version().await?)))
    }

    async fn list_receive_connectors(
        &self,
        request: Request<pb::ListReceiveConnectorsRequest>,
    ) -> Reply<pb::ListReceiveConnectorsResponse> {
        self.caller(&request).await?;
        let edge = match request.get_ref().edge.as_str() {
            "" => None,
            edge => Some(convert::object_name("edge", edge).map_err(invalid)?),
        };
        let connectors = self.directory.receive_connectors(edge.as_ref()).await?;
        let version = self.version().await?;
        Ok(Response::new(pb::ListReceiveConnectorsResponse {
            receive_connectors: connectors.iter().map(|c| convert::receive_connector_reply(c, version)).collect(),
        }))
    }

    async fn remove_receive_connector(
        &self,
        request: Request<pb::RemoveReceiveConnectorRequest>,
    ) -> Reply<pb::RemoveReceiveConnectorResponse> {
        let admin = self.caller(&request).await?;
        let edge = convert::object_name("edge", &request.get_ref().edge).map_err(invalid)?;
        let name = convert::object_name("name", &request.get_ref().name).map_err(invalid)?;
        let config_version = self.directory.remove_receive_connector(&admin, edge, name).await?;
        Ok(Response::new(pb::RemoveReceiveConnectorResponse { config_version }))
    }

    async fn create_edge(&self, request: Request<pb::CreateEdgeRequest>) -> Reply<pb::Edge> {
        let admin = self.caller(&request).await?;
        let name = convert::object_name("name", &request.get_ref().name).map_err(invalid)?;
        let fqdn = convert::domain("fqdn", &request.get_ref().fqdn).map_err(invalid)?;
        let edge = self.directory.create_edge(&admin, name, fqdn).await?;
        Ok(Response::new(convert::edge(&edge)))
    }

    async fn list_edges(&self, request: Request<pb::ListEdgesRequest>) -> Reply<pb::ListEdgesResponse> {
        self.caller(&request).await?;
        let edges = self.directory.edges().await?;
        Ok(Response::new(pb::ListEdgesResponse { edges: edges.iter().map(convert::edge).collect() }))
    }

    async fn remove_edge(&self, request: Request<pb::RemoveEdgeRequest>) -> Reply<pb::RemoveEdgeResponse> {
        let admin = self.caller(&request).await?;
        let name = convert::object_name("name", &request.get_ref().name).map_err(invalid)?;
        let config_version = self.directory.remove_edge(&admin, name).await?;
        Ok(Response::new(pb::RemoveEdgeResponse { config_version }))
    }

    async fn new_subscription(&self, request: Request<pb::NewSubscriptionRequest>) -> Reply<pb::Subscription> {
        let admin = self.caller(&request).await?;
        let request = request.into_inner();
        let name = convert::object_name("name", &request.name).map_err(invalid)?;
        let fqdn = match request.fqdn.as_str() {
            "" => None,
            fqdn => Some(convert::domain("fqdn", fqdn).map_err(invalid)?),
        };
        let expires = match request.expires_in_seconds {
            0 => DEFAULT_SUBSCRIPTION_LIFETIME,
            seconds => std::time::Duration::from_secs(seconds),
        };
        let subscription = self.directory.new_subscription(&admin, name, fqdn, expires).await?;
        Ok(Response::new(convert::subscription(subscription)))
    }

    async fn fleet_status(&self, request: Request<pb::FleetStatusRequest>) -> Reply<pb::FleetStatusResponse> {
        self.caller(&request).await?;
        let (version, entries) = self.directory.fleet_status().await?;
        Ok(Response::new(convert::fleet_status(version, entries)))
    }

    async fn sync_edges(&self, request: Request<pb::SyncEdgesRequest>) -> Reply<pb::SyncEdgesResponse> {
        let admin = self.caller(&request).await?;
        let request = request.into_inner();
        let names = convert::edge_names(&request.names).map_err(invalid)?;
        if names.is_some() == request.all {
            return Err(Status::invalid_argument("names: give edge names or all, not both and not neither"));
        }
        let timeout = match request.timeout_seconds {
            0 => std::time::Duration::from_secs(10),
            seconds if seconds > proto::admin::MAX_WAIT_SECONDS => {
                return Err(Status::invalid_argument(format!(
                    "timeout_seconds: {seconds} is more than the longest wait, {} s",
                    proto::admin::MAX_WAIT_SECONDS
                )));
            }
            seconds => std::time::Duration::from_secs(u64::from(seconds)),
        };
        let (version, outcomes) = self.directory.sync_edges(&admin, names, timeout).await?;
        Ok(Response::new(convert::sync_results(version, outcomes)))
    }

    async fn test_edge_sync(&self, request: Request<pb::TestEdgeSyncRequest>) -> Reply<pb::TestEdgeSyncResponse> {
        self.caller(&request).await?;
        let names = convert::edge_names(&request.get_ref().names).map_err(invalid)?;
        let (version, tests) = self.directory.test_edge_sync(names).await?;
        Ok(Response::new(convert::sync_tests(version, tests)))
    }

    async fn new_certificate(&self, request: Request<pb::NewCertificateRequest>) -> Reply<pb::CertificateTasks> {
        let admin = self.caller(&request).await?;
        let spec = convert::new_certificate(request.into_inner()).map_err(invalid)?;
        let (task, warnings) = self.directory.new_certificate(&admin, spec).await?;
        Ok(Response::new(pb::CertificateTasks { tasks: vec![convert::certificate_task(&task)], warnings }))
    }

    async fn import_certificate(&self, request: Request<pb::ImportCertificateRequest>) -> Reply<pb::CertificateTasks> {
        let admin = self.caller(&request).await?;
        let request = request.into_inner();
        let edges = domainsec_model::parse_set("edges", &request.edges, true, domainsec_model::ObjectName::parse)
            .map_err(invalid)?;
        let services = convert::services(&request.services).map_err(invalid)?;
        if request.data.len() > MAX_IMPORT_BYTES {
            return Err(Status::invalid_argument(format!("data: larger than {MAX_IMPORT_BYTES} bytes")));
        }
        let tasks =
            self.directory.import_certificate(&admin, edges, request.data, services, request.friendly_name).await?;
        Ok(Response::new(pb::CertificateTasks {
            tasks: tasks.iter().map(convert::certificate_task).collect(),
            warnings: vec![],
        }))
    }

    async fn import_pfx(&self, request: Request<pb::ImportPfxRequest>) -> Reply<pb::CertificateTasks> {
        let admin = self.caller(&request).await?;
        let request = request.into_inner();
        let edges = domainsec_model::parse_set("edges", &request.edges, true, domainsec_model::ObjectName::parse)
            .map_err(invalid)?;
        let services = convert::services(&request.services).map_err(invalid)?;
        if request.pfx.len() > MAX_IMPORT_BYTES {
            return Err(Status::invalid_argument(format!("pfx: larger than {MAX_IMPORT_BYTES} bytes")));
        }
        let tasks = self
            .directory
            .import_pfx(&admin, edges, request.pfx, request.password, services, request.friendly_name)
            .await?;
        Ok(Response::new(pb::CertificateTasks {
            tasks: tasks.iter().map(convert::certificate_task).collect(),
            warnings: vec![],
        }))
    }

    async fn enable_certificate(&self, request: Request<pb::EnableCertificateRequest>) -> Reply<pb::CertificateTasks> {
        let admin = self.caller(&request).await?;
        let request = request.into_inner();
        let edge = convert::object_name("edge", &request.edge).map_err(invalid)?;
        let thumbprint = convert::thumbprint(&request.thumbprint).map_err(invalid)?;
        let services = convert::services(&request.services).map_err(invalid)?;
        if services.is_empty() {
            return Err(Status::invalid_argument("services: name at least one service (smtp)"));
        }
        let (task, warnings) = self.directory.enable_certificate(&admin, edge, thumbprint, services).await?;
        Ok(Response::new(pb::CertificateTasks { tasks: vec![convert::certificate_task(&task)], warnings }))
    }

    async fn remove_certificate(&self, request: Request<pb::RemoveCertificateRequest>) -> Reply<pb::CertificateTasks> {
        let admin = self.caller(&request).await?;
        let edge = convert::object_name("edge", &request.get_ref().edge).map_err(invalid)?;
        let thumbprint = convert::thumbprint(&request.get_ref().thumbprint).map_err(invalid)?;
        let task = self.directory.remove_certificate(&admin, edge, thumbprint).await?;
        Ok(Response::new(pb::CertificateTasks { tasks: vec![convert::certificate_task(&task)], warnings: vec![] }))
    }

    async fn clone_certificate(&self, request: Request<pb::CloneCertificateRequest>) -> Reply<pb::CertificateTasks> {
        let admin = self.caller(&request).await?;
        let request = request.into_inner();
        let edge = convert::object_name("edge", &request.edge).map_err(invalid)?;
        let thumbprint = convert::thumbprint(&request.thumbprint).map_err(invalid)?;
        let key_algorithm = convert::key_algorithm(&request.key_algorithm).map_err(invalid)?;
        let (task, warnings) = self
            .directory
            .clone_certificate(&admin, edge, &thumbprint, request.generate_request, key_algorithm)
            .await?;
        Ok(Response::new(pb::CertificateTasks { tasks: vec![convert::certificate_task(&task)], warnings }))
    }

    async fn verify_certificate(&self, request: Request<pb::VerifyCertificateRequest>) -> Reply<pb::CertificateTasks> {
        let admin = self.caller(&request).await?;
        let edge = convert::object_name("edge", &request.get_ref().edge).map_err(invalid)?;
        let thumbprint = convert::thumbprint(&request.get_ref().thumbprint).map_err(invalid)?;
        let task = self.directory.verify_certificate(&admin, edge, thumbprint).await?;
        Ok(Response::new(pb::CertificateTasks { tasks: vec![convert::certificate_task(&task)], warnings: vec![] }))
    }

    async fn get_certificate_task(
        &self,
        request: Request<pb::GetCertificateTaskRequest>,
    ) -> Reply<pb::CertificateTask> {
        self.caller(&request).await?;
        let id = uuid::Uuid::parse_str(&request.get_ref().id)
            .map_err(|_| Status::invalid_argument(format!("id {:?}: not a task id", request.get_ref().id)))?;
        let task = self.directory.certificate_task(id).await?;
        Ok(Response::new(convert::certificate_task(&task)))
    }

    async fn list_certificates(
        &self,
        request: Request<pb::ListCertificatesRequest>,
    ) -> Reply<pb::ListCertificatesResponse> {
        self.caller(&request).await?;
        let request = request.into_inner();
        let edge = match request.edge.as_str() {
            "" => None,
            edge => Some(convert::object_name("edge", edge).map_err(invalid)?),
        };
        let thumbprint = match request.thumbprint.as_str() {
            "" => None,
            value => Some(convert::thumbprint(value).map_err(invalid)?),
        };
        let domain = match request.domain_name.as_str() {
            "" => None,
            value => Some(convert::domain("domain_name", value).map_err(invalid)?),
        };
        let certificates = self.directory.certificates(edge.as_ref(), thumbprint.as_deref(), domain.as_ref()).await?;
        Ok(Response::new(pb::ListCertificatesResponse {
            certificates: certificates.into_iter().map(convert::edge_certificate).collect(),
        }))
    }

    async fn list_queue(&self, request: Request<pb::ListQueueRequest>) -> Reply<pb::ListQueueResponse> {
        let admin = self.caller(&request).await?;
        let edge = convert::object_name("edge", &request.get_ref().edge).map_err(invalid)?;
        let messages = self.directory.list_queue(&admin, &edge).await?;
        Ok(Response::new(pb::ListQueueResponse { messages }))
    }

    async fn retry_queued_message(
        &self,
        request: Request<pb::QueuedMessageRequest>,
    ) -> Reply<pb::QueuedMessageResponse> {
        self.change_queued(request, proto::edge::QueueAction::Retry).await
    }

    async fn remove_queued_message(
        &self,
        request: Request<pb::QueuedMessageRequest>,
    ) -> Reply<pb::QueuedMessageResponse> {
        self.change_queued(request, proto::edge::QueueAction::Remove).await
    }

    async fn explain_policy(&self, request: Request<pb::ExplainPolicyRequest>) -> Reply<pb::ExplainPolicyResponse> {
        let admin = self.caller(&request).await?;
        let request = request.into_inner();
        let edge = convert::object_name("edge", &request.edge).map_err(invalid)?;
        let question =
            convert::policy_question(request.from, request.to, request.client_ip, request.binding).map_err(invalid)?;
        let explanation = self.directory.explain_policy(&admin, &edge, question, request.current_config).await?;
        Ok(Response::new(pb::ExplainPolicyResponse { explanation: Some(explanation) }))
    }

    async fn test_partner(&self, request: Request<pb::TestPartnerRequest>) -> Reply<pb::TestPartnerResponse> {
        let admin = self.caller(&request).await?;
        let request = request.into_inner();
        let edge = convert::object_name("edge", &request.edge).map_err(invalid)?;
        let domain = convert::domain("domain", &request.domain).map_err(invalid)?;
        let certificates = match request.inbound {
            true => convert::certificate_chain("certificate", &request.certificate).map_err(invalid)?,
            false if !request.certificate.is_empty() => {
                return Err(Status::invalid_argument(
                    "certificate: only with inbound (a certificate the partner sent)",
                ));
            }
            false => Vec::new(),
        };
        let test = proto::edge::PartnerTest { domain: domain.to_string(), inbound: request.inbound, certificates };
        let report = self.directory.test_partner(&admin, &edge, test).await?;
        Ok(Response::new(pb::TestPartnerResponse { report: Some(report) }))
    }

    async fn partner_report(&self, request: Request<pb::PartnerReportRequest>) -> Reply<pb::PartnerReportResponse> {
        self.caller(&request).await?;
        let request = request.into_inner();
        let retention = u64::try_from(controller_retention_seconds()).unwrap_or(u64::MAX);
        let since_seconds = match request.since_seconds {
            0 => 24 * 3600,
            seconds if seconds > retention => {
                return Err(Status::invalid_argument(format!(
                    "since_seconds: {seconds} is longer than the {} days observations are kept",
                    crate::db::partners::RETENTION_DAYS
                )));
            }
            seconds => seconds,
        };
        let domain = match request.domain.as_str() {
            "" => None,
            domain => Some(convert::domain_pattern("domain", domain).map_err(invalid)?.to_string()),
        };
        let days = if request.expiring_within_days == 0 { 30 } else { request.expiring_within_days };
        let now = chrono::Utc::now();
        let since = now - chrono::Duration::seconds(i64::try_from(since_seconds).unwrap_or(i64::MAX));
        let horizon = now + chrono::Duration::days(i64::from(days));
        Ok(Response::new(self.directory.partner_report(since, domain.as_deref(), horizon).await?))
    }

    async fn get_protocol_log(&self, request: Request<pb::GetProtocolLogRequest>) -> Reply<pb::GetProtocolLogResponse> {
        let admin = self.caller(&request).await?;
        let request = request.into_inner();
        let edge = convert::object_name("edge", &request.edge).map_err(invalid)?;
        let (log, kind) = match request.log.as_str() {
            "" | "receive" => ("receive", proto::edge::ProtocolLogKind::Receive),
            "send" => ("send", proto::edge::ProtocolLogKind::Send),
            other => {
                return Err(Status::invalid_argument(format!("log {other:?}: must be \"receive\" or \"send\"")));
            }
        };
        if request.limit > MAX_LOG_RECORDS {
            return Err(Status::invalid_argument(format!(
                "limit {}: at most {MAX_LOG_RECORDS} records per call; narrow the query with --session or --since",
                request.limit
            )));
        }
        if request.since_unix_seconds < 0 {
            return Err(Status::invalid_argument("since_unix_seconds: must not be negative"));
        }
        let query = proto::edge::ProtocolLogQuery {
            log: log.to_owned(),
            connector: request.connector,
            session: request.session,
            since_unix_seconds: request.since_unix_seconds,
            limit: if request.limit == 0 { 200 } else { request.limit },
            kind: kind.into(),
        };
        let lines = self.directory.protocol_log(&admin, &edge, query).await?;
        Ok(Response::new(pb::GetProtocolLogResponse { lines }))
    }

    async fn add_trusted_root(&self, request: Request<pb::AddTrustedRootRequest>) -> Reply<pb::TrustedRoot> {
        let admin = self.caller(&request).await?;
        let request = request.into_inner();
        let edges = domainsec_model::parse_set("edges", &request.edges, false, domainsec_model::ObjectName::parse)
            .map_err(invalid)?;
        if request.data.len() > MAX_IMPORT_BYTES {
            return Err(Status::invalid_argument(format!("data: larger than {MAX_IMPORT_BYTES} bytes")));
        }
        let (root, version) = self.directory.add_trusted_root(&admin, &request.data, edges).await?;
        Ok(Response::new(convert::trusted_root(&root, version)))
    }

    async fn list_trusted_roots(
        &self,
        request: Request<pb::ListTrustedRootsRequest>,
    ) -> Reply<pb::ListTrustedRootsResponse> {
        self.caller(&request).await?;
        let version = self.version().await?;
        let roots = self.directory.trusted_roots().await?;
        Ok(Response::new(pb::ListTrustedRootsResponse {
            roots: roots.iter().map(|r| convert::trusted_root(r, version)).collect(),
        }))
    }

    async fn remove_trusted_root(
        &self,
        request: Request<pb::RemoveTrustedRootRequest>,
    ) -> Reply<pb::RemoveTrustedRootResponse> {
        let admin = self.caller(&request).await?;
        let sha256 = request.get_ref().sha256.to_ascii_lowercase();
        if sha256.len() != 64 || !sha256.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(invalid(domainsec_model::InvalidField::new(
                "sha256",
                &request.get_ref().sha256,
                "expected 64 hex digits (dsctl trusted-root list)",
            )));
        }
        let config_version = self.directory.remove_trusted_root(&admin, &sha256).await?;
        Ok(Response::new(pb::RemoveTrustedRootResponse { config_version }))
    }

    async fn list_audit_entries(
        &self,
        request: Request<pb::ListAuditEntriesRequest>,
    ) -> Reply<pb::ListAuditEntriesResponse> {
        self.caller(&request).await?;
        let limit = match request.get_ref().limit {
            0 => DEFAULT_AUDIT_LIMIT,
            limit => limit,
        };
        let entries = self.directory.audit(limit).await?;
        Ok(Response::new(pb::ListAuditEntriesResponse { entries: entries.iter().map(convert::audit_entry).collect() }))
    }

    async fn get_audit_entry(&self, request: Request<pb::GetAuditEntryRequest>) -> Reply<pb::AuditEntryDetail> {
        self.caller(&request).await?;
        let detail = self.directory.audit_entry(request.get_ref().id).await?;
        Ok(Response::new(convert::audit_detail(&detail)))
    }

    async fn export_config(&self, request: Request<pb::ExportConfigRequest>) -> Reply<pb::ExportConfigResponse> {
        self.caller(&request).await?;
        let version = match request.get_ref().version {
            0 => None,
            version => Some(version),
        };
        let (document, version) = self.directory.export_config(version).await?;
        Ok(Response::new(convert::exported(&document, version)))
    }

    async fn apply_config(&self, request: Request<pb::ApplyConfigRequest>) -> Reply<pb::ApplyConfigResponse> {
        let admin = self.caller(&request).await?;
        let request = request.into_inner();
        if request.document.len() > MAX_DOCUMENT_BYTES {
            return Err(Status::invalid_argument(format!("document: larger than {MAX_DOCUMENT_BYTES} bytes")));
        }
        let applied = self.directory.apply_config(&admin, &request.document, request.dry_run).await?;
        Ok(Response::new(convert::applied(applied)))
    }

    async fn publish_tlsa(&self, request: Request<pb::PublishTlsaRequest>) -> Reply<pb::PublishTlsaResponse> {
        self.caller(&request).await?;
        let request = request.into_inner();
        let edge = match request.edge.as_str() {
            "" => None,
            edge => Some(convert::object_name("edge", edge).map_err(invalid)?),
        };
        let port = SmtpPort::parse("port", request.port).map_err(invalid)?;
        let publication = self.directory.publish_tlsa(edge.as_ref(), port).await?;
        Ok(Response::new(convert::publish::tlsa(publication)))
    }

    async fn publish_mta_sts(&self, request: Request<pb::PublishMtaStsRequest>) -> Reply<pb::PublishMtaStsResponse> {
        let admin = self.caller(&request).await?;
        let request = request.into_inner();
        let mode = mta_sts::Mode::parse("mode", &request.mode).map_err(invalid)?;
        let max_age = mta_sts::MaxAge::parse("max_age_seconds", request.max_age_seconds).map_err(invalid)?;
        let publication = self.directory.publish_mta_sts(&admin, mode, max_age).await?;
        Ok(Response::new(convert::publish::mta_sts(publication)))
    }

    async fn publish_tls_rpt(&self, request: Request<pb::PublishTlsRptRequest>) -> Reply<pb::PublishTlsRptResponse> {
        self.caller(&request).await?;
        let rua = tls_rpt::parse_all("rua", &request.get_ref().rua).map_err(invalid)?;
        let records = self.directory.publish_tls_rpt(&rua).await?;
        Ok(Response::new(pb::PublishTlsRptResponse { records: records.iter().map(convert::publish::txt).collect() }))
    }

    async fn rollback_config(&self, request: Request<pb::RollbackConfigRequest>) -> Reply<pb::ApplyConfigResponse> {
        let admin = self.caller(&request).await?;
        let request = request.into_inner();
        if request.to_version == 0 {
            return Err(Status::invalid_argument("to_version: name the config version to roll back to (1 or more)"));
        }
        let applied = self.directory.rollback_config(&admin, request.to_version, request.dry_run).await?;
        Ok(Response::new(convert::applied(applied)))
    }
}

const DEFAULT_AUDIT_LIMIT: u32 = 50;
const MAX_IMPORT_BYTES: usize = 1024 * 1024;
/// A configuration document's largest size (trusted roots' PEM included).
const MAX_DOCUMENT_BYTES: usize = proto::admin::MAX_ADMIN_REQUEST_BYTES - 64 * 1024;
const DEFAULT_SUBSCRIPTION_LIFETIME: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// How far back `partner report` can look: the retention of observations.
fn controller_retention_seconds() -> i64 {
    i64::from(crate::db::partners::RETENTION_DAYS) * 24 * 3600
}
