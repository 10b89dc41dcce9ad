//! Server-rendered pages from the handlebars templates in `views/`.

use std::path::Path;

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::http::header::ContentType;
use actix_web::{HttpResponse, web};
use handlebars::{DirectorySourceOptions, Handlebars};
use serde_json::json;

use crate::chat::domain::RoomId;
use crate::startup::State;

/// Loads every `*.hbs` under `dir`; `partials/x.hbs` is usable as `{{> partials/x}}`.
pub fn templates(dir: &Path) -> anyhow::Result<Handlebars<'static>> {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    hb.register_templates_directory(dir, DirectorySourceOptions::default())
        .map_err(|e| anyhow::anyhow!("cannot load the templates in {}: {e}", dir.display()))?;
    for required in ["home", "not_found", "layout"] {
        if !hb.has_template(required) {
            anyhow::bail!("template views/{required}.hbs is missing");
        }
    }
    Ok(hb)
}

pub fn render(
    state: &State,
    status: StatusCode,
    name: &str,
    data: serde_json::Value,
) -> HttpResponse {
    match state.templates.render(name, &data) {
        Ok(html) => HttpResponse::build(status)
            .content_type(ContentType::html())
            .body(html),
        Err(e) => crate::routes::errors::internal("cannot render a page", &e),
    }
}

/// `GET /`: what tete is, and the button that opens a private room.
pub async fn home(state: State) -> HttpResponse {
    render(
        &state,
        StatusCode::OK,
        "home",
        json!({ "title": "tete — private chat for two", "version": env!("CARGO_PKG_VERSION") }),
    )
}

/// `GET /create`: a new unguessable room, and off to it.
pub async fn create() -> HttpResponse {
    let room = RoomId::generate();
    HttpResponse::Found()
        .insert_header((header::LOCATION, format!("/chat/{room}")))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// `GET /chat/{id}`: the chat page; a malformed id gets a friendly 404.
pub async fn chat(state: State, id: web::Path<String>) -> HttpResponse {
    match RoomId::parse(&id) {
        Ok(room) => render(
            &state,
            StatusCode::OK,
            "chat",
            json!({ "title": "Private chat — tete", "room": room.as_str() }),
        ),
        Err(_) => not_found_page(
            &state,
            "This chat link is not valid. Ask for the link again, or create a new room.",
        ),
    }
}

pub fn not_found_page(state: &State, message: &str) -> HttpResponse {
    render(
        state,
        StatusCode::NOT_FOUND,
        "not_found",
        json!({ "title": "Not found — tete", "message": message }),
    )
}
