//! The WebSocket transport, on actix-http's frame codec without actix-ws: the response
//! body reads the session's outbox directly and encodes everything queued into one
//! buffer per poll (no channel and no task hop per packet), and the reader decodes
//! frames straight from the request payload.
//!
//! A [`WsLink`] ties one WebSocket to its session: frames that bypass the outbox (the
//! open packet, the upgrade probe's answer, pongs to WebSocket pings, the close frame)
//! and the waker of the body. The body drains the session's outbox only while the
//! session's active link is its own, so a WebSocket that is still probing an upgrade
//! (or failed to) never takes the polling transport's packets.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use actix_codec::Decoder;
use actix_http::ws::{CloseCode, CloseReason as WsCloseReason, Codec, Frame, OpCode, Parser};
use actix_web::web::{Bytes, BytesMut};
use bytestring::ByteString;
use futures_util::StreamExt;
use futures_util::task::AtomicWaker;

use super::packet::Packet;
use super::session::{CloseReason, Message, Session, TransportKind, Upgrade};

/// A frame written outside the session's outbox.
pub(crate) enum Direct {
    /// An encoded Engine.IO packet.
    Text(String),
    /// `3probe`, the answer to an upgrade probe: once it is written, polls waiting on
    /// the session are ended and the upgrade may complete.
    ProbeAnswer,
    Pong(Bytes),
    /// Closes the WebSocket (not necessarily the session: a failed upgrade).
    Close(Option<WsCloseReason>),
}

/// What one WebSocket shares between its reader, its body and its session.
pub(crate) struct WsLink {
    waker: AtomicWaker,
    // A std mutex: pushes and a drain, never held across an await.
    direct: Mutex<Vec<Direct>>,
}

impl WsLink {
    pub(crate) fn new() -> Arc<WsLink> {
        Arc::new(WsLink {
            waker: AtomicWaker::new(),
            direct: Mutex::new(Vec::new()),
        })
    }

    /// Queues a frame ahead of the outbox's packets.
    pub(crate) fn send(&self, frame: Direct) {
        self.direct
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(frame);
        self.waker.wake();
    }

    /// Wakes the body: packets were queued or the session closed.
    pub(crate) fn wake(&self) {
        self.waker.wake();
    }
}

/// The response body of a WebSocket: the frames queued for it, as they come.
pub(crate) struct WsBody {
    session: Arc<Session>,
    link: Arc<WsLink>,
    /// The buffer the frames are encoded into, kept between the polls of a busy
    /// connection (see [`QUIET_POLL`]): actix copies each chunk into its own write buffer
    /// and drops it at once, so the next poll finds the allocation free to reuse.
    buf: BytesMut,
    done: bool,
}

impl WsBody {
    pub(crate) fn new(session: Arc<Session>, link: Arc<WsLink>) -> WsBody {
        WsBody {
            session,
            link,
            buf: BytesMut::new(),
            done: false,
        }
    }
}

/// Appends one unmasked, final text frame carrying `text` (prefixed by `prefix`).
fn put_text_frame(out: &mut BytesMut, prefix: Option<u8>, text: &[u8]) {
    let len = text.len() + usize::from(prefix.is_some());
    out.reserve(len + 10);
    out.extend_from_slice(&[0x80 | u8::from(OpCode::Text)]);
    if len < 126 {
        out.extend_from_slice(&[len as u8]);
    } else if len <= usize::from(u16::MAX) {
        out.extend_from_slice(&[126]);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.extend_from_slice(&[127]);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    if let Some(p) = prefix {
        out.extend_from_slice(&[p]);
    }
    out.extend_from_slice(text);
}

/// Appends one packet as its WebSocket frame.
fn put_packet(out: &mut BytesMut, packet: &Packet) {
    match packet {
        // The hot path: no intermediate String for `4<text>`.
        Packet::Message(text) => put_text_frame(out, Some(b'4'), text.as_bytes()),
        Packet::Binary(bytes) => {
            Parser::write_message(out, &bytes[..], OpCode::Binary, true, false)
        }
        other => put_text_frame(out, None, other.encode().as_bytes()),
    }
}

/// An outbox this large after a burst is given back rather than kept while idle.
const OUTBOX_KEEP: usize = 32;
/// A poll that writes at most this many packets finds its connection quiet: then the
/// outbox's room beyond [`OUTBOX_KEEP`] and the frame buffer are given back. A busy
/// connection keeps both from poll to poll: given back after every poll, they were
/// grown again packet by packet each time (at flood ~45 packets a poll: five
/// reallocations of the outbox, a malloc and a free of the buffer). An idle connection's
/// polls are small (a ping), so what a burst grew is given back by its next quiet poll.
const QUIET_POLL: usize = 8;
/// The most a busy connection keeps between polls: its frame buffer when the poll's
/// frames took at most this many bytes, its outbox's room when it held at most
/// [`OUTBOX_BUSY_KEEP`] packets. What a burst grew (the packets queued while the client
/// or the store stalled) is given back at once, busy or not.
const BUFFER_BUSY_KEEP: usize = 16 * 1024;
/// See [`BUFFER_BUSY_KEEP`].
const OUTBOX_BUSY_KEEP: usize = 128;

impl futures_util::Stream for WsBody {
    type Item = Result<Bytes, actix_web::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        this.link.waker.register(cx.waker());
        let mut out = std::mem::take(&mut this.buf);
        let mut drained = 0;
        let mut close = None;
        let mut probe_answered = false;
        let direct =
            std::mem::take(&mut *this.link.direct.lock().unwrap_or_else(|e| e.into_inner()));
        for frame in direct {
            match frame {
                Direct::Text(text) => put_text_frame(&mut out, None, text.as_bytes()),
                Direct::ProbeAnswer => {
                    put_text_frame(&mut out, None, Packet::PongProbe.encode().as_bytes());
                    probe_answered = true;
                }
                Direct::Pong(bytes) => {
                    Parser::write_message(&mut out, &bytes[..], OpCode::Pong, true, false)
                }
                Direct::Close(reason) => {
                    close = Some(reason);
                    break;
                }
            }
        }
        // Whatever the session queued goes out before a closing frame: a handler that
        // sends a last packet and closes (a server-side disconnect) is heard.
        {
            let mut st = this.session.state();
            if st.ws.as_ref().is_some_and(|l| Arc::ptr_eq(l, &this.link)) {
                let size: usize = st.outbox.iter().map(Packet::encoded_len_hint).sum();
                drained = st.outbox.len();
                out.reserve(size + 10 * drained);
                for packet in st.outbox.drain(..) {
                    put_packet(&mut out, &packet);
                }
                let quiet = drained <= QUIET_POLL;
                if (quiet && st.outbox.capacity() > OUTBOX_KEEP)
                    || st.outbox.capacity() > OUTBOX_BUSY_KEEP
                {
                    st.outbox.shrink_to_fit();
                }
                if st.closed.is_some() && close.is_none() {
                    close = Some(None);
                }
            }
        }
        if let Some(reason) = close {
            Parser::write_close(&mut out, reason, false);
            this.done = true;
        }
        if probe_answered {
            let mut st = this.session.state();
            if st.upgrade == Upgrade::Connected {
                st.upgrade = Upgrade::Probed;
            }
            drop(st);
            this.session.wake.notify_waiters();
        }
        if out.is_empty() {
            this.buf = out;
            return Poll::Pending;
        }
        let chunk = out.split().freeze();
        if drained > QUIET_POLL && chunk.len() <= BUFFER_BUSY_KEEP && !this.done {
            this.buf = out;
        }
        Poll::Ready(Some(Ok(chunk)))
    }
}

/// The client's side of a WebSocket: frames decoded from the request payload.
pub(crate) struct FrameReader {
    payload: actix_web::web::Payload,
    codec: Codec,
    buf: BytesMut,
}

/// Why no further frame comes.
enum ReadEnd {
    /// The connection ended or broke.
    Gone,
    /// A frame beyond the size limit.
    Overflow,
    /// Not WebSocket.
    Broken,
}

/// A read buffer this large once drained is given back rather than kept while idle.
const READ_BUF_KEEP: usize = 4096;

impl FrameReader {
    pub(crate) fn new(payload: actix_web::web::Payload, max_frame: usize) -> FrameReader {
        FrameReader {
            payload,
            codec: Codec::new().max_size(max_frame),
            buf: BytesMut::new(),
        }
    }

    /// The next frame, reading more of the payload when needed.
    async fn next(&mut self) -> Result<Frame, ReadEnd> {
        loop {
            match self.codec.decode(&mut self.buf) {
                Ok(Some(frame)) => {
                    if self.buf.is_empty() && self.buf.capacity() > READ_BUF_KEEP {
                        self.buf = BytesMut::new();
                    }
                    return Ok(frame);
                }
                Ok(None) => {}
                Err(actix_http::ws::ProtocolError::Overflow) => return Err(ReadEnd::Overflow),
                Err(_) => return Err(ReadEnd::Broken),
            }
            match self.payload.next().await {
                Some(Ok(chunk)) => {
                    if self.buf.is_empty() {
                        // Most reads hold whole frames: decode from the chunk itself.
                        self.buf = BytesMut::from(&chunk[..]);
                    } else {
                        self.buf.extend_from_slice(&chunk);
                    }
                }
                Some(Err(_)) | None => return Err(ReadEnd::Gone),
            }
        }
    }
}

/// Probes an upgrade from polling: `2probe` → `3probe`, then `5` switches the
/// session's transport to this WebSocket. Returns whether it did.
pub(crate) async fn probe_upgrade(
    session: &Arc<Session>,
    link: &Arc<WsLink>,
    reader: &mut FrameReader,
) -> bool {
    let wait = session.engine.config.ping_timeout;
    let probing = async {
        loop {
            let text = match reader.next().await {
                Ok(Frame::Text(bytes)) => bytes,
                Ok(Frame::Close(_)) | Err(_) => return false,
                Ok(_) => continue,
            };
            let Ok(text) = std::str::from_utf8(&text) else {
                return false;
            };
            match Packet::decode(text) {
                Ok(Packet::PingProbe) => link.send(Direct::ProbeAnswer),
                Ok(Packet::Upgrade) => {
                    // `3probe` must be on its way before the upgrade completes (and
                    // polls on other threads are answered): the client then sees the
                    // probe's answer first, as on the wire.
                    loop {
                        let woken = session.wake.notified();
                        tokio::pin!(woken);
                        woken.as_mut().enable();
                        match session.state().upgrade {
                            Upgrade::Probed => break,
                            Upgrade::Connected => {}
                            Upgrade::None => return false,
                        }
                        woken.await;
                    }
                    let mut st = session.state();
                    if st.closed.is_some() {
                        return false;
                    }
                    st.transport = TransportKind::WebSocket;
                    st.upgrade = Upgrade::None;
                    st.ws = Some(link.clone());
                    link.wake();
                    return true;
                }
                _ => return false,
            }
        }
    };
    let upgraded = tokio::time::timeout(wait, probing).await.unwrap_or(false);
    if !upgraded {
        {
            let mut st = session.state();
            if st.transport == TransportKind::Polling {
                st.upgrade = Upgrade::None;
            }
        }
        link.send(Direct::Close(None));
    }
    // The last poll may still be waiting: let it go (with a noop, or its packets).
    session.wake.notify_waiters();
    upgraded
}

/// Reads the client's frames and hands them to the session until either side ends it.
///
/// One wait for the session's closing serves the whole connection (registered once, not
/// once per frame: each registration and each drop takes the `Notify`'s lock), and it is
/// polled only when no frame is ready.
pub(crate) async fn read_frames(session: Arc<Session>, link: Arc<WsLink>, mut reader: FrameReader) {
    let closed = session.closing.notified();
    tokio::pin!(closed);
    closed.as_mut().enable();
    loop {
        if session.inbound_full() {
            session.wait_inbound_space().await;
        }
        if session.is_closed() {
            break;
        }
        let frame = tokio::select! {
            biased;
            frame = reader.next() => frame,
            () = &mut closed => {
                closed.set(session.closing.notified());
                closed.as_mut().enable();
                continue;
            }
        };
        match frame {
            Ok(Frame::Text(bytes)) => {
                // The frame's bytes are a part of the read buffer: the message keeps a
                // view of them rather than a copy.
                match ByteString::try_from(bytes).map(|text| Packet::decode_shared(&text)) {
                    Ok(Ok(packet)) => super::server::inbound(&session, packet),
                    _ => session.close(CloseReason::ParseError),
                }
            }
            Ok(Frame::Binary(bytes)) => session.deliver(Message::Binary(bytes)),
            Ok(Frame::Ping(bytes)) => link.send(Direct::Pong(bytes)),
            Ok(Frame::Close(_)) | Err(ReadEnd::Gone) => session.close(CloseReason::TransportClose),
            Ok(Frame::Pong(_) | Frame::Continuation(_)) => {}
            Err(ReadEnd::Overflow) => {
                session.close(CloseReason::TransportError);
                link.send(Direct::Close(Some(WsCloseReason {
                    code: CloseCode::Size,
                    description: Some("message too big".into()),
                })));
                return;
            }
            Err(ReadEnd::Broken) => session.close(CloseReason::TransportError),
        }
    }
    link.send(Direct::Close(None));
}
