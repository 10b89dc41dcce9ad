//! Layered settings and their errors.

use tete::settings::{Settings, SettingsError, Sources};

use crate::helpers::config_dir;

fn load(vars: &[(&str, &str)]) -> Result<Settings, SettingsError> {
    let sources = Sources {
        config_dir: config_dir(),
        vars: vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    Settings::load(&sources).map(|(s, _)| s)
}

#[test]
fn defaults_come_from_the_base_file() {
    let s = load(&[]).unwrap();
    assert_eq!(s.application.port, 8080);
    assert_eq!(s.database.url, "sqlite:data/tete.db");
    assert_eq!(s.engineio.ping_interval_ms, 25000);
    assert_eq!(s.chat.burst, 20);
}

#[test]
fn the_environment_file_overrides_the_base() {
    let s = load(&[("TETE_ENVIRONMENT", "production")]).unwrap();
    assert_eq!(s.application.host, "0.0.0.0");
}

#[test]
fn prefixed_variables_override_the_files() {
    let s = load(&[
        ("TETE_APPLICATION__PORT", "9191"),
        ("TETE_CHAT__BURST", "5"),
        (
            "TETE_ENGINEIO__ALLOWED_ORIGINS",
            "[http://a.example, http://b.example]",
        ),
    ])
    .unwrap();
    assert_eq!(s.application.port, 9191);
    assert_eq!(s.chat.burst, 5);
    assert_eq!(
        s.engineio.allowed_origins,
        vec!["http://a.example", "http://b.example"]
    );
}

#[test]
fn port_and_database_url_override_everything() {
    let s = load(&[
        ("TETE_APPLICATION__PORT", "9191"),
        ("PORT", "7070"),
        ("DATABASE_URL", "sqlite:/tmp/x.db"),
    ])
    .unwrap();
    assert_eq!(s.application.port, 7070);
    assert_eq!(s.database.url, "sqlite:/tmp/x.db");
}

#[test]
fn an_unknown_environment_is_refused_by_name() {
    let err = load(&[("TETE_ENVIRONMENT", "staging")])
        .unwrap_err()
        .to_string();
    assert!(err.contains("TETE_ENVIRONMENT"), "{err}");
    assert!(err.contains("staging"), "{err}");
}

#[test]
fn a_port_out_of_range_is_refused_by_name() {
    let err = load(&[("PORT", "70000")]).unwrap_err().to_string();
    assert!(err.contains("PORT"), "{err}");
    let err = load(&[("TETE_APPLICATION__PORT", "70000")])
        .unwrap_err()
        .to_string();
    assert!(err.contains("port"), "{err}");
}

#[test]
fn an_unreadable_settings_directory_is_refused_by_path() {
    let sources = Sources {
        config_dir: "/nonexistent/tete-config".into(),
        vars: vec![],
    };
    let err = Settings::load(&sources).unwrap_err().to_string();
    assert!(err.contains("/nonexistent/tete-config/base.toml"), "{err}");
}

#[test]
fn the_database_url_is_not_printed_in_debug_output() {
    let s = load(&[("DATABASE_URL", "mongodb://user:secret@db/tete")]).unwrap();
    let shown = format!("{:?}", s.database);
    assert!(!shown.contains("secret"), "{shown}");
}
