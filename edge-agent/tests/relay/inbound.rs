//! Receiving: full sessions, STARTTLS, relay control, pipelining, limits and bad input.

use std::time::Duration;

use edge::protocol_log::{LogKind, LogQuery, query};

use super::support::*;

const FROM: &str = "kim@woodgrovebank.com";
const TED: &str = "ted@contoso.com";

#[tokio::test]
async fn a_message_for_an_accepted_domain_lands_in_the_maildir_with_a_trace_header() {
    let relay = TestRelay::start(contoso_config(), test_settings()).await;
    let mut client = Client::connect(relay.address("Inet")).await;
    let ehlo = client.command("EHLO mail.woodgrovebank.com", 250).await;
    for keyword in ["PIPELINING", "SIZE 65536", "8BITMIME", "ENHANCEDSTATUSCODES", "CHUNKING"] {
        assert!(ehlo.contains(keyword), "{keyword} missing from {ehlo}");
    }
    assert!(!ehlo.contains("STARTTLS"), "no SMTP certificate yet, so no STARTTLS: {ehlo}");
    let reply = client.send_message(FROM, &[TED], "Subject: hello\r\n\r\nHi Ted").await;
    assert!(reply.starts_with("250 2.6.0 <"), "{reply}");
    client.command("QUIT", 221).await;

    let mail = relay.wait_for_mail(TED, 1).await;
    assert!(
        mail[0].starts_with("Received: from mail.woodgrovebank.com ([127.0.0.1])\r\n\tby mail1.contoso.com"),
        "{}",
        mail[0]
    );
    assert!(mail[0].contains("with ESMTP id "), "{}", mail[0]);
    assert!(mail[0].ends_with("Subject: hello\r\n\r\nHi Ted\r\n"), "{}", mail[0]);
}

#[tokio::test]
async fn starttls_resets_the_session_and_the_trace_header_names_the_cipher() {
    let relay = TestRelay::start(contoso_config(), test_settings()).await;
    relay.enable_certificate("mail1.contoso.com");
    let mut client = Client::connect(relay.address("Inet")).await;
    let ehlo = client.command("EHLO mail.woodgrovebank.com", 250).await;
    assert!(ehlo.contains("STARTTLS"), "{ehlo}");
    client.command(&format!("MAIL FROM:<{FROM}>"), 250).await;
    let mut client = client.start_tls().await;
    // RFC 3207 §4.2: the transaction and the EHLO are forgotten.
    client.command(&format!("RCPT TO:<{TED}>"), 503).await;
    client.command(&format!("MAIL FROM:<{FROM}>"), 503).await;
    let ehlo = client.command("EHLO mail.woodgrovebank.com", 250).await;
    assert!(!ehlo.contains("STARTTLS"), "STARTTLS is not offered twice: {ehlo}");
    client.command("STARTTLS", 503).await;
    let reply = client.send_message(FROM, &[TED], "Subject: secret\r\n\r\nover TLS").await;
    assert!(reply.starts_with("250 "), "{reply}");
    client.command("QUIT", 221).await;

    let mail = relay.wait_for_mail(TED, 1).await;
    assert!(mail[0].contains("with ESMTPS (TLSv1_3 cipher TLS13_"), "{}", mail[0]);

    // The Receive protocol log shows the session with the paper's certificate lines.
    let lines = eventually("the TLS lines in the receive log", || async {
        let lines = query(&relay.relay.receive_log, LogKind::Receive, &LogQuery::default()).unwrap();
        lines
            .iter()
            .any(|l| l.contains("TLS negotiation succeeded") && lines.iter().any(|l| l.contains(",-,")))
            .then_some(lines)
    })
    .await;
    let joined = lines.join("\n");
    for expected in [
        "mail1\\Inet",
        ",+,",
        ",<,EHLO mail.woodgrovebank.com,",
        ",>,220 2.0.0 SMTP server ready,",
        ",*,,Sending certificate",
        ",*,CN=mail1.contoso.com,Certificate subject",
        "Certificate thumbprint",
        ",*,mail1.contoso.com,Certificate alternate names",
        ",*,,Received certificate",
        ",*,,No certificate",
    ] {
        assert!(joined.contains(expected), "{expected:?} not in the receive log:\n{joined}");
    }
}

#[tokio::test]
async fn never_an_open_relay_but_the_organizations_servers_may_send_anywhere() {
    let mut config = contoso_config();
    let hub_port = free_port();
    config.receive_connectors.push(from_hub_connector(hub_port));
    let relay = TestRelay::start(config, test_settings()).await;

    let mut internet = Client::connect(relay.address("Inet")).await;
    internet.command("EHLO spammer.example", 250).await;
    internet.command("MAIL FROM:<x@spammer.example>", 250).await;
    let refused = internet.command("RCPT TO:<victim@fabrikam.com>", 550).await;
    assert!(refused.starts_with("550 5.7.1 <victim@fabrikam.com> Unable to relay"), "{refused}");
    internet.command(&format!("RCPT TO:<{TED}>"), 250).await;

    let mut hub = Client::connect(relay.address("FromHub")).await;
    hub.command("EHLO hub.contoso.com", 250).await;
    hub.command("MAIL FROM:<ted@contoso.com>", 250).await;
    hub.command("RCPT TO:<kim@woodgrovebank.com>", 250).await;
}

#[tokio::test]
async fn pipelined_commands_are_answered_in_order_in_one_batch() {
    let relay = TestRelay::start(contoso_config(), test_settings()).await;
    let mut client = Client::connect(relay.address("Inet")).await;
    client.command("EHLO a.example", 250).await;
    client
        .write(
            format!(
                "MAIL FROM:<{FROM}>\r\nRCPT TO:<{TED}>\r\nRCPT TO:<nobody@fabrikam.com>\r\nRCPT TO:<ann@contoso.com>\r\nDATA\r\n"
            )
            .as_bytes(),
        )
        .await;
    for code in ["250 2.1.0", "250 2.1.5", "550 5.7.1", "250 2.1.5", "354"] {
        let reply = client.reply().await;
        assert!(reply.starts_with(code), "expected {code}, got {reply}");
    }
    client.write(b"Subject: pipelined\r\n\r\nbody\r\n.\r\nQUIT\r\n").await;
    assert!(client.reply().await.starts_with("250 2.6.0"));
    assert!(client.reply().await.starts_with("221"));
    relay.wait_for_mail("ann@contoso.com", 1).await;
}

#[tokio::test]
async fn bdat_chunks_make_one_message() {
    let relay = TestRelay::start(contoso_config(), test_settings()).await;
    let mut client = Client::connect(relay.address("Inet")).await;
    client.command("EHLO a.example", 250).await;
    client.command(&format!("MAIL FROM:<{FROM}>"), 250).await;
    client.command(&format!("RCPT TO:<{TED}>"), 250).await;
    client.write(b"BDAT 18\r\nSubject: chunk\r\n\r\n").await;
    assert!(client.reply().await.starts_with("250 2.0.0 18 octets"));
    client.write(b"BDAT 7 LAST\r\n.body\r\n").await;
    assert!(client.reply().await.starts_with("250 2.6.0"));
    let mail = relay.wait_for_mail(TED, 1).await;
    assert!(mail[0].ends_with("Subject: chunk\r\n\r\n.body\r\n"), "{}", mail[0]);
}

#[tokio::test]
async fn commands_out_of_order_and_malformed_get_the_right_replies() {
    let mut settings = test_settings();
    settings.limits.max_errors = 100;
    let relay = TestRelay::start(contoso_config(), settings).await;
    let mut client = Client::connect(relay.address("Inet")).await;
    assert!(client.command(&format!("MAIL FROM:<{FROM}>"), 503).await.contains("5.5.1 Send EHLO or HELO first"));
    client.command("EHLO a.example", 250).await;
    client.command(&format!("RCPT TO:<{TED}>"), 503).await;
    client.command("DATA", 503).await;
    client.command(&format!("MAIL FROM:<{FROM}>"), 250).await;
    client.command(&format!("MAIL FROM:<{FROM}>"), 503).await;
    assert!(client.command("DATA", 554).await.contains("5.5.1 No valid recipients"));
    assert!(client.command("RCPT TO:<not an address>", 501).await.contains("5.1.3"));
    assert!(client.command("RCPT TO:ted@contoso.com", 501).await.contains("angle brackets"));
    client.command("RSET", 250).await;
    assert!(client.command("MAIL FROM:<> FOO=1", 555).await.contains("5.5.4"));
    assert!(client.command("VRFY ted", 252).await.contains("2.5.0"));
    assert!(client.command("EXPN staff", 502).await.contains("5.5.1 EXPN is not available"));
    assert!(client.command("AUTH PLAIN", 502).await.contains("5.5.1 AUTH is not offered"));
    // No SMTP certificate on this edge: STARTTLS is neither offered nor accepted.
    assert!(client.command("STARTTLS", 502).await.contains("5.5.1 STARTTLS is not offered"));
    assert!(client.command("XYZZY", 500).await.contains("5.5.1 Command unrecognized"));
    client.command("NOOP", 250).await;
    let long = format!("NOOP {}", "x".repeat(600));
    assert!(client.command(&long, 500).await.contains("5.5.2 Line too long"));
    client.write(b"NOOP\n").await;
    assert!(client.reply().await.starts_with("500 5.5.2 Command lines must end with CRLF"));
    client.write(b"NO\0OP\r\n").await;
    assert!(client.reply().await.starts_with("501 5.5.4"));
    client.command("QUIT", 221).await;
}

#[tokio::test]
async fn size_limits_hold_at_mail_and_while_reading() {
    let relay = TestRelay::start(contoso_config(), test_settings()).await;
    let mut client = Client::connect(relay.address("Inet")).await;
    client.command("EHLO a.example", 250).await;
    let refused = client.command(&format!("MAIL FROM:<{FROM}> SIZE=100000"), 552).await;
    assert!(refused.contains("5.3.4 Message size exceeds fixed maximum message size of 65536 bytes"), "{refused}");
    client.command(&format!("MAIL FROM:<{FROM}> SIZE=1000"), 250).await;
    client.command(&format!("RCPT TO:<{TED}>"), 250).await;
    client.command("DATA", 354).await;
    let line = format!("{}\r\n", "x".repeat(900));
    for _ in 0..80 {
        client.write(line.as_bytes()).await;
    }
    client.write(b".\r\n").await;
    assert!(client.reply().await.starts_with("552 5.3.4"));
    // The session goes on, and nothing was queued.
    client.command("NOOP", 250).await;
    assert!(relay.relay.queue.is_empty());
}

#[tokio::test]
async fn bare_line_endings_nul_and_long_lines_are_refused_after_the_data() {
    let relay = TestRelay::start(contoso_config(), test_settings()).await;
    let mut client = Client::connect(relay.address("Inet")).await;
    client.command("EHLO a.example", 250).await;
    for (body, expected) in [
        (&b"Subject: x\r\n\r\nsmuggled\n.\nMAIL FROM:<evil@x.com>\r\n"[..], "bare CR or LF"),
        (&b"Subject: x\r\n\r\nnul\0here\r\n"[..], "NUL character"),
        (&format!("Subject: x\r\n\r\n{}\r\n", "y".repeat(1200)).into_bytes()[..], "longer than 1000 octets"),
    ] {
        client.command(&format!("MAIL FROM:<{FROM}>"), 250).await;
        client.command(&format!("RCPT TO:<{TED}>"), 250).await;
        client.command("DATA", 354).await;
        client.write(body).await;
        client.write(b".\r\n").await;
        let reply = client.reply().await;
        assert!(reply.starts_with("550 5.6.0") && reply.contains(expected), "{reply}");
    }
    client.command("NOOP", 250).await;
    assert!(relay.relay.queue.is_empty());
}

#[tokio::test]
async fn recipients_per_message_are_capped() {
    let mut settings = test_settings();
    settings.limits.max_recipients = 3;
    let relay = TestRelay::start(contoso_config(), settings).await;
    let mut client = Client::connect(relay.address("Inet")).await;
    client.command("EHLO a.example", 250).await;
    client.command(&format!("MAIL FROM:<{FROM}>"), 250).await;
    for n in 0..3 {
        client.command(&format!("RCPT TO:<user{n}@contoso.com>"), 250).await;
    }
    assert!(client.command("RCPT TO:<user4@contoso.com>", 452).await.contains("4.5.3 Too many recipients"));
}

#[tokio::test]
async fn too_many_errors_idle_clients_and_session_caps_are_cut_off() {
    let mut settings = test_settings();
    settings.limits.max_errors = 3;
    settings.limits.idle_timeout = Duration::from_millis(300);
    settings.limits.max_sessions_per_ip = 2;
    let relay = TestRelay::start(contoso_config(), settings).await;
    let address = relay.address("Inet");

    let mut noisy = Client::connect(address).await;
    noisy.command("XYZZY", 500).await;
    noisy.command("XYZZY", 500).await;
    noisy.command("XYZZY", 500).await;
    let reply = noisy.reply().await;
    assert!(reply.starts_with("421 4.7.0 Too many errors"), "{reply}");
    assert_eq!(noisy.reply().await, "(closed)");

    let mut idle = Client::connect(address).await;
    let reply = idle.reply().await;
    assert!(reply.starts_with("421 4.4.2") && reply.contains("Timeout"), "{reply}");
    assert_eq!(idle.reply().await, "(closed)");

    let _first = Client::connect(address).await;
    let _second = Client::connect(address).await;
    let (_, greeting) = Client::connect_raw(address).await;
    assert!(greeting.starts_with("421 4.3.2 Too many connections"), "{greeting}");
}

#[tokio::test]
async fn a_client_no_connector_serves_is_turned_away() {
    let mut config = contoso_config();
    // Only 10.0.0.0/8 is served on this binding: loopback clients are not.
    config.receive_connectors[0].remote_ip_ranges = vec![domainsec_model::IpRange::parse("10.0.0.0/8").unwrap()];
    let relay = TestRelay::start(config, test_settings()).await;
    let (_, greeting) = Client::connect_raw(relay.address("Inet")).await;
    assert!(greeting.starts_with("554 5.7.1 No service for your address"), "{greeting}");
}

#[tokio::test]
async fn a_configuration_change_applies_to_the_next_session() {
    let relay = TestRelay::start(contoso_config(), test_settings()).await;
    let mut before = Client::connect(relay.address("Inet")).await;
    assert!(before.command("EHLO a.example", 250).await.contains("SIZE 65536"));
    let mut config = (*relay.config.borrow().clone().unwrap()).clone();
    config.version = 2;
    config.receive_connectors[0].max_message_size = domainsec_model::MessageSize::new(2048).unwrap();
    relay.config.send_replace(Some(std::sync::Arc::new(config)));
    let mut after = Client::connect(relay.address("Inet")).await;
    assert!(after.command("EHLO a.example", 250).await.contains("SIZE 2048"));
    // The session that started before keeps the limits it was given.
    assert!(before.command("EHLO a.example", 250).await.contains("SIZE 65536"));
}

#[tokio::test]
async fn python_smtplib_sends_through_starttls() {
    let Ok(version) = std::process::Command::new("python3").arg("--version").output() else {
        eprintln!("python3 not installed: skipping the third-party client test");
        return;
    };
    assert!(version.status.success());
    let relay = TestRelay::start(contoso_config(), test_settings()).await;
    relay.enable_certificate("mail1.contoso.com");
    let address = relay.address("Inet");
    let script = format!(
        "import smtplib, ssl\n\
         ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE\n\
         s = smtplib.SMTP('127.0.0.1', {port}, local_hostname='client.woodgrovebank.com')\n\
         s.starttls(context=ctx)\n\
         s.sendmail('{FROM}', ['{TED}'], 'Subject: from python\\r\\n\\r\\nhello from smtplib\\r\\n')\n\
         s.quit()\n",
        port = address.port()
    );
    let output = tokio::process::Command::new("python3").arg("-c").arg(script).output().await.unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let mail = relay.wait_for_mail(TED, 1).await;
    assert!(mail[0].contains("with ESMTPS") && mail[0].contains("hello from smtplib"), "{}", mail[0]);
}

#[tokio::test]
async fn bdat_text_is_held_to_the_data_rules_and_data_cannot_follow_bdat() {
    let relay = TestRelay::start(contoso_config(), test_settings()).await;
    let mut client = Client::connect(relay.address("Inet")).await;
    client.command("EHLO a.example", 250).await;
    client.command(&format!("MAIL FROM:<{FROM}>"), 250).await;
    client.command(&format!("RCPT TO:<{TED}>"), 250).await;
    client.write(b"BDAT 21 LAST\r\nSubject: x\r\n\r\nbare\nLF").await;
    let reply = client.reply().await;
    assert!(reply.starts_with("550 5.6.0") && reply.contains("bare CR or LF"), "{reply}");

    client.command(&format!("MAIL FROM:<{FROM}>"), 250).await;
    client.command(&format!("RCPT TO:<{TED}>"), 250).await;
    client.write(b"BDAT 4\r\nab\r\n").await;
    assert!(client.reply().await.starts_with("250 2.0.0 4 octets"));
    assert!(client.command("DATA", 503).await.contains("DATA not allowed after BDAT"));
    assert!(relay.relay.queue.is_empty());
}

#[tokio::test]
async fn bodies_past_the_memory_budget_are_deferred_and_the_budget_comes_back() {
    let mut settings = test_settings();
    settings.limits.max_receiving_memory = 1000;
    let relay = TestRelay::start(contoso_config(), settings).await;
    let mut client = Client::connect(relay.address("Inet")).await;
    client.command("EHLO a.example", 250).await;
    let big = format!("Subject: big\r\n\r\n{}", "x\r\n".repeat(600));
    let reply = client.send_message(FROM, &[TED], &big).await;
    assert!(reply.starts_with("452 4.3.1 Insufficient system storage"), "{reply}");
    client.command(&format!("MAIL FROM:<{FROM}>"), 250).await;
    client.command(&format!("RCPT TO:<{TED}>"), 250).await;
    client.write(b"BDAT 1500 LAST\r\n").await;
    client.write(big.as_bytes()[..1500].to_vec().as_slice()).await;
    assert!(client.reply().await.starts_with("452 4.3.1"));
    let reply = client.send_message(FROM, &[TED], "Subject: small\r\n\r\nfits").await;
    assert!(reply.starts_with("250 2.6.0"), "the budget was given back: {reply}");
}

#[tokio::test]
async fn a_client_that_never_reads_its_replies_is_cut_off() {
    let mut settings = test_settings();
    settings.limits.idle_timeout = Duration::from_millis(300);
    settings.limits.max_sessions_per_ip = 1;
    settings.limits.max_errors = u32::MAX;
    let relay = TestRelay::start(contoso_config(), settings).await;
    let address = relay.address("Inet");
    // Pipeline far more commands than the socket buffers hold replies for, and never read.
    let (greedy, greeting) = Client::connect_raw(address).await;
    assert!(greeting.starts_with("220"), "it holds the slot: {greeting}");
    let burst = "EHLO x\r\n".repeat(200_000); // about 30 MB of replies
    let writer = tokio::spawn(async move {
        let mut greedy = greedy;
        greedy.write(burst.as_bytes()).await; // and never reads a reply
        greedy
    });
    // While it holds the only slot for 127.0.0.1, others are turned away; once its
    // writes time out, the slot comes back.
    let greeting = eventually("the slot to come back", || async {
        let (_, greeting) = Client::connect_raw(address).await;
        greeting.starts_with("220").then_some(greeting)
    })
    .await;
    assert!(greeting.starts_with("220 mail1.contoso.com"), "{greeting}");
    drop(writer);
}

#[tokio::test]
async fn sessions_per_connector_are_capped() {
    let mut settings = test_settings();
    settings.limits.max_sessions_per_connector = 1;
    let relay = TestRelay::start(contoso_config(), settings).await;
    let address = relay.address("Inet");
    let first = Client::connect(address).await;
    let (_, greeting) = Client::connect_raw(address).await;
    assert!(greeting.starts_with("421 4.3.2 Too many connections"), "{greeting}");
    drop(first);
    let greeting = eventually("the slot back", || async {
        let (_, greeting) = Client::connect_raw(address).await;
        greeting.starts_with("220").then_some(greeting)
    })
    .await;
    assert!(greeting.starts_with("220 mail1.contoso.com"));
}
