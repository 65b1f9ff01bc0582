//! The STM32 ROM bootloader over USART (ST application note AN3155): wire format, chip table
//! and a [`Flasher`] that erases, writes, reads back and starts an image.
//!
//! Every command is `code, code ^ 0xFF` and is answered `ACK` (0x79) or `NACK` (0x1F);
//! addresses are 4 bytes big-endian plus their XOR; data blocks carry `N-1`, data and an XOR
//! checksum. The line is 8E1 on real hardware (8N1 on a pty), auto-bauded by a first 0x7F.

mod flasher;

pub use flasher::{Config, Error, Event, Flasher, Options};

/// The byte that starts auto-baud detection.
pub const SYNC: u8 = 0x7F;
/// Acknowledge.
pub const ACK: u8 = 0x79;
/// Negative acknowledge.
pub const NACK: u8 = 0x1F;

/// The bootloader's command codes.
pub mod cmd {
    /// Get: bootloader version and supported commands.
    pub const GET: u8 = 0x00;
    /// Get Version and read-protection status.
    pub const GET_VERSION: u8 = 0x01;
    /// Get ID: the product ID (PID).
    pub const GET_ID: u8 = 0x02;
    /// Read Memory, up to 256 bytes.
    pub const READ: u8 = 0x11;
    /// Go: jump to an address.
    pub const GO: u8 = 0x21;
    /// Write Memory, up to 256 bytes.
    pub const WRITE: u8 = 0x31;
    /// Erase (one-byte page numbers).
    pub const ERASE: u8 = 0x43;
    /// Extended Erase (two-byte page numbers).
    pub const EXTENDED_ERASE: u8 = 0x44;
    /// Write Protect.
    pub const WRITE_PROTECT: u8 = 0x63;
    /// Write Unprotect.
    pub const WRITE_UNPROTECT: u8 = 0x73;
    /// Readout Protect.
    pub const READOUT_PROTECT: u8 = 0x82;
    /// Readout Unprotect.
    pub const READOUT_UNPROTECT: u8 = 0x92;
}

/// XOR of all bytes: the note's checksum.
pub fn checksum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0, |a, b| a ^ b)
}

/// A command frame: the code and its complement.
pub fn command(code: u8) -> [u8; 2] {
    [code, !code]
}

/// An address frame: 4 bytes big-endian and their XOR.
pub fn address(addr: u32) -> [u8; 5] {
    let b = addr.to_be_bytes();
    [b[0], b[1], b[2], b[3], checksum(&b)]
}

/// The length frame of Read Memory: `N-1` and its complement (`len` in 1..=256).
pub fn read_length(len: usize) -> [u8; 2] {
    let n = len.saturating_sub(1) as u8;
    [n, !n]
}

/// The data frame of Write Memory: `N-1`, data, XOR of both (`data` 1..=256 bytes, a multiple
/// of 4 as the note requires).
pub fn write_data(data: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(data.len() + 2);
    frame.push(data.len().saturating_sub(1) as u8);
    frame.extend_from_slice(data);
    frame.push(checksum(&frame));
    frame
}

/// The page-list frame of Erase (0x43): `N-1`, page numbers, XOR.
pub fn erase_pages(pages: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(pages.len() + 2);
    frame.push(pages.len().saturating_sub(1) as u8);
    frame.extend_from_slice(pages);
    frame.push(checksum(&frame));
    frame
}

/// The page-list frame of Extended Erase (0x44): `N-1` and pages as u16 big-endian, XOR.
pub fn extended_erase_pages(pages: &[u16]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(pages.len() * 2 + 3);
    frame.extend_from_slice(&(pages.len().saturating_sub(1) as u16).to_be_bytes());
    for page in pages {
        frame.extend_from_slice(&page.to_be_bytes());
    }
    frame.push(checksum(&frame));
    frame
}

/// Flash layout of an STM32 product, as far as the flasher needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chip {
    /// Product ID from Get ID.
    pub pid: u16,
    /// Family name.
    pub name: &'static str,
    /// First flash address.
    pub flash_start: u32,
    /// Flash size in bytes.
    pub flash_size: u32,
    /// Erase page size in bytes.
    pub page_size: u32,
}

/// Products with uniform pages (sector-based families such as F2/F4 need mass erase or a
/// page size given by the user).
pub const CHIPS: &[Chip] = &[
    Chip {
        pid: 0x410,
        name: "STM32F10xxx medium-density",
        flash_start: 0x0800_0000,
        flash_size: 128 * 1024,
        page_size: 1024,
    },
    Chip {
        pid: 0x412,
        name: "STM32F10xxx low-density",
        flash_start: 0x0800_0000,
        flash_size: 32 * 1024,
        page_size: 1024,
    },
    Chip {
        pid: 0x414,
        name: "STM32F10xxx high-density",
        flash_start: 0x0800_0000,
        flash_size: 512 * 1024,
        page_size: 2048,
    },
    Chip {
        pid: 0x418,
        name: "STM32F105/107 connectivity line",
        flash_start: 0x0800_0000,
        flash_size: 256 * 1024,
        page_size: 2048,
    },
    Chip {
        pid: 0x420,
        name: "STM32F100 value line medium-density",
        flash_start: 0x0800_0000,
        flash_size: 128 * 1024,
        page_size: 1024,
    },
    Chip {
        pid: 0x440,
        name: "STM32F030x8/F05x",
        flash_start: 0x0800_0000,
        flash_size: 64 * 1024,
        page_size: 1024,
    },
    Chip {
        pid: 0x444,
        name: "STM32F03xx4/6",
        flash_start: 0x0800_0000,
        flash_size: 32 * 1024,
        page_size: 1024,
    },
    Chip {
        pid: 0x448,
        name: "STM32F07x",
        flash_start: 0x0800_0000,
        flash_size: 128 * 1024,
        page_size: 2048,
    },
];

/// The chip with this product ID, if known.
pub fn chip(pid: u16) -> Option<Chip> {
    CHIPS.iter().copied().find(|c| c.pid == pid)
}

#[cfg(test)]
mod chip_tests {
    use super::*;

    /// The flasher's page arithmetic (pages to erase, the last page's end) holds only for a
    /// table whose flash is a whole number of pages; these families' flash sizes are powers of
    /// two of at least 16 KiB, with 1 or 2 KiB pages.
    #[test]
    fn every_chip_has_a_whole_number_of_uniform_pages() {
        for c in CHIPS {
            assert!(
                c.flash_size.is_power_of_two() && c.flash_size >= 16 * 1024,
                "{}: {} bytes",
                c.name,
                c.flash_size
            );
            assert!(matches!(c.page_size, 1024 | 2048), "{}", c.name);
            assert_eq!(c.flash_size % c.page_size, 0, "{}", c.name);
            assert_eq!(chip(c.pid), Some(*c));
        }
        assert_eq!(chip(0x999), None);
    }
}
