//! The one place that builds the application: listener, shared state, route table,
//! middleware. `Application::build` binds its own listener so port 0 works in tests.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, middleware, web};
use anyhow::Context;

use crate::routes;
use crate::settings::Settings;

/// What every request handler may need, shared by all workers.
pub struct AppState {
    pub settings: Settings,
    pub templates: handlebars::Handlebars<'static>,
}

/// A built, bound, not yet running tete.
pub struct Application {
    address: SocketAddr,
    server: Server,
}

impl Application {
    /// Binds the listener and builds every part of tete from the settings.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let bind = format!(
            "{}:{}",
            settings.application.host, settings.application.port
        );
        let listener = TcpListener::bind(&bind).with_context(|| {
            format!("cannot listen on {bind} (setting application.port / PORT)")
        })?;
        let address = listener
            .local_addr()
            .context("cannot read the bound address")?;

        let templates = routes::pages::templates(&asset_dir("views"))?;
        let public_dir = asset_dir("public");
        let shutdown_timeout = settings.application.shutdown_timeout_secs;
        let state = web::Data::new(AppState {
            settings,
            templates,
        });

        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(web::JsonConfig::default().error_handler(routes::errors::json_error))
                .app_data(web::QueryConfig::default().error_handler(routes::errors::query_error))
                .wrap(middleware::from_fn(routes::access_log))
                .route("/healthz", web::get().to(routes::health::health))
                .route("/", web::get().to(routes::pages::home))
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
        .listen(listener)
        .context("cannot start the HTTP server")?
        .shutdown_timeout(shutdown_timeout)
        .disable_signals()
        .run();

        Ok(Application { address, server })
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
        let handle = self.server.handle();
        let server = tokio::spawn(self.server);
        shutdown_signal().await;
        tracing::info!("shutdown requested: finishing in-flight requests");
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
        tokio::spawn(self.server);
        handle
    }
}

/// Shared state type as handlers receive it.
pub type State = web::Data<AppState>;

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
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
