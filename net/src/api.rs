//! The admin HTTP API (`[admin]`): the operator's commands of the CLI and
//! read views of the running bridge, as JSON over HTTP, described by
//! `net/openapi.json` (served at `GET /v1/openapi.json`).
//!
//! # Layout
//! - [`start`]: binds `[admin] listen` and serves on its own thread, with a
//!   current-thread tokio runtime: off the shard cores and the router.
//! - [`AdminTokens`]: the bearer tokens, by SHA-256; replaced on reload.
//! - Changes ([`Edit`]) go through the same path as the CLI: the source
//!   ([`Source`]: the TOML file, edited in place, or the Postgres tables) is
//!   changed (validated as at start), then the router applies it as a
//!   reload does, with the token's name as the change's source (so the
//!   journal and `audit_log` name it).
//! - Views: accounts and follows from the source; sessions from the account
//!   table; a follower's copies and recent skips from the router
//!   ([`ViewQuery`], answered between two passes).
//!
//! # Invariants
//! - Every route, the unknown ones too, answers 401 without a valid token;
//!   tokens are compared as SHA-256 digests in constant time, against
//!   every configured token (no early exit), and are never logged.
//! - Every change, applied or refused, is logged and audited with its actor
//!   (`api:<token name>`): in the audit file beside the journal, or with
//!   Postgres as the source in `audit_log`.
//! - An API key appears once, in the response that created it; never a
//!   key hash.
//! - Errors are JSON `{"error": "..."}` naming what was wrong.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tradebridge_core::config::{rfc3339_of_ms, AccountConfig, AdminToken, Config};
use tradebridge_core::protocol::Role;

use crate::admin::{append_audit, new_key, parse_duration_ms, Edit, EditError};
use crate::reload::{RouterInbox, ViewAnswer, ViewQuery};
use crate::context::Shared;
use crate::source::Source;

/// The OpenAPI description of this API, as checked in.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// How long a view waits for the router (it answers between two passes).
const VIEW_WAIT: Duration = Duration::from_secs(5);

/// Skips `GET /v1/skips` returns when no `limit` is given.
const SKIPS_LIMIT_DEFAULT: usize = 100;

/// Refused tokens written to the audit file per second at most; the log
/// has every one.
const AUTH_FAILURES_AUDITED_PER_SECOND: u32 = 20;

/// The admin API's bearer tokens; replaced when a reload changes them.
#[derive(Debug, Default)]
pub struct AdminTokens(RwLock<Vec<AdminToken>>);

impl AdminTokens {
    pub fn new(tokens: Vec<AdminToken>) -> AdminTokens {
        AdminTokens(RwLock::new(tokens))
    }

    /// Takes the tokens of a reloaded configuration.
    pub fn replace(&self, tokens: Vec<AdminToken>) {
        *self.0.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = tokens;
    }

    /// The name of the token whose text is `presented`, if any: its SHA-256
    /// is compared with every token's in constant time.
    pub fn name_of(&self, presented: &str) -> Option<String> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let tokens = self.0.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut found = None;
        for token in tokens.iter() {
            if bool::from(token.token_sha256.ct_eq(&digest)) {
                found = Some(token.name.clone());
            }
        }
        found
    }
}

/// What every handler shares.
struct ApiState {
    shared: Arc<Shared>,
    inbox: Arc<RouterInbox>,
    /// Where accounts and follows live: changes edit it, views read it.
    source: Arc<Source>,
    /// The configuration file (its `[admin]` tokens).
    config_path: PathBuf,
    tokens: Arc<AdminTokens>,
    /// Refused tokens audited in the current second: (second, count).
    auth_failures_window: Mutex<(u64, u32)>,
}

/// The running API.
#[derive(Debug)]
pub struct AdminApi {
    /// Where it listens (the resolved port when the configuration says 0).
    pub local_address: SocketAddr,
}

/// Binds `[admin] listen` and serves the API on its own thread.
pub fn start(shared: Arc<Shared>, inbox: Arc<RouterInbox>, source: Arc<Source>, config_path: PathBuf, tokens: Arc<AdminTokens>) -> anyhow::Result<AdminApi> {
    let admin = shared.config.admin.clone().ok_or_else(|| anyhow::anyhow!("no [admin] table"))?;
    let listener = std::net::TcpListener::bind(admin.listen).map_err(|error| anyhow::anyhow!("admin.listen = {}: {error}", admin.listen))?;
    listener.set_nonblocking(true)?;
    let local_address = listener.local_addr()?;
    let state = Arc::new(ApiState { shared, inbox, source, config_path, tokens, auth_failures_window: Mutex::new((0, 0)) });
    let app = routes(Arc::clone(&state), admin.request_bytes_max as usize);
    std::thread::Builder::new().name("admin".into()).spawn(move || {
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(runtime) => runtime,
            Err(error) => {
                tracing::error!(%error, "the admin API cannot start its runtime");
                return;
            }
        };
        runtime.block_on(async move {
            let listener = match tokio::net::TcpListener::from_std(listener) {
                Ok(listener) => listener,
                Err(error) => {
                    tracing::error!(%error, "the admin API cannot use its listener");
                    return;
                }
            };
            if let Err(error) = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await {
                tracing::error!(%error, "the admin API stopped");
            }
        });
    })?;
    Ok(AdminApi { local_address })
}

fn routes(state: Arc<ApiState>, request_bytes_max: usize) -> axum::Router {
    axum::Router::new()
        .route("/v1/openapi.json", get(openapi))
        .route("/v1/accounts", get(accounts_list).post(account_add))
        .route("/v1/accounts/{login}", get(account_show).delete(account_remove))
        .route("/v1/accounts/{login}/disable", post(account_disable))
        .route("/v1/accounts/{login}/enable", post(account_enable))
        .route("/v1/accounts/{login}/key", post(key_rotate))
        .route("/v1/follows", get(follows_list).post(follow_add))
        .route("/v1/follows/{master}/{slave}", axum::routing::patch(follow_set).delete(follow_remove))
        .route("/v1/sessions", get(sessions))
        .route("/v1/followers/{slave}/positions", get(follower_positions))
        .route("/v1/skips", get(skips))
        .route("/v1/reload", post(reload))
        .fallback(unknown_route)
        .layer(middleware::from_fn_with_state(Arc::clone(&state), authenticate))
        .layer(middleware::map_response(json_errors))
        .layer(axum::extract::DefaultBodyLimit::max(request_bytes_max))
        .with_state(state)
}

/// A JSON error naming what was wrong.
fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": message.into() }))).into_response()
}

fn ok(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// The token's name (the actor of what the request does).
#[derive(Clone, Debug)]
struct Caller(String);

/// Lets a request through with a valid bearer token; answers 401 otherwise
/// (logged, and audited within a per-second bound).
async fn authenticate(State(state): State<Arc<ApiState>>, ConnectInfo(remote): ConnectInfo<SocketAddr>, mut request: Request, next: Next) -> Response {
    let presented = request.headers().get(header::AUTHORIZATION).and_then(|value| value.to_str().ok()).and_then(|value| value.strip_prefix("Bearer "));
    let reason = match presented.map(str::trim) {
        None => "no `Authorization: Bearer <token>` header",
        Some(token) => match state.tokens.name_of(token) {
            Some(name) => {
                request.extensions_mut().insert(Caller(name));
                return next.run(request).await;
            }
            None => "the token matches no [[admin.token]]",
        },
    };
    let route = request.uri().path().to_owned();
    tracing::warn!(remote = %remote, %route, reason, "admin API: authentication failed");
    let now_ms = crate::clock::unix_ms();
    let audited = {
        let mut window = state.auth_failures_window.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let second = now_ms / 1_000;
        *window = if window.0 == second { (second, window.1 + 1) } else { (second, 1) };
        window.1 <= AUTH_FAILURES_AUDITED_PER_SECOND
    };
    if audited {
        let line = json!({ "at_ms": now_ms, "actor": "api", "action": "admin authentication failed", "subject": route, "remote_address": remote.to_string(), "reason": reason });
        match &*state.source {
            // With Postgres as the source, the audit is audit_log.
            Source::Postgres { target, .. } => {
                let target = (**target).clone();
                let actor = tradebridge_persist::config_source::Actor { name: "api".into(), action: "admin authentication failed".into(), subject: route.clone() };
                let detail = json!({ "remote_address": remote.to_string(), "reason": reason }).to_string();
                tokio::spawn(async move {
                    let recorded = match target.connect().await {
                        Ok(client) => tradebridge_persist::config_source::audit(&client, &actor, &detail).await,
                        Err(error) => Err(error),
                    };
                    if let Err(error) = recorded {
                        tracing::error!(error = %format!("{error:#}"), "cannot record a refused admin token in audit_log");
                    }
                });
            }
            Source::File { .. } => {
                if let Err(error) = crate::audit::append_audit_line(&state.shared.config.server.journal_dir, &line) {
                    tracing::error!(%error, "cannot append to the audit file");
                }
            }
        }
    }
    let mut response = error(StatusCode::UNAUTHORIZED, format!("unauthorized: {reason}"));
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"tradebridge-admin\""));
    response
}

/// Makes axum's own refusals (a query or path that does not parse, a body
/// too large, a method the path does not take) JSON errors like ours.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response.headers().get(header::CONTENT_TYPE).is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let allow = response.headers().get(header::ALLOW).cloned();
    let text = match axum::body::to_bytes(response.into_body(), 64 * 1024).await {
        Ok(bytes) if !bytes.is_empty() => String::from_utf8_lossy(&bytes).into_owned(),
        _ => status.canonical_reason().unwrap_or("error").to_owned(),
    };
    let mut response = error(status, text.to_lowercase());
    if let Some(allow) = allow {
        response.headers_mut().insert(header::ALLOW, allow);
    }
    response
}

async fn unknown_route(request: Request) -> Response {
    error(StatusCode::NOT_FOUND, format!("no route {} {} (see GET /v1/openapi.json)", request.method(), request.uri().path()))
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// Runs blocking work (file edits, waits for the router) off the runtime.
async fn blocking(work: impl FnOnce() -> Response + Send + 'static) -> Response {
    tokio::task::spawn_blocking(work).await.unwrap_or_else(|join| error(StatusCode::INTERNAL_SERVER_ERROR, format!("the request failed: {join}")))
}

/// Parses a JSON body into `T`; an error names the field or the syntax.
#[allow(clippy::result_large_err)]
fn body<T: serde::de::DeserializeOwned>(bytes: &Bytes) -> Result<T, Response> {
    let bytes: &[u8] = if bytes.is_empty() { b"{}" } else { bytes };
    serde_json::from_slice(bytes).map_err(|parse| error(StatusCode::BAD_REQUEST, format!("request body: {parse}")))
}

/// The source as it is now (what the bridge runs, or is about to).
#[allow(clippy::result_large_err)]
fn current_config(state: &ApiState) -> Result<Config, Response> {
    state.source.load().map_err(|load| error(StatusCode::INTERNAL_SERVER_ERROR, format!("configuration from {}: {load}", state.source.describe())))
}

/// Takes the file's `[admin]` tokens again (a change may have edited them).
fn refresh_tokens(state: &ApiState) {
    if let Ok(Some(admin)) = Config::load(&state.config_path).map(|config| config.admin) {
        state.tokens.replace(admin.tokens);
    }
}

/// An account as the API shows it: its settings, never a key or a hash.
fn account_json(account: &AccountConfig, config: &Config, shared: &Shared) -> Value {
    let mut value = serde_json::to_value(account).unwrap_or(Value::Null);
    if let Some(object) = value.as_object_mut() {
        object.remove("key_sha256");
        let expiries: Vec<Value> = account.previous_keys.iter().map(|key| json!({ "expires": rfc3339_of_ms(key.expires_ms) })).collect();
        object.insert("previous_keys".into(), Value::Array(expiries));
        let follows = config.follows.iter().filter(|follow| follow.slave == account.login || follow.master == account.login).count();
        object.insert("follows".into(), json!(follows));
        let connected = shared.accounts.get(account.login).is_some_and(|entry| entry.role == account.role && entry.live_session().is_some());
        object.insert("connected".into(), json!(connected));
    }
    value
}

/// Applies `edit` as the CLI does: edit the file, audit, reload; `key`:
/// returned once in the response. `created`: 201 on success.
fn change(state: &ApiState, caller: &Caller, edit: Edit, key: Option<String>, created: bool) -> Response {
    let actor = format!("api:{}", caller.0);
    let (action, subject) = edit.describe();
    let journal_dir = &state.shared.config.server.journal_dir;
    // With Postgres the edit commits its own audit_log row; the file's
    // changes are audited in the audit file.
    let audit_file = !state.source.is_postgres();
    if let Err(refused) = state.source.edit(&edit, &actor) {
        tracing::warn!(%actor, action, %subject, error = %refused, "admin action refused");
        if audit_file {
            let _ = append_audit(journal_dir, &actor, &edit, &format!("refused: {refused}"));
        }
        let status = match refused {
            EditError::Missing(_) => StatusCode::NOT_FOUND,
            EditError::Conflict(_) => StatusCode::CONFLICT,
            EditError::BadInput(_) | EditError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            EditError::Io(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        return error(status, format!("{action}: {subject}: {refused}"));
    }
    if audit_file {
        if let Err(audit) = append_audit(journal_dir, &actor, &edit, "written") {
            tracing::error!(%audit, "cannot append to the audit file");
        }
    }
    let outcome = state.source.reload(journal_dir, &state.inbox, &actor);
    refresh_tokens(state);
    tracing::info!(%actor, action, %subject, ?outcome, "admin action");
    // With Postgres as the source the bridge usually applied the commit as
    // it was notified, before this reload: `unchanged` then, and in effect.
    let mut body = json!({ "action": action, "subject": subject, "in_effect": outcome.is_success(), "outcome": outcome });
    if let Some(key) = key {
        body["key"] = json!(key);
    }
    let status = match (outcome.is_success(), created) {
        (true, true) => StatusCode::CREATED,
        (true, false) => StatusCode::OK,
        // Written to the file, not (yet) applied: the body says why.
        (false, _) => StatusCode::SERVICE_UNAVAILABLE,
    };
    ok(status, body)
}

async fn accounts_list(State(state): State<Arc<ApiState>>) -> Response {
    blocking(move || match current_config(&state) {
        Ok(config) => {
            let accounts: Vec<Value> = config.accounts.iter().map(|account| account_json(account, &config, &state.shared)).collect();
            ok(StatusCode::OK, json!({ "accounts": accounts }))
        }
        Err(response) => response,
    })
    .await
}

async fn account_show(State(state): State<Arc<ApiState>>, Path(login): Path<u64>) -> Response {
    blocking(move || {
        let config = match current_config(&state) {
            Ok(config) => config,
            Err(response) => return response,
        };
        let Some(account) = config.account(login) else {
            return error(StatusCode::NOT_FOUND, format!("no account {login}"));
        };
        let mut value = account_json(account, &config, &state.shared);
        let follows: Vec<Value> = config.follows.iter().filter(|follow| follow.slave == login || follow.master == login).map(|follow| serde_json::to_value(follow).unwrap_or(Value::Null)).collect();
        value["follow_list"] = Value::Array(follows);
        ok(StatusCode::OK, value)
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountAdd {
    login: u64,
    role: Role,
    server: String,
    platform: String,
    /// `KEY=VALUE` as the CLI's `--limit`.
    #[serde(default)]
    limits: Vec<String>,
}

async fn account_add(State(state): State<Arc<ApiState>>, axum::Extension(caller): axum::Extension<Caller>, bytes: Bytes) -> Response {
    let request: AccountAdd = match body(&bytes) {
        Ok(request) => request,
        Err(response) => return response,
    };
    if !matches!(request.platform.as_str(), "mt4" | "mt5") {
        return error(StatusCode::UNPROCESSABLE_ENTITY, format!("platform {:?}: expected \"mt4\" or \"mt5\"", request.platform));
    }
    let mut limits = Vec::with_capacity(request.limits.len());
    for limit in &request.limits {
        match limit.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() => limits.push((key.trim().to_owned(), value.trim().to_owned())),
            _ => return error(StatusCode::UNPROCESSABLE_ENTITY, format!("limits: {limit:?}: expected KEY=VALUE, e.g. max_positions=5")),
        }
    }
    blocking(move || {
        let (key, key_sha256) = match new_key() {
            Ok(pair) => pair,
            Err(random) => return error(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot read random bytes for the key: {random}")),
        };
        let edit = Edit::AddAccount { login: request.login, role: request.role.as_str().into(), server: request.server, platform: request.platform, key_sha256, limits };
        change(&state, &caller, edit, Some(key), true)
    })
    .await
}

async fn account_remove(State(state): State<Arc<ApiState>>, axum::Extension(caller): axum::Extension<Caller>, Path(login): Path<u64>) -> Response {
    blocking(move || change(&state, &caller, Edit::RemoveAccount { login }, None, false)).await
}

async fn account_disable(State(state): State<Arc<ApiState>>, axum::Extension(caller): axum::Extension<Caller>, Path(login): Path<u64>) -> Response {
    blocking(move || change(&state, &caller, Edit::SetEnabled { login, enabled: false }, None, false)).await
}

async fn account_enable(State(state): State<Arc<ApiState>>, axum::Extension(caller): axum::Extension<Caller>, Path(login): Path<u64>) -> Response {
    blocking(move || change(&state, &caller, Edit::SetEnabled { login, enabled: true }, None, false)).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyRotate {
    /// `0`, `90s`, `30m`, `24h`, `7d`; 24 h when absent.
    grace: Option<String>,
}

async fn key_rotate(State(state): State<Arc<ApiState>>, axum::Extension(caller): axum::Extension<Caller>, Path(login): Path<u64>, bytes: Bytes) -> Response {
    let request: KeyRotate = match body(&bytes) {
        Ok(request) => request,
        Err(response) => return response,
    };
    let grace_ms = match parse_duration_ms(request.grace.as_deref().unwrap_or("24h")) {
        Ok(grace_ms) => grace_ms,
        Err(bad) => return error(StatusCode::UNPROCESSABLE_ENTITY, format!("grace: {bad}")),
    };
    blocking(move || {
        let (key, key_sha256) = match new_key() {
            Ok(pair) => pair,
            Err(random) => return error(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot read random bytes for the key: {random}")),
        };
        let now_ms = crate::clock::unix_ms();
        change(&state, &caller, Edit::RotateKey { login, key_sha256, grace_ms, now_ms }, Some(key), false)
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FollowFilter {
    master: Option<u64>,
    slave: Option<u64>,
}

async fn follows_list(State(state): State<Arc<ApiState>>, Query(filter): Query<FollowFilter>) -> Response {
    blocking(move || match current_config(&state) {
        Ok(config) => {
            let follows: Vec<Value> = config
                .follows
                .iter()
                .filter(|follow| filter.master.is_none_or(|master| master == follow.master) && filter.slave.is_none_or(|slave| slave == follow.slave))
                .map(|follow| serde_json::to_value(follow).unwrap_or(Value::Null))
                .collect();
            ok(StatusCode::OK, json!({ "follows": follows }))
        }
        Err(response) => response,
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FollowAdd {
    master: u64,
    slave: u64,
    /// `key = value` lines of a `[[follow]]` table, as the CLI's `--rule`.
    #[serde(default)]
    rules: Vec<String>,
}

async fn follow_add(State(state): State<Arc<ApiState>>, axum::Extension(caller): axum::Extension<Caller>, bytes: Bytes) -> Response {
    let request: FollowAdd = match body(&bytes) {
        Ok(request) => request,
        Err(response) => return response,
    };
    blocking(move || change(&state, &caller, Edit::AddFollow { master: request.master, slave: request.slave, rules: request.rules }, None, true)).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FollowSet {
    rules: Vec<String>,
}

async fn follow_set(State(state): State<Arc<ApiState>>, axum::Extension(caller): axum::Extension<Caller>, Path((master, slave)): Path<(u64, u64)>, bytes: Bytes) -> Response {
    let request: FollowSet = match body(&bytes) {
        Ok(request) => request,
        Err(response) => return response,
    };
    if request.rules.is_empty() {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "rules: expected at least one `key = value`");
    }
    blocking(move || change(&state, &caller, Edit::SetFollow { master, slave, rules: request.rules }, None, false)).await
}

async fn follow_remove(State(state): State<Arc<ApiState>>, axum::Extension(caller): axum::Extension<Caller>, Path((master, slave)): Path<(u64, u64)>) -> Response {
    blocking(move || change(&state, &caller, Edit::RemoveFollow { master, slave }, None, false)).await
}

/// The sessions connected now, by login.
async fn sessions(State(state): State<Arc<ApiState>>) -> Response {
    let shared = &state.shared;
    let mut rows: Vec<(u64, Value)> = Vec::new();
    for entry in shared.accounts.iter() {
        let Some(live) = entry.live_session() else {
            continue;
        };
        let Some(details) = live.details() else {
            continue;
        };
        let heard_ms = shared.wall_ms_of(live.heard_ms());
        rows.push((
            entry.login,
            json!({
                "login": entry.login,
                "role": details.role.as_str(),
                "session": details.session_id,
                "remote_address": details.remote_address,
                "since": rfc3339_of_ms(details.since_ms),
                "since_ms": details.since_ms,
                "last_frame": rfc3339_of_ms(heard_ms),
                "last_frame_ms": heard_ms,
            }),
        ));
    }
    rows.sort_by_key(|(login, _)| *login);
    ok(StatusCode::OK, json!({ "sessions": rows.into_iter().map(|(_, row)| row).collect::<Vec<_>>() }))
}

/// Asks the router for a view; 503 when it does not answer in time.
async fn router_view(state: Arc<ApiState>, query: ViewQuery) -> Response {
    blocking(move || match state.inbox.view(query, VIEW_WAIT) {
        Some(ViewAnswer::Follower { slave, known, positions }) => ok(StatusCode::OK, json!({ "slave": slave, "known": known, "positions": positions })),
        Some(ViewAnswer::Skips { kept_max, skips }) => {
            let skips: Vec<Value> = skips
                .iter()
                .map(|skip| json!({ "at": rfc3339_of_ms(skip.at_ms), "at_ms": skip.at_ms, "slave": skip.slave, "master": skip.master, "pos": skip.pos, "reason": skip.reason }))
                .collect();
            ok(StatusCode::OK, json!({ "kept_max": kept_max, "skips": skips }))
        }
        None => error(StatusCode::SERVICE_UNAVAILABLE, format!("the router did not answer within {} s", VIEW_WAIT.as_secs())),
    })
    .await
}

async fn follower_positions(State(state): State<Arc<ApiState>>, Path(slave): Path<u64>) -> Response {
    let is_slave = state.shared.accounts.get(slave).is_some_and(|entry| entry.role == Role::Slave);
    if !is_slave {
        return error(StatusCode::NOT_FOUND, format!("no slave account {slave} in the running configuration"));
    }
    router_view(state, ViewQuery::Follower { slave }).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SkipsQuery {
    limit: Option<usize>,
    login: Option<u64>,
}

async fn skips(State(state): State<Arc<ApiState>>, Query(query): Query<SkipsQuery>) -> Response {
    let kept_max = state.shared.config.admin.as_ref().map_or(0, |admin| admin.recent_skips_max as usize);
    let limit = query.limit.unwrap_or_else(|| SKIPS_LIMIT_DEFAULT.min(kept_max.max(1)));
    if limit == 0 || limit > kept_max.max(1) {
        return error(StatusCode::UNPROCESSABLE_ENTITY, format!("limit {limit}: expected 1 to {} ([admin] recent_skips_max)", kept_max.max(1)));
    }
    router_view(state, ViewQuery::Skips { limit, login: query.login }).await
}

/// Applies the file as it is now (as SIGHUP does).
async fn reload(State(state): State<Arc<ApiState>>, axum::Extension(caller): axum::Extension<Caller>) -> Response {
    blocking(move || {
        let actor = format!("api:{}", caller.0);
        let outcome = state.source.reload(&state.shared.config.server.journal_dir, &state.inbox, &actor);
        let line = json!({ "at_ms": crate::clock::unix_ms(), "actor": actor, "action": "reload", "subject": state.source.describe(), "outcome": outcome });
        if let Err(audit) = crate::audit::append_audit_line(&state.shared.config.server.journal_dir, &line) {
            tracing::error!(%audit, "cannot append to the audit file");
        }
        refresh_tokens(&state);
        let status = match &outcome {
            outcome if outcome.is_success() => StatusCode::OK,
            crate::reload::ReloadOutcome::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::SERVICE_UNAVAILABLE,
        };
        ok(status, json!({ "outcome": outcome }))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_found_by_its_text_and_never_by_its_hash() {
        // Shows: the token whose SHA-256 is configured is named; its hash presented as the token, an empty token and another text are not.
        let text = "secret-token-text";
        let hash: [u8; 32] = Sha256::digest(text.as_bytes()).into();
        let tokens = AdminTokens::new(vec![AdminToken { name: "other".into(), token_sha256: [7; 32] }, AdminToken { name: "ops".into(), token_sha256: hash }]);
        assert_eq!(tokens.name_of(text).as_deref(), Some("ops"));
        let hex: String = hash.iter().map(|byte| format!("{byte:02x}")).collect();
        assert_eq!(tokens.name_of(&hex), None);
        assert_eq!(tokens.name_of(""), None);
        assert_eq!(tokens.name_of("secret-token-tex"), None);
        tokens.replace(Vec::new());
        assert_eq!(tokens.name_of(text), None, "a replaced set no longer knows it");
    }
}
