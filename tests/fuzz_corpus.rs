//! Replays the fuzz corpus (fuzz/corpus/<target>/) and every crash the fuzzer ever found
//! (fuzz/regressions/<target>/) through the same entry points the fuzz targets use, so a fixed crash
//! stays fixed and the seeds keep passing without a nightly toolchain.

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut n = 0;
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else { continue };
        for entry in entries {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| run(&data));
            assert!(outcome.is_ok(), "{target}: {} panicked", path.display());
            n += 1;
        }
    }
    assert!(n > 0, "no corpus for {target}");
}

#[test]
fn request_decode() {
    replay("request_decode", gatewarden::fuzz::request);
}

#[test]
fn csv_import() {
    replay("csv_import", gatewarden::fuzz::csv);
}

#[test]
fn config_load() {
    replay("config_load", gatewarden::fuzz::config);
}

#[test]
fn selector_parse() {
    replay("selector_parse", gatewarden::fuzz::selector);
}

#[test]
fn glob_match() {
    replay("glob_match", gatewarden::fuzz::glob_match);
}

#[test]
fn mqtt_request() {
    replay("mqtt_request", gatewarden::fuzz::mqtt_request);
}
