//! The licence figures: the limits a seat is planned by, the pools with their free seats (the
//! retained `license` topic, `status`, `session.show`), and the `license_limit_reached` refusal.

use super::{Full, Limits, Table};
use crate::config::{Config, LicenseConfig};
use crate::contract::sessions::{License, LicenseLimitReached, PlantLink, Pool, ReadOnlySeats, TypeSeats};
use crate::protocol::{ApiError, ErrorCode};
use crate::store::outbox;
use rusqlite::Connection;

/// The figures [`Table::plan`] decides by, from `[license]`.
pub fn limits(cfg: &LicenseConfig) -> Limits {
    Limits {
        seats: cfg.seats,
        reserved: cfg.reserved.clone(),
        share_same_host: cfg.share_same_host,
        read_only_seats: cfg.read_only_seats,
        types: cfg.types.clone(),
    }
}

/// The figures this gateway plans seats by now: `license.seats`; in plant mode the plant's seats
/// while connected (each new seat then also needs a plant seat key), `plant.offline_seats` while not.
pub fn limits_now(config: &Config, table: &Table) -> Limits {
    Limits { seats: seats_now(config, table), ..limits(&config.license) }
}

/// The seat total pools are cut from now (see [`limits_now`]).
pub fn seats_now(config: &Config, table: &Table) -> u32 {
    match &table.plant {
        None => config.license.seats,
        Some(p) if p.state == PlantLink::Connected => p.seats,
        Some(p) => p.offline_seats,
    }
}

/// The interval a client should heartbeat at: a third of the timeout, so two lost beats are survived.
pub fn heartbeat_s(cfg: &LicenseConfig) -> u64 {
    (cfg.heartbeat_timeout.0.as_secs() / 3).max(1)
}

/// The licence figures: the totals, and each seat pool with its seats, those in use and those free,
/// so a panel can tell whether its own pool has room.
pub fn license(config: &Config, table: &Table) -> License {
    let limit = seats_now(config, table);
    License {
        limit,
        in_use: table.in_use(),
        free: limit.saturating_sub(table.in_use()),
        reserved: config.license.reserved.clone(),
        sessions: table.len() as u32,
        pools: pools(config, table, |_| true),
        types: config.license.types.iter().map(|(t, &n)| type_seats(table, t, n)).collect(),
        read_only: (config.license.read_only_seats > 0)
            .then(|| read_only_seats(config.license.read_only_seats, table.read_only_use())),
        plant: table.plant.clone(),
    }
}

fn type_seats(table: &Table, client_type: &str, seats: u32) -> TypeSeats {
    let in_use = table.type_use(client_type);
    TypeSeats { client_type: client_type.to_string(), seats, in_use, free: seats.saturating_sub(in_use) }
}

fn read_only_seats(seats: u32, in_use: u32) -> ReadOnlySeats {
    ReadOnlySeats { seats, in_use, free: seats.saturating_sub(in_use) }
}

/// The seat pools `wanted` picks (by pool: `None` is the general one), the general pool first.
pub fn pools(config: &Config, table: &Table, wanted: impl Fn(Option<&str>) -> bool) -> Vec<Pool> {
    let lic = &config.license;
    let reserved: u32 = lic.reserved.values().sum();
    let general = (None, seats_now(config, table).saturating_sub(reserved));
    let named = lic.reserved.iter().map(|(role, &n)| (Some(role.as_str()), n));
    std::iter::once(general)
        .chain(named)
        .filter(|(pool, _)| wanted(*pool))
        .map(|(pool, seats)| {
            let in_use = table.pool_use(pool);
            Pool { pool: pool.map(str::to_string), seats, in_use, free: seats.saturating_sub(in_use) }
        })
        .collect()
}

/// Queues the retained `license` state, in the transaction that changed it.
pub fn publish(tx: &Connection, config: &Config, table: &Table) -> rusqlite::Result<()> {
    let payload = serde_json::to_value(license(config, table))
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    outbox::publish(tx, crate::contract::topics::LICENSE, &payload, true).map(|_| ())
}

/// `license_limit_reached`, with the figures and the pools the caller (holding `roles`) may take a
/// seat from; `show_holders` (callers who may view sessions) adds who holds the seats.
pub fn limit_reached(config: &Config, table: &Table, roles: &[String], full: &Full, show_holders: bool) -> ApiError {
    let reserved_for = if full.reserved > 0 {
        format!(" ({} of them reserved for {:?})", full.reserved, config.license.reserved.keys().collect::<Vec<_>>())
    } else {
        String::new()
    };
    let data = LicenseLimitReached {
        limit: full.limit,
        in_use: full.in_use,
        pools: pools(config, table, |pool| pool.is_none_or(|p| roles.iter().any(|r| r.eq_ignore_ascii_case(p)))),
        holders: show_holders.then(|| table.views()),
        client_type: full.type_full.as_ref().map(|(t, n)| type_seats(table, t, *n)),
        read_only: full.read_only.map(|(seats, in_use)| read_only_seats(seats, in_use)),
    };
    let mut message = match &full.type_full {
        Some((t, n)) => format!("the {n} seats licensed for clients of type {t:?} are in use"),
        None => {
            format!("all licensed seats you may take are in use: {} of {}{reserved_for}", full.in_use, full.limit)
        }
    };
    if let Some((seats, _)) = full.read_only {
        message += &format!(", and so are the {seats} read-only seats");
    }
    with_fields(ApiError::new(ErrorCode::LicenseLimitReached, message), &data)
}

/// An error with the fields of `data` beside its code and message.
pub fn with_fields(mut err: ApiError, data: &impl serde::Serialize) -> ApiError {
    if let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(data) {
        err.data.extend(fields);
    }
    err
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_list_the_general_one_first_with_what_is_free() {
        let mut config = Config::default();
        config.license.seats = 5;
        config.license.reserved = [("supervisor".to_string(), 2)].into_iter().collect();
        let table = Table::default();
        let l = license(&config, &table);
        assert_eq!((l.limit, l.in_use, l.free, l.sessions), (5, 0, 5, 0));
        let shown: Vec<(Option<&str>, u32)> = l.pools.iter().map(|p| (p.pool.as_deref(), p.free)).collect();
        assert_eq!(shown, [(None, 3), (Some("supervisor"), 2)]);
        let full = Full { limit: 5, in_use: 5, reserved: 2, type_full: None, read_only: None };
        let err = limit_reached(&config, &table, &[], &full, false);
        assert_eq!(err.data["pools"].as_array().map(Vec::len), Some(1));
        assert!(!err.data.contains_key("holders"));
    }
}
