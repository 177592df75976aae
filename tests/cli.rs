//! The packaging side of the CLI: the hidden `gatewarden generate` writes the man pages and shell
//! completions the .deb ships. Checked against what `gatewarden --help` lists, so a command that
//! `--help` shows but the man page or the completions lose fails here, not on a panel PC.

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_gatewarden");

fn run(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "gatewarden {args:?} exited {:?}: {stderr}", out.status.code());
    String::from_utf8(out.stdout).unwrap()
}

/// The top-level commands under "Commands:" in `gatewarden --help`, without clap's own `help`.
fn commands_in_help() -> Vec<String> {
    let help = run(&["--help"]);
    let listing = help.split("Commands:\n").nth(1).expect("--help has a Commands: section");
    let names: Vec<String> = listing
        .lines()
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect();
    assert!(names.len() >= 20 && names.iter().any(|n| n == "who-can"), "{names:?}");
    names
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn generated_man_pages_name_every_command_in_help() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("man");
    run(&["generate", "man", out.to_str().unwrap()]);

    let main = read(&out.join("gatewarden.1"));
    assert!(main.starts_with(".ie") && main.contains(".TH gatewarden 1"), "not a roff page:\n{main}");
    for name in commands_in_help() {
        // roff escapes the dash; the page it points at exists and has a NAME line with a description.
        let man_name = name.replace('-', "\\-");
        assert!(main.contains(&format!("gatewarden\\-{man_name}(1)")), "gatewarden.1 does not list {name}");
        let page = read(&out.join(format!("gatewarden-{name}.1")));
        assert!(page.contains(&format!(".SH NAME\ngatewarden\\-{man_name} \\- ")), "gatewarden-{name}.1 NAME:\n{page}");
    }
    // Nested commands get their own page; the hidden generate command gets none.
    assert!(out.join("gatewarden-role-grant.1").is_file());
    assert!(!main.contains("generate") && !out.join("gatewarden-generate.1").exists());
}

#[test]
fn generated_completions_exist_for_bash_zsh_and_fish() {
    let dir = tempfile::tempdir().unwrap();
    run(&["generate", "completions", dir.path().to_str().unwrap()]);
    let commands = commands_in_help();
    for file in ["gatewarden", "_gatewarden", "gatewarden.fish"] {
        let script = read(&dir.path().join(file));
        for name in &commands {
            assert!(script.contains(name.as_str()), "{file} does not mention {name}");
        }
        // A nested command and a global option too.
        assert!(script.contains("grant") && script.contains("socket"), "{file}");
    }
}
