//! One client connection, on the core that accepted it. A reader task takes frames off
//! the socket and runs each request's in-order part (so a partition's batches are appended
//! in the order they were sent); a writer task sends the replies in request order. Between
//! them a bounded queue of in-flight replies: when it is full the reader stops reading
//! (backpressure to the client), as it does when the core's buffered request bytes reach
//! their limit.
//!
//! What one connection can cost is bounded: the core's request-byte budget is taken as a
//! frame's bytes arrive (not for the size it declares), a frame that stops arriving for
//! `--request-read-timeout-ms` closes the connection, an idle connection is closed after
//! `--connections-max-idle-ms`, and an idle connection holds only a small read buffer.
//! When the client goes away, the replies still pending (long-poll Fetches) are dropped
//! at once rather than left to run out their wait.
//!
//! A malformed frame closes the connection with a logged reason; nothing after it on the
//! stream can be trusted. So does a panic in a handler: it is caught here, logged and
//! counted, and the core goes on serving everyone else.

use std::any::Any;
use std::cell::Cell;
use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use futures_lite::{AsyncReadExt, AsyncWriteExt, FutureExt};
use glommio::channels::local_channel;
use glommio::net::TcpStream;
use glommio::sync::{Gate, Semaphore};
use kafka_protocol::messages::RequestKind;

use crate::server::handlers::{self, Response, SERVED_APIS};
use crate::shard::Shard;
use crate::storage::wait::Watermark;
use spindle_protocol::api::{
    FRAME_PREFIX_BYTES, RequestError, decode_request, encode_unsupported, frame_body_bytes,
};
use spindle_protocol::fetch_response::ChunkedFrame;

/// Bytes asked of the socket per read while frames are streaming in.
const READ_CHUNK_BYTES: usize = 64 << 10;
/// The read buffer of a connection with nothing buffered: an idle connection holds this
/// much, not a full chunk.
const IDLE_READ_BYTES: usize = 1 << 10;
/// Frames at least this large are read into their own buffer, so Produce can hand their
/// batches to the log without copying them.
const OWN_BUFFER_FRAME_BYTES_MIN: usize = 16 << 10;
/// Most bytes of a large frame read (and budgeted) at a time.
const FRAME_READ_STEP_BYTES: usize = 1 << 20;

/// Why a connection's writer stopped.
enum WriterError {
    Socket(String),
    Encode(String),
    ClientGone,
}

/// Counts a connection on its core (and for its client's address) for as long as it lives.
struct ConnectionSlot<'a> {
    shard: &'a Shard,
    peer: SocketAddr,
}

impl Drop for ConnectionSlot<'_> {
    fn drop(&mut self) {
        self.shard.release_connection(self.peer.ip());
    }
}

/// Request bytes taken from the core's budget, given back when dropped. Grows as a frame's
/// bytes arrive.
struct BudgetHold {
    budget: Rc<Semaphore>,
    bytes: u64,
}

impl BudgetHold {
    fn new(budget: &Rc<Semaphore>) -> BudgetHold {
        BudgetHold {
            budget: budget.clone(),
            bytes: 0,
        }
    }

    async fn grow(&mut self, bytes: usize) -> Result<(), String> {
        self.budget
            .acquire(bytes as u64)
            .await
            .map_err(|e| format!("buffer budget: {e}"))?;
        self.bytes += bytes as u64;
        Ok(())
    }
}

impl Drop for BudgetHold {
    fn drop(&mut self) {
        if self.bytes > 0 {
            self.budget.signal(self.bytes);
        }
    }
}

/// The text of a caught panic.
pub fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        text.to_string()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without a message".to_string()
    }
}

/// Runs `future`, turning a panic inside it into an `Err` that is logged and counted.
async fn catch_panic<T>(shard: &Shard, future: impl Future<Output = T>) -> Result<T, String> {
    AssertUnwindSafe(future)
        .catch_unwind()
        .await
        .map_err(|panic| {
            shard.count_connection_panic();
            format!("a request handler panicked: {}", panic_message(&*panic))
        })
}

pub async fn serve_connection(shard: Rc<Shard>, stream: TcpStream, peer: SocketAddr) {
    if let Err(reason) = shard.admit_connection(peer.ip()) {
        tracing::warn!(core = shard.core, %peer, "closing a new connection: {reason}");
        return;
    }
    let _slot = ConnectionSlot {
        shard: &shard,
        peer,
    };
    let _ = stream.set_nodelay(true);
    let (mut reader, mut writer) = futures_lite::io::split(stream);
    let (replies, pending) =
        local_channel::new_bounded::<glommio::Task<Response>>(shard.config.in_flight_requests_max);
    // Reaches 1 when the client has gone: pending replies are dropped, not awaited.
    let client_gone = Rc::new(Watermark::new(0));
    // Requests read whose replies are not written yet.
    let in_flight = Rc::new(Cell::new(0usize));
    // Appends nobody is answered for (acks=0).
    let unanswered_appends = Gate::new();

    let writer_task = {
        let client_gone = client_gone.clone();
        let in_flight = in_flight.clone();
        glommio::spawn_local(async move {
            while let Some(reply) = pending.recv().await {
                let reply = futures_lite::future::or(async { Some(reply.await) }, async {
                    client_gone.wait_for(1).await;
                    None
                })
                .await;
                in_flight.set(in_flight.get() - 1);
                match reply {
                    // Dropping the queued tasks cancels them (their long-polls end now).
                    None => return Err(WriterError::ClientGone),
                    Some(Ok(Some(frame))) => {
                        for chunk in &frame.chunks {
                            writer
                                .write_all(chunk)
                                .await
                                .map_err(|e| WriterError::Socket(format!("write: {e}")))?;
                        }
                    }
                    Some(Ok(None)) => {}
                    Some(Err(reason)) => {
                        // Closing our side ends the reader too (the client closes in turn).
                        let _ = writer.close().await;
                        if reason.starts_with(handlers::FAULT_INJECTION) {
                            return Err(WriterError::Socket(reason));
                        }
                        return Err(WriterError::Encode(reason));
                    }
                }
            }
            writer
                .flush()
                .await
                .map_err(|e| WriterError::Socket(format!("flush: {e}")))?;
            // The client may have gone already; nothing is lost if closing fails.
            let _ = writer.close().await;
            Ok(())
        })
    };

    let outcome = catch_panic(
        &shard,
        read_requests(
            &shard,
            &mut reader,
            &replies,
            &in_flight,
            &unanswered_appends,
            peer,
        ),
    )
    .await;
    let outcome = match outcome {
        Ok(Ok(ReaderEnd::ClientClosed)) => {
            client_gone.advance(1);
            Ok(())
        }
        Ok(Ok(ReaderEnd::Stopped)) => Ok(()),
        Ok(Err(reason)) | Err(reason) => Err(reason),
    };
    if let Err(reason) = &outcome {
        tracing::warn!(core = shard.core, %peer, "closing connection: {reason}");
    }
    drop(replies);
    // acks=0 appends still writing: the connection, which shutdown waits for, outlives them.
    let _ = unanswered_appends.close().await;
    match writer_task.await {
        Ok(()) | Err(WriterError::ClientGone) => {}
        // The client went away while answers were still going out: routine.
        Err(WriterError::Socket(reason)) => {
            tracing::debug!(core = shard.core, %peer, "connection closed: {reason}")
        }
        // An answer could not be encoded, or its handler panicked: a bug.
        Err(WriterError::Encode(reason)) => {
            tracing::error!(core = shard.core, %peer, "connection closed: {reason}")
        }
    }
}

/// How the reader stopped without an error.
enum ReaderEnd {
    /// End of stream: the client closed (Kafka clients never half-close).
    ClientClosed,
    /// Shutdown began, or the writer went away.
    Stopped,
}

/// Reads frames and hands each request's reply to the writer, until the stream ends.
async fn read_requests<R: futures_lite::AsyncRead + Unpin>(
    shard: &Rc<Shard>,
    reader: &mut R,
    replies: &local_channel::LocalSender<glommio::Task<Response>>,
    in_flight: &Cell<usize>,
    unanswered_appends: &Gate,
    peer: SocketAddr,
) -> Result<ReaderEnd, String> {
    let mut buffer = BytesMut::new();
    // Set by a request that took its client past a quota: no request is read before then.
    let muted_until = Rc::new(Cell::new(None::<Instant>));
    loop {
        if let Some(until) = muted_until.take() {
            let wait = until.saturating_duration_since(Instant::now());
            futures_lite::future::or(glommio::timer::sleep(wait), shard.shutdown_started()).await;
        }
        let body_bytes = loop {
            match frame_body_bytes(&buffer, shard.config.request_bytes_max)? {
                Some(size) => break size,
                None => {
                    // Between frames the wait is idleness, unless requests are in flight
                    // (a long-poll Fetch keeps a quiet connection busy).
                    let timeout = if buffer.is_empty() && in_flight.get() == 0 {
                        shard.config.connections_max_idle
                    } else {
                        shard.config.request_read_timeout
                    };
                    match read_more(shard, reader, &mut buffer, timeout).await? {
                        Read::Some => {}
                        Read::TimedOut if buffer.is_empty() && in_flight.get() > 0 => {}
                        Read::TimedOut if buffer.is_empty() => {
                            return Err(format!(
                                "idle for {timeout:?} (--connections-max-idle-ms)"
                            ));
                        }
                        Read::TimedOut => return Err(stalled(timeout)),
                        Read::End if buffer.is_empty() => return Ok(ReaderEnd::ClientClosed),
                        Read::End => return Err("connection closed inside a frame".into()),
                        Read::Shutdown => return Ok(ReaderEnd::Stopped),
                    }
                }
            }
        };
        buffer.advance(FRAME_PREFIX_BYTES);
        let (frame, hold) = read_frame(shard, reader, &mut buffer, body_bytes).await?;
        let frame = frame.freeze();
        if let Some(dir) = &shard.config.capture_requests_dir {
            capture_request(dir, shard.core, &frame);
        }
        let mut unanswered = false;
        let reply = match decode_request(frame.clone(), SERVED_APIS) {
            Ok(request) => {
                // acks=0: nothing goes back, so nothing for the writer to wait for in order.
                unanswered = matches!(&request.body, RequestKind::Produce(p) if p.acks == 0);
                shard.fault_panic_for(request.header.client_id.as_deref());
                // Boxed: the handlers' in-order state lives on the heap only while a request
                // is handled, not in every idle connection's future.
                Box::pin(handlers::handle(shard, request, frame, peer, &muted_until)).await
            }
            Err(RequestError::Malformed(reason)) => return Err(reason),
            Err(RequestError::Unsupported {
                api_key,
                api_version,
                correlation_id,
            }) => {
                tracing::debug!(core = shard.core, %peer, api_key, api_version, "unsupported request");
                drop(frame);
                let answer =
                    ChunkedFrame::from(encode_unsupported(api_key, correlation_id, SERVED_APIS));
                Box::pin(std::future::ready(Ok(Some(answer))))
            }
        };
        let response = {
            let shard = shard.clone();
            async move {
                let response = catch_panic(&shard, reply).await.and_then(|r| r);
                drop(hold);
                response
            }
        };
        if unanswered {
            // It runs on, holding its bytes of the core's budget until they are written,
            // without taking one of the connection's places for replies in flight. The
            // connection ends only after it (its gate), so shutdown closes no log under it.
            match unanswered_appends.spawn(response) {
                Ok(task) => {
                    task.detach();
                }
                Err(_) => unreachable!("the gate closes only after the reader has stopped"),
            }
            if shard.is_shutting_down() {
                return Ok(ReaderEnd::Stopped);
            }
            continue;
        }
        let task = glommio::spawn_local(response);
        in_flight.set(in_flight.get() + 1);
        if replies.send(task).await.is_err() || shard.is_shutting_down() {
            return Ok(ReaderEnd::Stopped);
        }
    }
}

/// Testing only (`--capture-requests-dir`): writes one request frame body to a file named
/// by API key, version and a per-core sequence number.
fn capture_request(dir: &std::path::Path, core: u32, frame: &[u8]) {
    thread_local!(static CAPTURED: Cell<u64> = const { Cell::new(0) });
    if frame.len() < 4 {
        return;
    }
    let sequence = CAPTURED.with(|n| {
        n.set(n.get() + 1);
        n.get()
    });
    let api_key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let path = dir.join(format!("{api_key}-{version}-c{core}-{sequence}"));
    if let Err(e) = std::fs::write(&path, frame) {
        tracing::warn!(core, "capturing a request to {}: {e}", path.display());
    }
}

fn stalled(timeout: Duration) -> String {
    format!("no bytes of a started frame for {timeout:?} (--request-read-timeout-ms)")
}

/// Takes the body of a frame of `body_bytes` off `buffer` and the socket, taking the core's
/// budget for its bytes as they arrive.
async fn read_frame<R: futures_lite::AsyncRead + Unpin>(
    shard: &Shard,
    reader: &mut R,
    buffer: &mut BytesMut,
    body_bytes: usize,
) -> Result<(BytesMut, BudgetHold), String> {
    let timeout = shard.config.request_read_timeout;
    let mut hold = BudgetHold::new(&shard.buffered_bytes);
    if body_bytes < OWN_BUFFER_FRAME_BYTES_MIN {
        // Backpressure before taking a small frame off the socket.
        hold.grow(body_bytes).await?;
        while buffer.len() < body_bytes {
            match read_more(shard, reader, buffer, timeout).await? {
                Read::Some => {}
                Read::TimedOut => return Err(stalled(timeout)),
                Read::End => return Err("connection closed inside a frame".into()),
                Read::Shutdown => return Err("shutting down inside a frame".into()),
            }
        }
        return Ok((buffer.split_to(body_bytes), hold));
    }
    // The frame's own buffer. Its capacity is only reserved address space: memory is
    // written (and budgeted) a step at a time, as the client's bytes arrive.
    let buffered = buffer.len().min(body_bytes);
    hold.grow(buffered).await?;
    let mut frame = BytesMut::with_capacity(body_bytes);
    frame.extend_from_slice(&buffer.split_to(buffered));
    while frame.len() < body_bytes {
        let step = (body_bytes - frame.len()).min(FRAME_READ_STEP_BYTES);
        hold.grow(step).await?;
        let start = frame.len();
        frame.resize(start + step, 0);
        let read = with_timeout(shard, timeout, reader.read_exact(&mut frame[start..])).await;
        match read {
            Some(Some(Ok(()))) => {}
            Some(Some(Err(e))) => return Err(format!("read: {e}")),
            Some(None) => return Err(stalled(timeout)),
            None => return Err("shutting down inside a frame".into()),
        }
    }
    Ok((frame, hold))
}

/// What one read from the socket gave.
enum Read {
    Some,
    End,
    TimedOut,
    Shutdown,
}

/// Runs `future` until it resolves (`Some(Some(_))`), `timeout` passes (`Some(None)`) or
/// shutdown begins (`None`).
async fn with_timeout<T>(
    shard: &Shard,
    timeout: Duration,
    future: impl Future<Output = T>,
) -> Option<Option<T>> {
    futures_lite::future::or(
        async { Some(Some(future.await)) },
        futures_lite::future::or(
            async {
                glommio::timer::sleep(timeout).await;
                Some(None)
            },
            async {
                shard.shutdown_started().await;
                None
            },
        ),
    )
    .await
}

/// Reads what the socket has into `buffer`. An empty buffer reads into a small allocation
/// (an idle connection waits there); a busy one into a full chunk.
async fn read_more<R: futures_lite::AsyncRead + Unpin>(
    shard: &Shard,
    reader: &mut R,
    buffer: &mut BytesMut,
    timeout: Duration,
) -> Result<Read, String> {
    if shard.is_shutting_down() {
        return Ok(Read::Shutdown);
    }
    if buffer.is_empty() {
        if !(IDLE_READ_BYTES..=4 * IDLE_READ_BYTES).contains(&buffer.capacity()) {
            *buffer = BytesMut::with_capacity(IDLE_READ_BYTES);
        }
    } else if buffer.capacity() - buffer.len() < READ_CHUNK_BYTES / 2 {
        buffer.reserve(READ_CHUNK_BYTES);
    }
    let start = buffer.len();
    buffer.resize(buffer.capacity(), 0);
    let read = with_timeout(shard, timeout, reader.read(&mut buffer[start..])).await;
    let read = match read {
        Some(Some(Ok(read))) => read,
        Some(Some(Err(e))) => {
            buffer.truncate(start);
            return Err(format!("read: {e}"));
        }
        Some(None) => {
            buffer.truncate(start);
            return Ok(Read::TimedOut);
        }
        None => {
            buffer.truncate(start);
            return Ok(Read::Shutdown);
        }
    };
    buffer.truncate(start + read);
    Ok(if read > 0 { Read::Some } else { Read::End })
}
