use std::net::SocketAddr;
use std::net::TcpListener;

/// Returns a 127.0.0.1 address whose port was free a moment ago.
///
/// The port is released before the daemon binds it, so another process can take it in between.
/// The harness detects that clash from the daemon's exit and picks new ports.
pub fn free_local_address() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0 to pick a free port");

    listener
        .local_addr()
        .expect("read the local address of a bound listener")
}
