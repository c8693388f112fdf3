//! A loopback UDP DNS server answering from a small fixed zone.

use std::collections::HashSet;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use hickory_resolver::proto::op::{Message, ResponseCode};
use hickory_resolver::proto::rr::rdata::{A, AAAA, MX};
use hickory_resolver::proto::rr::{Name, RData, Record};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// Records and misbehaving names. Names not in the zone get NXDOMAIN; names in it get
/// NODATA for types they lack.
#[derive(Debug, Default)]
pub(super) struct Zone {
    records: Vec<Record>,
    server_failures: HashSet<String>,
    silent: HashSet<String>,
}

/// The running server; stops on drop.
pub(super) struct FakeDns {
    pub(super) addr: SocketAddr,
    queries: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

// === impl Zone ===

impl Zone {
    pub(super) fn mx(self, domain: &str, preference: u16, exchange: &str) -> Self {
        let exchange = Name::from_ascii(exchange).unwrap();
        self.record(domain, RData::MX(MX::new(preference, exchange)))
    }

    pub(super) fn a(self, host: &str, ip: [u8; 4]) -> Self {
        self.record(host, RData::A(A::from(Ipv4Addr::from(ip))))
    }

    pub(super) fn aaaa(self, host: &str, ip: Ipv6Addr) -> Self {
        self.record(host, RData::AAAA(AAAA::from(ip)))
    }

    /// Every query for `name` gets SERVFAIL.
    pub(super) fn server_failure(mut self, name: &str) -> Self {
        self.server_failures.insert(key(&Name::from_ascii(name).unwrap()));
        self
    }

    /// Every query for `name` goes unanswered.
    pub(super) fn silent(mut self, name: &str) -> Self {
        self.silent.insert(key(&Name::from_ascii(name).unwrap()));
        self
    }

    fn record(mut self, name: &str, data: RData) -> Self {
        let name = Name::from_ascii(name).unwrap();
        self.records.push(Record::from_rdata(name, 60, data));
        self
    }

    fn answer(&self, request: &Message) -> Option<Message> {
        let query = request.queries.first()?;
        let name = key(query.name());
        if self.silent.contains(&name) {
            return None;
        }
        let mut response = Message::response(request.metadata.id, request.metadata.op_code);
        response.metadata.recursion_desired = request.metadata.recursion_desired;
        response.metadata.recursion_available = true;
        response.add_queries(request.queries.clone());
        if self.server_failures.contains(&name) {
            response.metadata.response_code = ResponseCode::ServFail;
            return Some(response);
        }
        let owned: Vec<&Record> = self.records.iter().filter(|r| key(&r.name) == name).collect();
        if owned.is_empty() {
            response.metadata.response_code = ResponseCode::NXDomain;
        }
        let answers = owned.into_iter().filter(|r| r.record_type() == query.query_type());
        response.add_answers(answers.cloned());
        Some(response)
    }
}

// === impl FakeDns ===

impl FakeDns {
    pub(super) async fn start(zone: Zone) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let queries = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&queries);
        let task = tokio::spawn(async move {
            let mut buffer = vec![0; 4096];
            loop {
                let Ok((len, peer)) = socket.recv_from(&mut buffer).await else {
                    return;
                };
                let Ok(request) = Message::from_vec(&buffer[..len]) else {
                    continue;
                };
                if let Some(query) = request.queries.first() {
                    let asked = format!("{} {}", key(query.name()), query.query_type());
                    log.lock().unwrap().push(asked);
                }
                if let Some(response) = zone.answer(&request) {
                    let _ = socket.send_to(&response.to_vec().unwrap(), peer).await;
                }
            }
        });
        Self { addr, queries, task }
    }

    /// The questions asked so far, as "name TYPE".
    pub(super) fn queries(&self) -> Vec<String> {
        self.queries.lock().unwrap().clone()
    }
}

impl Drop for FakeDns {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn key(name: &Name) -> String {
    name.to_ascii().trim_end_matches('.').to_ascii_lowercase()
}
