//! `settings.get` / `settings.set`: plant-level key/value settings that HMIs read (display names,
//! shift plans, anything the integrator defines). Reading needs an account; writing needs
//! `settings.manage`. Values are any JSON.

use super::Ctx;
use super::auth::Caller;
use crate::contract::Method;
use crate::contract::system::{SettingChanged, SettingsGet, SettingsGot, SettingsSet};
use crate::protocol::ApiError;
use crate::store::audit::{self, Outcome};
use crate::store::{outbox, settings};
use serde_json::json;

/// Longest setting value, as JSON text.
pub(crate) const MAX_VALUE_BYTES: usize = 16 * 1024;

pub(crate) fn validate_key(key: &str) -> Result<(), ApiError> {
    let ok = !key.is_empty()
        && key.len() <= 128
        && key.split('.').all(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_alphanumeric() || "_-".contains(c)));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "setting key {:?} is not valid: dotted words like plant.name",
            crate::logs::cut(key)
        )))
    }
}

pub fn get(ctx: &Ctx, _caller: &Caller, p: SettingsGet) -> Result<SettingsGot, ApiError> {
    let conn = &ctx.store().conn;
    match p.key {
        Some(key) => settings::get(conn, &key)?
            .map(SettingsGot::One)
            .ok_or_else(|| ApiError::not_found(format!("no setting {:?}", crate::logs::cut(&key)))),
        None => Ok(SettingsGot::All(settings::list(conn)?)),
    }
}

pub fn set(ctx: &Ctx, caller: &Caller, p: SettingsSet) -> Result<SettingChanged, ApiError> {
    validate_key(&p.key)?;
    let text = p.value.to_string();
    if text.len() > MAX_VALUE_BYTES {
        return Err(ApiError::bad_request("setting value is larger than 16 KiB"));
    }
    let actor = caller.actor();
    ctx.write(|tx| {
        settings::set(tx, &p.key, &text)?;
        audit::record(tx, &actor, SettingsSet::NAME, Some(&p.key), Outcome::Ok, Some(&json!({"value": p.value})))?;
        outbox::emit(tx, &SettingChanged { key: p.key.clone(), value: p.value.clone(), by: Some(actor.who.clone()) })?;
        Ok::<_, ApiError>(())
    })?;
    Ok(SettingChanged { key: p.key, value: p.value, by: None })
}
