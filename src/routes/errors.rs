//! The JSON error body `{code, message}` every failing API call returns, and the
//! 404 that never leaks internals (HTML for people, JSON for programs).

use actix_web::http::StatusCode;
use actix_web::http::header::{ACCEPT, ContentType};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde::Serialize;

use crate::startup::AppState;

/// An API error: a stable snake_case `code` and a human `message`.
#[derive(Debug, Clone, Serialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    #[serde(skip)]
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status: status.as_u16(),
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code()).json(self)
    }
}

pub fn json_error(err: actix_web::error::JsonPayloadError, _: &HttpRequest) -> actix_web::Error {
    ApiError::bad_request(format!("invalid JSON body: {err}")).into()
}

pub fn query_error(err: actix_web::error::QueryPayloadError, _: &HttpRequest) -> actix_web::Error {
    ApiError::bad_request(format!("invalid query: {err}")).into()
}

fn wants_json(req: &HttpRequest) -> bool {
    if req.path().starts_with("/api/") {
        return true;
    }
    let accept = req
        .headers()
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    accept.contains("application/json") && !accept.contains("text/html")
}

/// Every path no route claims.
pub async fn not_found(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if wants_json(&req) {
        return ApiError::not_found("no such resource").error_response();
    }
    crate::routes::pages::not_found_page(&state, "This page does not exist.")
}

/// A server-side failure: the client gets a generic body, the log gets the cause.
pub fn internal(context: &str, err: &dyn std::fmt::Display) -> HttpResponse {
    tracing::error!(error = %err, "{context}");
    HttpResponse::InternalServerError()
        .content_type(ContentType::json())
        .body(r#"{"code":"internal","message":"something went wrong on our side"}"#)
}
