use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::net::TcpListener;
use std::sync::{Mutex, PoisonError};

/// Returns a 127.0.0.1 address whose port was free a moment ago.
///
/// The port is released before the daemon binds it, so another process can take it in between.
/// The harness detects that clash from the daemon's exit and picks new ports.
///
/// A port is never handed out twice in one test process, because the kernel may return a port
/// it just released to the next bind.
pub fn free_local_address() -> SocketAddr {
    static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

    loop {
        let listener =
            TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0 to pick a free port");
        let address = listener
            .local_addr()
            .expect("read the local address of a bound listener");

        let mut handed_out = HANDED_OUT.lock().unwrap_or_else(PoisonError::into_inner);
        if handed_out.insert(address.port()) {
            return address;
        }
    }
}
