//! HTTP routes: pages rendered from `views/`, the REST API, health, errors.

pub mod api;
pub mod errors;
pub mod health;
pub mod pages;

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;

/// Where Engine.IO's transport requests arrive (every Socket.IO client's default path).
pub const ENGINE_PATH: &str = "/socket.io/";

/// One log line per HTTP request, with its status and latency: at `info`, except the
/// Engine.IO transport's requests that succeed (a WebSocket upgrade per connection, a
/// request per long-poll), which are traffic rather than events and go to `debug`.
pub async fn access_log(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.path().to_owned();
    let result = next.call(req).await;
    let latency_us = started.elapsed().as_micros() as u64;
    match &result {
        Ok(res) => {
            let status = res.status().as_u16();
            if path == ENGINE_PATH && status < 400 {
                tracing::debug!(%method, path, status, latency_us, "request");
            } else {
                tracing::info!(%method, path, status, latency_us, "request");
            }
        }
        Err(e) => tracing::info!(%method, path, error = %e, latency_us, "request failed"),
    }
    result
}
