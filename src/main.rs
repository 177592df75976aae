//! The `gatewarden` binary: parse the command line, then run the daemon or one CLI command.

use clap::Parser;
use gatewarden::cli::{self, Cli, Command, EXIT_FAILED, EXIT_OK, EXIT_USAGE};
use gatewarden::daemon::{self, ServeOptions, logging};

fn main() {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Serve { config, admin_password_file } => {
            serve(ServeOptions { config_path: config, admin_password_file })
        }
        _ => cli::run(cli),
    };
    std::process::exit(code);
}

fn serve(opts: ServeOptions) -> i32 {
    let config = match daemon::load_config(opts.config_path.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("gatewarden: bad config: {e}");
            return EXIT_USAGE;
        }
    };
    let log = logging::init(&config.daemon.log_level);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return EXIT_FAILED;
        }
    };
    match runtime.block_on(daemon::run(config, opts, log)) {
        Ok(()) => EXIT_OK,
        Err(e) => {
            tracing::error!("gatewarden cannot start: {e}");
            EXIT_FAILED
        }
    }
}
