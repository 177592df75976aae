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
    daemon::tune_allocator();
    // The blocking pool runs the password checks, each holding argon2's memory (19 MiB by default)
    // while it works. One thread per core keeps logins as fast as the CPU allows and bounds that memory
    // however many clients log in at once; the rest wait their turn.
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let runtime = match tokio::runtime::Builder::new_multi_thread().max_blocking_threads(cores).enable_all().build() {
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
