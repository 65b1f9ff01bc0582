//! A NOR flash model: erased bytes read 0xFF, programming can only clear bits (new = old & data),
//! erasing works on whole pages.
//!
//! Real STM32 flash refuses to program a non-erased half-word instead of AND-ing; the AND model
//! keeps the bootloader simple and still makes "wrote over unerased flash" visible as a
//! read-back mismatch, which is what the flasher must catch.

/// Flash memory with uniform pages.
#[derive(Clone, Debug)]
pub struct Flash {
    base: u32,
    page_size: u32,
    data: Vec<u8>,
}

impl Flash {
    /// Fully erased flash at `base` of `pages` pages.
    pub fn new(base: u32, page_size: u32, pages: u32) -> Self {
        Flash {
            base,
            page_size,
            data: vec![0xFF; (page_size * pages) as usize],
        }
    }

    /// First address.
    pub fn base(&self) -> u32 {
        self.base
    }

    /// Size in bytes.
    pub fn size(&self) -> u32 {
        self.data.len() as u32
    }

    /// Page size in bytes.
    pub fn page_size(&self) -> u32 {
        self.page_size
    }

    /// Number of pages.
    pub fn pages(&self) -> u32 {
        self.size() / self.page_size
    }

    /// The whole contents.
    pub fn contents(&self) -> &[u8] {
        &self.data
    }

    fn range(&self, addr: u32, len: usize) -> Option<core::ops::Range<usize>> {
        let start = addr.checked_sub(self.base)? as usize;
        let end = start.checked_add(len)?;
        (end <= self.data.len()).then_some(start..end)
    }

    /// True if `len` bytes at `addr` lie in this flash.
    pub fn contains(&self, addr: u32, len: usize) -> bool {
        self.range(addr, len).is_some()
    }

    /// Reads `len` bytes at `addr`, if inside.
    pub fn read(&self, addr: u32, len: usize) -> Option<&[u8]> {
        self.range(addr, len).map(|r| &self.data[r])
    }

    /// Programs `bytes` at `addr` (bits can only go from 1 to 0). False if outside.
    pub fn program(&mut self, addr: u32, bytes: &[u8]) -> bool {
        let Some(r) = self.range(addr, bytes.len()) else {
            return false;
        };
        for (cell, b) in self.data[r].iter_mut().zip(bytes) {
            *cell &= b;
        }
        true
    }

    /// Erases page `page`. False if there is no such page.
    pub fn erase_page(&mut self, page: u32) -> bool {
        if page >= self.pages() {
            return false;
        }
        let start = (page * self.page_size) as usize;
        self.data[start..start + self.page_size as usize].fill(0xFF);
        true
    }

    /// Erases everything.
    pub fn mass_erase(&mut self) {
        self.data.fill(0xFF);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programming_clears_bits_and_erase_restores_pages() {
        let mut f = Flash::new(0x0800_0000, 1024, 4);
        assert!(f.program(0x0800_0400, &[0x0F, 0xF0]));
        assert!(f.program(0x0800_0400, &[0xF3, 0xFF]));
        assert_eq!(f.read(0x0800_0400, 3), Some(&[0x03, 0xF0, 0xFF][..]));
        assert!(!f.program(0x0800_0FFF, &[0, 0]), "crosses the end");
        assert!(f.read(0x0700_0000, 1).is_none());
        assert!(f.erase_page(1));
        assert_eq!(f.read(0x0800_0400, 2), Some(&[0xFF, 0xFF][..]));
        assert!(!f.erase_page(4));
    }
}
