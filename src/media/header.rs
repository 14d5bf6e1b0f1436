//! An image's width and height from its file header, read before decoding: a file that
//! declares a huge picture is refused in microseconds instead of after a decode of seconds and
//! gigabytes. PNG, JPEG, GIF, BMP and WebP; other formats are checked after decoding.

use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

/// `(width, height)` as the header of the image at `path` declares them; `None` when the
/// format is not one of those read here or the header is cut short (the decoder then says
/// what is wrong).
pub fn declared_size(path: &Path) -> Option<(u32, u32)> {
    let file = std::fs::File::open(path).ok()?;
    let mut r = BufReader::new(file);
    let mut head = [0u8; 30];
    let n = read_up_to(&mut r, &mut head)?;
    let head = &head[..n];
    let le16 = |i: usize| Some(u16::from_le_bytes(head.get(i..i + 2)?.try_into().ok()?) as u32);
    let be32 = |i: usize| Some(u32::from_be_bytes(head.get(i..i + 4)?.try_into().ok()?));
    let le32 = |i: usize| Some(u32::from_le_bytes(head.get(i..i + 4)?.try_into().ok()?));
    let le24 = |i: usize| Some(le32(i)? & 0x00ff_ffff);
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Some((be32(16)?, be32(20)?));
    }
    if head.starts_with(b"GIF8") {
        return Some((le16(6)?, le16(8)?));
    }
    if head.starts_with(b"BM") {
        let h = le32(22)? as i32;
        return Some((le32(18)?, h.unsigned_abs()));
    }
    if head.starts_with(b"RIFF") && head.get(8..12) == Some(b"WEBP") {
        return match head.get(12..16)? {
            b"VP8X" => Some((le24(24)? + 1, le24(27)? + 1)),
            b"VP8L" => {
                let bits = le32(21)?;
                Some(((bits & 0x3fff) + 1, ((bits >> 14) & 0x3fff) + 1))
            }
            b"VP8 " => Some((le16(26)? & 0x3fff, le16(28)? & 0x3fff)),
            _ => None,
        };
    }
    if head.starts_with(&[0xff, 0xd8]) {
        return jpeg_size(&mut r);
    }
    None
}

/// Reads as much of `buf` as the file holds; the number of bytes read.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> Option<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]).ok()? {
            0 => break,
            k => n += k,
        }
    }
    Some(n)
}

/// The frame size of a JPEG: the segments after the start-of-image marker are walked by their
/// lengths (EXIF and other metadata skipped) up to the first start-of-frame segment.
fn jpeg_size<R: Read + Seek>(r: &mut R) -> Option<(u32, u32)> {
    r.seek(SeekFrom::Start(2)).ok()?;
    let mut byte = [0u8; 1];
    // a corrupt file cannot send this round for long: each segment moves the reader on
    for _ in 0..10_000 {
        r.read_exact(&mut byte).ok()?;
        if byte[0] != 0xff {
            return None;
        }
        let mut marker = 0xff;
        while marker == 0xff {
            r.read_exact(&mut byte).ok()?;
            marker = byte[0];
        }
        // markers without a length: TEM, RST0-7
        if marker == 0x01 || (0xd0..=0xd7).contains(&marker) {
            continue;
        }
        let mut len = [0u8; 2];
        r.read_exact(&mut len).ok()?;
        let len = u16::from_be_bytes(len) as i64;
        let start_of_frame =
            (0xc0..=0xcf).contains(&marker) && ![0xc4, 0xc8, 0xcc].contains(&marker);
        if start_of_frame {
            let mut sof = [0u8; 5];
            r.read_exact(&mut sof).ok()?;
            let h = u16::from_be_bytes([sof[1], sof[2]]) as u32;
            let w = u16::from_be_bytes([sof[3], sof[4]]) as u32;
            return Some((w, h));
        }
        if len < 2 {
            return None;
        }
        r.seek(SeekFrom::Current(len - 2)).ok()?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(bytes: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x");
        std::fs::write(&path, bytes).unwrap();
        (dir, path)
    }

    /// Each format's header as OpenCV writes it gives the size it was written with.
    #[test]
    fn sizes_of_encoded_images() {
        use opencv::core::{Mat, Scalar, Vector, CV_8UC3};
        use opencv::imgcodecs;
        let mat = Mat::new_rows_cols_with_default(37, 53, CV_8UC3, Scalar::all(90.0)).unwrap();
        for ext in [".png", ".jpg", ".bmp", ".webp"] {
            let mut buf = Vector::<u8>::new();
            let encoded = imgcodecs::imencode(ext, &mat, &mut buf, &Vector::new());
            if ext == ".webp" && encoded.is_err() {
                continue; // an OpenCV built without WebP
            }
            assert!(encoded.unwrap(), "{ext}");
            let (_d, path) = written(buf.as_slice());
            assert_eq!(declared_size(&path), Some((53, 37)), "{ext}");
        }
    }

    /// A header alone declaring 30000x30000 is read as such (nothing is decoded); unknown or
    /// cut-short files give `None`.
    #[test]
    fn a_header_alone_declares_its_size() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend(30000u32.to_be_bytes());
        png.extend(30000u32.to_be_bytes());
        let (_d, path) = written(&png);
        assert_eq!(declared_size(&path), Some((30000, 30000)));
        let (_d, path) = written(&png[..18]);
        assert_eq!(declared_size(&path), None);
        let (_d, path) = written(b"hello, this is not an image at all");
        assert_eq!(declared_size(&path), None);
        // a JPEG with an APP1 segment before its frame header
        let mut jpeg = vec![0xff, 0xd8, 0xff, 0xe1, 0x00, 0x06, 1, 2, 3, 4];
        jpeg.extend([0xff, 0xc0, 0x00, 0x11, 8, 0x17, 0x70, 0x27, 0x10]);
        let (_d, path) = written(&jpeg);
        assert_eq!(declared_size(&path), Some((10000, 6000)));
    }
}
