//! Kubernetes resource quantities (`64Mi`, `1G`, `1e9`, `500m`), read the
//! way the API server's `resource.ParseQuantity` reads them, with its error
//! messages. Values are `f64`: precise enough for a test server's memory
//! limits.

/// `ParseQuantity`'s `ErrFormatWrong`.
pub(crate) const FORMAT_WRONG: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
/// `ParseQuantity`'s `ErrSuffix`.
pub(crate) const SUFFIX_WRONG: &str = "unable to parse quantity's suffix";

/// The value of a quantity; `Err` is the real parser's message.
///
/// A sign, digits with an optional fraction (an empty number is 0, as in
/// the real parser), then a suffix: none, a binary one (`Ki` .. `Ei`), a
/// decimal one (`n`, `u`, `m`, `k`, `M`, `G`, `T`, `P`, `E`) or a decimal
/// exponent (`e3`, `E-2`).
pub(crate) fn parse(text: &str) -> Result<f64, &'static str> {
    // The JSON decoder trims spaces before parsing.
    let text = text.trim();
    if text.is_empty() {
        return Err(FORMAT_WRONG);
    }
    let bytes = text.as_bytes();
    let digits_from = |from: usize| from + bytes[from..].iter().take_while(|b| b.is_ascii_digit()).count();
    let (negative, start) = match bytes[0] {
        b'-' => (true, 1),
        b'+' => (false, 1),
        _ => (false, 0),
    };
    let mut end = digits_from(start);
    if bytes.get(end) == Some(&b'.') {
        end = digits_from(end + 1);
    }
    let number = &text[start..end];
    // The suffix: letters from the suffix alphabet, then an optional signed
    // exponent; anything else is the wrong format.
    let mut i = end + bytes[end..].iter().take_while(|b| b"eEinumkKMGTP".contains(b)).count();
    if matches!(bytes.get(i), Some(b'-' | b'+')) {
        i += 1;
    }
    if digits_from(i) != bytes.len() {
        return Err(FORMAT_WRONG);
    }
    let multiplier = match &text[end..] {
        "" => 1.0,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        exponent if exponent.len() > 1 && exponent.starts_with(['e', 'E']) => {
            let power: i32 = exponent[1..].parse().map_err(|_| SUFFIX_WRONG)?;
            10f64.powi(power)
        }
        _ => return Err(SUFFIX_WRONG),
    };
    let magnitude = if number.trim_matches('.').is_empty() { 0.0 } else { number.parse().map_err(|_| FORMAT_WRONG)? };
    let value = magnitude * multiplier;
    Ok(if negative { -value } else { value })
}

/// A memory quantity in whole bytes, rounded up as `Quantity.Value()`
/// rounds; `None` when it does not parse or is negative.
pub(crate) fn bytes(text: &str) -> Option<u64> {
    let value = parse(text).ok()?;
    (value >= 0.0).then(|| value.ceil() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_parse_as_the_api_server_parses_them() {
        for (text, value) in [
            ("64Mi", 64.0 * 1024.0 * 1024.0),
            ("1Gi", 1024f64.powi(3)),
            ("1Ki", 1024.0),
            ("2Ei", 2.0 * 1024f64.powi(6)),
            ("128974848", 128974848.0),
            ("129e6", 129e6),
            ("1e9", 1e9),
            ("1E3", 1e3),
            ("1.5G", 1.5e9),
            ("123M", 123e6),
            ("1k", 1e3),
            ("500m", 0.5),
            (".5", 0.5),
            ("0", 0.0),
            ("-1Mi", -1024.0 * 1024.0),
            (" 10 ", 10.0),
        ] {
            assert_eq!(parse(text), Ok(value), "{text}");
        }
        assert_eq!(bytes("500m"), Some(1));
        assert_eq!(bytes("64Mi"), Some(64 << 20));
        assert_eq!(bytes("-1"), None);
        for text in ["", "lots", "64Zi", "64Mb", "1.5.5", "64 Mi"] {
            assert_eq!(parse(text), Err(FORMAT_WRONG), "{text}");
        }
        for text in ["64MM", "1K", "1e", "64iM"] {
            assert_eq!(parse(text), Err(SUFFIX_WRONG), "{text}");
        }
    }
}
