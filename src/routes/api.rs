//! The REST API: rooms and their history as JSON, documented with OpenAPI
//! (`GET /api/openapi.json`, generated from these handlers).
//!
//! Checks come in this order: 401 `unauthorized` (missing or unknown token), 404
//! `not_found` (no such room), 403 `forbidden` (this token may not see it), 400
//! `bad_request` (a bad parameter).

use actix_web::http::StatusCode;
use actix_web::http::header::{AUTHORIZATION, LOCATION};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use crate::chat::domain::{RoomId, hash_token};
use crate::chat::error::ChatError;
use crate::chat::events::page_request;
use crate::routes::errors::ApiError;
use crate::startup::State;
use crate::store::{Participant, RoomSummary, StoredMessage};

/// A new room: its id and the page to share.
#[derive(Serialize, ToSchema)]
pub struct NewRoom {
    pub id: String,
    /// `/chat/<id>`.
    pub url: String,
}

/// A room as anybody may see it.
#[derive(Serialize, ToSchema)]
pub struct RoomView {
    pub id: String,
    /// People seated right now (0–2).
    pub online: usize,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
}

/// A stored message.
#[derive(Serialize, ToSchema)]
pub struct MessageView {
    pub id: String,
    /// Per-room sequence number: 1, 2, 3…
    pub seq: i64,
    pub msg: String,
    pub user: String,
    /// Avatar URL of the author.
    pub img: String,
    /// Server time, milliseconds since the Unix epoch.
    pub ts: i64,
}

impl From<StoredMessage> for MessageView {
    fn from(m: StoredMessage) -> Self {
        MessageView {
            id: m.id.to_string(),
            seq: m.seq,
            msg: m.msg.to_string(),
            user: m.user.to_string(),
            img: m.img.to_string(),
            ts: m.ts,
        }
    }
}

/// A page of history, ascending by `seq`.
#[derive(Serialize, ToSchema)]
pub struct MessagePage {
    pub messages: Vec<MessageView>,
    /// Whether further messages exist beyond this page, in its direction.
    pub more: bool,
}

/// One of the bearer's rooms.
#[derive(Serialize, ToSchema)]
pub struct MyRoom {
    pub id: String,
    pub url: String,
    pub online: usize,
    pub created_at: i64,
    /// Time of the latest activity (last message, or creation).
    pub last_activity_at: i64,
    /// The name this person has in the room.
    pub user: String,
    pub last_message: Option<MessageView>,
}

/// The bearer's rooms, newest activity first.
#[derive(Serialize, ToSchema)]
pub struct MyRooms {
    pub rooms: Vec<MyRoom>,
}

/// An error: a stable snake_case code and a human message.
#[derive(Serialize, ToSchema)]
pub struct ErrorView {
    pub code: String,
    pub message: String,
}

/// Query of the history endpoint; values are checked by hand so that a bad one is a
/// 400 `bad_request` after the access checks.
#[derive(Deserialize)]
pub struct PageQuery {
    before: Option<String>,
    after: Option<String>,
    limit: Option<String>,
}

fn from_chat(e: ChatError) -> ApiError {
    match e {
        ChatError::StoreUnavailable => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            e.to_string(),
        ),
        other => ApiError::bad_request(other.to_string()),
    }
}

fn store_error(e: crate::store::StoreError) -> ApiError {
    from_chat(e.into())
}

fn unauthorized() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "a valid participant token is required (Authorization: Bearer <token>)",
    )
}

/// The hash of the request's bearer token; a request without one is refused here.
fn bearer_hash(req: &HttpRequest) -> Result<String, ApiError> {
    req.headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(hash_token)
        .ok_or_else(unauthorized)
}

/// The bearer's rooms (empty for an unknown token) and its token's hash.
async fn bearer_rooms(
    req: &HttpRequest,
    state: &State,
) -> Result<(String, Vec<RoomSummary>), ApiError> {
    let hash = bearer_hash(req)?;
    let rooms = state
        .chat
        .store()
        .rooms_of(&hash)
        .await
        .map_err(store_error)?;
    Ok((hash, rooms))
}

/// The bearer token's hash, if the store knows the token (it takes part in a room).
async fn bearer(req: &HttpRequest, state: &State) -> Result<String, ApiError> {
    let hash = bearer_hash(req)?;
    match state.chat.store().token_known(&hash).await {
        Ok(true) => Ok(hash),
        Ok(false) => Err(unauthorized()),
        Err(e) => Err(store_error(e)),
    }
}

fn room_id(id: &str) -> Result<RoomId, ApiError> {
    RoomId::parse(id).map_err(|_| ApiError::not_found("no such room"))
}

/// The participant record of the bearer in an existing room, in the documented order.
async fn participant_of(state: &State, room: &RoomId, hash: &str) -> Result<Participant, ApiError> {
    let store = state.chat.store();
    if store
        .room(room.as_str())
        .await
        .map_err(store_error)?
        .is_none()
    {
        return Err(ApiError::not_found("no such room"));
    }
    store
        .participant(room.as_str(), hash)
        .await
        .map_err(store_error)?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this token is not a participant of this room",
            )
        })
}

fn parse_number(name: &str, value: Option<&str>) -> Result<Option<i64>, ApiError> {
    value
        .map(|v| {
            v.trim()
                .parse::<i64>()
                .map_err(|_| ApiError::bad_request(format!("{name} must be a whole number")))
        })
        .transpose()
}

/// Makes a new room id (nothing is stored until somebody logs in).
#[utoipa::path(post, path = "/api/rooms", tag = "rooms",
    responses((status = 201, description = "A new room", body = NewRoom)))]
pub async fn create_room() -> HttpResponse {
    let id = RoomId::generate();
    let url = format!("/chat/{id}");
    HttpResponse::Created()
        .insert_header((LOCATION, url.clone()))
        .json(NewRoom {
            id: id.as_str().to_owned(),
            url,
        })
}

/// A room's public facts. A room exists from its first login until it is erased.
#[utoipa::path(get, path = "/api/rooms/{id}", tag = "rooms",
    params(("id" = String, Path, description = "Room id")),
    responses(
        (status = 200, description = "The room", body = RoomView),
        (status = 404, description = "No such room", body = ErrorView)))]
pub async fn get_room(state: State, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let room = room_id(&id)?;
    let info = state
        .chat
        .store()
        .room(room.as_str())
        .await
        .map_err(store_error)?
        .ok_or_else(|| ApiError::not_found("no such room"))?;
    Ok(HttpResponse::Ok().json(RoomView {
        id: info.id,
        online: state.chat.online(&room),
        created_at: info.created_at,
    }))
}

/// A page of the room's history that the bearer may see. No cursor: the latest
/// `limit`; `before=S`: the `limit` just before S; `after=S`: the `limit` just after S.
#[utoipa::path(get, path = "/api/rooms/{id}/messages", tag = "history",
    params(
        ("id" = String, Path, description = "Room id"),
        ("before" = Option<i64>, Query, description = "Messages with seq below this"),
        ("after" = Option<i64>, Query, description = "Messages with seq above this"),
        ("limit" = Option<u32>, Query, description = "1–200, default 50")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page, ascending by seq", body = MessagePage),
        (status = 400, description = "Bad parameter", body = ErrorView),
        (status = 401, description = "Missing or unknown token", body = ErrorView),
        (status = 403, description = "Not a participant", body = ErrorView),
        (status = 404, description = "No such room", body = ErrorView)))]
pub async fn messages(
    req: HttpRequest,
    state: State,
    id: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let hash = bearer(&req, &state).await?;
    let room = room_id(&id)?;
    let me = participant_of(&state, &room, &hash).await?;
    let before = parse_number("before", query.before.as_deref())?;
    let after = parse_number("after", query.after.as_deref())?;
    let limit = parse_number("limit", query.limit.as_deref())?;
    let (cursor, limit) = page_request(before, after, limit).map_err(from_chat)?;
    let page = state
        .chat
        .store()
        .page(room.as_str(), me.first_seq, cursor, limit)
        .await
        .map_err(store_error)?;
    Ok(HttpResponse::Ok().json(MessagePage {
        messages: page.messages.into_iter().map(MessageView::from).collect(),
        more: page.more,
    }))
}

/// The bearer's rooms, newest activity first, each with its last message.
#[utoipa::path(get, path = "/api/rooms", tag = "rooms",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The bearer's rooms", body = MyRooms),
        (status = 401, description = "Missing or unknown token", body = ErrorView)))]
pub async fn my_rooms(req: HttpRequest, state: State) -> Result<HttpResponse, ApiError> {
    let (_, rooms) = bearer_rooms(&req, &state).await?;
    if rooms.is_empty() {
        return Err(unauthorized());
    }
    let rooms = rooms
        .into_iter()
        .map(|s| {
            let online = RoomId::parse(&s.room.id).map_or(0, |r| state.chat.online(&r));
            MyRoom {
                url: format!("/chat/{}", s.room.id),
                last_activity_at: s.room.last_activity(),
                id: s.room.id,
                online,
                created_at: s.room.created_at,
                user: s.participant.name,
                last_message: s.last_message.map(MessageView::from),
            }
        })
        .collect();
    Ok(HttpResponse::Ok().json(MyRooms { rooms }))
}

/// Erases the room and its whole history; people still in it are told (`erased`).
#[utoipa::path(delete, path = "/api/rooms/{id}", tag = "rooms",
    params(("id" = String, Path, description = "Room id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Erased"),
        (status = 401, description = "Missing or unknown token", body = ErrorView),
        (status = 403, description = "Not a participant", body = ErrorView),
        (status = 404, description = "No such room", body = ErrorView)))]
pub async fn erase_room(
    req: HttpRequest,
    state: State,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let hash = bearer(&req, &state).await?;
    let room = room_id(&id)?;
    participant_of(&state, &room, &hash).await?;
    state.chat.erase(&room).await.map_err(from_chat)?;
    Ok(HttpResponse::NoContent().finish())
}

/// The OpenAPI description of this API.
#[derive(OpenApi)]
#[openapi(
    info(title = "tete", description = "History and rooms of tete, the private chat for two."),
    paths(create_room, get_room, messages, my_rooms, erase_room),
    components(schemas(NewRoom, RoomView, MessageView, MessagePage, MyRoom, MyRooms, ErrorView)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// `GET /api/openapi.json`.
pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}

/// The API's routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/openapi.json", web::get().to(openapi))
        .route("/api/rooms", web::post().to(create_room))
        .route("/api/rooms", web::get().to(my_rooms))
        .route("/api/rooms/{id}", web::get().to(get_room))
        .route("/api/rooms/{id}", web::delete().to(erase_room))
        .route("/api/rooms/{id}/messages", web::get().to(messages));
}
