//! Engine.IO server settings: heartbeat, limits, allowed origins.

use std::time::Duration;

/// How an Engine.IO server behaves; built by the application from its settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The server sends a ping every `ping_interval`…
    pub ping_interval: Duration,
    /// …and closes a session whose pong has not come within `ping_timeout`.
    pub ping_timeout: Duration,
    /// The largest packet or polling payload accepted, in bytes.
    pub max_payload: usize,
    /// Outbound packets queued for one session before it counts as too slow and is closed.
    pub max_buffered_packets: usize,
    /// Inbound messages waiting for their handler before reading from the client pauses.
    pub max_pending_inbound: usize,
    /// Who may open a session from a browser.
    pub origins: AllowedOrigins,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            ping_interval: Duration::from_millis(25_000),
            ping_timeout: Duration::from_millis(20_000),
            max_payload: 1_000_000,
            max_buffered_packets: 1024,
            max_pending_inbound: 64,
            origins: AllowedOrigins::SameOriginAnd(Vec::new()),
        }
    }
}

/// The `Origin`s allowed on handshakes and WebSocket upgrades. Requests without an
/// `Origin` header (non-browser clients) are always allowed: the check exists to stop
/// cross-site WebSocket hijacking by other web pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedOrigins {
    Any,
    /// The server's own origin (same scheme-less host as the `Host` header) plus these.
    SameOriginAnd(Vec<String>),
}

impl AllowedOrigins {
    /// `["*"]` means any origin; otherwise the listed origins besides the server's own.
    pub fn from_list(list: &[String]) -> Self {
        if list.iter().any(|o| o.trim() == "*") {
            AllowedOrigins::Any
        } else {
            AllowedOrigins::SameOriginAnd(
                list.iter()
                    .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
                    .collect(),
            )
        }
    }

    /// Whether a request with this `Origin` (if any) to this `Host` may proceed.
    pub fn allows(&self, origin: Option<&str>, host: Option<&str>) -> bool {
        let Some(origin) = origin else { return true };
        match self {
            AllowedOrigins::Any => true,
            AllowedOrigins::SameOriginAnd(list) => {
                let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
                let origin_host = origin
                    .split_once("://")
                    .map(|(_, h)| h)
                    .unwrap_or(origin.as_str());
                if host.is_some_and(|h| h.eq_ignore_ascii_case(origin_host)) {
                    return true;
                }
                list.contains(&origin)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_origin_and_listed_origins_are_allowed() {
        let o = AllowedOrigins::from_list(&["https://friend.example".into()]);
        assert!(o.allows(None, Some("tete.example")));
        assert!(o.allows(Some("https://tete.example"), Some("tete.example")));
        assert!(o.allows(Some("https://friend.example/"), Some("tete.example")));
        assert!(!o.allows(Some("https://evil.example"), Some("tete.example")));
        assert!(!o.allows(Some("null"), Some("tete.example")));
    }

    #[test]
    fn a_star_allows_any_origin() {
        let o = AllowedOrigins::from_list(&["*".into()]);
        assert!(o.allows(Some("https://evil.example"), Some("tete.example")));
    }
}
