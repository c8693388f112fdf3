//! systemd's readiness protocol (`sd_notify(3)`): with `Type=notify` a unit is "started"
//! only once the daemon says `READY=1`, and shows "deactivating" once it says
//! `STOPPING=1`. A datagram to the socket named in `$NOTIFY_SOCKET`; nothing happens
//! when it is unset (not started by systemd), and a failure to send is only logged:
//! the daemon's work never depends on it.

use std::os::unix::net::UnixDatagram;

/// The daemon is serving: listeners bound, configuration loaded.
pub fn notify_ready() {
    notify("READY=1");
}

/// The daemon is stopping (draining).
pub fn notify_stopping() {
    notify("STOPPING=1");
}

fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else { return };
    if let Err(error) = send(&path, state) {
        tracing::warn!(%error, state, "cannot notify systemd");
    }
}

fn send(path: &std::ffi::OsStr, state: &str) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt as _;
    let socket = UnixDatagram::unbound()?;
    let bytes = path.as_bytes();
    match bytes.strip_prefix(b"@") {
        // An abstract socket (Linux): "@name".
        Some(name) => {
            use std::os::linux::net::SocketAddrExt as _;
            let address = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            socket.send_to_addr(state.as_bytes(), &address)?;
        }
        None => {
            socket.send_to(state.as_bytes(), std::path::Path::new(path))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn sends_the_state_to_a_path_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let receiver = UnixDatagram::bind(&path).unwrap();
        send(path.as_os_str(), "READY=1").unwrap();
        let mut buffer = [0u8; 64];
        let read = receiver.recv(&mut buffer).unwrap();
        assert_eq!(&buffer[..read], b"READY=1");
    }

    #[test]
    fn sends_the_state_to_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt as _;
        let name = format!("domainsec-notify-test-{}", std::process::id());
        let address = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let receiver = UnixDatagram::bind_addr(&address).unwrap();
        send(std::ffi::OsStr::new(&format!("@{name}")), "STOPPING=1").unwrap();
        let mut buffer = [0u8; 64];
        let read = receiver.recv(&mut buffer).unwrap();
        assert_eq!(&buffer[..read], b"STOPPING=1");
    }
}
