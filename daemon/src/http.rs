//! The operations endpoint: plain HTTP/1.1 on its own listener.
//!
//! - `GET /healthz`: `200 ok` while the process serves requests at all.
//! - `GET /readyz`: `200 ready`, or `503 not ready: <what>` — what is missing in
//!   general words (no configuration yet, database unreachable), never a value
//!   from the configuration.
//! - anything else, `/metrics` included: the Prometheus exposition text.

use std::{future::Future, pin::Pin, sync::Arc};

use http_body_util::Full;
use hyper::{Request, Response, StatusCode, body::Bytes};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The exposition text at the moment of a scrape.
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

/// A readiness check: `Err` names what is missing, in words safe to show anyone.
pub type Ready = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

/// What the endpoint answers with.
#[derive(Clone)]
pub struct Endpoints {
    /// `/metrics`.
    pub metrics: Render,
    /// `/readyz`.
    pub ready: Ready,
}

/// `ready`, except "shutting down" once `stopping` is cancelled: a stopping daemon is
/// taken out of rotation before its ports close.
pub fn unless_stopping(ready: Ready, stopping: CancellationToken) -> Ready {
    Arc::new(move || {
        let (ready, stopping) = (ready.clone(), stopping.clone());
        Box::pin(async move {
            if stopping.is_cancelled() {
                return Err("shutting down".to_owned());
            }
            ready().await
        })
    })
}

/// Serves `endpoints` on `listener` until `shutdown`.
pub async fn serve(listener: TcpListener, endpoints: Endpoints, shutdown: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else { continue };
        let endpoints = endpoints.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| answer(endpoints.clone(), request));
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
        });
    }
}

async fn answer(
    endpoints: Endpoints,
    request: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, hyper::http::Error> {
    let (status, content_type, body) = match request.uri().path() {
        "/healthz" => (StatusCode::OK, TEXT, "ok\n".to_owned()),
        "/readyz" => match (endpoints.ready)().await {
            Ok(()) => (StatusCode::OK, TEXT, "ready\n".to_owned()),
            Err(missing) => (StatusCode::SERVICE_UNAVAILABLE, TEXT, format!("not ready: {missing}\n")),
        },
        _ => (StatusCode::OK, EXPOSITION, (endpoints.metrics)()),
    };
    Response::builder().status(status).header("content-type", content_type).body(Full::new(Bytes::from(body)))
}

const TEXT: &str = "text/plain; charset=utf-8";
const EXPOSITION: &str = "text/plain; version=0.0.4";

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::atomic::{AtomicBool, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    async fn get(address: std::net::SocketAddr, path: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        response
    }

    #[tokio::test]
    async fn health_readiness_and_metrics_answer_on_their_paths() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let ready = Arc::new(AtomicBool::new(false));
        let flag = ready.clone();
        let endpoints = Endpoints {
            metrics: Arc::new(|| "# TYPE x counter\nx_total 1\n".to_owned()),
            ready: Arc::new(move || {
                let ready = flag.load(Ordering::SeqCst);
                Box::pin(async move { if ready { Ok(()) } else { Err("no configuration yet".to_owned()) } })
            }),
        };
        let shutdown = CancellationToken::new();
        tokio::spawn(serve(listener, endpoints, shutdown.clone()));

        assert!(get(address, "/healthz").await.starts_with("HTTP/1.1 200 OK"));
        let not_ready = get(address, "/readyz").await;
        assert!(not_ready.starts_with("HTTP/1.1 503") && not_ready.ends_with("not ready: no configuration yet\n"));
        ready.store(true, Ordering::SeqCst);
        assert!(get(address, "/readyz").await.ends_with("\r\n\r\nready\n"));
        assert!(get(address, "/metrics").await.ends_with("x_total 1\n"));
        shutdown.cancel();
    }

    #[tokio::test]
    async fn a_stopping_daemon_is_not_ready_although_its_check_passes() {
        let stopping = CancellationToken::new();
        let ready = unless_stopping(Arc::new(|| Box::pin(async { Ok(()) })), stopping.clone());
        assert_eq!(ready().await, Ok(()));
        stopping.cancel();
        assert_eq!(ready().await, Err("shutting down".to_owned()));
    }
}
