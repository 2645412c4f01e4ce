//! A userspace TCP proxy in front of every node's Raft port, which cuts traffic per directed
//! pair of nodes.
//!
//! The cluster's membership names the proxy's listener as each node's Raft address, so every
//! Raft connection passes through it. The proxy learns which node opened a connection by
//! finding the connecting socket's inode in `/proc/net/tcp` and then in the node processes'
//! open files (Linux only). A cut from `a` to `b` drops every byte that `a` sends to `b` on any
//! connection between them, in both connection directions, while the connections stay open:
//! to both nodes it looks like lost packets, not a refused connection. A connection that lost
//! bytes is closed at its next byte after the heal, because its HTTP/2 stream is broken, and
//! the nodes connect again.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A Raft node id.
type NodeId = u64;

/// Attempts to find the process of a new connection. The socket shows in `/proc` at once, so a
/// retry only covers a process that is being restarted.
const IDENTIFY_ATTEMPTS: u32 = 5;

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("failed to bind the Raft proxy listener for node {node} on 127.0.0.1: {source}")]
    Bind {
        node: NodeId,
        source: std::io::Error,
    },
}

/// The Raft proxies of one cluster. Cloning is cheap and shares the cuts. Dropping the last
/// clone does not stop the proxies: call [`RaftProxy::shutdown`].
#[derive(Debug, Clone)]
pub struct RaftProxy {
    state: Arc<ProxyState>,
    listen: BTreeMap<NodeId, SocketAddr>,
}

#[derive(Debug, Default)]
struct ProxyState {
    /// Directed pairs `(from, to)` whose traffic is dropped.
    cuts: Mutex<BTreeSet<(NodeId, NodeId)>>,
    pids: Mutex<BTreeMap<NodeId, u32>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl RaftProxy {
    /// Binds one listener on 127.0.0.1 for each node in `targets`, forwarding to that node's
    /// real Raft address.
    pub async fn start(targets: &BTreeMap<NodeId, SocketAddr>) -> Result<Self, ProxyError> {
        let state = Arc::new(ProxyState::default());
        let mut listen = BTreeMap::new();

        for (node, target) in targets {
            let listener =
                TcpListener::bind("127.0.0.1:0")
                    .await
                    .map_err(|source| ProxyError::Bind {
                        node: *node,
                        source,
                    })?;
            let address = listener.local_addr().map_err(|source| ProxyError::Bind {
                node: *node,
                source,
            })?;
            listen.insert(*node, address);

            let task = tokio::spawn(accept_loop(state.clone(), listener, *node, *target));
            state.lock_tasks().push(task);
        }

        Ok(Self { state, listen })
    }

    /// Returns the address other nodes must dial to reach `node`'s Raft service.
    ///
    /// # Panics
    ///
    /// Panics if the proxy was not started for `node`.
    pub fn listen_addr(&self, node: NodeId) -> SocketAddr {
        self.listen[&node]
    }

    /// Records the process id of `node`, or removes it while the node is down.
    pub fn set_pid(&self, node: NodeId, pid: Option<u32>) {
        let mut pids = self
            .state
            .pids
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match pid {
            Some(pid) => pids.insert(node, pid),
            None => pids.remove(&node),
        };
    }

    /// Drops all traffic that `from` sends to `to`, from now until [`RaftProxy::heal`].
    pub fn cut(&self, from: NodeId, to: NodeId) {
        self.state.lock_cuts().insert((from, to));
    }

    /// Removes every cut.
    pub fn heal(&self) {
        self.state.lock_cuts().clear();
    }

    /// Returns the directed pairs that are cut.
    pub fn cuts(&self) -> BTreeSet<(NodeId, NodeId)> {
        self.state.lock_cuts().clone()
    }

    /// Stops every listener and connection.
    pub fn shutdown(&self) {
        for task in self.state.lock_tasks().drain(..) {
            task.abort();
        }
    }
}

impl ProxyState {
    fn lock_cuts(&self) -> std::sync::MutexGuard<'_, BTreeSet<(NodeId, NodeId)>> {
        self.cuts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_tasks(&self) -> std::sync::MutexGuard<'_, Vec<JoinHandle<()>>> {
        self.tasks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn is_cut(&self, from: Option<NodeId>, to: Option<NodeId>) -> bool {
        match (from, to) {
            (Some(from), Some(to)) => self.lock_cuts().contains(&(from, to)),
            _ => false,
        }
    }
}

async fn accept_loop(
    state: Arc<ProxyState>,
    listener: TcpListener,
    node: NodeId,
    target: SocketAddr,
) {
    let listen = listener.local_addr().ok();

    loop {
        let (inbound, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(node, %error, "Raft proxy accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };

        let task = tokio::spawn(forward_connection(
            state.clone(),
            inbound,
            peer,
            listen,
            node,
            target,
        ));
        state.lock_tasks().push(task);
    }
}

async fn forward_connection(
    state: Arc<ProxyState>,
    inbound: TcpStream,
    peer: SocketAddr,
    listen: Option<SocketAddr>,
    node: NodeId,
    target: SocketAddr,
) {
    let source = identify_source(&state, peer, listen).await;
    if source.is_none() {
        tracing::warn!(node, %peer, "Raft proxy could not tell which node connected; cuts do not apply to this connection");
    }

    let Ok(outbound) = TcpStream::connect(target).await else {
        // The node is down: closing the inbound side looks like a refused connection.
        return;
    };
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);

    let (inbound_read, inbound_write) = inbound.into_split();
    let (outbound_read, outbound_write) = outbound.into_split();
    let broken = Arc::new(AtomicBool::new(false));

    let forward = Pump {
        state: state.clone(),
        from: source,
        to: Some(node),
        broken: broken.clone(),
    };
    let backward = Pump {
        state,
        from: Some(node),
        to: source,
        broken,
    };

    // When either direction ends, both halves drop and the connection closes.
    tokio::select! {
        () = forward.run(inbound_read, outbound_write) => {}
        () = backward.run(outbound_read, inbound_write) => {}
    }
}

/// One direction of a proxied connection.
struct Pump {
    state: Arc<ProxyState>,
    from: Option<NodeId>,
    to: Option<NodeId>,
    /// Set once bytes were dropped in either direction.
    broken: Arc<AtomicBool>,
}

impl Pump {
    async fn run(self, mut reader: OwnedReadHalf, mut writer: OwnedWriteHalf) {
        let mut buffer = vec![0u8; 16 * 1024];

        loop {
            let read = match reader.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(read) => read,
            };

            if self.state.is_cut(self.from, self.to) {
                self.broken.store(true, Ordering::SeqCst);
                continue;
            }
            if self.broken.load(Ordering::SeqCst) {
                return;
            }
            if writer.write_all(&buffer[..read]).await.is_err() {
                return;
            }
        }
    }
}

/// Finds the node whose process owns the client end of the connection from `peer`.
async fn identify_source(
    state: &ProxyState,
    peer: SocketAddr,
    listen: Option<SocketAddr>,
) -> Option<NodeId> {
    let listen = listen?;

    for _ in 0..IDENTIFY_ATTEMPTS {
        let pids = state
            .pids
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let found = tokio::task::spawn_blocking(move || find_owner(&pids, peer, listen))
            .await
            .ok()
            .flatten();
        if found.is_some() {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

fn find_owner(
    pids: &BTreeMap<NodeId, u32>,
    peer: SocketAddr,
    listen: SocketAddr,
) -> Option<NodeId> {
    let inode = socket_inode(peer, listen)?;
    let wanted = format!("socket:[{inode}]");

    pids.iter().find_map(|(node, pid)| {
        let entries = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
        let owns = entries.flatten().any(|entry| {
            std::fs::read_link(entry.path()).is_ok_and(|link| link.as_os_str() == wanted.as_str())
        });
        owns.then_some(*node)
    })
}

/// Returns the inode of the IPv4 socket whose local port is `peer`'s and whose remote port is
/// `listen`'s, from `/proc/net/tcp`.
fn socket_inode(peer: SocketAddr, listen: SocketAddr) -> Option<u64> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let local_port = format!(":{:04X}", peer.port());
    let remote_port = format!(":{:04X}", listen.port());

    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let local = fields.get(1)?;
        let remote = fields.get(2)?;
        if local.ends_with(&local_port) && remote.ends_with(&remote_port) {
            fields.get(9)?.parse().ok()
        } else {
            None
        }
    })
}
