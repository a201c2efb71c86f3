//! The `perdure` binary: `perdure serve` runs the server; `dp`, `services` and
//! `invocations` talk to a running server's admin API (`perdure::cli`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use perdure::config::{Config, LogFormat};
use perdure::server::Server;
use perdure::storage::Database;

#[derive(Parser)]
#[command(
    name = "perdure",
    version,
    about = "A durable-execution gateway for serverless code, compatible with Restate 1.7"
)]
struct Cli {
    #[command(flatten)]
    global: perdure::cli::Global,
    #[command(subcommand)]
    command: PerdureCommand,
}

/// What `perdure` was asked to do: serve, make a key, or one admin API command.
#[derive(Subcommand)]
enum PerdureCommand {
    /// Run the server (ingress, admin API, partitions) on an embedded RocksDB.
    #[command(alias = "server")]
    Serve(ServeArgs),
    /// Make an Ed25519 key for signing requests to deployments (`request-identity`), or print
    /// the public key of one; the SDKs take the printed `publickeyv1_…` as `identityKeys`.
    Keygen(KeygenArgs),
    #[command(flatten)]
    Admin(perdure::cli::AdminCommand),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Configuration file (TOML). Default: ./perdure.toml when it exists.
    #[arg(long, short = 'c', env = "PERDURE_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory. Default: ./perdure-data.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Ingress listen address. Default: 127.0.0.1:8080.
    #[arg(long)]
    ingress_bind: Option<std::net::SocketAddr>,
    /// Admin API listen address. Default: 127.0.0.1:9070.
    #[arg(long)]
    admin_bind: Option<std::net::SocketAddr>,
    /// PostgreSQL (psql) listen address. Default: 127.0.0.1:9071.
    #[arg(long)]
    pg_bind: Option<std::net::SocketAddr>,
    /// Node port (Prometheus /metrics, gRPC health and node status). Default: 127.0.0.1:5122.
    #[arg(long)]
    node_bind: Option<std::net::SocketAddr>,
    /// Number of partitions for a new data directory. Default: 1.
    #[arg(long)]
    partitions: Option<u32>,
    /// Log lines as `pretty` text or `json` objects (with the invocation and attempt of the
    /// line, where it has one). Default: pretty.
    #[arg(long, value_name = "FORMAT")]
    log_format: Option<LogFormat>,
    /// Export traces over OTLP to this collector (e.g. http://127.0.0.1:4317). Default: off,
    /// or OTEL_EXPORTER_OTLP_ENDPOINT.
    #[arg(long, value_name = "URL")]
    tracing_endpoint: Option<String>,
}

#[derive(clap::Args)]
#[group(required = true, multiple = false)]
struct KeygenArgs {
    /// Write a new private key (PKCS#8 PEM, mode 0600) to this file; it must not exist yet.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Print the public key of an existing private key file.
    #[arg(long, value_name = "FILE")]
    public_key_of: Option<PathBuf>,
}

fn keygen(args: KeygenArgs) -> ExitCode {
    use perdure::invoker::identity::RequestIdentity;
    let any = std::time::Duration::from_secs(60);
    let identity = match (&args.out, &args.public_key_of) {
        (Some(out), _) => {
            let identity = RequestIdentity::generate(any);
            if let Err(e) = identity.write_new(out) {
                eprintln!("perdure: {e}");
                return ExitCode::FAILURE;
            }
            eprintln!(
                "perdure: wrote a private key to {}; set request-identity.private-key-file to it, and give the SDKs this public key:",
                out.display()
            );
            identity
        }
        (None, Some(path)) => match RequestIdentity::from_pem_file(path, any) {
            Ok(identity) => identity,
            Err(e) => {
                eprintln!("perdure: {e}");
                return ExitCode::FAILURE;
            }
        },
        (None, None) => unreachable!("clap requires one of --out and --public-key-of"),
    };
    println!("{}", identity.public_key());
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        PerdureCommand::Serve(args) => serve(args),
        PerdureCommand::Keygen(args) => keygen(args),
        PerdureCommand::Admin(command) => perdure::cli::run(cli.global, command),
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    let (mut config, ignored_env) = match Config::load_reporting(args.config.as_deref(), std::env::vars()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("perdure: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(d) = args.data_dir {
        config.data_dir = d;
    }
    if let Some(a) = args.ingress_bind {
        config.ingress.bind_address = a;
    }
    if let Some(a) = args.admin_bind {
        config.admin.bind_address = a;
    }
    if let Some(a) = args.pg_bind {
        config.pg.bind_address = a;
    }
    if let Some(a) = args.node_bind {
        config.node.bind_address = a;
    }
    if let Some(p) = args.partitions {
        config.partitions = p;
    }
    if let Some(f) = args.log_format {
        config.log_format = f;
    }
    if let Some(e) = args.tracing_endpoint {
        config.tracing.endpoint = Some(e);
    }
    if let Err(e) = config.validate() {
        eprintln!("perdure: {e}");
        return ExitCode::from(2);
    }
    init_logging(&config);
    for name in ignored_env {
        tracing::warn!("ignoring environment variable {name}: not a perdure setting");
    }
    install_panic_log();
    // The database belongs to this thread: opened before the runtime starts, closed after it
    // is gone (with every task and blocking thread that held a handle).
    let database = match Database::open(&config.data_dir, &config.storage_options(), config.partitions) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("perdure: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("perdure: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let served = runtime.block_on(async {
        let server = Server::start(config.clone(), &database).await?;
        // One line on stdout that scripts and tests can wait for.
        println!(
            "perdure ready: ingress=http://{} admin=http://{} pg={} node={} data-dir={}",
            server.ingress_addr,
            server.admin_addr,
            server.pg_addr.map_or("off".to_owned(), |a| format!("postgresql://{a}")),
            server.node_addr.map_or("off".to_owned(), |a| format!("http://{a}")),
            config.data_dir.display()
        );
        server.run_until_signal().await
    });
    drop(runtime);
    let closed = database.close();
    match (served, closed) {
        (Ok(()), Ok(())) => ExitCode::SUCCESS,
        (Err(e), _) => {
            eprintln!("perdure: {e}");
            ExitCode::FAILURE
        }
        (Ok(()), Err(e)) => {
            eprintln!("perdure: closing the database: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Panics go to the log (with the thread and location) as well as to stderr.
fn install_panic_log() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let thread = std::thread::current();
        let message = match (info.payload().downcast_ref::<&str>(), info.payload().downcast_ref::<String>()) {
            (Some(s), _) => (*s).to_owned(),
            (_, Some(s)) => s.clone(),
            _ => "a panic without a message".to_owned(),
        };
        let location = info.location().map(|l| l.to_string()).unwrap_or_default();
        tracing::error!(thread = thread.name().unwrap_or("unnamed"), %location, "panic: {message}");
        default(info);
    }));
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log_filter));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Pretty => builder.init(),
    }
}
