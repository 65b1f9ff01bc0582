//! A local firmware file: its digests, the digests the technician expects, and reading it in
//! byte ranges for the session's download.

use sota_engine::{Digester, Digests, ExpectedDigests};
use sota_flow::{LocalFirmware, Source};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Digests from the center or a release note; the file must match each one given.
#[derive(clap::Args)]
pub struct Expected {
    /// Expected MD5 of the file [default: the file's own].
    #[arg(long)]
    md5: Option<String>,
    /// Expected CRC32 (8 hex digits) of the file [default: the file's own].
    #[arg(long)]
    crc32: Option<String>,
    /// Expected SHA-256 of the file [default: the file's own].
    #[arg(long)]
    sha256: Option<String>,
}

impl Expected {
    /// The flags, checked and normalized.
    pub fn parse(&self) -> Result<ExpectedDigests, String> {
        ExpectedDigests::parse(
            self.md5.as_deref().unwrap_or(""),
            self.crc32.as_deref().unwrap_or(""),
            self.sha256.as_deref().unwrap_or(""),
        )
        .map_err(|e| format!("bad expected digest: {e}"))
    }
}

fn cannot_read(path: &Path, e: std::io::Error) -> String {
    format!("cannot read the firmware file {}: {e}", path.display())
}

/// Streams the file through the digester, so a large file never sits in memory.
pub fn file_digests(path: &Path) -> Result<Digests, String> {
    let mut file = File::open(path).map_err(|e| cannot_read(path, e))?;
    let mut digester = Digester::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf).map_err(|e| cannot_read(path, e))?;
        if n == 0 {
            return Ok(digester.finish());
        }
        digester.update(&buf[..n]);
    }
}

/// The file as the center would describe it; `url` is its path.
pub fn local(
    path: &Path,
    identity: &str,
    target_version: &str,
    source_version: &str,
    own: Digests,
    expected: ExpectedDigests,
) -> LocalFirmware {
    LocalFirmware {
        identity: identity.into(),
        target_version: target_version.into(),
        source_version: source_version.into(),
        url: path.display().to_string(),
        own,
        expected,
    }
}

/// The session's download: byte ranges of the one file being served.
pub struct FileSource {
    url: String,
    path: PathBuf,
}

impl FileSource {
    /// Serves `firmware`'s file.
    pub fn new(firmware: &LocalFirmware, path: &Path) -> Self {
        FileSource {
            url: firmware.url.clone(),
            path: path.to_path_buf(),
        }
    }
}

impl Source for FileSource {
    fn read(&mut self, url: &str, start: u64, end: u64) -> Result<Vec<u8>, String> {
        if url != self.url {
            return Err(format!(
                "the session asked for {url}, but only {} is served",
                self.url
            ));
        }
        let read = || -> std::io::Result<Vec<u8>> {
            let mut file = File::open(&self.path)?;
            file.seek(SeekFrom::Start(start))?;
            let mut bytes = Vec::new();
            file.take(end.saturating_sub(start))
                .read_to_end(&mut bytes)?;
            Ok(bytes)
        };
        read().map_err(|e| cannot_read(&self.path, e))
    }
}
