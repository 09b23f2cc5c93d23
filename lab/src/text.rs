//! The one normalizer of guest text (a serial console, a test program's output): where its
//! lines end and what of a line is text. Consoles carry terminal escapes (7-bit `ESC [`,
//! 8-bit CSI `0x9b` raw or UTF-8-encoded), other C0/C1 controls, invalid UTF-8, and lines
//! ended by LF, CRLF or a bare CR. Every reader of guest text (the live console scanners,
//! the report parser on a file or a string) splits and cleans lines here, so that no control
//! byte can hide a report or make one up.

use std::borrow::Cow;

/// How a bounded reader's piece of a line ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// At a line end (LF, CRLF or a bare CR), which the piece includes.
    Line,
    /// The room ran out: the rest of the line follows as continuation pieces, which are
    /// never read as lines of their own.
    Cut,
    /// The bytes available ran out before either: read more.
    More,
}

/// How much of `available` a bounded line reader takes with `room` bytes left, and how the
/// piece ends. A CR ends a line (with the LF after it, when the LF is there).
pub fn line_piece(available: &[u8], room: usize) -> (usize, End) {
    let window = &available[..available.len().min(room)];
    match memchr::memchr2(b'\n', b'\r', window) {
        Some(i) if window[i] == b'\r' && available.get(i + 1) == Some(&b'\n') => (i + 2, End::Line),
        Some(i) => (i + 1, End::Line),
        None if available.len() >= room => (room, End::Cut),
        None => (available.len(), End::More),
    }
}

/// The lines of a text: ended by LF, CRLF or a bare CR (the line ends not included).
pub fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let t = rest?;
        if t.is_empty() {
            rest = None;
            return None;
        }
        match memchr::memchr2(b'\n', b'\r', t.as_bytes()) {
            Some(i) => {
                let next = if t.as_bytes()[i] == b'\r' && t.as_bytes().get(i + 1) == Some(&b'\n') {
                    i + 2
                } else {
                    i + 1
                };
                rest = Some(&t[next..]);
                Some(&t[..i])
            }
            None => {
                rest = None;
                Some(t)
            }
        }
    })
}

/// Bytes as text: valid UTF-8 as it is; a stray byte of the C1 range (0x80–0x9f: an 8-bit
/// CSI is 0x9b) as that control, so that [`without_control`] removes it with what it
/// introduces; any other invalid byte as U+FFFD. Then cleaned by [`without_control`].
pub fn decode(bytes: &[u8]) -> String {
    let text: Cow<str> = match std::str::from_utf8(bytes) {
        Ok(t) => Cow::Borrowed(t),
        Err(_) => {
            let mut out = String::with_capacity(bytes.len());
            for chunk in bytes.utf8_chunks() {
                out.push_str(chunk.valid());
                for &b in chunk.invalid() {
                    out.push(match b {
                        0x80..=0x9f => char::from(b),
                        _ => char::REPLACEMENT_CHARACTER,
                    });
                }
            }
            Cow::Owned(out)
        }
    };
    without_control(&text).into_owned()
}

/// Whether a byte can start something [`without_control`] removes: a C0 control but tab,
/// DEL, or 0xC2 (which starts every UTF-8-encoded C1 control).
fn maybe_control(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b == 0x7f || b == 0xc2
}

/// The line without terminal escape sequences (7-bit `ESC [ … final`, 8-bit CSI `U+009B …
/// final`, OSC `ESC ]` / `U+009D` up to BEL or ST, other `ESC x`) and other control
/// characters (C0 but tab, DEL, C1); line ends go too. Borrowed when there are none (nearly
/// every line).
pub fn without_control(line: &str) -> Cow<'_, str> {
    if !line.bytes().any(maybe_control) {
        return Cow::Borrowed(line);
    }
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    // Skip a control sequence's parameters and intermediates up to its final byte @..~.
    let csi = |chars: &mut std::iter::Peekable<std::str::Chars>| {
        for c in chars.by_ref() {
            if ('@'..='~').contains(&c) {
                break;
            }
        }
    };
    // Skip an operating system command up to BEL or ST (ESC \ or U+009C).
    let osc = |chars: &mut std::iter::Peekable<std::str::Chars>| {
        while let Some(c) = chars.next() {
            if c == '\u{7}' || c == '\u{9c}' || (c == '\u{1b}' && chars.next_if_eq(&'\\').is_some())
            {
                break;
            }
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                Some('[') => csi(&mut chars),
                Some(']') => osc(&mut chars),
                // Other escapes: intermediates (space../) then one final byte.
                Some(mut c) => {
                    while (' '..='/').contains(&c) {
                        match chars.next() {
                            Some(next) => c = next,
                            None => break,
                        }
                    }
                }
                None => {}
            },
            '\u{9b}' => csi(&mut chars),
            '\u{9d}' => osc(&mut chars),
            '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    // What trailed the text was the escape's: the text ends where it did without it.
    let kept = out.trim_end_matches([' ', '\t']).len();
    out.truncate(kept);
    Cow::Owned(out)
}

/// `n` and the noun in its number: "1 applied attempt", "17 applied attempts".
pub fn count(n: u32, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A confidence as people read it: 3 decimals, except that one below 1 that would round to
/// 1.000 says how far below it is ("1 − 2.1e-5"): a measured confidence is never written as
/// certainty.
pub fn confidence(c: f64) -> String {
    if (0.9995..1.0).contains(&c) {
        format!("1 − {:.1e}", 1.0 - c)
    } else {
        format!("{c:.3}")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_confidence_below_one_never_reads_as_one() {
        assert_eq!(super::confidence(0.9712), "0.971");
        assert_eq!(super::confidence(0.99998), "1 − 2.0e-5");
        assert_eq!(super::confidence(1.0), "1.000");
        assert_eq!(super::confidence(0.0), "0.000");
    }

    use super::*;

    #[test]
    fn line_pieces_end_at_a_line_end_or_the_room_left() {
        assert_eq!(line_piece(b"ab\ncd", 10), (3, End::Line));
        assert_eq!(line_piece(b"ab\r\ncd", 10), (4, End::Line));
        assert_eq!(line_piece(b"ab\rcd", 10), (3, End::Line));
        assert_eq!(line_piece(b"abcd", 10), (4, End::More));
        assert_eq!(line_piece(b"abcd\n", 2), (2, End::Cut));
        assert_eq!(line_piece(b"ab\n", 3), (3, End::Line));
        assert_eq!(line_piece(b"", 3), (0, End::More));
    }

    #[test]
    fn every_line_end_ends_a_line() {
        for (text, want) in [
            ("", vec![]),
            ("a", vec!["a"]),
            ("a\n", vec!["a"]),
            ("a\r\nb", vec!["a", "b"]),
            ("a\rb\rc", vec!["a", "b", "c"]),
            ("\n\nx\r\n", vec!["", "", "x"]),
            ("x\r\r\ny", vec!["x", "", "y"]),
        ] {
            assert_eq!(lines(text).collect::<Vec<_>>(), want, "{text:?}");
        }
    }

    #[test]
    fn controls_of_every_form_go_and_the_text_stays() {
        for (dirty, clean) in [
            ("\u{1b}[1;31mBUG:\u{1b}[0m x", "BUG: x"),
            ("\u{9b}1;31mBUG: x", "BUG: x"),
            ("\u{1b}]0;title\u{7}BUG: x", "BUG: x"),
            ("\u{9d}0;title\u{9c}BUG: x", "BUG: x"),
            ("B\u{0}U\u{7f}G\u{85}: x", "BUG: x"),
            ("\tx\u{7}", "\tx"),
        ] {
            assert_eq!(without_control(dirty), clean, "{dirty:?}");
        }
        assert_eq!(decode(b"\x9b1mBUG: x"), "BUG: x");
        assert_eq!(decode(b"\xc2\x9b1mBUG: x"), "BUG: x");
        assert_eq!(decode(b"a\xffb"), "a\u{fffd}b");
    }
}
