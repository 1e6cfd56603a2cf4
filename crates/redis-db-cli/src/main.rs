#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod check;
mod doctor;
mod facts;
mod keepalive;
mod output;
mod probe;
mod settings;
mod status;
mod wait_ready;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit code of a command line that clap rejects (sysexits' EX_USAGE): kept apart from
/// 1 and 2, which `status` gives meanings of their own.
pub const EXIT_USAGE: u8 = 64;
/// Exit code when the configuration cannot be found or is invalid (sysexits' EX_CONFIG),
/// for the commands that go on to talk to a server.
pub const EXIT_CONFIG: u8 = 78;
/// Exit code when the tool itself cannot run (sysexits' EX_SOFTWARE).
pub const EXIT_INTERNAL: u8 = 70;

#[derive(Parser)]
#[command(
    name = "redis-db",
    version,
    about = "Check a redis-databases.yaml, see every database, wait for readiness",
    long_about = None,
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate config files with the rules and messages of the build (exit 1 when invalid)
    Check(check::CheckArgs),
    /// One row per database: state, latency, keys, loading, circuit; then server facts
    /// (exit 0 all healthy, 1 any degraded, 2 any failed)
    Status(status::StatusArgs),
    /// Return once every database answers, waiting out LOADING (exit 1 after the timeout)
    WaitReady(wait_ready::WaitArgs),
    /// The checks an operator would run by hand, each with a verdict and a fix (exit 1 on a failure)
    Doctor(doctor::DoctorArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return ExitCode::from(usage(&error)),
    };
    let code = match cli.command {
        // `check` talks to no server: no runtime needed.
        Command::Check(args) => check::run(&args),
        Command::Status(args) => with_runtime(|| status::run(args)),
        Command::WaitReady(args) => with_runtime(|| wait_ready::run(args)),
        Command::Doctor(args) => with_runtime(|| doctor::run(args)),
    };
    ExitCode::from(code)
}

/// Prints clap's message: help and version go to stdout and succeed; a rejection may echo
/// what was typed, a URL with a password included, so its text is redacted first.
fn usage(error: &clap::Error) -> u8 {
    let text = error.render().to_string();
    if error.use_stderr() {
        output::err(&output::redact_urls(&text));
        EXIT_USAGE
    } else {
        output::out(&text);
        0
    }
}

fn with_runtime<F, Fut>(command: F) -> u8
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = u8>,
{
    match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(command()),
        Err(error) => {
            output::err(&format!(
                "redis-db: cannot start the async runtime: {error}\n"
            ));
            EXIT_INTERNAL
        }
    }
}
