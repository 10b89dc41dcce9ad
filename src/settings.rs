//! Layered settings: `config/base.toml` → `config/<environment>.toml` → `TETE_*`
//! environment variables → the conventional `PORT` and `DATABASE_URL`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Everything tete can be configured with. Field names are the keys of the TOML files
/// and of the `TETE_<SECTION>__<KEY>` variables (e.g. `TETE_APPLICATION__PORT`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub application: ApplicationSettings,
    pub log: LogSettings,
    pub database: DatabaseSettings,
    pub engineio: EngineIoSettings,
    pub socketio: SocketIoSettings,
    pub chat: ChatSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplicationSettings {
    pub host: String,
    pub port: u16,
    pub shutdown_timeout_secs: u64,
    pub base_url: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: String,
}

/// The URL may hold a password: only its scheme is ever shown.
impl std::fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = self.url.split(':').next().unwrap_or("");
        f.debug_struct("DatabaseSettings")
            .field("url", &format_args!("{scheme}:…"))
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineIoSettings {
    pub ping_interval_ms: u64,
    pub ping_timeout_ms: u64,
    pub max_payload: usize,
    pub max_buffered_packets: usize,
    pub allowed_origins: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SocketIoSettings {
    pub connect_timeout_ms: u64,
    pub ack_timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatSettings {
    pub messages_per_second: u32,
    pub burst: u32,
}

/// The environments tete knows; each has its own file under `config/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Local,
    Production,
    Test,
}

impl Environment {
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Local => "local",
            Environment::Production => "production",
            Environment::Test => "test",
        }
    }
}

impl std::str::FromStr for Environment {
    type Err = SettingsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "local" => Ok(Environment::Local),
            "production" => Ok(Environment::Production),
            "test" => Ok(Environment::Test),
            other => Err(SettingsError::Invalid {
                setting: "TETE_ENVIRONMENT".into(),
                reason: format!("unknown environment `{other}` (use local, production or test)"),
            }),
        }
    }
}

/// Why the settings could not be loaded; the message names the setting at fault.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("setting {setting}: {reason}")]
    Invalid { setting: String, reason: String },
    #[error("settings file {path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("settings: {0}")]
    Config(String),
}

/// Where to read the settings from: the directory holding `base.toml`, the environment,
/// and the process environment variables (passed in so tests need not touch the real ones).
pub struct Sources {
    pub config_dir: PathBuf,
    pub vars: Vec<(String, String)>,
}

impl Sources {
    /// The running process's view: `TETE_CONFIG_DIR`, else `config/` in the working
    /// directory, else the `config/` of the checkout tete was built from; and the real
    /// environment variables.
    pub fn from_process() -> Self {
        let config_dir = std::env::var_os("TETE_CONFIG_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                let here = PathBuf::from("config");
                if here.join("base.toml").is_file() {
                    here
                } else {
                    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config")
                }
            });
        Sources {
            config_dir,
            vars: std::env::vars().collect(),
        }
    }

    fn var(&self, name: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Settings {
    /// Loads the settings for the environment named by `TETE_ENVIRONMENT` (default `local`).
    pub fn load(sources: &Sources) -> Result<(Settings, Environment), SettingsError> {
        let environment: Environment =
            sources.var("TETE_ENVIRONMENT").unwrap_or("local").parse()?;
        let base = sources.config_dir.join("base.toml");
        let layer = sources
            .config_dir
            .join(format!("{}.toml", environment.as_str()));
        let mut builder = config::Config::builder()
            .add_source(toml_file(&base)?)
            .add_source(toml_file(&layer)?);

        for (key, value) in &sources.vars {
            let Some(rest) = key.strip_prefix("TETE_") else {
                continue;
            };
            let Some((section, field)) = rest.split_once("__") else {
                continue;
            };
            let path = format!(
                "{}.{}",
                section.to_ascii_lowercase(),
                field.to_ascii_lowercase()
            );
            builder = builder
                .set_override(path, parse_env_value(value))
                .map_err(|e| SettingsError::Config(e.to_string()))?;
        }
        if let Some(port) = sources.var("PORT") {
            let port: u16 = port.trim().parse().map_err(|_| SettingsError::Invalid {
                setting: "PORT".into(),
                reason: format!("`{port}` is not a port number (0–65535)"),
            })?;
            builder = builder
                .set_override("application.port", i64::from(port))
                .map_err(|e| SettingsError::Config(e.to_string()))?;
        }
        if let Some(url) = sources.var("DATABASE_URL") {
            builder = builder
                .set_override("database.url", url.to_string())
                .map_err(|e| SettingsError::Config(e.to_string()))?;
        }
        let settings: Settings = builder
            .build()
            .map_err(|e| SettingsError::Config(e.to_string()))?
            .try_deserialize()
            .map_err(|e| SettingsError::Config(e.to_string()))?;
        settings.check()?;
        Ok((settings, environment))
    }

    fn check(&self) -> Result<(), SettingsError> {
        let invalid = |setting: &str, reason: &str| {
            Err(SettingsError::Invalid {
                setting: setting.into(),
                reason: reason.into(),
            })
        };
        if self.engineio.ping_interval_ms == 0 {
            return invalid("engineio.ping_interval_ms", "must be at least 1");
        }
        if self.engineio.ping_timeout_ms == 0 {
            return invalid("engineio.ping_timeout_ms", "must be at least 1");
        }
        if self.engineio.max_payload < 16 {
            return invalid("engineio.max_payload", "must be at least 16 bytes");
        }
        if self.engineio.max_buffered_packets == 0 {
            return invalid("engineio.max_buffered_packets", "must be at least 1");
        }
        if self.chat.messages_per_second == 0 || self.chat.burst == 0 {
            return invalid("chat.messages_per_second/chat.burst", "must be at least 1");
        }
        if self.database.url.trim().is_empty() {
            return invalid("database.url (DATABASE_URL)", "must not be empty");
        }
        Ok(())
    }
}

fn toml_file(
    path: &Path,
) -> Result<config::File<config::FileSourceFile, config::FileFormat>, SettingsError> {
    std::fs::metadata(path).map_err(|e| SettingsError::File {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    Ok(config::File::from(path.to_path_buf()).format(config::FileFormat::Toml))
}

/// Environment variables are strings; numbers, booleans and `a,b` lists are given
/// their natural type so that they deserialize into the typed fields.
fn parse_env_value(value: &str) -> config::Value {
    let trimmed = value.trim();
    if let Ok(n) = trimmed.parse::<i64>() {
        return config::Value::from(n);
    }
    if let Ok(b) = trimmed.parse::<bool>() {
        return config::Value::from(b);
    }
    if trimmed.starts_with('[') && trimmed.ends_with(']') {
        let items: Vec<config::Value> = trimmed[1..trimmed.len() - 1]
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| config::Value::from(s.trim_matches('"').to_string()))
            .collect();
        return config::Value::from(items);
    }
    config::Value::from(value.to_string())
}
