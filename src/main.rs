//! The `tete` binary: settings → telemetry → `Application::build` → run until stopped.

use std::process::ExitCode;

use clap::Parser;
use tete::settings::{Settings, Sources};
use tete::startup::Application;

/// tete — a realtime, persistent, two-person private chat server (Socket.IO).
///
/// Settings come from config/base.toml, config/<TETE_ENVIRONMENT>.toml (local,
/// production, test), TETE_<SECTION>__<KEY> variables, PORT and DATABASE_URL.
#[derive(Parser)]
#[command(version, about, long_about)]
struct Cli {}

fn main() -> ExitCode {
    Cli::parse();
    let (settings, environment) = match Settings::load(&Sources::from_process()) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("tete: {e}");
            return ExitCode::from(2);
        }
    };
    tete::telemetry::init(settings.log.format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tete: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let app = match Application::build(settings).await {
            Ok(app) => app,
            Err(e) => {
                eprintln!("tete: {e:#}");
                return ExitCode::FAILURE;
            }
        };
        tracing::info!(environment = environment.as_str(), "tete is starting");
        match app.run_until_stopped().await {
            Ok(()) => {
                tracing::info!("tete stopped");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("tete: {e:#}");
                ExitCode::FAILURE
            }
        }
    })
}
