use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::net::TcpListener;
use std::ops::RangeInclusive;
use std::sync::{Mutex, PoisonError};

/// Ports the harness hands out: below Linux's default ephemeral range (32768 to 60999), so an
/// outgoing connection never takes a stopped node's port as its source port, which would keep
/// the node from starting again on it.
const TEST_PORTS: RangeInclusive<u16> = 20_000..=32_000;

/// Returns a 127.0.0.1 address whose port was free a moment ago.
///
/// The port is released before the daemon binds it, so another process can take it in between.
/// The harness detects that clash from the daemon's exit and picks new ports on a first start,
/// and retries a restart.
///
/// A port is never handed out twice in one test process.
pub fn free_local_address() -> SocketAddr {
    static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

    loop {
        let port = fastrand::u16(TEST_PORTS);
        let Ok(listener) = TcpListener::bind(("127.0.0.1", port)) else {
            continue;
        };
        let address = listener
            .local_addr()
            .expect("read the local address of a bound listener");

        let mut handed_out = HANDED_OUT.lock().unwrap_or_else(PoisonError::into_inner);
        if handed_out.insert(address.port()) {
            return address;
        }
    }
}
