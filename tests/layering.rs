//! The layering of the code, held by a test: the domain and the store never reach up into the request
//! layer (`api`) or the process wiring (`daemon`), and the transports reach the handlers only
//! through `api`. A `use crate::api` added below `api/` fails here, with the file and line.

use std::path::Path;

/// Modules that may import what (by the first path segment after `crate::`).
fn forbidden_for(file: &str) -> &'static [&'static str] {
    let top = file.split('/').next().unwrap_or("").trim_end_matches(".rs");
    match top {
        // The binary, the CLI and the wiring sit on top of everything.
        "main" | "lib" | "cli" | "daemon" => &[],
        // Handlers and the MQTT bridge serve requests; they never drive the process. Plant mode is
        // a transport too: other gateways' requests (remote terminate, the plant's lock) reach this
        // gateway's handlers through it, and the seat plan reaches it only through a trait
        // (`sessions::PlantSeats`).
        "api" | "mqtt" | "plant" => &["daemon", "cli"],
        // The fuzz entry points drive the transports' parsing only.
        "fuzz" => &["daemon", "cli", "api"],
        // Everything else is domain, store or a leaf.
        _ => &["api", "daemon", "cli", "mqtt"],
    }
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn nothing_below_api_imports_api_or_daemon() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut found = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/");
        let forbidden = forbidden_for(&rel);
        let text = std::fs::read_to_string(f).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for m in forbidden {
                if code.contains(&format!("crate::{m}::")) || code.contains(&format!("crate::{m};")) {
                    found.push(format!("src/{rel}:{}: uses crate::{m}: {}", n + 1, line.trim()));
                }
            }
        }
    }
    assert!(found.len() < files.len(), "sanity");
    assert!(found.is_empty(), "imports against the layering:\n{}", found.join("\n"));
}
