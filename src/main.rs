use clap::Parser;
use kehoach::cli::{
    self,
    args::{Cli, LogFormat},
};
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() {
    // Like other command-line tools, stop quietly when the reader of our
    // output goes away (`kehoach audit history … | head`).
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of a signal, before any thread
    // of ours could be writing.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let args = Cli::parse();
    init_logs(args.log_format);
    if let Err(e) = cli::run(args).await {
        eprintln!("lỗi: {e}");
        std::process::exit(e.exit_code());
    }
}

/// Log lines on standard error. Colour codes only where a person watches a
/// terminal and has not asked for none (`NO_COLOR`, https://no-color.org):
/// a log file or a collector gets plain text, or JSON with `--log-format json`.
fn init_logs(format: LogFormat) {
    let filter = EnvFilter::try_from_env("KEHOACH_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().with_current_span(false).init(),
        LogFormat::Text => {
            let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
            builder.with_ansi(std::io::stderr().is_terminal() && !no_color).init()
        }
    }
}
