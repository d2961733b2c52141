//! The gzip reader of `.tar.gz` runtimes: the member header (RFC 1952) is skipped and the
//! deflate data read with its length checked against the trailer.

use std::io::{BufRead, Read};

/// The data of a gzip stream, checked against its length but not its CRC-32: the archive's
/// sha256 is verified before anything unpacked from it is used, so the CRC would be
/// redundant work (about a tenth of the decompression time).
pub(super) struct GzipBody<R: BufRead> {
    inflate: flate2::bufread::DeflateDecoder<R>,
    state: GzipState,
    length: u32,
}

#[derive(PartialEq)]
enum GzipState {
    Header,
    Body,
    Done,
}

impl<R: BufRead> GzipBody<R> {
    pub(super) fn new(reader: R) -> Self {
        Self {
            inflate: flate2::bufread::DeflateDecoder::new(reader),
            state: GzipState::Header,
            length: 0,
        }
    }
}

fn invalid(message: &'static str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message)
}

/// Skip a gzip member header (RFC 1952 section 2.3).
fn skip_gzip_header(reader: &mut impl BufRead) -> std::io::Result<()> {
    let mut fixed = [0u8; 10];
    reader.read_exact(&mut fixed)?;
    if fixed[..3] != [0x1f, 0x8b, 8] {
        return Err(invalid("not a gzip (deflate) stream"));
    }
    let flags = fixed[3];
    if flags & 0xe0 != 0 {
        return Err(invalid("gzip header with reserved flags set"));
    }
    if flags & 0x04 != 0 {
        let mut len = [0u8; 2];
        reader.read_exact(&mut len)?;
        let mut extra = vec![0u8; u16::from_le_bytes(len).into()];
        reader.read_exact(&mut extra)?;
    }
    for zero_terminated in [0x08, 0x10] {
        if flags & zero_terminated != 0 {
            let mut text = Vec::new();
            if reader.read_until(0, &mut text)? == 0 || text.last() != Some(&0) {
                return Err(invalid("truncated gzip header"));
            }
        }
    }
    if flags & 0x02 != 0 {
        reader.read_exact(&mut [0u8; 2])?;
    }
    Ok(())
}

impl<R: BufRead> Read for GzipBody<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.state == GzipState::Header {
            skip_gzip_header(self.inflate.get_mut())?;
            self.state = GzipState::Body;
        }
        if self.state == GzipState::Done || buf.is_empty() {
            return Ok(0);
        }
        let n = self.inflate.read(buf)?;
        if n > 0 {
            self.length = self.length.wrapping_add(n as u32);
            return Ok(n);
        }
        // The end of the deflate data: the trailer holds CRC-32 and length (mod 2^32).
        let mut trailer = [0u8; 8];
        self.inflate.get_mut().read_exact(&mut trailer)?;
        if u32::from_le_bytes([trailer[4], trailer[5], trailer[6], trailer[7]]) != self.length {
            return Err(invalid("gzip stream length does not match its trailer"));
        }
        self.state = GzipState::Done;
        Ok(0)
    }
}
