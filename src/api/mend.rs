//! Pages with bytes that are not UTF-8. JSON is UTF-8, so one bad byte inside one item's string
//! would fail the whole page, every run, and stall its stream behind it. Instead, each run of
//! invalid bytes is replaced by a marker that is valid inside a JSON string and carries the
//! bytes in hex; the page then parses, and the item holding a marker goes to quarantine (see
//! `streams::Stream::read`) with its bytes written out, while the rest of the page is stored.
//! Bytes outside any string still make the page unreadable, as they should.

/// Starts every marker: the JSON escape of U+10FFFF, a noncharacter no real text holds,
/// followed by the bytes in hex and `>`.
const MARKER: &str = "\\uDBFF\\uDFFF<";

/// `body` with every run of invalid UTF-8 replaced by a marker; `None` when it is valid UTF-8.
pub fn mend(body: &[u8]) -> Option<Vec<u8>> {
    if std::str::from_utf8(body).is_ok() {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() + 64);
    for chunk in body.utf8_chunks() {
        out.extend_from_slice(chunk.valid().as_bytes());
        if !chunk.invalid().is_empty() {
            out.extend_from_slice(MARKER.as_bytes());
            for b in chunk.invalid() {
                out.extend_from_slice(format!("{b:02X}").as_bytes());
            }
            out.push(b'>');
        }
    }
    Some(out)
}

/// For an item's raw JSON: `None` if it holds no marker; otherwise the bytes that were not
/// UTF-8, in hex, and the item with each marker written as `\\xNN` escapes (valid JSON text
/// that shows the bytes as they came).
pub fn invalid_bytes(raw: &str) -> Option<(String, String)> {
    if !raw.contains(MARKER) {
        return None;
    }
    let mut shown = String::with_capacity(raw.len());
    let mut bytes = Vec::new();
    let mut rest = raw;
    while let Some(at) = rest.find(MARKER) {
        shown.push_str(&rest[..at]);
        let after = &rest[at + MARKER.len()..];
        let end = after.find('>').unwrap_or(after.len());
        let hex = &after[..end];
        for pair in hex.as_bytes().chunks(2) {
            let pair = std::str::from_utf8(pair).unwrap_or_default();
            shown.push_str("\\\\x");
            shown.push_str(pair);
            bytes.push(pair.to_ascii_lowercase());
        }
        rest = after.get(end + 1..).unwrap_or_default();
    }
    shown.push_str(rest);
    Some((bytes.join(" "), shown))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_byte_inside_a_string_is_marked_and_shown_back() {
        let body = b"{\"items\":[{\"id\":\"a\",\"name\":\"J\xf8rgen\"},{\"id\":\"b\"}]}";
        assert_eq!(mend(b"{\"ok\":\"\xc3\xb8\"}"), None, "valid UTF-8 is left alone");
        let mended = mend(body).unwrap();
        let page: serde_json::Value = serde_json::from_slice(&mended).unwrap();
        let first = serde_json::to_string(&page["items"][0]).unwrap();
        let raw = std::str::from_utf8(&mended).unwrap();
        let item = &raw[raw.find("{\"id\":\"a\"").unwrap()..raw.find("},").unwrap() + 1];
        let (bytes, shown) = invalid_bytes(item).unwrap();
        assert_eq!(bytes, "f8");
        assert_eq!(shown, r#"{"id":"a","name":"J\\xF8rgen"}"#);
        assert!(
            serde_json::from_str::<serde_json::Value>(&shown).is_ok(),
            "{shown}"
        );
        assert!(first.contains("rgen"));
        assert_eq!(invalid_bytes(r#"{"id":"b"}"#), None);
    }
}
