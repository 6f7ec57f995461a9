//! Values as people write them in flags, `-o` options and the configuration file: sizes with
//! binary units (`10G`, `512M`) and octal modes (`0644`, `022`). One parser each, so that a size
//! or a mode means the same wherever it is given.

/// Parses `10G`, `256M`, `64K`, `1T` (binary units) or plain bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(split) => text.split_at(split),
        None => (text, ""),
    };
    let number: f64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size (try 512M or 10G)"))?;
    let scale: u64 = match unit
        .trim()
        .to_ascii_uppercase()
        .trim_end_matches("IB")
        .trim_end_matches('B')
    {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return Err(format!("{text:?}: unknown unit (use K, M, G or T)")),
    };
    Ok((number * scale as f64) as u64)
}

/// Parses an octal mode or umask: `022`, `0644`, `0o755`.
pub fn parse_mode(text: &str) -> Result<u16, String> {
    let digits = text.trim().trim_start_matches("0o");
    match u16::from_str_radix(digits, 8) {
        Ok(mode) if mode <= 0o7777 => Ok(mode),
        _ => Err(format!("{text:?} is not an octal mode (try 0644 or 022)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("256M"), Ok(256 << 20));
        assert_eq!(parse_size("10G"), Ok(10 << 30));
        assert_eq!(parse_size("10GiB"), Ok(10 << 30));
        assert_eq!(parse_size("1.5G"), Ok(3 << 29));
        assert!(parse_size("ten").is_err());
        assert!(parse_size("10X").is_err());
    }

    #[test]
    fn modes() {
        assert_eq!(parse_mode("022"), Ok(0o22));
        assert_eq!(parse_mode("0644"), Ok(0o644));
        assert_eq!(parse_mode("0o755"), Ok(0o755));
        assert!(parse_mode("9").is_err());
        assert!(parse_mode("17777").is_err());
    }
}
