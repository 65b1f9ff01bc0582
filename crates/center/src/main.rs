//! `sota-center`: serve the Developer Center, or manage operator tokens.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use sota_center::ServeConfig;

#[derive(Parser)]
#[command(
    name = "sota-center",
    version,
    about = "Developer Center of the SOTA upgrade console"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API (seeds demo data into an empty database).
    Serve {
        #[command(flatten)]
        config: ServeConfig,
        /// Largest accepted package file in bytes (tests lower it).
        #[arg(long, hide = true, default_value_t = sota_center::package::MAX_FILE_BYTES)]
        max_file_bytes: u64,
    },
    /// Operator tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Copy every row of a SQLite center's database into an empty PostgreSQL database (migrated
    /// first), in one transaction. Stop the center first; firmware files are not copied.
    MigrateDatabase {
        /// The center's data directory (holds `center.sqlite3`).
        #[arg(long, env = "SOTA_CENTER_DATA_DIR", default_value = ".data/center")]
        data_dir: PathBuf,
        /// The PostgreSQL database to copy into: `postgres://user:password@host:port/database`.
        #[arg(long)]
        to: String,
    },
    /// A throwaway PostgreSQL cluster for tests and benchmarks: prints `postgres-url URL`
    /// (a new empty database), runs until Ctrl-C or SIGTERM, then stops and removes it.
    #[command(hide = true)]
    ScratchPostgres,
    /// An external MQTT broker (mosquitto): its configuration and device credentials.
    Broker {
        #[command(subcommand)]
        command: BrokerCommand,
    },
}

#[derive(Subcommand)]
enum BrokerCommand {
    /// Write mosquitto.conf, passwd (with the center's login) and acl into a directory.
    MosquittoConfig {
        /// The center's data directory (holds the center's broker secret).
        #[arg(long, env = "SOTA_CENTER_DATA_DIR", default_value = ".data/center")]
        data_dir: PathBuf,
        /// The metadata database (`postgres://…`); default: SQLite in the data directory.
        #[arg(long, env = "SOTA_CENTER_DATABASE")]
        database: Option<String>,
        /// Where to write the files.
        #[arg(long)]
        dir: PathBuf,
        /// mosquitto's MQTT listener.
        #[arg(long, default_value = "127.0.0.1:1883")]
        listen: std::net::SocketAddr,
        /// mosquitto's WebSocket listener.
        #[arg(long, default_value = "127.0.0.1:9001")]
        ws_listen: std::net::SocketAddr,
        /// How many centers may share the broker at once (one login each).
        #[arg(long, default_value_t = sota_center::channel::mosquitto::CENTERS)]
        centers: i64,
    },
    /// Create a device (if new), issue its secret and add its login and ACL to the files;
    /// prints the secret once. Then reload mosquitto (SIGHUP).
    Provision {
        /// The center's data directory.
        #[arg(long, env = "SOTA_CENTER_DATA_DIR", default_value = ".data/center")]
        data_dir: PathBuf,
        /// The metadata database (`postgres://…`); default: SQLite in the data directory.
        #[arg(long, env = "SOTA_CENTER_DATABASE")]
        database: Option<String>,
        /// The directory written by `mosquitto-config`.
        #[arg(long)]
        dir: PathBuf,
        /// Product key.
        #[arg(long)]
        product: String,
        /// Device key.
        #[arg(long)]
        device: String,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a bearer token and print it (only its hash is stored).
    Create {
        /// Who the token is for, e.g. `field-team`.
        #[arg(long)]
        name: String,
        /// The center's data directory.
        #[arg(long, env = "SOTA_CENTER_DATA_DIR", default_value = ".data/center")]
        data_dir: PathBuf,
        /// The metadata database (`postgres://…`); default: SQLite in the data directory.
        #[arg(long, env = "SOTA_CENTER_DATABASE")]
        database: Option<String>,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result: Result<(), String> = runtime.block_on(async {
        match cli.command {
            Command::Serve { config, max_file_bytes } => {
                sota_center::server::run(config, max_file_bytes).await.map_err(|e| e.to_string())
            }
            Command::Broker { command } => broker(command).await,
            Command::MigrateDatabase { data_dir, to } => migrate_database(&data_dir, &to).await,
            Command::ScratchPostgres => {
                let cluster = sota_center::scratch_pg::Cluster::start()?;
                println!("postgres-url {}", cluster.create_database()?);
                use std::io::Write;
                let _ = std::io::stdout().flush();
                sota_center::server::shutdown().await;
                drop(cluster);
                Ok(())
            }
            Command::Token { command: TokenCommand::Create { name, data_dir, database } } => {
                let pool = sota_center::server::open_db(&data_dir, database.as_deref()).await.map_err(|e| e.to_string())?;
                let token = sota_center::token::create(&pool, &name).await.map_err(|e| e.message)?;
                println!("{token}");
                eprintln!("token {name:?} created; it is shown only once. Use it as `Authorization: Bearer <token>`.");
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn migrate_database(data_dir: &std::path::Path, to: &str) -> Result<(), String> {
    use sota_center::migrate_database::{copy, Progress};
    let source = data_dir.join("center.sqlite3");
    // A large table reports every batch; a line every few seconds is enough to see it moving.
    let mut last_line = std::time::Instant::now();
    let mut report = |p: Progress| match p {
        Progress::Ready {
            source,
            target,
            version,
        } => {
            println!("from {} (schema version {version})", source.display());
            println!("into {target} (migrated to version {version}, empty)");
        }
        Progress::Rows {
            table,
            copied,
            total,
        } => {
            if copied == total {
                println!("  {table:<18} {copied:>10} / {total} rows");
            } else if last_line.elapsed().as_secs() >= 5 {
                println!("  {table:<18} {copied:>10} / {total} rows …");
            } else {
                return;
            }
            last_line = std::time::Instant::now();
        }
    };
    let summary = copy(&source, to, &mut report)
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "copied {} rows of {} tables in {:.1} s, row counts checked; {} identity sequences set past their largest id",
        summary.rows(),
        summary.tables.len(),
        summary.elapsed.as_secs_f64(),
        summary.sequences
    );
    println!(
        "firmware files are not in the database: serve with the same --store (or copy {} if the store is that local folder)",
        data_dir.join("firmware").display()
    );
    Ok(())
}

async fn broker(command: BrokerCommand) -> Result<(), String> {
    use sota_center::channel::mosquitto::{self, Files};
    match command {
        BrokerCommand::MosquittoConfig {
            data_dir,
            database,
            dir,
            listen,
            ws_listen,
            centers,
        } => {
            let pool = sota_center::server::open_db(&data_dir, database.as_deref())
                .await
                .map_err(|e| e.to_string())?;
            let files = Files { dir };
            mosquitto::write_config(&pool, &files, listen, ws_listen, centers)
                .await
                .map_err(|e| e.message)?;
            println!("{}", files.conf().display());
            eprintln!(
                "start it with `mosquitto -c {}`, and the center with `--broker mqtt://{listen}`",
                files.conf().display()
            );
            Ok(())
        }
        BrokerCommand::Provision {
            data_dir,
            database,
            dir,
            product,
            device,
        } => {
            let id = sota_protocol::DeviceId::new(&product, &device)
                .ok_or("product and device keys are 1 to 64 of A-Z a-z 0-9 _ - .")?;
            let pool = sota_center::server::open_db(&data_dir, database.as_deref())
                .await
                .map_err(|e| e.to_string())?;
            let secret = mosquitto::provision(&pool, &Files { dir }, &id)
                .await
                .map_err(|e| e.message)?;
            println!("{secret}");
            eprintln!("device {id} provisioned: log in as {:?} with this secret (shown once); reload mosquitto with SIGHUP", id.username());
            Ok(())
        }
    }
}
