//! Connections to an Engine.IO server over WebSocket or HTTP long-polling, each split
//! into a receiving half ([`Rx`]) and a sending half ([`Tx`]) so one task can read while
//! another writes. Also the tiny HTTP/1.1 client used for `/create` and polling.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::protocol::RECORD_SEPARATOR;

/// The Engine.IO endpoint, relative to the server's address.
const ENGINEIO_PATH: &str = "/socket.io/?EIO=4";

/// Long-poll responses buffered ahead of the reader, per connection.
const POLL_QUEUE: usize = 16;

/// Which Engine.IO transport a client uses (it never upgrades).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Websocket,
    Polling,
}

/// Where to connect, and from which loopback source address.
#[derive(Clone, Copy, Debug)]
pub struct Endpoint {
    pub addr: SocketAddr,
    pub source: Option<IpAddr>,
}

/// Opens a TCP connection with Nagle off, bound to `source` when given. The port is
/// chosen at connect time (`IP_BIND_ADDRESS_NO_PORT`), so every source address offers
/// the whole ephemeral range towards every server port.
pub async fn tcp_connect(endpoint: &Endpoint) -> Result<TcpStream> {
    let socket = if endpoint.addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .context("creating a socket (out of file descriptors?)")?;
    if let Some(source) = endpoint.source {
        bind_address_no_port(&socket);
        socket
            .bind(SocketAddr::new(source, 0))
            .with_context(|| format!("binding to source address {source}"))?;
    }
    let stream = socket
        .connect(endpoint.addr)
        .await
        .with_context(|| format!("connecting to {}", endpoint.addr))?;
    stream.set_nodelay(true).context("setting TCP_NODELAY")?;
    Ok(stream)
}

fn bind_address_no_port(socket: &TcpSocket) {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: a valid socket descriptor and a c_int option of the size we pass. A failure
    // only means the port is picked at bind time, which still works.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            std::ptr::from_ref(&on).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// A keep-alive HTTP/1.1 connection to the server.
pub struct Http {
    sender: SendRequest<Full<Bytes>>,
    host: String,
    _driver: AbortOnDrop,
}

/// One HTTP response, body read in full.
pub struct Response {
    pub status: StatusCode,
    pub location: Option<String>,
    pub body: Bytes,
}

impl Http {
    pub async fn connect(endpoint: &Endpoint) -> Result<Http> {
        let stream = tcp_connect(endpoint).await?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP handshake")?;
        let driver = tokio::spawn(async move {
            // The connection ends when the server or our side closes it; nothing to report.
            let _ = connection.await;
        });
        Ok(Http {
            sender,
            host: endpoint.addr.to_string(),
            _driver: AbortOnDrop(driver.abort_handle()),
        })
    }

    pub async fn request(&mut self, method: Method, path: &str, body: Bytes) -> Result<Response> {
        self.sender
            .ready()
            .await
            .context("HTTP connection closed")?;
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, &self.host)
            .header(hyper::header::CONTENT_TYPE, "text/plain;charset=UTF-8")
            .body(Full::new(body))
            .context("building an HTTP request")?;
        let response = self
            .sender
            .send_request(request)
            .await
            .with_context(|| format!("HTTP request {path}"))?;
        let status = response.status();
        let location = response
            .headers()
            .get(hyper::header::LOCATION)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let body = response
            .into_body()
            .collect()
            .await
            .with_context(|| format!("reading the body of {path}"))?
            .to_bytes();
        Ok(Response {
            status,
            location,
            body,
        })
    }

    /// A new room the way a browser gets one: `GET /create`, then the `Location` header.
    pub async fn create_room(&mut self) -> Result<String> {
        let response = self.request(Method::GET, "/create", Bytes::new()).await?;
        if !response.status.is_redirection() {
            bail!(
                "GET /create answered {} instead of a redirect",
                response.status
            );
        }
        let location = response
            .location
            .context("GET /create answered without a Location header")?;
        let room = location
            .rsplit('/')
            .next()
            .filter(|id| !id.is_empty())
            .with_context(|| format!("no room id in Location {location:?}"))?;
        Ok(room.to_owned())
    }
}

/// Aborts a background task when its owner goes away.
pub struct AbortOnDrop(AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

type Ws = WebSocketStream<TcpStream>;

/// The receiving half of a connection.
pub enum Rx {
    Websocket(SplitStream<Ws>),
    /// Bodies of the long-poll `GET`s, fetched one after the other by a background task.
    Polling {
        bodies: mpsc::Receiver<Result<String>>,
        _poller: AbortOnDrop,
    },
}

/// The sending half of a connection.
pub enum Tx {
    Websocket(SplitSink<Ws, Message>),
    /// `POST`s on their own keep-alive connection, one at a time.
    Polling {
        http: Http,
        path: String,
    },
}

impl Rx {
    /// Waits for the next frame or long-poll body and appends its packets to `out`.
    /// Cancel-safe: nothing is lost if the future is dropped before it completes.
    pub async fn recv(&mut self, out: &mut VecDeque<String>) -> Result<()> {
        match self {
            Rx::Websocket(stream) => loop {
                match stream.next().await {
                    Some(Ok(Message::Text(text))) => {
                        out.push_back(text);
                        return Ok(());
                    }
                    Some(Ok(Message::Close(_))) | None => bail!("the server closed the websocket"),
                    Some(Ok(_)) => continue,
                    Some(Err(error)) => return Err(error).context("reading the websocket"),
                }
            },
            Rx::Polling { bodies, .. } => {
                let body = bodies.recv().await.context("the long-poll loop ended")??;
                out.extend(body.split(RECORD_SEPARATOR).map(str::to_owned));
                Ok(())
            }
        }
    }
}

impl Tx {
    /// Sends `packets`: one WebSocket frame each with a single flush, or one `POST`.
    pub async fn send(&mut self, packets: Vec<String>) -> Result<()> {
        match self {
            Tx::Websocket(sink) => {
                for packet in packets {
                    sink.feed(Message::Text(packet))
                        .await
                        .context("writing the websocket")?;
                }
                sink.flush().await.context("flushing the websocket")
            }
            Tx::Polling { http, path } => {
                let separator = RECORD_SEPARATOR.to_string();
                let body = Bytes::from(packets.join(&separator));
                let response = http.request(Method::POST, path, body).await?;
                if response.status != StatusCode::OK {
                    bail!("polling POST answered {}", response.status);
                }
                Ok(())
            }
        }
    }
}

/// Opens a WebSocket straight away (`transport=websocket`, no polling first).
pub async fn connect_websocket(endpoint: &Endpoint) -> Result<(Rx, Tx)> {
    let stream = tcp_connect(endpoint).await?;
    let url = format!("ws://{}{ENGINEIO_PATH}&transport=websocket", endpoint.addr);
    let (ws, _) = tokio_tungstenite::client_async(url, stream)
        .await
        .context("websocket handshake")?;
    let (sink, stream) = ws.split();
    Ok((Rx::Websocket(stream), Tx::Websocket(sink)))
}

/// Opens a long-polling session: the handshake `GET`, then a receiving half that keeps
/// one `GET` pending at all times and a sending half with its own connection for `POST`s.
/// Returns the handshake's packets too (the `0{…}` open packet).
pub async fn connect_polling(endpoint: &Endpoint) -> Result<(Rx, Tx, Vec<String>)> {
    let mut get_http = Http::connect(endpoint).await?;
    let handshake = get_http
        .request(
            Method::GET,
            &format!("{ENGINEIO_PATH}&transport=polling"),
            Bytes::new(),
        )
        .await?;
    if handshake.status != StatusCode::OK {
        bail!("polling handshake answered {}", handshake.status);
    }
    let text = String::from_utf8(handshake.body.to_vec()).context("handshake is not UTF-8")?;
    let open: Vec<String> = text.split(RECORD_SEPARATOR).map(str::to_owned).collect();
    let sid = open
        .first()
        .and_then(|packet| packet.strip_prefix('0'))
        .and_then(|json| serde_json::from_str::<serde_json::Value>(json).ok())
        .and_then(|value| value.get("sid")?.as_str().map(str::to_owned))
        .with_context(|| format!("no sid in the polling handshake {text:?}"))?;
    let path = format!("{ENGINEIO_PATH}&transport=polling&sid={sid}");

    let post_http = Http::connect(endpoint).await?;
    let (bodies_tx, bodies) = mpsc::channel(POLL_QUEUE);
    let poll_path = path.clone();
    let poller = tokio::spawn(async move {
        loop {
            let body = match get_http
                .request(Method::GET, &poll_path, Bytes::new())
                .await
            {
                Ok(response) if response.status == StatusCode::OK => {
                    String::from_utf8(response.body.to_vec()).context("poll body is not UTF-8")
                }
                Ok(response) => Err(anyhow::anyhow!("polling GET answered {}", response.status)),
                Err(error) => Err(error),
            };
            let failed = body.is_err();
            if bodies_tx.send(body).await.is_err() || failed {
                break;
            }
        }
    });
    Ok((
        Rx::Polling {
            bodies,
            _poller: AbortOnDrop(poller.abort_handle()),
        },
        Tx::Polling {
            http: post_http,
            path,
        },
        open,
    ))
}
