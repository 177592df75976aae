//! `gatewarden directory test USER [--password-stdin]` and `gatewarden directory sync`: the plant
//! directory as the daemon sees it, for the technician setting it up.

use super::accounts::{read_secret, stdin_lines};
use super::{CliError, Client, Global};
use crate::contract::system::{DirectorySync, DirectoryTest};
use clap::Subcommand;
use serde_json::Value;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

#[derive(Subcommand, Debug)]
pub enum DirectoryCommand {
    /// Ask the directory about a person as a login would: bind, search, DN, groups, mapped roles and
    /// timings (needs settings.manage). Nothing is created.
    Test {
        user: String,
        /// Also try a bind as the person with a password read from standard input
        #[arg(long)]
        password_stdin: bool,
    },
    /// Bring every directory person up to date now: roles; people gone or disabled in the directory
    /// are disabled here and their sessions end (needs users.manage)
    Sync,
}

pub fn directory(global: &Global, cmd: DirectoryCommand) -> Result<Value, CliError> {
    match cmd {
        DirectoryCommand::Test { user, password_stdin } => {
            let password = if password_stdin { Some(read_secret(true, "Password", &mut stdin_lines())?) } else { None };
            Client::connect(global)?.send(&DirectoryTest { user, password })
        }
        DirectoryCommand::Sync => {
            // The daemon answers once the sync is done; on a terminal a spinner shows the wait.
            let progress = (!global.json && std::io::stderr().is_terminal()).then(|| {
                let bar = indicatif::ProgressBar::new_spinner();
                bar.set_style(
                    indicatif::ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
                );
                bar.set_message("syncing directory people (a search each)");
                bar.enable_steady_tick(Duration::from_millis(120));
                bar
            });
            let started = Instant::now();
            let result = Client::connect(global).and_then(|mut c| c.send(&DirectorySync {}));
            if let Some(bar) = progress {
                bar.finish_and_clear();
                if let Ok(v) = &result {
                    eprintln!(
                        "{} people looked at, {} updated, {} disabled in {:.1} s",
                        v["people"],
                        v["updated"],
                        v["disabled"],
                        started.elapsed().as_secs_f64()
                    );
                }
            }
            result
        }
    }
}
