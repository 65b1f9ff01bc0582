//! `sota-center migrate-database`: copy every row of a SQLite center's database into an empty
//! PostgreSQL database, so the center can be served from PostgreSQL with its data.
//!
//! All or nothing: the target is migrated to the binary's schema first, then every table is
//! streamed in (PostgreSQL's `COPY … FROM STDIN`, in batches) inside one transaction, the
//! identity sequences are set past each table's largest id, and the row counts are compared
//! before the commit. Firmware files are not in the database: the store stays where it is.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqlitePool, SqlitePoolOptions, SqliteRow,
};
use sqlx::{ConnectOptions, Connection, Row, TypeInfo, ValueRef};

use crate::db::{self, Database};

/// Every table of the center, parents before the tables whose foreign keys name them. A table
/// added to the migrations must be added here: the copy refuses a source or target table this
/// list lacks, and a unit test compares it with a freshly migrated database.
pub const TABLES: [&str; 18] = [
    "settings",
    "operator_tokens",
    "products",
    "devices",
    "device_components",
    "packages",
    "package_files",
    "plans",
    "plan_device_lists",
    "plan_components",
    "plan_texts",
    "verifications",
    "verification_log",
    "pending_uploads",
    "upgrades",
    "upgrade_log",
    "push_cycles",
    "center_instances",
];

/// Rows sent to PostgreSQL in one piece of a table's `COPY` (and one progress report).
const BATCH_ROWS: u64 = 20_000;

/// Why the copy did not happen; nothing was written to the target unless said so.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The SQLite file is not there.
    #[error("no SQLite database at {0}: give the center's --data-dir (the directory holding center.sqlite3)")]
    MissingSource(PathBuf),
    /// The SQLite file could not be read as a center's database.
    #[error("cannot read the SQLite database {path}: {source}")]
    Source {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: sqlx::Error,
    },
    /// The source's schema is not the one this binary writes to PostgreSQL.
    #[error("the SQLite database {path} is at schema version {found}, this sota-center's is {want}: start this sota-center once on it (`sota-center serve --data-dir …`; it migrates the file at start), stop it, then copy again")]
    SourceVersion {
        /// The file.
        path: PathBuf,
        /// Its newest applied migration (0 if none).
        found: i64,
        /// This binary's newest migration.
        want: i64,
    },
    /// `--to` is not a PostgreSQL URL.
    #[error("--to {0:?} is not a PostgreSQL database: write postgres://user:password@host:port/database")]
    TargetUrl(String),
    /// The target server could not be reached or logged in to.
    #[error("cannot reach the PostgreSQL database {target}: {source}; check the host, the port, the credentials and that the database exists (createdb)")]
    TargetUnreachable {
        /// The target, without its password.
        target: String,
        /// Cause.
        source: sqlx::Error,
    },
    /// The target could not be migrated or read.
    #[error(transparent)]
    Target(#[from] db::DbError),
    /// The target already holds data.
    #[error("the PostgreSQL database {target} is not empty (table {table} has rows): the copy never merges; give it an empty database (createdb), or drop and recreate this one")]
    TargetNotEmpty {
        /// The target, without its password.
        target: String,
        /// The first table found with rows.
        table: String,
    },
    /// A table on either side that the copy does not know.
    #[error("table {table} of the {side} database is not in the copy's list: this sota-center cannot copy it (a newer schema?)")]
    UnknownTable {
        /// `SQLite` or `PostgreSQL`.
        side: &'static str,
        /// The table.
        table: String,
    },
    /// A value whose type does not fit its PostgreSQL column.
    #[error("{table}.{column} (SQLite rowid {rowid}) holds a {found} value; its PostgreSQL column takes {want}: fix that row in SQLite, then copy again")]
    Value {
        /// Table.
        table: String,
        /// Column.
        column: String,
        /// The row's SQLite rowid.
        rowid: i64,
        /// SQLite's storage class of the value.
        found: String,
        /// What the column takes.
        want: &'static str,
    },
    /// The counts after the copy differ (rolled back).
    #[error("{table}: {copied} rows in PostgreSQL after the copy, {source_rows} read from SQLite; nothing was committed")]
    Count {
        /// Table.
        table: String,
        /// Rows in PostgreSQL.
        copied: i64,
        /// Rows in SQLite.
        source_rows: i64,
    },
    /// A query failed during the copy (rolled back).
    #[error("the copy failed and was rolled back, the PostgreSQL database is left empty: {0}")]
    Copy(sqlx::Error),
}

/// What the copy reports as it goes, for a terminal or a test to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// The source was checked; the target migrated and found empty.
    Ready {
        /// The SQLite file.
        source: PathBuf,
        /// The target, without its password.
        target: String,
        /// The schema version both are at.
        version: i64,
    },
    /// Rows of one table copied so far (reported after each batch and at its end).
    Rows {
        /// Table.
        table: &'static str,
        /// Rows copied so far.
        copied: u64,
        /// Rows the table holds.
        total: u64,
    },
}

/// What was copied.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Each table and its row count, in copy order.
    pub tables: Vec<(&'static str, u64)>,
    /// Identity sequences set past their table's largest id.
    pub sequences: usize,
    /// From the start of the copy to the commit.
    pub elapsed: Duration,
}

impl Summary {
    /// Rows copied over all tables.
    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|(_, n)| n).sum()
    }
}

/// How a PostgreSQL column takes its values in `COPY`'s text format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Integer,
    Text,
    Bytes,
}

impl Kind {
    fn of(data_type: &str) -> Option<Kind> {
        match data_type {
            "bigint" | "integer" | "smallint" => Some(Kind::Integer),
            "text" | "character varying" => Some(Kind::Text),
            "bytea" => Some(Kind::Bytes),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Integer => "integers",
            Kind::Text => "text",
            Kind::Bytes => "bytes",
        }
    }
}

/// Copy the SQLite database at `source` into the empty PostgreSQL database at `target`.
pub async fn copy(
    source: &Path,
    target: &str,
    progress: &mut dyn FnMut(Progress),
) -> Result<Summary, MigrateError> {
    let to = target;
    let target = Database::Postgres(to.to_string());
    let bad_url = || MigrateError::TargetUrl(target.display());
    if !(to.starts_with("postgres://") || to.starts_with("postgresql://")) {
        return Err(bad_url());
    }
    let pg_options = PgConnectOptions::from_str(to).map_err(|_| bad_url())?;

    let lite = open_source(source).await?;
    let version = check_source_version(&lite, source).await?;
    let source_tables = table_names(
        &lite,
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations'",
    )
    .await
    .map_err(|e| source_err(source, e))?;
    known_tables("SQLite", &source_tables)?;

    // A connection of its own first: the pool below would retry a refused connection until its
    // timeout and then hide why.
    let open_err = |source| MigrateError::TargetUnreachable {
        target: target.display(),
        source,
    };
    let mut pg = PgConnection::connect_with(&pg_options)
        .await
        .map_err(open_err)?;
    // Migrated by the center's own code, so the target is what `serve` expects.
    let pool = db::open(&target).await?;
    pool.close().await;
    let target_tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' AND table_name <> '_sqlx_migrations'",
    )
    .fetch_all(&mut pg)
    .await
    .map_err(open_err)?;
    known_tables("PostgreSQL", &target_tables)?;
    for table in TABLES {
        let any: bool = sqlx::query_scalar(&format!("SELECT EXISTS (SELECT 1 FROM {table})"))
            .fetch_one(&mut pg)
            .await
            .map_err(open_err)?;
        if any {
            return Err(MigrateError::TargetNotEmpty {
                target: target.display(),
                table: table.to_string(),
            });
        }
    }
    progress(Progress::Ready {
        source: source.to_path_buf(),
        target: target.display(),
        version,
    });

    let started = Instant::now();
    // One read transaction: every table from the same snapshot, so foreign keys hold even if a
    // center was left writing to the file.
    let mut snapshot = lite.begin().await.map_err(|e| source_err(source, e))?;
    let mut tx = pg.begin().await.map_err(MigrateError::Copy)?;
    let mut tables = Vec::with_capacity(TABLES.len());
    for table in TABLES {
        let n = copy_table(&mut snapshot, source, &mut tx, table, progress).await?;
        tables.push((table, n));
    }
    let sequences = reset_sequences(&mut tx).await.map_err(MigrateError::Copy)?;
    for &(table, n) in &tables {
        let copied: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&mut *tx)
            .await
            .map_err(MigrateError::Copy)?;
        if copied != n as i64 {
            return Err(MigrateError::Count {
                table: table.to_string(),
                copied,
                source_rows: n as i64,
            });
        }
    }
    tx.commit().await.map_err(MigrateError::Copy)?;
    drop(snapshot);
    lite.close().await;
    Ok(Summary {
        tables,
        sequences,
        elapsed: started.elapsed(),
    })
}

fn source_err(path: &Path, source: sqlx::Error) -> MigrateError {
    MigrateError::Source {
        path: path.to_path_buf(),
        source,
    }
}

/// The SQLite file, read-only: the copy never migrates or creates it.
async fn open_source(path: &Path) -> Result<SqlitePool, MigrateError> {
    if !path.is_file() {
        return Err(MigrateError::MissingSource(path.to_path_buf()));
    }
    let options = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .busy_timeout(Duration::from_secs(10))
        // Reading a whole table is slow by design; sqlx would warn of each one.
        .disable_statement_logging();
    SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .map_err(|e| source_err(path, e))
}

/// The source's schema version, refused unless it is exactly this binary's.
async fn check_source_version(lite: &SqlitePool, path: &Path) -> Result<i64, MigrateError> {
    let want: Vec<i64> = sqlx::migrate!("./migrations/sqlite")
        .iter()
        .map(|m| m.version)
        .collect();
    let has_table: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations')",
    )
    .fetch_one(lite)
    .await
    .map_err(|e| source_err(path, e))?;
    let found: Vec<i64> = if has_table {
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(lite)
            .await
            .map_err(|e| source_err(path, e))?
    } else {
        Vec::new()
    };
    let newest = |v: &[i64]| v.last().copied().unwrap_or(0);
    if found != want {
        return Err(MigrateError::SourceVersion {
            path: path.to_path_buf(),
            found: newest(&found),
            want: newest(&want),
        });
    }
    Ok(newest(&want))
}

async fn table_names(lite: &SqlitePool, sql: &str) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(sql).fetch_all(lite).await
}

fn known_tables(side: &'static str, found: &[String]) -> Result<(), MigrateError> {
    match found.iter().find(|t| !TABLES.contains(&t.as_str())) {
        Some(table) => Err(MigrateError::UnknownTable {
            side,
            table: table.clone(),
        }),
        None => Ok(()),
    }
}

/// Stream one table from SQLite into PostgreSQL's `COPY`; its row count.
async fn copy_table(
    lite: &mut SqliteConnection,
    path: &Path,
    pg: &mut PgConnection,
    table: &'static str,
    progress: &mut dyn FnMut(Progress),
) -> Result<u64, MigrateError> {
    let copy_err = MigrateError::Copy;
    // The target's columns name what is read, so a column of either side the other lacks fails
    // here, in SQLite's error, rather than silently dropping values.
    let columns: Vec<(String, String)> = sqlx::query_as(
        "SELECT column_name::text, data_type::text FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
    )
    .bind(table)
    .fetch_all(&mut *pg)
    .await
    .map_err(copy_err)?;
    let mut kinds = Vec::with_capacity(columns.len());
    for (column, data_type) in &columns {
        kinds.push(Kind::of(data_type).ok_or_else(|| {
            MigrateError::Copy(sqlx::Error::Protocol(format!(
                "{table}.{column} is a PostgreSQL {data_type}, which the copy does not write"
            )))
        })?);
    }
    let names: Vec<&str> = columns.iter().map(|(c, _)| c.as_str()).collect();
    let list = names.join(", ");

    let total: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(&mut *lite)
        .await
        .map_err(|e| source_err(path, e))?;
    let total = total as u64;

    let mut copy_in = pg
        .copy_in_raw(&format!("COPY {table} ({list}) FROM STDIN"))
        .await
        .map_err(copy_err)?;
    let select = format!("SELECT rowid, {list} FROM {table} ORDER BY rowid");
    let mut rows = sqlx::query(&select).fetch(&mut *lite);
    let mut buf = String::new();
    let mut copied = 0u64;
    let mut in_batch = 0u64;
    loop {
        let row = match rows.try_next().await {
            Ok(Some(row)) => row,
            Ok(None) => break,
            Err(e) => {
                drop(rows);
                let _ = copy_in.abort("the SQLite read failed").await;
                return Err(source_err(path, e));
            }
        };
        if let Err(e) = encode_row(&row, table, &names, &kinds, &mut buf) {
            drop(rows);
            let _ = copy_in.abort("a value did not fit its column").await;
            return Err(e);
        }
        copied += 1;
        in_batch += 1;
        if in_batch == BATCH_ROWS {
            copy_in
                .send(std::mem::take(&mut buf).into_bytes())
                .await
                .map_err(copy_err)?;
            in_batch = 0;
            progress(Progress::Rows {
                table,
                copied,
                total,
            });
        }
    }
    drop(rows);
    if !buf.is_empty() {
        copy_in.send(buf.into_bytes()).await.map_err(copy_err)?;
    }
    copy_in.finish().await.map_err(copy_err)?;
    if in_batch > 0 || copied == 0 {
        progress(Progress::Rows {
            table,
            copied,
            total,
        });
    }
    Ok(copied)
}

/// One row in `COPY`'s text format: tab-separated, `\N` for NULL, a newline at the end.
fn encode_row(
    row: &SqliteRow,
    table: &str,
    names: &[&str],
    kinds: &[Kind],
    out: &mut String,
) -> Result<(), MigrateError> {
    use std::fmt::Write;
    for (i, kind) in kinds.iter().enumerate() {
        if i > 0 {
            out.push('\t');
        }
        // Column 0 is the rowid, read for messages.
        let value = row.try_get_raw(i + 1).map_err(MigrateError::Copy)?;
        if value.is_null() {
            out.push_str("\\N");
            continue;
        }
        let found = value.type_info().name().to_string();
        let misfit = || MigrateError::Value {
            table: table.to_string(),
            column: names[i].to_string(),
            rowid: row.try_get(0).unwrap_or(0),
            found: found.clone(),
            want: kind.name(),
        };
        match (kind, found.as_str()) {
            (Kind::Integer, "INTEGER") => {
                let v: i64 = row.try_get_unchecked(i + 1).map_err(|_| misfit())?;
                let _ = write!(out, "{v}");
            }
            (Kind::Text, "TEXT") => {
                let v: &str = row.try_get_unchecked(i + 1).map_err(|_| misfit())?;
                escape_text(v, out);
            }
            (Kind::Bytes, "BLOB") => {
                let v: &[u8] = row.try_get_unchecked(i + 1).map_err(|_| misfit())?;
                // bytea's hex input, its backslash doubled for COPY.
                out.push_str("\\\\x");
                out.push_str(&sota_engine::digest::hex(v));
            }
            _ => return Err(misfit()),
        }
    }
    out.push('\n');
    Ok(())
}

/// Text as `COPY`'s text format reads it back unchanged.
fn escape_text(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

/// Set each identity column's sequence so the next row gets max(id) + 1 (1 on an empty table).
async fn reset_sequences(pg: &mut PgConnection) -> Result<usize, sqlx::Error> {
    let identities: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns WHERE table_schema = current_schema() AND is_identity = 'YES' ORDER BY table_name",
    )
    .fetch_all(&mut *pg)
    .await?;
    for (table, column) in &identities {
        sqlx::query(&format!(
            "SELECT setval(pg_get_serial_sequence($1, $2), COALESCE(MAX({column}), 0) + 1, false) FROM {table}"
        ))
        .bind(table)
        .bind(column)
        .fetch_one(&mut *pg)
        .await?;
    }
    Ok(identities.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_copy_lists_every_table_of_the_migrations() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("center.sqlite3");
        db::open(&Database::Sqlite(path.clone())).await.unwrap();
        let lite = open_source(&path).await.unwrap();
        let mut tables = table_names(
            &lite,
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations'",
        )
        .await
        .unwrap();
        tables.sort();
        let mut listed = TABLES.to_vec();
        listed.sort();
        assert_eq!(
            tables, listed,
            "a table of the migrations is missing from migrate_database::TABLES (or the list names one that is gone)"
        );
        // Parents first: every table a foreign key names comes earlier in the list.
        for (i, table) in TABLES.iter().enumerate() {
            let parents: Vec<String> = sqlx::query_scalar(&format!(
                "SELECT \"table\" FROM pragma_foreign_key_list('{table}')"
            ))
            .fetch_all(&lite)
            .await
            .unwrap();
            for parent in parents {
                assert!(
                    TABLES[..i].contains(&parent.as_str()),
                    "{table} refers to {parent}, which the copy lists after it"
                );
            }
        }
    }

    #[test]
    fn text_comes_back_from_copy_unchanged() {
        let mut out = String::new();
        escape_text("a\tb\\c\nd\re \\N", &mut out);
        assert_eq!(out, "a\\tb\\\\c\\nd\\re \\\\N");
    }
}
