//! The request protocol shared by the daemon, the CLI and the MQTT bridge.
//!
//! A request is one JSON object: `{"id": ..., "method": "...", "params": {...}, "auth": {...}}`.
//! A reply is `{"id": ..., "result": ...}` or `{"id": ..., "error": {"code": "...", "message": "..."}}`.
//! On the control socket each request and each reply is one line (newline-delimited JSON); a line may
//! not exceed the configured maximum request size.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::fmt;

/// Credentials a request may carry. Exactly one form per request.
#[derive(Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(untagged, deny_unknown_fields)]
pub enum Auth {
    Token { token: String },
    Key { key: String },
    Password { user: String, password: String },
}

impl fmt::Debug for Auth {
    // Never print a secret, even in debug logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Token { .. } => f.write_str("Auth::Token(<redacted>)"),
            Auth::Key { .. } => f.write_str("Auth::Key(<redacted>)"),
            Auth::Password { user, .. } => write!(f, "Auth::Password({user}, <redacted>)"),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Request {
    #[serde(default)]
    pub id: Value,
    pub method: String,
    /// The method's params, an object; absent or `null`: all defaults.
    // Kept as the request's own text: a handler decodes it straight into its params type, with no
    // tree of values in between (a batch of a thousand questions would cost that tree again).
    #[serde(default)]
    #[schemars(with = "Option<Value>")]
    pub params: Option<Box<RawValue>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<Auth>,
    /// MQTT 3.1.1 clients name the topic the reply goes to here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
}

/// A request as a transport decoded it: the request, or the `bad_request` to answer with the `id`
/// that could be read.
pub type Decoded = Result<Request, Box<(Value, ApiError)>>;

impl Request {
    /// Decodes one request. On failure returns the error together with whatever `id` could be read,
    /// so the reply can still be correlated by the caller.
    pub fn decode(bytes: &[u8]) -> Decoded {
        Self::decode_with_reply_to(bytes).1
    }

    /// [`Request::decode`] for an MQTT payload, with the topic the reply goes to (`reply_to`, read
    /// from a refused request too when it is a string). A refused request is read again, once, as a
    /// tree, to say why and to find its `id` and `reply_to`: a good request is parsed once.
    pub fn decode_with_reply_to(bytes: &[u8]) -> (Option<String>, Decoded) {
        let error = match serde_json::from_slice::<Request>(bytes) {
            Ok(req) => return (req.reply_to.clone(), Ok(req)),
            Err(e) => e,
        };
        let value = match serde_json::from_slice::<Value>(bytes) {
            Ok(value) => value,
            Err(e) => {
                let refused = ApiError::bad_request(format!("request is not valid JSON: {e}"));
                return (None, Err(Box::new((Value::Null, refused))));
            }
        };
        let id = value.get("id").cloned().unwrap_or(Value::Null);
        let message = match value.is_object() {
            true => format!("malformed request: {error}"),
            false => "request must be a JSON object".to_string(),
        };
        let reply_to = value.get("reply_to").and_then(Value::as_str).map(str::to_string);
        (reply_to, Err(Box::new((id, ApiError::bad_request(message)))))
    }
}

/// The public error codes of the contract. Their serialized names never change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    Unauthenticated,
    Forbidden,
    NotFound,
    Conflict,
    InvalidCredentials,
    AccountDisabled,
    AccountLocked,
    LicenseLimitReached,
    SessionTerminated,
    SessionExpired,
    SupervisorLocked,
    /// The session holds a read-only seat (`license.read_only_seats`): its write-class decisions and
    /// write-class methods are refused.
    ReadOnlySeat,
    ProtectedAccount,
    SelfDelete,
    RegistrationDisabled,
    /// Over a bound that frees up by itself, with `retry_after_ms`: an MQTT client's `mqtt.rpc_rate` /
    /// `rpc_burst` or the intake, the password-check queue, the control socket's connection slots.
    /// Never `internal`: nothing failed, and the caller can come back.
    RateLimited,
    /// The CLI could not reach the daemon, or the daemon's socket is not one it trusts: nothing was
    /// sent or done. Never sent by the daemon itself.
    Unavailable,
    Internal,
}

impl ErrorCode {
    /// Every code, in the order the docs list them.
    pub const ALL: [ErrorCode; 19] = [
        ErrorCode::BadRequest,
        ErrorCode::Unauthenticated,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::Conflict,
        ErrorCode::InvalidCredentials,
        ErrorCode::AccountDisabled,
        ErrorCode::AccountLocked,
        ErrorCode::LicenseLimitReached,
        ErrorCode::SessionTerminated,
        ErrorCode::SessionExpired,
        ErrorCode::SupervisorLocked,
        ErrorCode::ReadOnlySeat,
        ErrorCode::ProtectedAccount,
        ErrorCode::SelfDelete,
        ErrorCode::RegistrationDisabled,
        ErrorCode::RateLimited,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
    ];

    /// What the code means to a caller, and the fields it carries beside `code` and `message`.
    pub fn meaning(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "the request or a param is malformed or out of bounds; the message names it",
            ErrorCode::Unauthenticated => "no credentials, or credentials that are not (or no longer) valid",
            ErrorCode::Forbidden => "authenticated, but without the permission (or above the delegation ceiling)",
            ErrorCode::NotFound => "the named user, role, key, resource, group, session or setting does not exist",
            ErrorCode::Conflict => "the name is taken, or the change contradicts what exists",
            ErrorCode::InvalidCredentials => "wrong user name or password (the same answer for unknown names)",
            ErrorCode::AccountDisabled => "the account is disabled or expired",
            ErrorCode::AccountLocked => "too many failed logins; `retry_after_s` says when to try again",
            ErrorCode::LicenseLimitReached => {
                "no licence seat free for the caller; `limit`, `in_use`, `free` and `pools` say how they are used"
            }
            ErrorCode::SessionTerminated => "a supervisor ended this session; `by` (an actor) and `reason`",
            ErrorCode::SessionExpired => "the session was closed or missed its heartbeats: open a new one",
            ErrorCode::SupervisorLocked => "a supervisor lock freezes writes for the caller; `lock` is the lock",
            ErrorCode::ReadOnlySeat => "the session holds a read-only licence seat: it may read, never write",
            ErrorCode::ProtectedAccount => "the built-in admin cannot be changed that way",
            ErrorCode::SelfDelete => "a caller cannot delete its own account",
            ErrorCode::RegistrationDisabled => "self-registration is off on this gateway",
            ErrorCode::RateLimited => "over a bound that frees by itself; `retry_after_ms` says when to come back",
            ErrorCode::Unavailable => "(CLI only) the daemon could not be reached; nothing was sent",
            ErrorCode::Internal => "the daemon failed; the log says why, and nothing was half-applied",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::InvalidCredentials => "invalid_credentials",
            ErrorCode::AccountDisabled => "account_disabled",
            ErrorCode::AccountLocked => "account_locked",
            ErrorCode::LicenseLimitReached => "license_limit_reached",
            ErrorCode::SessionTerminated => "session_terminated",
            ErrorCode::SessionExpired => "session_expired",
            ErrorCode::SupervisorLocked => "supervisor_locked",
            ErrorCode::ReadOnlySeat => "read_only_seat",
            ErrorCode::ProtectedAccount => "protected_account",
            ErrorCode::SelfDelete => "self_delete",
            ErrorCode::RegistrationDisabled => "registration_disabled",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }
}

/// An error as it travels on the wire: a code, a human message, and code-specific fields
/// (`retry_after_s`, `limit`, `in_use`, ...) flattened beside them.
#[derive(Debug, Clone, Serialize, Deserialize, thiserror::Error, schemars::JsonSchema)]
#[error("{}: {message}", code.as_str())]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    #[serde(flatten)]
    pub data: Map<String, Value>,
    /// How long the transport waits before sending this error (the growing delay after a failed
    /// login). Never on the wire.
    #[serde(skip)]
    pub delay_ms: u64,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError { code, message: message.into(), data: Map::new(), delay_ms: 0 }
    }
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.data.insert(key.to_string(), value.into());
        self
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Conflict, message)
    }
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthenticated, message)
    }
    /// For failures the caller cannot fix. The detail goes to the log, not to the wire.
    pub fn internal(detail: impl fmt::Display) -> Self {
        tracing::error!("internal error: {detail}");
        Self::new(ErrorCode::Internal, "internal error; see the gatewarden log")
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(e: rusqlite::Error) -> Self {
        ApiError::internal(format!("database: {e}"))
    }
}

/// A reply: `result` or `error`, never both, with the request's `id`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Response {
    #[serde(default)]
    pub id: Value,
    /// The method's result, kept as the JSON text its handler's type serialized to: written into the
    /// reply as is, never built as a tree of values first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Value>")]
    pub result: Option<Box<RawValue>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
}

impl Response {
    /// The reply as JSON text, ending in `end` (a newline on the control socket, nothing over MQTT).
    /// Sized for the result up front: a batch's reply is tens of kilobytes, and a growing buffer
    /// would copy it again at each doubling.
    pub fn to_bytes(&self, end: &[u8]) -> Vec<u8> {
        let size = self.result.as_ref().map_or(0, |r| r.get().len()) + 256;
        let mut out = Vec::with_capacity(size);
        match serde_json::to_writer(&mut out, self) {
            Ok(()) => out.extend_from_slice(end),
            Err(_) => {
                out.clear();
                out.extend_from_slice(br#"{"id":null,"error":{"code":"internal","message":"unserializable reply"}}"#);
                out.extend_from_slice(end);
            }
        }
        out
    }

    pub fn from_result(id: Value, r: Result<Box<RawValue>, ApiError>) -> Self {
        match r {
            Ok(v) => Response { id, result: Some(v), error: None },
            Err(e) => Response { id, result: None, error: Some(e) },
        }
    }
    pub fn into_result(self) -> Result<Value, ApiError> {
        match (self.result, self.error) {
            (_, Some(e)) => Err(e),
            (Some(v), None) => serde_json::from_str(v.get())
                .map_err(|e| ApiError::new(ErrorCode::Internal, format!("unreadable result: {e}"))),
            (None, None) => Ok(Value::Null),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_keeps_id_of_a_malformed_request() {
        let (id, err) = *Request::decode(br#"{"id": 7, "params": {}}"#).unwrap_err();
        assert_eq!(id, Value::from(7));
        assert_eq!(err.code, ErrorCode::BadRequest);
        assert!(err.message.contains("method"), "{}", err.message);
    }

    #[test]
    fn decode_rejects_non_objects_and_garbage() {
        assert_eq!(Request::decode(b"[1,2]").unwrap_err().1.code, ErrorCode::BadRequest);
        assert_eq!(Request::decode(b"\xff\xfe").unwrap_err().1.code, ErrorCode::BadRequest);
        assert_eq!(Request::decode(b"").unwrap_err().1.code, ErrorCode::BadRequest);
    }

    #[test]
    fn auth_forms_and_redaction() {
        let r = Request::decode(br#"{"method":"x","auth":{"user":"a","password":"hunter2"}}"#).unwrap();
        let dbg = format!("{:?}", r);
        assert!(!dbg.contains("hunter2"), "{dbg}");
        assert!(matches!(r.auth, Some(Auth::Password { .. })));
        let r = Request::decode(br#"{"method":"x","auth":{"token":"t"}}"#).unwrap();
        assert!(matches!(r.auth, Some(Auth::Token { .. })));
        assert!(Request::decode(br#"{"method":"x","auth":{"nope":1}}"#).is_err());
    }

    #[test]
    fn error_serializes_with_flattened_data() {
        let e = ApiError::new(ErrorCode::LicenseLimitReached, "full").with("limit", 2).with("in_use", 2);
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["code"], "license_limit_reached");
        assert_eq!(v["limit"], 2);
        assert_eq!(v["in_use"], 2);
    }
}
