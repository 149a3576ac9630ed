use clap::Parser;
use kehoach::cli::{self, args::Cli};
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
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_env("KEHOACH_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn")))
        .with_writer(std::io::stderr)
        .init();
    let args = Cli::parse();
    if let Err(e) = cli::run(args).await {
        eprintln!("lỗi: {e}");
        std::process::exit(e.exit_code());
    }
}
