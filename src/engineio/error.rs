//! Engine.IO request errors, as the protocol numbers them, and their HTTP responses.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

/// A refused Engine.IO HTTP request. The body is `{"code":N,"message":…}` with the
/// protocol's own codes; a too-large payload is a bare 413.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error("Transport unknown")]
    UnknownTransport,
    #[error("Session ID unknown")]
    UnknownSid,
    #[error("Bad handshake method")]
    BadHandshakeMethod,
    #[error("Bad request")]
    BadRequest,
    #[error("Forbidden")]
    Forbidden,
    #[error("Unsupported protocol version")]
    UnsupportedProtocolVersion,
    #[error("Payload too large")]
    PayloadTooLarge,
}

impl EngineError {
    /// The protocol's error code.
    pub fn code(self) -> u8 {
        match self {
            EngineError::UnknownTransport => 0,
            EngineError::UnknownSid => 1,
            EngineError::BadHandshakeMethod => 2,
            EngineError::BadRequest | EngineError::PayloadTooLarge => 3,
            EngineError::Forbidden => 4,
            EngineError::UnsupportedProtocolVersion => 5,
        }
    }
}

impl ResponseError for EngineError {
    fn status_code(&self) -> StatusCode {
        match self {
            EngineError::Forbidden => StatusCode::FORBIDDEN,
            EngineError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code()).json(serde_json::json!({
            "code": self.code(),
            "message": self.to_string(),
        }))
    }
}
