//! `spawn_app()`: the real tete on a free port with a throw-away database.

use std::path::PathBuf;

use tete::settings::{Settings, Sources};
use tete::startup::Application;

pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub client: reqwest::Client,
    pub data_dir: tempfile::TempDir,
    _handle: actix_web::dev::ServerHandle,
}

pub fn config_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config")
}

/// Settings of the `test` environment with extra `TETE_*`-style overrides.
pub fn test_settings(extra: &[(&str, &str)], data_dir: &std::path::Path) -> Settings {
    let mut vars = vec![
        ("TETE_ENVIRONMENT".to_string(), "test".to_string()),
        (
            "DATABASE_URL".to_string(),
            format!("sqlite:{}", data_dir.join("tete.db").display()),
        ),
    ];
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let sources = Sources {
        config_dir: config_dir(),
        vars,
    };
    Settings::load(&sources).expect("test settings load").0
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

pub async fn spawn_app_with(extra: &[(&str, &str)]) -> TestApp {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let settings = test_settings(extra, data_dir.path());
    let app = Application::build(settings).await.expect("app builds");
    let port = app.port();
    let handle = app.spawn();
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("http client"),
        data_dir,
        _handle: handle,
    }
}

impl TestApp {
    /// A Socket.IO client connected to the chat namespace.
    pub async fn client(&self) -> crate::sio::SioClient {
        crate::sio::SioClient::connect(self.port).await
    }

    /// A new room id, as `/create` makes it.
    pub async fn new_room(&self) -> String {
        let res = self.get("/create").await;
        assert_eq!(res.status(), 302);
        let location = res.headers()["location"].to_str().unwrap().to_string();
        location.strip_prefix("/chat/").unwrap().to_string()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{}", self.address, path))
            .send()
            .await
            .expect("request sent")
    }
}
