//! Server-rendered pages from the handlebars templates in `views/`.

use std::path::Path;

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::ContentType;
use handlebars::{DirectorySourceOptions, Handlebars};
use serde_json::json;

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

pub fn not_found_page(state: &State, message: &str) -> HttpResponse {
    render(
        state,
        StatusCode::NOT_FOUND,
        "not_found",
        json!({ "title": "Not found — tete", "message": message }),
    )
}
