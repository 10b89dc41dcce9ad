//! A small Socket.IO client over WebSocket for the tests: connects to the chat
//! namespace, emits with and without acks, and waits for named events.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

pub const NSP: &str = "/socket";
const WAIT: Duration = Duration::from_secs(5);

type Acks = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

pub struct SioClient {
    out: mpsc::UnboundedSender<Message>,
    events: mpsc::UnboundedReceiver<(String, Value)>,
    buffered: VecDeque<(String, Value)>,
    acks: Acks,
    next_id: AtomicU64,
}

impl SioClient {
    /// Connects over WebSocket to `/socket.io/` and joins the `/socket` namespace.
    pub async fn connect(port: u16) -> SioClient {
        let url = format!("ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket");
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("ws connects");
        let (mut sink, mut stream) = ws.split();
        let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Message>();
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let (sid_tx, sid_rx) = oneshot::channel::<String>();
        let acks: Acks = Arc::new(Mutex::new(HashMap::new()));

        tokio::spawn(async move {
            while let Some(m) = out_rx.recv().await {
                if sink.send(m).await.is_err() {
                    break;
                }
            }
        });
        let pong = out_tx.clone();
        let reader_acks = acks.clone();
        tokio::spawn(async move {
            let mut sid_tx = Some(sid_tx);
            let prefix_event = format!("42{NSP},");
            let prefix_ack = format!("43{NSP},");
            let prefix_connect = format!("40{NSP},");
            while let Some(Ok(frame)) = stream.next().await {
                let Message::Text(text) = frame else { continue };
                let text = text.to_string();
                if text == "2" {
                    let _ = pong.send(Message::Text("3".into()));
                } else if let Some(rest) = text.strip_prefix(&prefix_connect) {
                    let v: Value = serde_json::from_str(rest).unwrap();
                    if let Some(tx) = sid_tx.take() {
                        let _ = tx.send(v["sid"].as_str().unwrap().to_string());
                    }
                } else if let Some(rest) = text.strip_prefix(&prefix_event) {
                    let v: Value = serde_json::from_str(rest).unwrap();
                    let name = v[0].as_str().unwrap().to_string();
                    let data = v.get(1).cloned().unwrap_or(Value::Null);
                    let _ = ev_tx.send((name, data));
                } else if let Some(rest) = text.strip_prefix(&prefix_ack) {
                    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
                    let id: u64 = digits.parse().unwrap();
                    let v: Value = serde_json::from_str(&rest[digits.len()..]).unwrap();
                    if let Some(tx) = reader_acks.lock().await.remove(&id) {
                        let _ = tx.send(v.get(0).cloned().unwrap_or(Value::Null));
                    }
                } else if text.starts_with(&format!("41{NSP}")) {
                    let _ = ev_tx.send(("__disconnect".into(), Value::Null));
                }
            }
            let _ = ev_tx.send(("__closed".into(), Value::Null));
        });

        let _ = out_tx.send(Message::Text(format!("40{NSP},")));
        let sid = tokio::time::timeout(WAIT, sid_rx)
            .await
            .expect("namespace connect in time")
            .expect("namespace connect");
        assert!(!sid.is_empty());
        SioClient {
            out: out_tx,
            events: ev_rx,
            buffered: VecDeque::new(),
            acks,
            next_id: AtomicU64::new(1),
        }
    }

    /// Sends a raw Socket.IO packet text (without the Engine.IO `4`).
    pub fn send_raw(&self, packet: &str) {
        let _ = self.out.send(Message::Text(format!("4{packet}")));
    }

    /// `load` then `login` as a browser does, with `<user>@example.com`; the login ack.
    pub async fn load_and_login(&self, room: &str, user: &str) -> Value {
        self.emit("load", serde_json::json!(room));
        self.emit_ack(
            "login",
            serde_json::json!({
                "user": user,
                "avatar": format!("{}@example.com", user.to_lowercase()),
                "id": room,
            }),
        )
        .await
    }

    pub fn emit(&self, event: &str, data: Value) {
        let body = serde_json::to_string(&serde_json::json!([event, data])).unwrap();
        self.send_raw(&format!("2{NSP},{body}"));
    }

    /// Emits and waits for the acknowledgement's first argument.
    pub async fn emit_ack(&self, event: &str, data: Value) -> Value {
        self.try_emit_ack(event, data, WAIT)
            .await
            .unwrap_or_else(|| panic!("no ack for {event} in time"))
    }

    /// Emits and waits up to `wait` for the acknowledgement; `None` if none came.
    pub async fn try_emit_ack(&self, event: &str, data: Value, wait: Duration) -> Option<Value> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.acks.lock().await.insert(id, tx);
        let body = serde_json::to_string(&serde_json::json!([event, data])).unwrap();
        self.send_raw(&format!("2{NSP},{id}{body}"));
        tokio::time::timeout(wait, rx).await.ok()?.ok()
    }

    /// Waits for the next event called `name` (others are kept for later).
    pub async fn next(&mut self, name: &str) -> Value {
        self.next_within(name, WAIT)
            .await
            .unwrap_or_else(|| panic!("no {name} event in time"))
    }

    pub async fn next_within(&mut self, name: &str, wait: Duration) -> Option<Value> {
        if let Some(i) = self.buffered.iter().position(|(n, _)| n == name) {
            return self.buffered.remove(i).map(|(_, v)| v);
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some((n, v))) if n == name => return Some(v),
                Ok(Some(other)) => self.buffered.push_back(other),
                _ => return None,
            }
        }
    }

    /// Whether no `name` event comes within `wait`.
    pub async fn none(&mut self, name: &str, wait: Duration) -> bool {
        self.next_within(name, wait).await.is_none()
    }

    pub fn close(&self) {
        let _ = self.out.send(Message::Close(None));
    }
}
