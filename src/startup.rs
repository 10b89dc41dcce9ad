//! The one place that builds the application: listener, shared state, route table,
//! middleware. `Application::build` binds its own listener so port 0 works in tests.

use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, middleware, web};
use anyhow::Context;

use crate::chat::{self, Chat, ChatLimits};
use crate::engineio::{AllowedOrigins, Engine, EngineConfig};
use crate::routes;
use crate::settings::Settings;
use crate::socketio::{SocketIo, SocketIoConfig};
use crate::store::Store;

/// Connections the kernel holds for tete before it accepts them (capped by
/// `net.core.somaxconn`). std's `TcpListener::bind` asks for 128: when a few hundred
/// clients connected at once to a busy core, the queue overflowed, the kernel dropped
/// their SYNs and they connected a second later (bench/README.md, sixth session).
/// 1024 is actix-web's own default; Node.js asks for 511.
pub const LISTEN_BACKLOG: i32 = 1024;

/// Listens on the first address `bind` ("host:port") resolves to that can be bound,
/// with [`LISTEN_BACKLOG`].
pub fn listen(bind: &str) -> io::Result<TcpListener> {
    let mut last_error = None;
    for address in bind.to_socket_addrs()? {
        match listen_on(address) {
            Ok(listener) => return Ok(listener),
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error
        .unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to listen on")))
}

fn listen_on(address: SocketAddr) -> io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(
        Domain::for_address(address),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    // As std's bind does on Unix: a restarted tete can listen again at once.
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    socket.bind(&address.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

/// What every request handler may need, shared by all workers.
pub struct AppState {
    pub settings: Settings,
    pub templates: handlebars::Handlebars<'static>,
    pub chat: Arc<Chat>,
}

/// A built, bound, not yet running tete.
pub struct Application {
    address: SocketAddr,
    server: Server,
    engine: Engine,
}

impl Application {
    /// Binds the listener and builds every part of tete from the settings.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let bind = format!(
            "{}:{}",
            settings.application.host, settings.application.port
        );
        let listener = listen(&bind).with_context(|| {
            format!("cannot listen on {bind} (setting application.port / PORT)")
        })?;
        let address = listener
            .local_addr()
            .context("cannot read the bound address")?;

        let templates = routes::pages::templates(&asset_dir("views"))?;
        let public_dir = asset_dir("public");
        let shutdown_timeout = settings.application.shutdown_timeout_secs;

        let store = Store::connect(&settings.database.url)
            .await
            .map_err(|e| anyhow::anyhow!("{e} (setting database.url / DATABASE_URL)"))?;
        let chat = Chat::new(
            store,
            ChatLimits {
                messages_per_second: settings.chat.messages_per_second,
                burst: settings.chat.burst,
            },
        );
        let io = SocketIo::builder(SocketIoConfig {
            connect_timeout: Duration::from_millis(settings.socketio.connect_timeout_ms),
            ack_timeout: Duration::from_millis(settings.socketio.ack_timeout_ms),
        })
        .namespace(chat::NAMESPACE, |ns| chat.register(ns))
        .build();
        let engine = Engine::new(engine_config(&settings), io.engine_handler());

        let state = web::Data::new(AppState {
            settings,
            templates,
            chat,
        });
        let sio = engine.clone();

        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(web::JsonConfig::default().error_handler(routes::errors::json_error))
                .app_data(web::QueryConfig::default().error_handler(routes::errors::query_error))
                .wrap(middleware::from_fn(routes::access_log))
                .service(sio.resource(routes::ENGINE_PATH))
                .configure(routes::api::configure)
                .route("/healthz", web::get().to(routes::health::health))
                .route("/", web::get().to(routes::pages::home))
                .route("/create", web::get().to(routes::pages::create))
                .route("/chat/{id}", web::get().to(routes::pages::chat))
                .service(
                    web::scope("/public")
                        .wrap(
                            middleware::DefaultHeaders::new()
                                .add(("Cache-Control", "public, max-age=3600")),
                        )
                        .service(actix_files::Files::new("", public_dir.clone())),
                )
                .default_service(web::to(routes::errors::not_found))
        })
        // Nagle off, as Node.js does: without it a frame written while the previous one
        // is unacknowledged waits for the peer's delayed ACK, which a chat client sends
        // with its next message (tens of milliseconds at a few messages a second).
        .tcp_nodelay(true)
        .listen(listener)
        .context("cannot start the HTTP server")?
        .shutdown_timeout(shutdown_timeout)
        .disable_signals()
        .run();

        Ok(Application {
            address,
            server,
            engine,
        })
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Serves until SIGINT or SIGTERM, then stops accepting, lets in-flight requests
    /// end (bounded by `application.shutdown_timeout_secs`) and returns.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let stop = shutdown_signal().context("cannot listen for SIGINT/SIGTERM")?;
        let handle = self.server.handle();
        let server = serve(self.server);
        let trimmer = tokio::spawn(crate::memory::release_free_memory_periodically());
        tracing::info!(
            port = self.address.port(),
            "tete is listening on http://{}",
            self.address
        );
        stop.await;
        trimmer.abort();
        tracing::info!("shutdown requested: finishing in-flight requests");
        // Long-polls and WebSockets would hold the graceful stop to its timeout.
        self.engine.close_all();
        handle.stop(true).await;
        match tokio::time::timeout(Duration::from_secs(5), server).await {
            Ok(Ok(result)) => result.context("the HTTP server failed"),
            Ok(Err(join)) => Err(anyhow::anyhow!("the HTTP server task failed: {join}")),
            Err(_) => Ok(()),
        }
    }

    /// Runs in the background (tests): returns the server's stop handle.
    pub fn spawn(self) -> actix_web::dev::ServerHandle {
        let handle = self.server.handle();
        serve(self.server);
        handle
    }
}

/// Starts the HTTP server on this runtime; its acceptor thread (spawned as the server
/// starts) then gets its lower priority.
fn serve(server: Server) -> tokio::task::JoinHandle<io::Result<()>> {
    let running = tokio::spawn(server);
    crate::threads::lower_acceptor_priority_soon();
    running
}

fn engine_config(settings: &Settings) -> EngineConfig {
    let e = &settings.engineio;
    EngineConfig {
        ping_interval: Duration::from_millis(e.ping_interval_ms),
        ping_timeout: Duration::from_millis(e.ping_timeout_ms),
        max_payload: e.max_payload,
        max_buffered_packets: e.max_buffered_packets,
        origins: AllowedOrigins::from_list(&e.allowed_origins),
        ..EngineConfig::default()
    }
}

/// Shared state type as handlers receive it.
pub type State = web::Data<AppState>;

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is called (not
/// when first polled), so a signal that comes right after start-up is not lost.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {},
                _ = terminate.recv() => {},
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

/// `views/` and `public/` beside the working directory, or else beside the sources
/// (so `cargo run` and the tests work from anywhere in the checkout).
fn asset_dir(name: &str) -> PathBuf {
    let here = PathBuf::from(name);
    if here.is_dir() {
        return here;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(name)
}
