#![no_main]
//! See gatewarden::fuzz::config for what this target checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| gatewarden::fuzz::config(data));
