//! `settings.get` / `settings.set`: plant-level key/value settings that HMIs read (display names,
//! shift plans, anything the integrator defines). Reading needs an account; writing needs
//! `settings.manage`. Values are any JSON.

use super::auth::Caller;
use super::{Ctx, params};
use crate::protocol::ApiError;
use crate::store::audit::{self, Outcome};
use crate::store::{now_ms, outbox};
use rusqlite::{OptionalExtension, params};
use serde::Deserialize;
use serde_json::{Value, json};

fn validate_key(key: &str) -> Result<(), ApiError> {
    let ok = !key.is_empty()
        && key.len() <= 128
        && key.split('.').all(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_alphanumeric() || "_-".contains(c)));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!("setting key {key:?} is not valid: dotted words like plant.name")))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GetParams {
    key: Option<String>,
}

pub fn get(ctx: &Ctx, caller: &Caller, p: Value) -> Result<Value, ApiError> {
    let p: GetParams = params("settings.get", &p)?;
    if caller.subject().is_none() {
        return Err(ApiError::unauthenticated("settings.get needs credentials"));
    }
    let conn = &ctx.store().conn;
    match p.key {
        Some(key) => {
            let v: Option<(String, i64)> = conn
                .prepare_cached("SELECT value, updated_at FROM settings WHERE key = ?1")?
                .query_row([&key], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let (value, updated_at) = v.ok_or_else(|| ApiError::not_found(format!("no setting {key:?}")))?;
            Ok(
                json!({"key": key, "value": serde_json::from_str::<Value>(&value).unwrap_or(Value::Null), "updated_at": updated_at}),
            )
        }
        None => {
            let mut st = conn.prepare_cached("SELECT key, value, updated_at FROM settings ORDER BY key")?;
            let rows = st.query_map([], |r| {
                let value: String = r.get(1)?;
                Ok(json!({"key": r.get::<_, String>(0)?, "value": serde_json::from_str::<Value>(&value).unwrap_or(Value::Null),
                          "updated_at": r.get::<_, i64>(2)?}))
            })?;
            Ok(Value::Array(rows.collect::<Result<_, _>>()?))
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetParams {
    key: String,
    value: Value,
}

pub fn set(ctx: &Ctx, caller: &Caller, p: Value) -> Result<Value, ApiError> {
    let p: SetParams = params("settings.set", &p)?;
    // Plant settings are plant state: frozen by the supervisor lock for everyone outside it.
    validate_key(&p.key)?;
    let text = p.value.to_string();
    if text.len() > 16 * 1024 {
        return Err(ApiError::bad_request("setting value is larger than 16 KiB"));
    }
    ctx.write(|tx| {
        tx.execute(
            "INSERT INTO settings (key, value, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            params![p.key, text, now_ms()],
        )?;
        audit::record(
            tx,
            &caller.actor(),
            "settings.set",
            Some(&p.key),
            Outcome::Ok,
            Some(&json!({"value": p.value})),
        )?;
        outbox::event(tx, "settings.changed", &json!({"key": p.key, "value": p.value}))?;
        Ok::<_, ApiError>(())
    })?;
    Ok(json!({"key": p.key, "value": p.value}))
}
