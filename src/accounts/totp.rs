//! Time-based one-time passwords (RFC 6238 over RFC 4226's HOTP):
//! HMAC-SHA1, 6 digits, 30-second steps, a code accepted for the step
//! before and after as well (clocks drift), each step at most once. Pure:
//! the time comes from the caller (the engine's clock).

use hmac::{Hmac, Mac};
use sha1::Sha1;

pub const STEP_SECONDS: i64 = 30;
pub const DIGITS: u32 = 6;
/// Length of a new secret, in bytes (160 bits, as RFC 4226 recommends).
pub const SECRET_BYTES: usize = 20;

const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32 without padding, as authenticator apps take secrets.
pub fn base32(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(5) {
        let mut buf = [0u8; 5];
        buf[..chunk.len()].copy_from_slice(chunk);
        let n = buf.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        let chars = (chunk.len() * 8).div_ceil(5);
        for i in 0..chars {
            out.push(ALPHABET[((n >> (35 - 5 * i)) & 31) as usize] as char);
        }
    }
    out
}

/// Decodes base32 (case, spaces and padding ignored); None if not base32.
pub fn from_base32(text: &str) -> Option<Vec<u8>> {
    let mut bits = 0u64;
    let mut count = 0;
    let mut out = vec![];
    for c in text.chars().filter(|c| !c.is_whitespace() && *c != '=') {
        let v = ALPHABET.iter().position(|a| *a as char == c.to_ascii_uppercase())? as u64;
        bits = (bits << 5) | v;
        count += 5;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    Some(out)
}

/// The HOTP value of `counter` (RFC 4226 §5.3), `digits` long.
pub fn hotp(secret: &[u8], counter: u64, digits: u32) -> u32 {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(&counter.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let offset = (h[h.len() - 1] & 0x0f) as usize;
    let value = u32::from_be_bytes([h[offset] & 0x7f, h[offset + 1], h[offset + 2], h[offset + 3]]);
    value % 10u32.pow(digits)
}

/// The time step of a Unix time.
pub fn step_of(unix_seconds: i64) -> i64 {
    unix_seconds.div_euclid(STEP_SECONDS)
}

/// The code of a step, zero-padded.
pub fn code_at(secret: &[u8], step: i64) -> String {
    format!(
        "{:0width$}",
        hotp(secret, step.max(0) as u64, DIGITS),
        width = DIGITS as usize
    )
}

/// The step `code` is valid for at `unix_seconds` (±1 step), if any and
/// if later than `last_used` (a code works once).
pub fn accepted_step(secret: &[u8], code: &str, unix_seconds: i64, last_used: i64) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != DIGITS as usize || !code.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let now = step_of(unix_seconds);
    (now - 1..=now + 1)
        .filter(|s| *s > last_used)
        .find(|s| crate::web::auth::same_secret(&code_at(secret, *s), &code))
}

/// The `otpauth://` address an authenticator app reads (by hand or as a QR code).
pub fn uri(secret_b32: &str, email: &str) -> String {
    let label: String = format!("kehoach:{email}")
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("otpauth://totp/{label}?secret={secret_b32}&issuer=kehoach&algorithm=SHA1&digits=6&period=30")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 rows (8 digits).
    #[test]
    fn rfc_6238_test_vectors() {
        let secret = b"12345678901234567890";
        for (t, code) in [
            (59, 94287082),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
            (20000000000, 65353130),
        ] {
            assert_eq!(hotp(secret, step_of(t) as u64, 8), code, "T = {t}");
        }
    }

    /// RFC 4226 appendix D.
    #[test]
    fn rfc_4226_test_vectors() {
        let expected = [
            755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489,
        ];
        for (counter, code) in expected.iter().enumerate() {
            assert_eq!(hotp(b"12345678901234567890", counter as u64, 6), *code);
        }
    }

    #[test]
    fn base32_round_trips() {
        assert_eq!(base32(b"12345678901234567890"), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(from_base32("mzxw 6ytb oi======").unwrap(), b"foobar");
        assert_eq!(
            from_base32("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").unwrap(),
            b"12345678901234567890"
        );
        assert!(from_base32("01").is_none());
    }

    #[test]
    fn codes_work_one_step_either_side_and_once() {
        let secret = b"12345678901234567890";
        let t = 1111111111;
        let now = step_of(t);
        assert_eq!(accepted_step(secret, &code_at(secret, now), t, 0), Some(now));
        assert_eq!(accepted_step(secret, &code_at(secret, now - 1), t, 0), Some(now - 1));
        assert_eq!(accepted_step(secret, &code_at(secret, now + 1), t, 0), Some(now + 1));
        assert_eq!(accepted_step(secret, &code_at(secret, now - 2), t, 0), None);
        assert_eq!(accepted_step(secret, &code_at(secret, now), t, now), None, "used");
        assert_eq!(accepted_step(secret, "12345", t, 0), None);
        assert_eq!(accepted_step(secret, "abcdef", t, 0), None);
    }
}
