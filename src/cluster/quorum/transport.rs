//! Raft messages between nodes over TCP: `u32 length (big-endian), protobuf Message`.
//!
//! Each node listens on its own quorum address; one reader thread per accepted connection
//! hands decoded messages to the quorum thread. To each peer, one sender thread owns one
//! outgoing connection and a bounded queue; when the queue is full or the peer is down,
//! messages are dropped, which Raft tolerates (it resends what matters). Plain threads and
//! blocking sockets: this is the metadata path, a few messages a second.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::time::Duration;

use protobuf::Message as _;
use raft::eraftpb::Message;

use super::Event;

/// Largest message frame accepted; a longer one closes the connection before anything is
/// allocated for it.
pub const FRAME_BYTES_MAX: usize = 16 << 20;
/// Messages queued for one peer before newer ones are dropped.
const PEER_QUEUE_MESSAGES_MAX: usize = 4096;
/// Inbound connections served at once (peers reconnect; a flood of others is refused).
const INBOUND_CONNECTIONS_MAX: usize = 64;
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
const RECONNECT_DELAY: Duration = Duration::from_millis(100);

/// Queues to every peer.
pub struct Outbound {
    peers: BTreeMap<u64, SyncSender<Message>>,
}

impl Outbound {
    /// Starts a sender thread per peer (`id -> address`, this node excluded).
    pub fn start(peers: &BTreeMap<u64, String>) -> Result<Outbound, String> {
        let mut queues = BTreeMap::new();
        for (&id, address) in peers {
            let (queue, messages) = std::sync::mpsc::sync_channel(PEER_QUEUE_MESSAGES_MAX);
            let address = address.clone();
            std::thread::Builder::new()
                .name(format!("spindle-quorum-to-{id}"))
                .spawn(move || send_to_peer(&address, messages))
                .map_err(|e| format!("starting the quorum sender to node {id}: {e}"))?;
            queues.insert(id, queue);
        }
        Ok(Outbound { peers: queues })
    }

    pub fn send(&self, message: Message) {
        if let Some(queue) = self.peers.get(&message.to) {
            match queue.try_send(message) {
                Ok(()) | Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {}
            }
        }
    }
}

fn send_to_peer(address: &str, messages: Receiver<Message>) {
    let mut stream: Option<TcpStream> = None;
    while let Ok(message) = messages.recv() {
        let Ok(body) = message.write_to_bytes() else {
            continue;
        };
        let mut frame = Vec::with_capacity(4 + body.len());
        frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
        frame.extend_from_slice(&body);
        if stream.is_none() {
            stream = connect(address);
        }
        let Some(connection) = stream.as_mut() else {
            // The peer is down: this message is dropped, and so is the backlog (stale by the
            // time the peer returns), so a dead peer costs no memory.
            while messages.try_recv().is_ok() {}
            std::thread::sleep(RECONNECT_DELAY);
            continue;
        };
        if connection.write_all(&frame).is_err() {
            stream = None;
        }
    }
}

fn connect(address: &str) -> Option<TcpStream> {
    let addresses: Vec<SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(address)
        .ok()?
        .collect();
    for address in addresses {
        if let Ok(stream) = TcpStream::connect_timeout(&address, CONNECT_TIMEOUT) {
            let _ = stream.set_nodelay(true);
            let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
            return Some(stream);
        }
    }
    None
}

/// Accepts peers on `listener` and feeds their messages to `events`.
pub fn start_inbound(listener: TcpListener, events: SyncSender<Event>) -> Result<(), String> {
    let open = Arc::new(AtomicUsize::new(0));
    std::thread::Builder::new()
        .name("spindle-quorum-accept".into())
        .spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                if open.fetch_add(1, Ordering::AcqRel) >= INBOUND_CONNECTIONS_MAX {
                    open.fetch_sub(1, Ordering::AcqRel);
                    continue;
                }
                let events = events.clone();
                let open = open.clone();
                let started = std::thread::Builder::new()
                    .name("spindle-quorum-from".into())
                    .spawn(move || {
                        let _ = receive_from_peer(stream, &events);
                        open.fetch_sub(1, Ordering::AcqRel);
                    });
                if started.is_err() {
                    tracing::warn!("could not start a quorum reader thread");
                }
            }
        })
        .map_err(|e| format!("starting the quorum listener: {e}"))?;
    Ok(())
}

/// Reads frames until the peer closes, sends garbage, or the quorum thread is gone.
fn receive_from_peer(mut stream: TcpStream, events: &SyncSender<Event>) -> Result<(), String> {
    let _ = stream.set_nodelay(true);
    loop {
        let mut length = [0u8; 4];
        stream.read_exact(&mut length).map_err(|e| e.to_string())?;
        let length = u32::from_be_bytes(length) as usize;
        if length > FRAME_BYTES_MAX {
            return Err(format!("a {length}-byte quorum frame; closing"));
        }
        let mut body = vec![0u8; length];
        stream.read_exact(&mut body).map_err(|e| e.to_string())?;
        let message = decode_message(&body)?;
        events
            .send(Event::Raft(Box::new(message)))
            .map_err(|_| "the quorum thread is gone".to_string())?;
    }
}

/// One message from a frame's body; garbage is an error (the connection closes).
pub fn decode_message(body: &[u8]) -> Result<Message, String> {
    Message::parse_from_bytes(body).map_err(|e| format!("bad quorum message: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_garbage_or_huge_frames_close_the_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let (events, received) = std::sync::mpsc::sync_channel(16);
        start_inbound(listener, events).unwrap();

        let outbound = Outbound::start(&BTreeMap::from([(2u64, address.to_string())])).unwrap();
        let message = Message {
            to: 2,
            from: 1,
            term: 9,
            ..Default::default()
        };
        outbound.send(message.clone());
        match received.recv_timeout(Duration::from_secs(5)).unwrap() {
            Event::Raft(got) => assert_eq!(*got, message),
            _ => panic!("expected a raft message"),
        }

        // A frame claiming more than the limit: the reader closes without reading on.
        let mut raw = TcpStream::connect(address).unwrap();
        raw.write_all(&(FRAME_BYTES_MAX as u32 + 1).to_be_bytes())
            .unwrap();
        raw.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut byte = [0u8; 1];
        assert_eq!(raw.read(&mut byte).unwrap_or(0), 0);

        assert!(decode_message(&[0xff, 0xff, 0xff]).is_err());
    }
}
