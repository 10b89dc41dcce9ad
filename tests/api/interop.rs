//! Interop with the official `socket.io-client` (npm): a Socket.IO server built from
//! tete's protocol layer (`tete::engineio`, `tete::socketio`) on a free port, driven by
//! the scenarios of `tests/js/interop.mjs` over WebSocket, HTTP long-polling and the
//! upgrade between them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpServer};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;
use tete::engineio::{Engine, EngineConfig};
use tete::socketio::{
    ConnectRefusal, ConnectRequest, NamespaceBuilder, RawArg, Socket, SocketIo, SocketIoConfig,
};

use crate::node::{NodeOutcome, NodeProcess, run_node};

/// How long a scenario may take before the test gives up on it (the script's own
/// watchdog fires earlier).
const SCENARIO_LIMIT: Duration = Duration::from_secs(30);

/// How long the server may take to forget clients that have disconnected: a polling
/// client's last request may not have reached it, then the heartbeat (see `config`)
/// ends the session.
const LEFTOVER_WAIT: Duration = Duration::from_secs(4);

/// Numbers seen by the ordering scenario, kept per socket.
#[derive(Default)]
struct SeqLog {
    // A std mutex: pushes and copies only, never held across an await.
    inner: Mutex<SeqLogInner>,
}

#[derive(Default)]
struct SeqLogInner {
    received: Vec<u64>,
    /// Transport that carried each received `seq`, counted.
    transports: BTreeMap<&'static str, u64>,
    /// Transport in use when each `burst-item` was queued, counted.
    burst_transports: BTreeMap<&'static str, u64>,
}

impl SeqLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, SeqLogInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Deserialize)]
struct Auth {
    token: Option<String>,
}

/// A CONNECT is refused when it carries a token other than `letmein`.
fn check_token(req: &ConnectRequest) -> Result<(), ConnectRefusal> {
    let token = req
        .auth
        .as_deref()
        .and_then(|raw| serde_json::from_str::<Auth>(raw.get()).ok())
        .and_then(|auth| auth.token);
    match token {
        Some(token) if token != "letmein" => Err(ConnectRefusal {
            message: "invalid token".into(),
            data: Some(json!({ "reason": "the token is not letmein" })),
        }),
        _ => Ok(()),
    }
}

fn handlers(ns: NamespaceBuilder) -> NamespaceBuilder {
    ns.check_connect(|req: &ConnectRequest| std::future::ready(check_token(req)))
        .on_connection(|socket: Socket| async move {
            socket.set_state(Arc::new(SeqLog::default()));
        })
        .on("message", |socket, event| async move {
            let _ = socket.emit_raw("message-back", &event.args, event.binary);
        })
        .on("message-with-ack", |_socket, event| async move {
            if let Some(ack) = event.ack {
                let _ = ack.send_raw(&event.args, event.binary);
            }
        })
        .on("ask-client", |socket, event| async move {
            let question: serde_json::Value = event.data().unwrap_or_default();
            let asked = socket
                .emit_with_ack("question", &question, Some(Duration::from_millis(1500)))
                .await;
            let _ = match asked {
                Ok(answer) => socket.emit_raw("client-answered", &answer.args, answer.binary),
                Err(e) => socket.emit("client-answered-error", &e.to_string()),
            };
        })
        .on("join", |socket, event| async move {
            let room: String = event.data().unwrap_or_default();
            socket.join(&room);
            if let Some(ack) = event.ack {
                let _ = ack.send(&room);
            }
        })
        .on("broadcast", |socket, event| async move {
            let room: String = event.arg(0).unwrap_or_default();
            let payload: serde_json::Value = event.arg(1).unwrap_or_default();
            let sent = socket.to(room.as_str()).emit("broadcast", &payload).is_ok();
            if let Some(ack) = event.ack {
                let _ = ack.send(&sent);
            }
        })
        .on("disconnect-me", |socket, event| async move {
            let close_connection = event.data::<bool>().unwrap_or(false);
            socket.disconnect(close_connection);
        })
        .on_disconnect(|socket, reason| async move {
            let left = json!({ "id": socket.id().as_str(), "reason": reason.as_str() });
            let _ = socket.namespace().to("watchers").emit("left", &left);
        })
        .on("seq", |socket, event| async move {
            let (Ok(n), Some(log)) = (event.data::<u64>(), socket.state::<SeqLog>()) else {
                return;
            };
            {
                let mut log = log.lock();
                log.received.push(n);
                *log.transports
                    .entry(socket.engine().transport().as_str())
                    .or_default() += 1;
            }
            let _ = socket.emit_raw("seq-back", &event.args, event.binary);
        })
        .on("seq-report", |socket, event| async move {
            let (Some(ack), Some(log)) = (event.ack, socket.state::<SeqLog>()) else {
                return;
            };
            let report = {
                let log = log.lock();
                json!({
                    "received": log.received,
                    "transports": log.transports,
                    "burstTransports": log.burst_transports,
                })
            };
            let _ = ack.send(&report);
        })
        .on("burst", |socket, event| async move {
            let count: u64 = event.arg(0).unwrap_or(0);
            let pause = Duration::from_millis(event.arg(1).unwrap_or(0));
            // Its own task: the burst must not hold up this client's other events.
            tokio::spawn(async move {
                for n in 0..count {
                    if let Some(log) = socket.state::<SeqLog>() {
                        *log.lock()
                            .burst_transports
                            .entry(socket.engine().transport().as_str())
                            .or_default() += 1;
                    }
                    // Every fifth item carries a binary attachment: [n, <bytes n>].
                    let sent = if n % 5 == 0 {
                        let args = [number(n), placeholder(0)];
                        socket.emit_raw("burst-item", &args, vec![Bytes::from(vec![n as u8; 3])])
                    } else {
                        socket.emit("burst-item", &n)
                    };
                    if sent.is_err() {
                        return;
                    }
                    tokio::time::sleep(pause).await;
                }
            });
        })
}

fn number(n: u64) -> RawArg {
    RawArg::parse(&n.to_string()).expect("a number is JSON")
}

/// The JSON stand-in of the `num`-th binary attachment.
fn placeholder(num: usize) -> RawArg {
    RawArg::parse(&json!({ "_placeholder": true, "num": num }).to_string())
        .expect("a placeholder is JSON")
}

/// The test server: `/socket.io/` with namespaces `/` and `/test`.
struct InteropServer {
    port: u16,
    engine: Engine,
    io: SocketIo,
    handle: ServerHandle,
}

impl InteropServer {
    async fn start(config: EngineConfig) -> InteropServer {
        InteropServer::start_on(0, config)
            .await
            .expect("the interop server starts")
    }

    /// Starts on `port` (0: any free port). Binding the port a stopped server just
    /// left works: std's listener sets SO_REUSEADDR on Unix.
    async fn start_on(port: u16, config: EngineConfig) -> std::io::Result<InteropServer> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", port))?;
        let port = listener.local_addr()?.port();
        let io = SocketIo::builder(SocketIoConfig::default())
            .namespace("/", handlers)
            .namespace("/test", handlers)
            .build();
        let engine = Engine::new(config, io.engine_handler());
        let served = engine.clone();
        let server = HttpServer::new(move || App::new().service(served.resource("/socket.io/")))
            .listen(listener)?
            .workers(1)
            .shutdown_timeout(1)
            .disable_signals()
            .run();
        let handle = server.handle();
        tokio::spawn(server);
        Ok(InteropServer {
            port,
            engine,
            io,
            handle,
        })
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Sessions and sockets still open: (Engine.IO sessions, sockets in `/`, in `/test`).
    fn open_counts(&self) -> (usize, usize, usize) {
        let sockets = |nsp: &str| self.io.of(nsp).map_or(0, |ns| ns.socket_count());
        (self.engine.session_count(), sockets("/"), sockets("/test"))
    }

    /// Once every client has left, nothing of them remains on the server.
    async fn assert_nothing_left(&self) {
        let deadline = tokio::time::Instant::now() + LEFTOVER_WAIT;
        while self.open_counts() != (0, 0, 0) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (sessions, main, test) = self.open_counts();
        assert_eq!(
            (sessions, main, test),
            (0, 0, 0),
            "left over after the clients disconnected: {sessions} sessions, \
             {main} sockets in /, {test} in /test"
        );
    }

    /// Stops as tete does: every session is closed, then the HTTP server stops.
    async fn stop(self) {
        self.engine.close_all();
        self.handle.stop(true).await;
    }
}

/// Runs one scenario of `tests/js/interop.mjs` against `server` and asserts it passed.
async fn run_scenario(server: &InteropServer, scenario: &str, transport: &str) -> NodeOutcome {
    let url = server.url();
    let (scenario_owned, transport_owned) = (scenario.to_owned(), transport.to_owned());
    let run = tokio::task::spawn_blocking(move || {
        run_node(
            "interop.mjs",
            &[&url, &scenario_owned, &transport_owned],
            &[],
        )
    });
    let outcome: NodeOutcome = tokio::time::timeout(SCENARIO_LIMIT, run)
        .await
        .unwrap_or_else(|_| panic!("scenario {scenario} ({transport}) did not end"))
        .expect("the node runner did not panic")
        .into();
    assert_passed(&outcome, scenario, transport);
    outcome
}

fn assert_passed(outcome: &NodeOutcome, scenario: &str, transport: &str) {
    assert!(
        outcome.success && outcome.stdout.contains(&format!("PASS {scenario}")),
        "scenario {scenario} over {transport} failed\n{outcome}"
    );
}

/// The usual settings (maxPayload 1,000,000) but a heartbeat of seconds, not tens of
/// seconds: a polling client that is gone without a word is forgotten within
/// LEFTOVER_WAIT.
fn config() -> EngineConfig {
    EngineConfig {
        ping_interval: Duration::from_millis(1000),
        ping_timeout: Duration::from_millis(1000),
        ..EngineConfig::default()
    }
}

async fn scenario(name: &str, transport: &str) -> NodeOutcome {
    let server = InteropServer::start(config()).await;
    let outcome = run_scenario(&server, name, transport).await;
    server.assert_nothing_left().await;
    server.stop().await;
    outcome
}

#[tokio::test]
async fn a_websocket_only_client_exchanges_events_and_acks() {
    scenario("echo", "websocket").await;
}

#[tokio::test]
async fn a_polling_only_client_exchanges_events_and_acks() {
    scenario("echo", "polling").await;
}

#[tokio::test]
async fn a_default_client_upgrades_to_websocket_without_losing_or_reordering_a_message() {
    let outcome = scenario("upgrade", "default").await;
    println!("{}", outcome.stdout);
}

#[tokio::test]
async fn acks_work_both_ways_over_websocket() {
    scenario("acks", "websocket").await;
}

#[tokio::test]
async fn acks_work_both_ways_over_polling() {
    scenario("acks", "polling").await;
}

#[tokio::test]
async fn binary_payloads_travel_both_ways_over_websocket() {
    scenario("binary", "websocket").await;
}

#[tokio::test]
async fn binary_payloads_travel_both_ways_over_polling() {
    scenario("binary", "polling").await;
}

#[tokio::test]
async fn thirty_websocket_clients_at_once_each_get_their_own_messages() {
    scenario("crowd", "websocket").await;
}

#[tokio::test]
async fn thirty_polling_clients_at_once_each_get_their_own_messages() {
    scenario("crowd", "polling").await;
}

#[tokio::test]
async fn a_room_broadcast_reaches_the_other_members_and_nobody_else() {
    scenario("rooms", "default").await;
}

#[tokio::test]
async fn one_connection_carries_two_namespaces_and_loses_one_alone() {
    scenario("multiplex", "default").await;
}

#[tokio::test]
async fn a_bad_auth_token_is_refused_with_a_message_the_client_sees() {
    scenario("auth-refused", "default").await;
}

#[tokio::test]
async fn a_server_side_disconnect_reaches_a_websocket_client_as_io_server_disconnect() {
    scenario("server-disconnect", "websocket").await;
}

#[tokio::test]
async fn a_server_side_disconnect_reaches_a_polling_client_as_io_server_disconnect() {
    scenario("server-disconnect", "polling").await;
}

#[tokio::test]
async fn the_server_sees_why_a_websocket_client_left() {
    scenario("disconnect-reasons", "websocket").await;
}

#[tokio::test]
async fn the_server_sees_why_a_polling_client_left() {
    scenario("disconnect-reasons", "polling").await;
}

#[tokio::test]
async fn messages_near_max_payload_arrive_whole_over_websocket() {
    scenario("large", "websocket").await;
}

#[tokio::test]
async fn messages_near_max_payload_arrive_whole_over_polling() {
    scenario("large", "polling").await;
}

#[tokio::test]
async fn a_message_over_max_payload_ends_a_websocket_connection() {
    scenario("too-large", "websocket").await;
}

#[tokio::test]
async fn a_message_over_max_payload_ends_a_polling_connection() {
    scenario("too-large", "polling").await;
}

/// Pings every 200 ms, so that a scenario of 1.6 s sees several heartbeats.
fn short_heartbeat() -> EngineConfig {
    EngineConfig {
        ping_interval: Duration::from_millis(200),
        ping_timeout: Duration::from_millis(1000),
        ..EngineConfig::default()
    }
}

#[tokio::test]
async fn a_websocket_client_stays_connected_across_short_heartbeats() {
    let server = InteropServer::start(short_heartbeat()).await;
    run_scenario(&server, "heartbeat", "websocket").await;
    server.assert_nothing_left().await;
    server.stop().await;
}

#[tokio::test]
async fn a_polling_client_stays_connected_across_short_heartbeats() {
    let server = InteropServer::start(short_heartbeat()).await;
    run_scenario(&server, "heartbeat", "polling").await;
    server.assert_nothing_left().await;
    server.stop().await;
}

#[tokio::test]
async fn the_upgrade_keeps_every_message_while_heartbeats_cross_it() {
    let server = InteropServer::start(EngineConfig {
        ping_interval: Duration::from_millis(50),
        ping_timeout: Duration::from_millis(1000),
        ..EngineConfig::default()
    })
    .await;
    run_scenario(&server, "upgrade", "default").await;
    server.assert_nothing_left().await;
    server.stop().await;
}

/// The `restart` scenario: when the client says it is ready, the server stops and a
/// new one starts on the same port; the client must reconnect to it by itself.
async fn client_reconnects_after_a_restart(transport: &str) {
    let server = InteropServer::start(config()).await;
    let port = server.port;
    let url = server.url();
    let mut node = NodeProcess::spawn("interop.mjs", &[&url, "restart", transport]);
    if !node
        .wait_for_line("READY-FOR-RESTART", SCENARIO_LIMIT)
        .await
    {
        panic!(
            "the client never got ready for the restart\n{}",
            node.finish(Duration::from_secs(1)).await
        );
    }
    server.stop().await;
    // The server is down for a moment: the client's first attempts are refused.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut restarted = None;
    for _ in 0..20 {
        match InteropServer::start_on(port, config()).await {
            Ok(server) => {
                restarted = Some(server);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let restarted = restarted.expect("the port is free again after the stop");
    let outcome = node.finish(SCENARIO_LIMIT).await;
    assert_passed(&outcome, "restart", transport);
    restarted.assert_nothing_left().await;
    restarted.stop().await;
}

#[tokio::test]
async fn a_websocket_client_reconnects_after_tete_restarts() {
    client_reconnects_after_a_restart("websocket").await;
}

#[tokio::test]
async fn a_polling_client_reconnects_after_tete_restarts() {
    client_reconnects_after_a_restart("polling").await;
}

#[tokio::test]
async fn a_default_client_reconnects_after_tete_restarts() {
    client_reconnects_after_a_restart("default").await;
}
