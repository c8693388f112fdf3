//! A tiny HTTP/1.1 server on loopback that plays a CRL distribution point or a proxy:
//! it records each request line, answers with a fixed reply, and can hold its answers.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::watch,
    task::JoinHandle,
};

/// The server; it stops when dropped.
pub(super) struct TestServer {
    pub(super) addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
}

/// What the server answers.
#[derive(Clone)]
pub(super) struct Reply {
    status: u16,
    body: Vec<u8>,
}

struct State {
    reply: Mutex<Reply>,
    requests: watch::Sender<Vec<String>>,
    held: watch::Sender<bool>,
}

impl TestServer {
    /// Binds 127.0.0.1:0, then serves.
    pub(super) async fn start(reply: Reply) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            reply: Mutex::new(reply),
            requests: watch::Sender::new(Vec::new()),
            held: watch::Sender::new(false),
        });
        let serving = Arc::clone(&state);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(answer(stream, Arc::clone(&serving)));
            }
        });
        Self { addr, state, task }
    }

    /// `http://127.0.0.1:PORT/ca.crl`
    pub(super) fn url(&self) -> String {
        format!("http://{}/ca.crl", self.addr)
    }

    /// Stops listening: later connections are refused.
    pub(super) async fn stop(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }

    pub(super) fn set_reply(&self, reply: Reply) {
        *self.state.reply.lock().unwrap() = reply;
    }

    /// Requests are recorded but not answered until [`TestServer::release`].
    pub(super) fn hold(&self) {
        self.state.held.send_replace(true);
    }

    pub(super) fn release(&self) {
        self.state.held.send_replace(false);
    }

    pub(super) fn request_count(&self) -> usize {
        self.state.requests.borrow().len()
    }

    /// The request lines received, e.g. `GET /ca.crl HTTP/1.1`.
    pub(super) fn request_lines(&self) -> Vec<String> {
        self.state.requests.borrow().clone()
    }

    /// Waits (with a deadline) until `count` requests have arrived.
    pub(super) async fn wait_for_requests(&self, count: usize) {
        let mut requests = self.state.requests.subscribe();
        tokio::time::timeout(DEADLINE, requests.wait_for(|requests| requests.len() >= count))
            .await
            .unwrap_or_else(|_| panic!("expected {count} requests, got {:?}", self.request_lines()))
            .unwrap();
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Reply {
    pub(super) fn crl(der: Vec<u8>) -> Self {
        Self { status: 200, body: der }
    }

    pub(super) fn status(status: u16) -> Self {
        Self { status, body: b"no such CRL\n".to_vec() }
    }
}

/// An address where nothing listens.
pub(super) async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

async fn answer(mut stream: TcpStream, state: Arc<State>) {
    let mut head = Vec::new();
    let mut buffer = [0u8; 1024];
    while !head.windows(4).any(|window| window == b"\r\n\r\n") {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => head.extend_from_slice(&buffer[..read]),
        }
    }
    let head = String::from_utf8_lossy(&head);
    let line = head.lines().next().unwrap_or_default().to_owned();
    state.requests.send_modify(|requests| requests.push(line));
    let _ = state.held.subscribe().wait_for(|held| !held).await;
    let reply = state.reply.lock().unwrap().clone();
    let head = format!(
        "HTTP/1.1 {} Test\r\nContent-Type: application/pkix-crl\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        reply.status,
        reply.body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(&reply.body).await;
    let _ = stream.shutdown().await;
}

const DEADLINE: Duration = Duration::from_secs(10);
