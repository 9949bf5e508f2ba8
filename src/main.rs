//! `trustgate`: parses arguments, starts telemetry, runs a subcommand, maps errors to exit codes.

use std::process::ExitCode;

use clap::Parser;
use trustgate::cli::{self, exit, Cli, Command, LogFormat};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format, matches!(cli.command, Command::Serve(_)));
    // One TLS provider for the whole process (rustls refuses to guess between two).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(anyhow::Error::new(e).context("starting the async runtime")),
    };
    let result: anyhow::Result<ExitCode> = runtime.block_on(async {
        Ok(match cli.command {
            Command::Serve(args) => cli::serve(args).await.map(|()| ExitCode::SUCCESS)?,
            Command::Verify(args) => cli::verify(args).await?,
            Command::Evaluate(args) => cli::evaluate(args).await?,
            Command::Crds(args) => cli::crds(args).map(|()| ExitCode::SUCCESS)?,
            Command::VerifyBundle(args) => cli::verify_bundle(args)?,
        })
    });
    result.unwrap_or_else(fail)
}

fn fail(e: anyhow::Error) -> ExitCode {
    eprintln!("trustgate: error: {e:#}");
    ExitCode::from(exit::ERROR)
}

fn init_logging(format: LogFormat, serving: bool) {
    use tracing_subscriber::EnvFilter;
    // The server logs each decision at info; the CLI prints its answer and logs only problems.
    let default = if serving { "info" } else { "warn" };
    let filter = EnvFilter::try_from_env("TRUSTGATE_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
}
