//! A TCP proxy in front of PostgreSQL that the benchmark cuts: while down its port
//! refuses connections and every forwarded one is dropped, which is what the
//! controller sees of a stopped database server, without stopping the machine's
//! shared server (the benchmark itself keeps measuring through a direct connection).

use std::net::SocketAddr;

use tokio::{net::TcpListener, sync::watch};

pub struct DatabaseProxy {
    pub address: SocketAddr,
    up: watch::Sender<bool>,
}

impl DatabaseProxy {
    pub async fn start(upstream: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let (up, mut state) = watch::channel(true);
        let cuts = up.subscribe();
        tokio::spawn(async move {
            let mut listener = Some(listener);
            loop {
                let Some(open) = listener.as_ref() else {
                    if state.wait_for(|up| *up).await.is_err() {
                        return;
                    }
                    listener = TcpListener::bind(address).await.ok();
                    continue;
                };
                tokio::select! {
                    accepted = open.accept() => {
                        let Ok((mut client, _)) = accepted else { return };
                        let mut cut = cuts.clone();
                        tokio::spawn(async move {
                            let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else { return };
                            tokio::select! {
                                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                                _ = cut.wait_for(|up| !*up) => {}
                            }
                        });
                    }
                    changed = state.wait_for(|up| !*up) => {
                        if changed.is_err() {
                            return;
                        }
                        drop(changed);
                        listener = None;
                    }
                }
            }
        });
        Ok(Self { address, up })
    }

    pub fn set(&self, up: bool) {
        self.up.send_replace(up);
    }
}
