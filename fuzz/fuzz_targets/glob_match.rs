#![no_main]
//! See gatewarden::fuzz::glob_match for what this target checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| gatewarden::fuzz::glob_match(data));
