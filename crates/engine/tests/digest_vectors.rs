//! The 1 MiB pattern's digests were computed outside this project, with coreutils `md5sum`,
//! `sha256sum` and Python's `zlib.crc32`, over bytes `i % 251` for i in 0..1 MiB.

use sota_engine::Digester;

fn pattern() -> Vec<u8> {
    (0..1u32 << 20).map(|i| (i % 251) as u8).collect()
}

#[test]
fn one_mib_pattern_matches_coreutils_and_zlib() {
    let data = pattern();
    let mut d = Digester::new();
    // Odd chunk size so chunk edges never line up with block sizes.
    data.chunks(65_521).for_each(|c| d.update(c));
    let got = d.finish();
    assert_eq!(got.size, 1 << 20);
    assert_eq!(got.md5, "8f293a2f6c19b345152f7a49bb4c643c");
    assert_eq!(got.crc32, "ef0e6054");
    assert_eq!(
        got.sha256,
        "631b84027d6b9e52b539c4e8373622d23032dfadc64d60af87339c9037e4f769"
    );
}

/// Where coreutils and python3 are installed, check against them live as well.
#[test]
fn one_mib_pattern_matches_live_tools_when_present() {
    use std::process::Command;
    let data = pattern();
    let path = std::env::temp_dir().join(format!("sota-digest-{}.bin", std::process::id()));
    std::fs::write(&path, &data).unwrap();
    let got = Digester::digest(&data);
    let run = |cmd: &str, args: &[&str]| -> Option<String> {
        let out = Command::new(cmd).args(args).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let p = path.to_str().unwrap();
    let mut checked = 0;
    if let Some(o) = run("md5sum", &[p]) {
        assert_eq!(o.split_whitespace().next().unwrap(), got.md5);
        checked += 1;
    }
    if let Some(o) = run("sha256sum", &[p]) {
        assert_eq!(o.split_whitespace().next().unwrap(), got.sha256);
        checked += 1;
    }
    let py = format!("import zlib;print('%08x'%zlib.crc32(open('{p}','rb').read()))");
    if let Some(o) = run("python3", &["-c", &py]) {
        assert_eq!(o.trim(), got.crc32);
        checked += 1;
    }
    std::fs::remove_file(&path).ok();
    // coreutils is part of every Debian machine, so at least those two must have run.
    assert!(checked >= 2, "md5sum/sha256sum not found");
}
