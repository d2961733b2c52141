//! Unpacking real archives built in the test: modes, links, gzip headers, refusals.

use super::*;
use crate::NoReporter;
use std::io::Read;

fn tar_with(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    build(&mut builder);
    builder.into_inner().unwrap()
}

fn file_header(size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_size(size);
    h.set_mode(0o755);
    h.set_entry_type(tar::EntryType::Regular);
    h
}

/// Write a raw name into a header, bypassing the tar crate's own path checks.
fn raw_name(h: &mut tar::Header, name: &str) {
    let gnu = h.as_gnu_mut().unwrap();
    gnu.name[..name.len()].copy_from_slice(name.as_bytes());
    h.set_cksum();
}

#[test]
fn strips_python_and_keeps_modes() {
    let data = tar_with(|b| {
        let mut h = file_header(2);
        b.append_data(&mut h, "python/bin/python3", &b"hi"[..])
            .unwrap();
        let mut l = tar::Header::new_gnu();
        l.set_entry_type(tar::EntryType::Symlink);
        l.set_size(0);
        b.append_link(&mut l, "python/bin/python", "python3")
            .unwrap();
    });
    let dir = tempfile::tempdir().unwrap();
    let zst = zstd::encode_all(&data[..], 3).unwrap();
    let n = unpack_tar(
        &zst[..],
        Format::TarZst,
        dir.path(),
        "t.tar.zst",
        &NoReporter,
    )
    .unwrap();
    assert_eq!(n, 2);
    assert_eq!(fs_err::read(dir.path().join("bin/python")).unwrap(), b"hi");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs_err::metadata(dir.path().join("bin/python3"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o111, 0o111);
    }
}

#[test]
fn files_larger_than_a_block_keep_content_mode_and_mtime() {
    // Pseudo-random bytes, so gzip cannot shrink them to one block of output.
    let big: Vec<u8> = (0..(BLOCK * 2 + 12345) as u64)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let data = tar_with(|b| {
        let mut h = file_header(big.len() as u64);
        h.set_mode(0o640);
        h.set_mtime(1_000_000_000);
        b.append_data(&mut h, "python/lib/big.bin", &big[..])
            .unwrap();
        let mut small = file_header(3);
        small.set_mtime(1_234_567_890);
        b.append_data(&mut small, "python/lib/small.py", &b"x=1"[..])
            .unwrap();
    });
    let dir = tempfile::tempdir().unwrap();
    let n = unpack_tar(&gz(&data)[..], Format::TarGz, dir.path(), "t", &NoReporter).unwrap();
    assert_eq!(n, 2);
    assert!(fs_err::read(dir.path().join("lib/big.bin")).unwrap() == big);
    let meta = fs_err::metadata(dir.path().join("lib/small.py")).unwrap();
    let mtime = meta
        .modified()
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH);
    assert_eq!(mtime.unwrap().as_secs(), 1_234_567_890);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let big_meta = fs_err::metadata(dir.path().join("lib/big.bin")).unwrap();
        assert_eq!(big_meta.permissions().mode() & 0o7777, 0o640);
    }
}

#[test]
fn a_file_after_a_link_of_the_same_name_replaces_the_link() {
    let outer = tempfile::tempdir().unwrap();
    let dest = outer.path().join("d");
    fs_err::create_dir_all(&dest).unwrap();
    fs_err::write(dest.join("victim"), b"keep").unwrap();
    let data = tar_with(|b| {
        let mut l = tar::Header::new_gnu();
        l.set_entry_type(tar::EntryType::Symlink);
        l.set_size(0);
        b.append_link(&mut l, "python/f", "victim").unwrap();
        let mut h = file_header(3);
        b.append_data(&mut h, "python/f", &b"new"[..]).unwrap();
    });
    unpack_tar(&gz(&data)[..], Format::TarGz, &dest, "t", &NoReporter).unwrap();
    assert_eq!(fs_err::read(dest.join("victim")).unwrap(), b"keep");
    assert_eq!(fs_err::read(dest.join("f")).unwrap(), b"new");
    assert!(
        !fs_err::symlink_metadata(dest.join("f"))
            .unwrap()
            .is_symlink()
    );
}

#[test]
fn a_corrupt_stream_is_an_error_naming_the_archive() {
    let data = tar_with(|b| {
        let mut h = file_header(BLOCK as u64);
        b.append_data(&mut h, "python/x", &vec![7u8; BLOCK][..])
            .unwrap();
    });
    let mut gz = gz(&data);
    let cut = gz.len() / 2;
    gz.truncate(cut);
    let dir = tempfile::tempdir().unwrap();
    let err = unpack_tar(
        &gz[..],
        Format::TarGz,
        dir.path(),
        "cut.tar.gz",
        &NoReporter,
    )
    .unwrap_err();
    assert!(err.to_string().contains("cut.tar.gz"), "{err}");
}

#[test]
fn gzip_headers_with_every_optional_field_and_a_wrong_length_trailer() {
    let data = tar_with(|b| {
        let mut h = file_header(5);
        b.append_data(&mut h, "python/a.txt", &b"hello"[..])
            .unwrap();
    });
    let mut encoder = flate2::GzBuilder::new()
        .filename("x.tar")
        .comment("made by a test")
        .extra(vec![1, 2, 3])
        .write(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut encoder, &data).unwrap();
    let gz = encoder.finish().unwrap();
    let dir = tempfile::tempdir().unwrap();
    unpack_tar(&gz[..], Format::TarGz, dir.path(), "t", &NoReporter).unwrap();
    assert_eq!(fs_err::read(dir.path().join("a.txt")).unwrap(), b"hello");

    let mut body = Vec::new();
    GzipBody::new(&gz[..]).read_to_end(&mut body).unwrap();
    assert_eq!(body, data);
    let mut wrong = gz.clone();
    let at = wrong.len() - 4;
    wrong[at] ^= 1;
    let err = GzipBody::new(&wrong[..])
        .read_to_end(&mut Vec::new())
        .unwrap_err();
    assert!(err.to_string().contains("length"), "{err}");
    let err = GzipBody::new(&data[..])
        .read_to_end(&mut Vec::new())
        .unwrap_err();
    assert!(err.to_string().contains("not a gzip"), "{err}");
}

#[test]
fn refuses_parent_dir_entries_and_writes_nothing_outside() {
    let data = tar_with(|b| {
        let mut h = file_header(1);
        raw_name(&mut h, "python/../../evil");
        b.append(&h, &b"x"[..]).unwrap();
    });
    let outer = tempfile::tempdir().unwrap();
    let dest = outer.path().join("a/b");
    fs_err::create_dir_all(&dest).unwrap();
    let gz = gz(&data);
    let err = unpack_tar(&gz[..], Format::TarGz, &dest, "t", &NoReporter).unwrap_err();
    assert!(matches!(err, Error::Unsafe { .. }), "{err}");
    assert!(!outer.path().join("evil").exists());
}

#[test]
fn refuses_absolute_and_escaping_links() {
    for (link, name) in [
        ("/etc/passwd", "python/lib/abs"),
        ("../../../x", "python/lib/rel"),
    ] {
        let data = tar_with(|b| {
            let mut l = tar::Header::new_gnu();
            l.set_entry_type(tar::EntryType::Symlink);
            l.set_size(0);
            b.append_link(&mut l, name, link).unwrap();
        });
        let dir = tempfile::tempdir().unwrap();
        let err =
            unpack_tar(&gz(&data)[..], Format::TarGz, dir.path(), "t", &NoReporter).unwrap_err();
        assert!(err.to_string().contains("link"), "{err}");
    }
}

#[test]
fn never_writes_through_a_link_that_leaves() {
    // A link that looks inside lexically but resolves outside through another link.
    let outer = tempfile::tempdir().unwrap();
    let dest = outer.path().join("d");
    fs_err::create_dir_all(&dest).unwrap();
    let data = tar_with(|b| {
        let mut l = tar::Header::new_gnu();
        l.set_entry_type(tar::EntryType::Symlink);
        l.set_size(0);
        b.append_link(&mut l, "python/here", ".").unwrap();
        let mut l2 = tar::Header::new_gnu();
        l2.set_entry_type(tar::EntryType::Symlink);
        l2.set_size(0);
        b.append_link(&mut l2, "python/up", "here/..").unwrap();
        let mut h = file_header(1);
        b.append_data(&mut h, "python/up/escaped", &b"x"[..])
            .unwrap();
    });
    let result = unpack_tar(&gz(&data)[..], Format::TarGz, &dest, "t", &NoReporter);
    assert!(result.is_err());
    assert!(!outer.path().join("escaped").exists());
}

#[test]
fn zip_round_trip_and_format_detection() {
    let dir = tempfile::tempdir().unwrap();
    let zpath = dir.path().join("a.zip");
    {
        let mut w = zip::ZipWriter::new(fs_err::File::create(&zpath).unwrap());
        let opts = zip::write::SimpleFileOptions::default().unix_permissions(0o755);
        w.add_directory("python/bin/", opts).unwrap();
        w.start_file("python/bin/python3", opts).unwrap();
        std::io::Write::write_all(&mut w, b"zz").unwrap();
        w.finish().unwrap();
    }
    let dest = dir.path().join("out");
    fs_err::create_dir_all(&dest).unwrap();
    assert_eq!(unpack_zip(&zpath, &dest, &NoReporter).unwrap(), 2);
    assert_eq!(fs_err::read(dest.join("bin/python3")).unwrap(), b"zz");
    assert_eq!(Format::of("x.tar.gz").unwrap(), Format::TarGz);
    assert_eq!(Format::of("x.TAR.ZST").unwrap(), Format::TarZst);
    assert!(Format::of("x.rar").is_err());
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut e, data).unwrap();
    e.finish().unwrap()
}

/// Zip entries go through the same entry function as tar ones: no setuid bit, and a
/// link that leaves the destination is refused.
#[cfg(unix)]
#[test]
fn zip_entries_get_the_tar_rules() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let zpath = dir.path().join("a.zip");
    {
        let mut w = zip::ZipWriter::new(fs_err::File::create(&zpath).unwrap());
        let opts = zip::write::SimpleFileOptions::default().unix_permissions(0o4755);
        w.start_file("python/bin/tool", opts).unwrap();
        std::io::Write::write_all(&mut w, b"#!/bin/sh\n").unwrap();
        w.finish().unwrap();
    }
    let dest = dir.path().join("out");
    fs_err::create_dir_all(&dest).unwrap();
    unpack_zip(&zpath, &dest, &NoReporter).unwrap();
    let mode = fs_err::metadata(dest.join("bin/tool"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o755);

    let evil = dir.path().join("evil.zip");
    {
        let mut w = zip::ZipWriter::new(fs_err::File::create(&evil).unwrap());
        w.add_symlink(
            "python/lib/out",
            "../../../outside",
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        w.finish().unwrap();
    }
    let dest = dir.path().join("evil-out");
    fs_err::create_dir_all(&dest).unwrap();
    let err = unpack_zip(&evil, &dest, &NoReporter).unwrap_err();
    assert!(matches!(err, Error::Unsafe { .. }), "{err}");
    assert!(fs_err::symlink_metadata(dest.join("lib/out")).is_err());
}
