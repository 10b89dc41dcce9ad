//! HTTP routes: pages rendered from `views/`, the REST API, health, errors.

pub mod api;
pub mod errors;
pub mod health;
pub mod pages;

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;

/// One log line per HTTP request, with its status and latency.
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
        Ok(res) => tracing::info!(
            %method,
            path,
            status = res.status().as_u16(),
            latency_us,
            "request"
        ),
        Err(e) => tracing::info!(%method, path, error = %e, latency_us, "request failed"),
    }
    result
}
