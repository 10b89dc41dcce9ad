//! The server the official conformance suites expect (socketio/engine.io-protocol and
//! socketio/socket.io-protocol, folder `test-suite/`): port 3000 (or `PORT`), an
//! Engine.IO echo endpoint at `/engine.io/`, a Socket.IO server at `/socket.io/` with
//! namespaces `/` and `/custom`, pingInterval 300, pingTimeout 200, maxPayload 1000000,
//! connectTimeout 1000, CORS origin `*`. On connect it emits `auth` with the handshake
//! auth; `message` is answered with `message-back` (same args, binary included) and
//! `message-with-ack` is acknowledged with the same args.
//!
//! Run: `cargo run --release --example conformance`.

use std::sync::Arc;
use std::time::Duration;

use actix_web::{App, HttpServer};
use tete::engineio::{
    AllowedOrigins, CloseReason, Engine, EngineConfig, EngineHandler, EngineSocket, HandlerFuture,
    Message,
};
use tete::socketio::{NamespaceBuilder, RawArg, Socket, SocketIo, SocketIoConfig};

/// Engine.IO echo: every message goes straight back.
struct Echo;

impl EngineHandler for Echo {
    fn on_open(&self, _: &EngineSocket) {}

    fn on_message(&self, socket: &EngineSocket, message: Message) -> Option<HandlerFuture> {
        let _ = socket.send(message);
        None
    }

    fn on_close(&self, _: &EngineSocket, _: CloseReason) {}
}

fn handlers(ns: NamespaceBuilder) -> NamespaceBuilder {
    ns.on_connection(|socket: Socket| async move {
        let auth = socket
            .auth()
            .map(RawArg::from)
            .or_else(|| RawArg::parse("{}"))
            .into_iter()
            .collect::<Vec<_>>();
        let _ = socket.emit_raw("auth", &auth, Vec::new());
    })
    .on("message", |socket, event| async move {
        let _ = socket.emit_raw("message-back", &event.args, event.binary);
    })
    .on("message-with-ack", |_socket, event| async move {
        if let Some(ack) = event.ack {
            let _ = ack.send_raw(&event.args, event.binary);
        }
    })
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    tete::telemetry::init(tete::settings::LogFormat::Pretty);
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let config = EngineConfig {
        ping_interval: Duration::from_millis(300),
        ping_timeout: Duration::from_millis(200),
        max_payload: 1_000_000,
        origins: AllowedOrigins::Any,
        ..EngineConfig::default()
    };
    let echo = Engine::new(config.clone(), Arc::new(Echo));
    let io = SocketIo::builder(SocketIoConfig {
        connect_timeout: Duration::from_millis(1000),
        ..SocketIoConfig::default()
    })
    .namespace("/", handlers)
    .namespace("/custom", handlers)
    .build();
    let sio = Engine::new(config, io.engine_handler());
    println!("conformance server on http://127.0.0.1:{port}");
    HttpServer::new(move || {
        App::new()
            .service(echo.resource("/engine.io/"))
            .service(sio.resource("/socket.io/"))
    })
    .bind(("127.0.0.1", port))?
    .run()
    .await
}
