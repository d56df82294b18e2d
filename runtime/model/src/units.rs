//! Durations and memory sizes as people write them, read the same way on
//! the command line and in deployment files.

use std::time::Duration;

/// The least memory a guest can be given: one WebAssembly page.
pub const MIN_MEMORY: u64 = 64 << 10;
/// The most memory a guest can be given: all that a 32-bit WebAssembly
/// memory can address.
pub const MAX_MEMORY: u64 = 4 << 30;

/// Reads `30s`, `5m`, `1h 30m`. A bare number is refused: its unit would be
/// a guess.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.parse::<f64>().is_ok() {
        return Err(format!("`{text}` has no unit: write {text}s, {text}m or {text}h"));
    }
    humantime::parse_duration(text)
        .map_err(|_| format!("invalid duration `{text}`: write a duration such as 30s, 5m or 1h"))
}

/// Reads a memory limit, `512MiB` or `1GiB` (a bare number is bytes), and
/// checks it is one a guest can have.
pub fn parse_memory(text: &str) -> Result<u64, String> {
    let bytes = text
        .trim()
        .parse::<bytesize::ByteSize>()
        .map(|size| size.as_u64())
        .map_err(|_| format!("invalid size `{text}`: write a size such as 256MiB or 1GiB"))?;
    check_memory(bytes)
}

/// Reads a limit on bytes written, `16KiB` or `100MiB` (a bare number is
/// bytes); at least one byte.
pub fn parse_byte_limit(text: &str) -> Result<u64, String> {
    let text = text.trim();
    match text.parse::<bytesize::ByteSize>() {
        Ok(size) if size.as_u64() > 0 => Ok(size.as_u64()),
        Ok(_) => Err(format!("`{text}` would keep nothing: write a size such as 16KiB or 100MiB")),
        Err(_) if text.starts_with('-') => Err(format!("`{text}` is negative: write a size such as 16KiB or 100MiB")),
        Err(_) => Err(format!("invalid size `{text}`: write a size such as 16KiB or 100MiB")),
    }
}

/// `bytes` if a guest's memory can be capped there; otherwise the valid range.
pub fn check_memory(bytes: u64) -> Result<u64, String> {
    if (MIN_MEMORY..=MAX_MEMORY).contains(&bytes) {
        Ok(bytes)
    } else {
        Err(format!(
            "a memory limit of {} is impossible: a guest's memory is from 64KiB (one WebAssembly page) to 4GiB \
             (all a 32-bit WebAssembly memory can address); write a size such as 256MiB or 1GiB",
            bytesize::ByteSize::b(bytes).display().iec()
        ))
    }
}

/// A duration for people, as tables and pages show it: `1.25s` under a
/// minute, `3m 2s` above.
pub fn short_duration(d: Duration) -> String {
    if d < Duration::from_secs(60) {
        format!("{:.2}s", d.as_secs_f64())
    } else {
        humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_number_is_not_a_duration() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("5").expect_err("refused"), "`5` has no unit: write 5s, 5m or 5h");
        assert!(parse_duration("soon").expect_err("refused").contains("write a duration such as 30s"));
    }

    #[test]
    fn memory_limits_are_what_wasm32_can_have() {
        assert_eq!(parse_memory("512MiB"), Ok(512 << 20));
        assert_eq!(parse_memory("4GiB"), Ok(4 << 30));
        for impossible in ["0", "1KiB", "1TiB", "4.1GiB"] {
            let e = parse_memory(impossible).expect_err("refused");
            assert!(e.contains("from 64KiB (one WebAssembly page) to 4GiB"), "{impossible}: {e}");
        }
        assert!(parse_memory("lots").expect_err("refused").contains("invalid size `lots`"));
    }
}
