//! One client connection, on the core that accepted it. A reader task takes frames off
//! the socket and runs each request's in-order part (so a partition's batches are appended
//! in the order they were sent); a writer task sends the replies in request order. Between
//! them a bounded queue of in-flight replies: when it is full the reader stops reading
//! (backpressure to the client), as it does when the core's buffered request bytes reach
//! their limit.
//!
//! A malformed frame closes the connection with a logged reason; nothing after it on the
//! stream can be trusted.

use std::net::SocketAddr;
use std::rc::Rc;

use bytes::{Buf, BytesMut};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::channels::local_channel;
use glommio::net::TcpStream;

use crate::protocol::api::{
    FRAME_PREFIX_BYTES, RequestError, decode_request, encode_unsupported, frame_body_bytes,
};
use crate::protocol::fetch_response::ChunkedFrame;
use crate::server::handlers::{self, Response};
use crate::server::shard::Shard;

/// Bytes asked of the socket per read when frames are small.
const READ_CHUNK_BYTES: usize = 64 << 10;
/// Frames at least this large are read into their own buffer, so Produce can hand their
/// batches to the log without copying them.
const OWN_BUFFER_FRAME_BYTES_MIN: usize = 16 << 10;

/// Why a connection's writer stopped.
enum WriterError {
    Socket(String),
    Encode(String),
}

/// Counts a connection on its core for as long as it lives.
struct ConnectionSlot<'a>(&'a Shard);

impl Drop for ConnectionSlot<'_> {
    fn drop(&mut self) {
        self.0.connections.set(self.0.connections.get() - 1);
    }
}

pub async fn serve_connection(shard: Rc<Shard>, stream: TcpStream, peer: SocketAddr) {
    if shard.connections.get() >= shard.config.connections_per_core_max {
        tracing::warn!(
            core = shard.core,
            %peer,
            "closing a new connection: this core already serves {} (--max-connections-per-core)",
            shard.connections.get()
        );
        return;
    }
    shard.connections.set(shard.connections.get() + 1);
    let _slot = ConnectionSlot(&shard);
    let _ = stream.set_nodelay(true);
    let (mut reader, mut writer) = futures_lite::io::split(stream);
    let (replies, pending) =
        local_channel::new_bounded::<glommio::Task<Response>>(shard.config.in_flight_requests_max);

    let writer_task = glommio::spawn_local(async move {
        while let Some(reply) = pending.recv().await {
            match reply.await {
                Ok(Some(frame)) => {
                    for chunk in &frame.chunks {
                        writer
                            .write_all(chunk)
                            .await
                            .map_err(|e| WriterError::Socket(format!("write: {e}")))?;
                    }
                }
                Ok(None) => {}
                Err(reason) => {
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
    });

    let mut buffer = BytesMut::with_capacity(READ_CHUNK_BYTES);
    let outcome: Result<(), String> = async {
        loop {
            let body_bytes = loop {
                match frame_body_bytes(&buffer, shard.config.request_bytes_max) {
                    Ok(Some(size)) => break size,
                    Ok(None) => {
                        if !read_more(&shard, &mut reader, &mut buffer).await? {
                            return Ok(());
                        }
                    }
                    Err(reason) => return Err(reason),
                }
            };
            // Backpressure before taking the frame off the socket.
            let permit = shard
                .buffered_bytes
                .acquire_static_permit(body_bytes as u64)
                .await
                .map_err(|e| format!("buffer budget: {e}"))?;
            buffer.advance(FRAME_PREFIX_BYTES);
            let frame = if body_bytes >= OWN_BUFFER_FRAME_BYTES_MIN {
                let buffered = buffer.len().min(body_bytes);
                let mut frame = BytesMut::with_capacity(body_bytes);
                frame.extend_from_slice(&buffer.split_to(buffered));
                frame.resize(body_bytes, 0);
                read_exact_or_shutdown(&shard, &mut reader, &mut frame[buffered..]).await?;
                frame
            } else {
                while buffer.len() < body_bytes {
                    if !read_more(&shard, &mut reader, &mut buffer).await? {
                        return Err("connection closed inside a frame".into());
                    }
                }
                buffer.split_to(body_bytes)
            };
            let frame = frame.freeze();
            let reply = match decode_request(frame.clone()) {
                Ok(request) => handlers::handle(&shard, request, frame, peer).await,
                Err(RequestError::Malformed(reason)) => return Err(reason),
                Err(RequestError::Unsupported {
                    api_key,
                    api_version,
                    correlation_id,
                }) => {
                    tracing::debug!(core = shard.core, %peer, api_key, api_version, "unsupported request");
                    drop(frame);
                    let answer = ChunkedFrame::from(encode_unsupported(api_key, correlation_id));
                    Box::pin(std::future::ready(Ok(Some(answer))))
                }
            };
            let task = glommio::spawn_local(async move {
                let response = reply.await;
                drop(permit);
                response
            });
            if replies.send(task).await.is_err() {
                return Ok(());
            }
            if shard.is_shutting_down() {
                return Ok(());
            }
        }
    }
    .await;
    if let Err(reason) = &outcome {
        tracing::warn!(core = shard.core, %peer, "closing connection: {reason}");
    }
    drop(replies);
    match writer_task.await {
        Ok(()) => {}
        // The client went away while answers were still going out: routine.
        Err(WriterError::Socket(reason)) => {
            tracing::debug!(core = shard.core, %peer, "connection closed: {reason}")
        }
        // An answer could not be encoded: a bug in a handler.
        Err(WriterError::Encode(reason)) => {
            tracing::error!(core = shard.core, %peer, "connection closed: {reason}")
        }
    }
}

/// Reads what the socket has into `buffer`; `Ok(false)` at end of stream or when shutdown
/// began while waiting.
async fn read_more<R: futures_lite::AsyncRead + Unpin>(
    shard: &Shard,
    reader: &mut R,
    buffer: &mut BytesMut,
) -> Result<bool, String> {
    if shard.is_shutting_down() {
        return Ok(false);
    }
    if buffer.capacity() - buffer.len() < READ_CHUNK_BYTES / 2 {
        buffer.reserve(READ_CHUNK_BYTES);
    }
    let start = buffer.len();
    buffer.resize(buffer.capacity(), 0);
    let read = futures_lite::future::or(
        async { Some(reader.read(&mut buffer[start..]).await) },
        async {
            shard.shutdown_started().await;
            None
        },
    )
    .await;
    let read = match read {
        Some(Ok(read)) => read,
        Some(Err(e)) => {
            buffer.truncate(start);
            return Err(format!("read: {e}"));
        }
        None => 0,
    };
    buffer.truncate(start + read);
    Ok(read > 0)
}

async fn read_exact_or_shutdown<R: futures_lite::AsyncRead + Unpin>(
    shard: &Shard,
    reader: &mut R,
    out: &mut [u8],
) -> Result<(), String> {
    let read = futures_lite::future::or(async { Some(reader.read_exact(out).await) }, async {
        shard.shutdown_started().await;
        None
    })
    .await;
    match read {
        Some(Ok(())) => Ok(()),
        Some(Err(e)) => Err(format!("read: {e}")),
        None => Err("shutting down inside a frame".into()),
    }
}
