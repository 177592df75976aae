//! Entry points for the fuzz targets in `fuzz/` (cargo-fuzz, libFuzzer) and for the test that
//! replays their corpus on every `cargo test` (tests/fuzz_corpus.rs). Each takes arbitrary bytes and
//! must return without panicking; besides "no panic", each checks a property of what it parsed.

use crate::authz::glob::{self, Glob};
use crate::authz::{Access, Grant, Index, Policy, Selector, Subject, SubjectKey};
use crate::config::Config;
use crate::csvfile;
use crate::mqtt::rpc;
use crate::protocol::Request;

/// The request decoder: anything decodes or is refused; what decodes survives a re-encoding.
pub fn request(data: &[u8]) {
    let Ok(req) = Request::decode(data) else { return };
    let again = serde_json::to_vec(&req).expect("a decoded request encodes");
    let back = Request::decode(&again).expect("a re-encoded request decodes");
    assert_eq!(back.method, req.method);
    assert_eq!(back.id, req.id);
    let text = |r: &Request| r.params.as_deref().map(|p| p.get().to_string());
    assert_eq!(text(&back), text(&req));
}

/// The CSV importer: every accepted row has a valid resource id and a line number past the header;
/// a refused file names at least one problem.
pub fn csv(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for parsed in [csvfile::parse_inventory(text), csvfile::parse_list(text)] {
        match parsed {
            Ok(sheet) => {
                assert!(!sheet.kind.is_empty());
                for row in &sheet.rows {
                    assert!(row.line >= 2, "row on line {}", row.line);
                    csvfile::validate_resource_id(&row.id).expect("accepted ids are valid");
                }
            }
            Err(errors) => assert!(!errors.is_empty(), "a refusal names its problems"),
        }
    }
}

/// The config loader: parsed or refused with a message; what parses passes its own check.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match Config::parse(text, "fuzz.toml") {
        Ok(c) => {
            c.check().expect("a parsed config passes check");
            // The broker as `status` shows it parses back to the one the bridge uses.
            let shown = crate::config::BrokerUrl::parse(&c.mqtt.url);
            assert_eq!(shown.as_ref(), Ok(&c.mqtt.broker), "{}", c.mqtt.url);
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

/// The selector parser and glob matcher: a parsed selector round-trips through its text, and
/// compiling and matching it against resources made from the same input never panics.
pub fn selector(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (pattern, resource) = text.split_once('\n').unwrap_or((text, text));
    let Ok(sel) = Selector::parse(pattern) else { return };
    assert_eq!(Selector::parse(&sel.as_text()).as_ref(), Ok(&sel), "round trip of {pattern:?}");
    let index = one_grant_index(sel);
    for r in [resource, pattern, "", "/", "a/b/c"] {
        let _ = index.check(SubjectKey::User(1), "p", Access::Read, r, 0);
    }
}

/// Selector-vs-resource matching (input: pattern, newline, resource). The glob matcher's work stays
/// within `4 x (|pattern| + 1) x (|resource| + 1)` steps on any input; it answers what the plain
/// recursive rules answer (on inputs small enough for them); and for a selector that parses and a
/// canonical id, the index allows exactly when the glob matches.
pub fn glob_match(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (pattern, resource) = text.split_once('\n').unwrap_or((text, ""));
    // Four times the limits: past them the API refuses the input before any matching.
    if pattern.len() > 4 * crate::authz::MAX_SELECTOR_LEN || resource.len() > 4 * crate::authz::MAX_RESOURCE_ID_LEN {
        return;
    }
    let compiled = Glob::compile(pattern);
    let (matched, work) = compiled.work(resource);
    let bound = 4 * (pattern.len() as u64 + 1) * (resource.len() as u64 + 1);
    assert!(work <= bound, "{work} steps > {bound} for {pattern:?} vs {resource:?}");
    assert_eq!(compiled.matches(resource), matched);
    if pattern.split('/').count() <= 8 && pattern.len() <= 24 && resource.len() <= 32 {
        assert_eq!(matched, glob::reference(pattern, resource), "{pattern:?} vs {resource:?}");
    }
    let Ok(selector @ Selector::Glob(_)) = Selector::parse(pattern) else { return };
    if crate::authz::validate_resource_id(resource).is_err() {
        return;
    }
    let index = one_grant_index(selector);
    assert_eq!(index.check(SubjectKey::User(1), "p", Access::Read, resource, 0).is_allowed(), matched);
}

/// An index holding one user (id 1) with one read grant of permission `p` on `selector`.
fn one_grant_index(selector: Selector) -> Index {
    let grant = Grant { id: 1, permission: "p".into(), read: true, write: false, selector, effect: Default::default() };
    let subject = Subject {
        key: SubjectKey::User(1),
        name: "u".into(),
        enabled: true,
        expires_at: None,
        roles: vec![],
        direct: vec![grant],
        superuser: false,
        owner: None,
    };
    Index::build(&Policy { subjects: vec![subject], ..Default::default() })
}

/// MQTT request handling up to the point of execution: the input is `topic \n response topic \n
/// payload` (an empty response topic means none). Whatever it is, a reply may only go below the
/// requester's own `hmi/<client>` or `<prefix>/rpc/reply/<client>`, plain `rpc/request` is never
/// admitted, and an admitted client id is one the broker ACL can prove.
pub fn mqtt_request(data: &[u8]) {
    const PREFIX: &str = "gatewarden/site1";
    let mut parts = data.splitn(3, |&b| b == b'\n');
    let topic = parts.next().unwrap_or_default();
    let response_topic = parts.next().and_then(|t| std::str::from_utf8(t).ok()).filter(|t| !t.is_empty());
    let payload = parts.next().unwrap_or_default();
    let route = rpc::route(PREFIX, topic, response_topic, payload, 4096);
    if topic == format!("{PREFIX}/rpc/request").as_bytes() {
        assert_eq!(route.client, None, "plain rpc/request admitted");
    }
    match (&route.client, &route.reply_topic) {
        (None, reply) => assert!(reply.is_none() && !route.executes, "a dropped request has no reply: {route:?}"),
        (Some(client), reply) => {
            assert!(rpc::valid_client_id(client), "client {client:?}");
            assert!(topic.ends_with(client.as_bytes()), "client {client:?} is not the topic's last level");
            if let Some(reply) = reply {
                let own = [format!("hmi/{client}"), format!("{PREFIX}/rpc/reply/{client}")]
                    .iter()
                    .any(|root| reply == root || reply.starts_with(&format!("{root}/")));
                assert!(own, "reply to {reply:?} for {client:?}");
                assert!(rpc::is_own_reply_topic(PREFIX, client, reply));
            }
        }
    }
}
