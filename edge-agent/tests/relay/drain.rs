//! A clean stop: idle sessions are told `421 4.3.2`, a message already in DATA is
//! taken (its `250` after fsync, as always), and every session and delivery task
//! ends, so the edge can exit without cutting anything off.

use std::time::Duration;

use super::support::*;

#[tokio::test]
async fn a_stop_answers_idle_sessions_421_and_lets_a_message_in_data_finish() {
    let relay = TestRelay::start(contoso_config(), test_settings()).await;
    let address = relay.address("Inet");
    let mut idle = Client::connect(address).await;
    idle.command("EHLO idle.example", 250).await;
    let mut sending = Client::connect(address).await;
    sending.command("EHLO sender.example", 250).await;
    sending.command("MAIL FROM:<kim@fabrikam.com>", 250).await;
    sending.command("RCPT TO:<ted@contoso.com>", 250).await;
    sending.command("DATA", 354).await;
    sending.write(b"Subject: in flight during a stop\r\n\r\nbody\r\n").await;

    relay.begin_drain();

    let told = idle.reply().await;
    assert!(told.starts_with("421 4.3.2 mail1.contoso.com Service shutting down"), "{told}");
    sending.write(b".\r\n").await;
    let accepted = sending.reply().await;
    assert!(accepted.starts_with("250 2.6.0"), "the message in DATA is taken: {accepted}");
    sending.send("MAIL FROM:<kim@fabrikam.com>").await;
    let refused = sending.reply().await;
    assert!(refused.starts_with("421 4.3.2"), "no new transaction: {refused}");
    tokio::time::timeout(Duration::from_secs(10), relay.relay.tasks.wait())
        .await
        .expect("every session and delivery task ends");
    assert_eq!(relay.relay.queue.len(), 1, "the accepted message is in the spool, delivered after the restart");
    assert!(tokio::net::TcpStream::connect(address).await.is_err(), "no new connections are accepted");
}

/// A next hop that takes the whole transaction, then holds its answer to the end
/// of DATA until `release` is notified (telling `reached` when it got there); it
/// counts the messages it accepted.
async fn slow_next_hop(
    reached: std::sync::Arc<tokio::sync::Notify>,
    release: std::sync::Arc<tokio::sync::Notify>,
) -> (std::net::SocketAddr, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (release, count, reached) = (release.clone(), count.clone(), reached.clone());
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 slow.example ESMTP\r\n").await.unwrap();
                let mut in_data = false;
                while let Ok(Some(line)) = lines.next_line().await {
                    let answer: &[u8] = match line.as_str() {
                        "." if in_data => {
                            in_data = false;
                            reached.notify_one();
                            release.notified().await;
                            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            b"250 2.0.0 taken\r\n"
                        }
                        _ if in_data => continue,
                        "DATA" => {
                            in_data = true;
                            b"354 go on\r\n"
                        }
                        "QUIT" => b"221 bye\r\n",
                        command if command.starts_with("EHLO") => b"250 slow.example\r\n",
                        _ => b"250 2.0.0 ok\r\n",
                    };
                    if write.write_all(answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (address, accepted)
}

#[tokio::test]
async fn a_delivery_in_flight_finishes_and_is_recorded_before_the_stop_completes() {
    let (reached, release) =
        (std::sync::Arc::new(tokio::sync::Notify::new()), std::sync::Arc::new(tokio::sync::Notify::new()));
    let (next_hop, accepted) = slow_next_hop(reached.clone(), release.clone()).await;
    let mut settings = test_settings();
    route(&mut settings, "fabrikam.com", &[(10, next_hop)]);
    let mut config = contoso_config();
    config.receive_connectors.push(from_hub_connector(free_port()));
    let relay = TestRelay::start(config, settings).await;
    let mut hub = Client::connect(relay.address("FromHub")).await;
    hub.command("EHLO hub.contoso.com", 250).await;
    let reply = hub.send_message("ted@contoso.com", &["kim@fabrikam.com"], "Subject: out\r\n\r\nbody").await;
    assert!(reply.starts_with("250 2.6.0"), "{reply}");
    hub.command("QUIT", 221).await;
    // The delivery is in flight: the next hop holds the end of DATA.
    tokio::time::timeout(Duration::from_secs(10), reached.notified()).await.expect("the delivery starts");

    relay.begin_drain();
    let waiting = tokio::time::timeout(Duration::from_millis(300), relay.relay.tasks.wait()).await;
    assert!(waiting.is_err(), "the stop waits for the delivery in flight");
    release.notify_one();
    tokio::time::timeout(Duration::from_secs(10), relay.relay.tasks.wait()).await.expect("the delivery ends");

    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(relay.relay.queue.len(), 0, "its outcome is recorded: nothing left to send again after a restart");
}
