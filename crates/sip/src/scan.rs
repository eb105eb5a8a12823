//! Byte-level scanning shared by every parser in this crate: character classes of RFC 3261 §25,
//! linear white space (including CRLF folding), tokens, quoted strings and comma/semicolon
//! splitting that respects quotes and angle brackets.
//!
//! Everything here works on borrowed `&[u8]` and never allocates.

/// Character-class bits of [`CLASS`].
pub mod class {
    /// RFC 3261 `token`.
    pub const TOKEN: u8 = 1;
    /// RFC 3261 `word` (token plus `( ) < > : \ " / [ ] ? { }`).
    pub const WORD: u8 = 2;
    /// RFC 3261 `unreserved` (alphanum / mark).
    pub const UNRESERVED: u8 = 4;
    /// `user-unreserved`: `& = + $ , ; ? /`.
    pub const USER: u8 = 8;
    /// `param-unreserved` plus the separators of a parameter list: `[ ] / : & + $ ; =`.
    pub const PARAM: u8 = 16;
    /// `hnv-unreserved` plus the separators of a header list: `[ ] / ? : + $ & =`.
    pub const HNV: u8 = 32;
    /// `password` extras: `& = + $ ,`.
    pub const PASSWORD: u8 = 64;
    /// Host-name characters: alphanum, `-`, `.`, `_`.
    pub const HOST: u8 = 128;
}

#[allow(clippy::indexing_slicing)] // const fn: `i < 256` bounds every index; `get_mut` is not const.
const fn build_class() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        let alnum = b.is_ascii_alphanumeric();
        let mut c = 0;
        if alnum || matches!(b, b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~') {
            c |= class::TOKEN | class::WORD;
        }
        if matches!(b, b'(' | b')' | b'<' | b'>' | b':' | b'\\' | b'"' | b'/' | b'[' | b']' | b'?' | b'{' | b'}') {
            c |= class::WORD;
        }
        let unreserved = alnum || matches!(b, b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')');
        if unreserved {
            c |= class::UNRESERVED | class::USER | class::PARAM | class::HNV | class::PASSWORD;
        }
        if matches!(b, b'&' | b'=' | b'+' | b'$' | b',' | b';' | b'?' | b'/') {
            c |= class::USER;
        }
        if matches!(b, b'[' | b']' | b'/' | b':' | b'&' | b'+' | b'$' | b';' | b'=') {
            c |= class::PARAM;
        }
        if matches!(b, b'[' | b']' | b'/' | b'?' | b':' | b'+' | b'$' | b'&' | b'=') {
            c |= class::HNV;
        }
        if matches!(b, b'&' | b'=' | b'+' | b'$' | b',') {
            c |= class::PASSWORD;
        }
        if alnum || matches!(b, b'-' | b'.' | b'_') {
            c |= class::HOST;
        }
        t[i] = c;
        i += 1;
    }
    t
}

/// One lookup per byte for every character class the parsers need.
pub static CLASS: [u8; 256] = build_class();

/// Whether `b` is in any of the classes in `mask`.
#[inline(always)]
pub fn is(b: u8, mask: u8) -> bool {
    CLASS.get(usize::from(b)).is_some_and(|c| c & mask != 0)
}

/// RFC 3261 `token` characters: alphanum / `-.!%*_+` and the back-quote, quote and tilde.
#[inline(always)]
pub fn is_token(b: u8) -> bool {
    is(b, class::TOKEN)
}

/// RFC 3261 `word` characters: token plus `( ) < > : \ " / [ ] ? { }`.
#[inline(always)]
pub fn is_word(b: u8) -> bool {
    is(b, class::WORD)
}

/// Space or horizontal tab.
#[inline]
pub fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Whether the whole slice is a non-empty token.
pub fn is_token_str(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_token(b))
}

/// Skips linear white space from `pos`: SP, HTAB, and a CRLF (or LF) only when followed by SP or
/// HTAB (header folding). Returns the new position.
pub fn skip_lws(s: &[u8], mut pos: usize) -> usize {
    loop {
        match s.get(pos) {
            Some(b' ' | b'\t') => pos += 1,
            Some(b'\r') if s.get(pos + 1) == Some(&b'\n') && s.get(pos + 2).is_some_and(|&b| is_wsp(b)) => pos += 3,
            Some(b'\n') if s.get(pos + 1).is_some_and(|&b| is_wsp(b)) => pos += 2,
            _ => return pos,
        }
    }
}

/// Trims linear white space (including folds) from both ends.
pub fn trim_lws(s: &[u8]) -> &[u8] {
    let start = skip_lws(s, 0);
    let mut end = s.len();
    while end > start {
        match s.get(end - 1) {
            Some(b' ' | b'\t' | b'\r' | b'\n') => end -= 1,
            _ => break,
        }
    }
    s.get(start..end).unwrap_or_default()
}

/// Reads a token starting at `pos`; returns `(token, next_pos)`. The token may be empty.
pub fn token_at(s: &[u8], pos: usize) -> (&[u8], usize) {
    let rest = s.get(pos..).unwrap_or_default();
    let len = rest.iter().position(|&b| !is_token(b)).unwrap_or(rest.len());
    (rest.get(..len).unwrap_or_default(), pos + len)
}

/// Error from [`quoted_at`]: the quoted string does not terminate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unterminated;

/// Reads a quoted string starting at `pos` (which must hold `"`). Returns the inner bytes (with
/// escapes still in place) and the position after the closing quote.
pub fn quoted_at(s: &[u8], pos: usize) -> Result<(&[u8], usize), Unterminated> {
    if s.get(pos) != Some(&b'"') {
        return Err(Unterminated);
    }
    let mut i = pos + 1;
    loop {
        match s.get(i) {
            None => return Err(Unterminated),
            Some(b'\\') => {
                // quoted-pair: any char except CR/LF may follow.
                match s.get(i + 1) {
                    Some(b'\r' | b'\n') | None => return Err(Unterminated),
                    Some(_) => i += 2,
                }
            }
            Some(b'"') => return Ok((s.get(pos + 1..i).unwrap_or_default(), i + 1)),
            Some(_) => i += 1,
        }
    }
}

/// Removes quoted-pair escapes from the inner bytes of a quoted string.
pub fn unquote(inner: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(inner.len());
    let mut it = inner.iter();
    while let Some(&b) = it.next() {
        if b == b'\\' {
            if let Some(&n) = it.next() {
                out.push(n);
            }
        } else {
            out.push(b);
        }
    }
    out
}

/// Splits `s` on `sep` where `sep` is outside quoted strings and outside `<…>`. Empty pieces
/// (after trimming LWS) are kept so that callers can reject them where the grammar requires.
pub fn split_outside<'a>(s: &'a [u8], sep: u8) -> SplitOutside<'a> {
    SplitOutside { s, pos: 0, sep, done: false }
}

/// Iterator returned by [`split_outside`].
#[derive(Debug, Clone)]
pub struct SplitOutside<'a> {
    s: &'a [u8],
    pos: usize,
    sep: u8,
    done: bool,
}

impl<'a> Iterator for SplitOutside<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.done {
            return None;
        }
        let start = self.pos;
        let mut i = start;
        let mut in_quote = false;
        let mut in_angle = false;
        while let Some(&b) = self.s.get(i) {
            if in_quote {
                match b {
                    b'\\' => i += 1,
                    b'"' => in_quote = false,
                    _ => {}
                }
            } else if in_angle {
                if b == b'>' {
                    in_angle = false;
                }
            } else if b == b'"' {
                in_quote = true;
            } else if b == b'<' {
                in_angle = true;
            } else if b == self.sep {
                self.pos = i + 1;
                return self.s.get(start..i);
            }
            i += 1;
        }
        self.done = true;
        self.s.get(start..)
    }
}

/// Case-insensitive ASCII comparison.
#[inline]
pub fn eq_ic(a: &[u8], b: &[u8]) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// Parses a decimal number of at most `max` (no sign, no spaces, at least one digit).
pub fn parse_u64_max(s: &[u8], max: u64) -> Option<u64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    (v <= max).then_some(v)
}

/// Finds the first occurrence of `needle` in `hay`.
pub fn find(hay: &[u8], needle: u8) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn lws_skips_folds_but_not_line_ends() {
        assert_eq!(skip_lws(b"  \r\n  x", 0), 6);
        assert_eq!(skip_lws(b" \r\nx", 0), 1);
        assert_eq!(trim_lws(b" \r\n a b \r\n"), b"a b");
    }

    #[test]
    fn quoted_strings_and_escapes() {
        let s = br#""J Rosenberg \\\"" <sip:a@b>"#;
        let (inner, next) = quoted_at(s, 0).unwrap();
        assert_eq!(unquote(inner), br#"J Rosenberg \""#.to_vec());
        assert_eq!(s[next], b' ');
        assert!(quoted_at(br#""Mr. J. User <sip:j@x>"#, 0).is_err());
    }

    #[test]
    fn split_respects_quotes_and_angles() {
        let parts: Vec<_> = split_outside(br#""a,b" <sip:x;y,z>, <sip:c>"#, b',').collect();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[1], b" <sip:c>");
    }

    #[test]
    fn class_table_matches_the_grammar() {
        for b in 0..=255u8 {
            let token = b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b);
            assert_eq!(is_token(b), token, "{b}");
            assert_eq!(is_word(b), token || b"()<>:\\\"/[]?{}".contains(&b), "{b}");
        }
    }

    #[test]
    fn numbers_bounded() {
        assert_eq!(parse_u64_max(b"0009", 100), Some(9));
        assert_eq!(parse_u64_max(b"36893488147419103232", u64::MAX), None);
        assert_eq!(parse_u64_max(b"300", 255), None);
        assert_eq!(parse_u64_max(b"-1", 255), None);
    }
}
