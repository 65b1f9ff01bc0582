//! The byte pipe a protocol runs over: a serial port, the master side of a pseudo-terminal,
//! or stdin and stdout.

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::pty::openpty;
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::time::Duration;

/// Something that reads with a timeout and writes.
pub trait Port {
    /// Reads what is available, waiting at most `timeout`; 0 means nothing came.
    fn read_some(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize>;
    /// Writes all of `bytes`.
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// True once the other side closed for good (a port or pty never does).
    fn is_closed(&self) -> bool {
        false
    }
}

impl Port for Box<dyn serialport::SerialPort> {
    fn read_some(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        self.set_timeout(timeout.max(Duration::from_millis(1)))?;
        match self.read(buf) {
            Ok(n) => Ok(n),
            Err(e)
                if e.kind() == io::ErrorKind::TimedOut || e.kind() == io::ErrorKind::WouldBlock =>
            {
                Ok(0)
            }
            Err(e) => Err(e),
        }
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        Write::write_all(self, bytes)?;
        self.flush()
    }
}

/// A pseudo-terminal whose slave side a peer opens as if it were a board's serial port.
pub struct Pty {
    master: File,
    /// Kept open so that the master does not see a hang-up each time a peer closes the slave.
    _slave: OwnedFd,
    /// The slave's path, e.g. `/dev/pts/3`.
    pub path: PathBuf,
}

impl Pty {
    /// Opens a pty in raw mode (no echo, no line editing, 8 bits).
    pub fn open() -> io::Result<Self> {
        let pty = openpty(None, None).map_err(io::Error::from)?;
        let mut termios = tcgetattr(&pty.slave).map_err(io::Error::from)?;
        cfmakeraw(&mut termios);
        tcsetattr(&pty.slave, SetArg::TCSANOW, &termios).map_err(io::Error::from)?;
        let path = std::fs::read_link(format!("/proc/self/fd/{}", pty.slave.as_raw_fd()))?;
        Ok(Pty {
            master: File::from(pty.master),
            _slave: pty.slave,
            path,
        })
    }
}

impl Port for Pty {
    fn read_some(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        let ms = timeout.as_millis().min(u16::MAX as u128) as u16;
        let mut fds = [PollFd::new(self.master.as_fd(), PollFlags::POLLIN)];
        let ready = poll(&mut fds, PollTimeout::from(ms)).map_err(io::Error::from)?;
        if ready == 0 {
            return Ok(0);
        }
        match self.master.read(buf) {
            Ok(n) => Ok(n),
            // EIO: no slave open at this instant (cannot happen while we hold one, but a peer's
            // close can race with the poll).
            Err(e) if e.raw_os_error() == Some(nix::libc::EIO) => Ok(0),
            Err(e) => Err(e),
        }
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        Write::write_all(&mut self.master, bytes)
    }
}

/// Raw bytes on stdin and stdout, for a peer that bridges its own port (the browser tests'
/// fake Web Serial port) to a simulator. Both file descriptors are used unbuffered, so a
/// poll for input never misses bytes a buffer already took, and every write goes out at once.
pub struct Stdio {
    input: File,
    output: File,
    closed: bool,
}

impl Stdio {
    /// Duplicates fds 0 and 1; nothing else may write to stdout while this runs.
    pub fn open() -> io::Result<Self> {
        Ok(Stdio {
            input: File::from(io::stdin().as_fd().try_clone_to_owned()?),
            output: File::from(io::stdout().as_fd().try_clone_to_owned()?),
            closed: false,
        })
    }
}

impl Port for Stdio {
    fn read_some(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        if self.closed {
            std::thread::sleep(timeout);
            return Ok(0);
        }
        let ms = timeout.as_millis().min(u16::MAX as u128) as u16;
        let mut fds = [PollFd::new(self.input.as_fd(), PollFlags::POLLIN)];
        let ready = match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => 0,
            Err(e) => return Err(e.into()),
        };
        if ready == 0 {
            return Ok(0);
        }
        // Readable or hung up: a read of 0 bytes is the end of stdin.
        match self.input.read(buf) {
            Ok(0) => {
                self.closed = true;
                Ok(0)
            }
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
            Err(e) => Err(e),
        }
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        Write::write_all(&mut self.output, bytes)?;
        self.output.flush()
    }

    fn is_closed(&self) -> bool {
        self.closed
    }
}
