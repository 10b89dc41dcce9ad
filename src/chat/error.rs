//! The chat's errors, each with the stable snake_case `code` of the wire contract.

use serde::Serialize;

use crate::store::StoreError;

/// Why a chat request was refused. Sent as `{code, message}` (or `{ok:false, code,
/// message}` in an ack); the connection stays usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChatError {
    #[error("a room id is 22–64 characters of A–Z, a–z, 0–9, _ and -")]
    InvalidRoom,
    #[error("you loaded another room: log in to the room you loaded")]
    WrongRoom,
    #[error("{0}")]
    InvalidNickname(String),
    #[error("that does not look like an e-mail address")]
    InvalidEmail,
    #[error("somebody in this room already uses that name")]
    NicknameTaken,
    #[error("this room already has two people")]
    RoomFull,
    #[error("log in to a room first")]
    NotLoggedIn,
    #[error("{0}")]
    InvalidMessage(String),
    #[error("a message has at most 2000 characters")]
    MessageTooLong,
    #[error("too many messages: slow down")]
    RateLimited,
    #[error("unknown event {0:?}")]
    UnknownEvent(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("the history store is unavailable; try again")]
    StoreUnavailable,
}

impl ChatError {
    pub fn code(&self) -> &'static str {
        match self {
            ChatError::InvalidRoom => "invalid_room",
            ChatError::WrongRoom => "wrong_room",
            ChatError::InvalidNickname(_) => "invalid_nickname",
            ChatError::InvalidEmail => "invalid_email",
            ChatError::NicknameTaken => "nickname_taken",
            ChatError::RoomFull => "room_full",
            ChatError::NotLoggedIn => "not_logged_in",
            ChatError::InvalidMessage(_) => "invalid_message",
            ChatError::MessageTooLong => "message_too_long",
            ChatError::RateLimited => "rate_limited",
            ChatError::UnknownEvent(_) => "unknown_event",
            ChatError::BadRequest(_) => "bad_request",
            ChatError::StoreUnavailable => "store_unavailable",
        }
    }

    /// The body of an `error` event.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            code: self.code(),
            message: self.to_string(),
        }
    }

    /// The body of a failed ack.
    pub fn ack(&self) -> FailedAck {
        FailedAck {
            ok: false,
            code: self.code(),
            message: self.to_string(),
        }
    }
}

impl From<StoreError> for ChatError {
    fn from(e: StoreError) -> Self {
        tracing::warn!(error = %e, "store call failed");
        ChatError::StoreUnavailable
    }
}

#[derive(Debug, Serialize)]
pub struct ErrorBody {
    pub code: &'static str,
    pub message: String,
}

#[derive(Debug, Serialize)]
pub struct FailedAck {
    pub ok: bool,
    pub code: &'static str,
    pub message: String,
}
