//! `gatewarden generate ...` (hidden): writes the man pages and the shell completions the .deb ships,
//! from the same clap definitions that print `--help`, so the three cannot drift apart. Called at
//! package time by cross/build.sh --deb; nothing here talks to the daemon.

use super::{Cli, CliError};
use clap::{CommandFactory, Subcommand};
use clap_complete::Shell;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

#[derive(Subcommand, Debug)]
pub enum GenerateCommand {
    /// Write the man pages (gatewarden.1 and one per subcommand; roff, uncompressed) into DIR
    Man {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// Write the bash (gatewarden), zsh (_gatewarden) and fish (gatewarden.fish) completions into DIR
    Completions {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

const BIN: &str = "gatewarden";

/// Prints the files written, one a line in human output.
pub fn generate(command: GenerateCommand) -> Result<Value, CliError> {
    let written = match command {
        GenerateCommand::Man { dir } => man(&dir)?,
        GenerateCommand::Completions { dir } => completions(&dir)?,
    };
    Ok(json!(written.iter().map(|p| p.display().to_string()).collect::<Vec<_>>()))
}

fn man(dir: &Path) -> Result<Vec<PathBuf>, CliError> {
    // gatewarden.1, whose SUBCOMMANDS section lists every visible command with its about line, and one
    // page per (sub)command it points at: gatewarden-role-grant.1, ... (what clap_mangen::generate_to
    // writes, keeping the paths). `help` is clap's own and has nothing to say in a man page.
    fn pages(cmd: clap::Command, dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned() {
            pages(sub, dir, out)?;
        }
        out.push(clap_mangen::Man::new(cmd).generate_to(dir)?);
        Ok(())
    }
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    std::fs::create_dir_all(dir).map_err(|e| CliError::Failed(format!("{}: {e}", dir.display())))?;
    let mut written = Vec::new();
    pages(cmd, dir, &mut written).map_err(|e| CliError::Failed(format!("man pages in {}: {e}", dir.display())))?;
    Ok(written)
}

fn completions(dir: &Path) -> Result<Vec<PathBuf>, CliError> {
    // The names each shell's package looks for under its vendor completion directory.
    [(Shell::Bash, BIN.to_string()), (Shell::Zsh, format!("_{BIN}")), (Shell::Fish, format!("{BIN}.fish"))]
        .into_iter()
        .map(|(shell, name)| {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), BIN, &mut script);
            write(&dir.join(name), &script)
        })
        .collect()
}

fn write(path: &Path, bytes: &[u8]) -> Result<PathBuf, CliError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| CliError::Failed(format!("{}: {e}", parent.display())))?;
    }
    std::fs::write(path, bytes).map_err(|e| CliError::Failed(format!("{}: {e}", path.display())))?;
    Ok(path.to_path_buf())
}
