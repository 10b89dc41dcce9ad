//! A chat participant while it sets up: opens the Engine.IO session, enters the
//! `/socket` namespace, `load`s a room and logs in like the seed's browser client,
//! answering heartbeats while it waits. Afterwards its halves go to the traffic tasks.

use std::collections::VecDeque;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::protocol::{self, Packet, PONG};
use crate::transport::{self, Endpoint, Rx, Transport, Tx};

/// A connected client in the chat's namespace.
pub struct Client {
    pub rx: Rx,
    pub tx: Tx,
    /// Packets already received and not yet handled.
    pub inbox: VecDeque<String>,
    pub user: String,
    /// Setup events that arrived before they were waited for (a server may send
    /// `startChat` before `img`), as (name, payload).
    early: Vec<(String, String)>,
}

/// The setup events worth keeping when they arrive early.
const SETUP_EVENTS: [&str; 3] = ["peopleinchat", "img", "startChat"];

impl Client {
    /// Opens the session and enters the namespace.
    pub async fn open(endpoint: &Endpoint, transport: Transport, user: String) -> Result<Client> {
        let (rx, tx, inbox) = match transport {
            Transport::Websocket => {
                let (rx, tx) = transport::connect_websocket(endpoint).await?;
                (rx, tx, VecDeque::new())
            }
            Transport::Polling => {
                let (rx, tx, open) = transport::connect_polling(endpoint).await?;
                (rx, tx, open.into())
            }
        };
        let mut client = Client {
            rx,
            tx,
            inbox,
            user,
            early: Vec::new(),
        };
        loop {
            let packet = client.next_packet().await?;
            match protocol::parse(&packet) {
                Packet::Open(_) => break,
                Packet::Close => bail!("the server closed the session during the handshake"),
                _ => continue,
            }
        }
        client.tx.send(vec![protocol::connect_packet()]).await?;
        loop {
            let packet = client.next_packet().await?;
            match protocol::parse(&packet) {
                Packet::Connect => return Ok(client),
                Packet::ConnectError(why) => bail!("namespace refused: {why}"),
                Packet::Close => bail!("the server closed the session before the namespace"),
                _ => continue,
            }
        }
    }

    /// The next packet that is not a heartbeat (heartbeats are answered here).
    async fn next_packet(&mut self) -> Result<String> {
        loop {
            if let Some(packet) = self.inbox.pop_front() {
                if protocol::parse(&packet) == Packet::Ping {
                    self.tx.send(vec![PONG.to_owned()]).await?;
                    continue;
                }
                return Ok(packet);
            }
            self.rx.recv(&mut self.inbox).await?;
        }
    }

    pub async fn emit(&mut self, name: &str, payload_json: &str) -> Result<()> {
        self.tx
            .send(vec![protocol::event_packet(name, None, payload_json)])
            .await
    }

    /// Waits for the event `wanted` and returns its payload; `tooMany`, `error` and a
    /// closed session are failures.
    pub async fn wait_event(&mut self, wanted: &str) -> Result<String> {
        if let Some(i) = self.early.iter().position(|(name, _)| name == wanted) {
            return Ok(self.early.remove(i).1);
        }
        loop {
            let packet = self.next_packet().await?;
            match protocol::parse(&packet) {
                Packet::Event { name, payload, .. } if name == wanted => {
                    return Ok(payload.to_owned())
                }
                Packet::Event {
                    name: "tooMany", ..
                } => bail!("the room is full (tooMany) while waiting for {wanted}"),
                Packet::Event {
                    name: "error",
                    payload,
                    ..
                } => bail!("the server answered error {payload} while waiting for {wanted}"),
                Packet::Close | Packet::Disconnect => {
                    bail!("the server closed the session while waiting for {wanted}")
                }
                Packet::Event { name, payload, .. } if SETUP_EVENTS.contains(&name) => {
                    self.early.push((name.to_owned(), payload.to_owned()));
                }
                _ => continue,
            }
        }
    }

    /// `load` then `login` into `room`, until the server sends `img`.
    async fn enter(&mut self, room: &str) -> Result<()> {
        self.emit("load", &protocol::json_plain_string(room))
            .await?;
        self.wait_event("peopleinchat").await?;
        let login = protocol::login_payload(&self.user, room);
        self.emit("login", &login).await?;
        self.wait_event("img").await?;
        Ok(())
    }
}

/// Seats two new clients `u<first_user>` and `u<first_user + 1>` in `room` and waits
/// until both got `startChat`. Every step is bounded by `step_timeout`.
pub async fn join_pair(
    endpoints: [Endpoint; 2],
    transport: Transport,
    room: &str,
    first_user: usize,
    step_timeout: Duration,
) -> Result<(Client, Client)> {
    let step = |what: &'static str| move |_| anyhow::anyhow!("timed out: {what}");
    let mut first = tokio::time::timeout(
        step_timeout,
        Client::open(&endpoints[0], transport, format!("u{first_user}")),
    )
    .await
    .map_err(step("first client connects"))??;
    tokio::time::timeout(step_timeout, first.enter(room))
        .await
        .map_err(step("first client logs in"))??;
    let mut second = tokio::time::timeout(
        step_timeout,
        Client::open(&endpoints[1], transport, format!("u{}", first_user + 1)),
    )
    .await
    .map_err(step("second client connects"))??;
    tokio::time::timeout(step_timeout, second.enter(room))
        .await
        .map_err(step("second client logs in"))??;
    tokio::time::timeout(step_timeout, second.wait_event("startChat"))
        .await
        .map_err(step("second client gets startChat"))?
        .context("second client")?;
    tokio::time::timeout(step_timeout, first.wait_event("startChat"))
        .await
        .map_err(step("first client gets startChat"))?
        .context("first client")?;
    Ok((first, second))
}
