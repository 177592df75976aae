#![no_main]
//! See gatewarden::fuzz::mqtt_request for what this target checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| gatewarden::fuzz::mqtt_request(data));
