//! Comparing Vietnamese words as people write them: NFC, case, the two
//! tone placements ("uỷ"/"ủy", "hoà"/"hòa"), punctuation, and the letters
//! without their marks (for misspellings such as "Huyên ủy").

use unicode_normalization::UnicodeNormalization;

/// NFC, tabs and runs of spaces collapsed, trimmed.
pub fn clean(s: &str) -> String {
    // Control and bidi characters a document export carries (a vertical
    // tab for Word's line break, a stray escape) become spaces: a plan file
    // refuses them, and people must never read them.
    let nfc: String = s
        .nfc()
        .map(|c| if crate::domain::text::is_forbidden(c) { ' ' } else { c })
        .collect();
    nfc.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Old tone placement to the new one, on lowercase NFC text, so that "uỷ"
/// and "ủy" compare equal. Only the pairs where both placements are in use.
fn tone(s: &str) -> String {
    const PAIRS: [(&str, &str); 15] = [
        ("oà", "òa"),
        ("oá", "óa"),
        ("oả", "ỏa"),
        ("oã", "õa"),
        ("oạ", "ọa"),
        ("oè", "òe"),
        ("oé", "óe"),
        ("oẻ", "ỏe"),
        ("oẽ", "õe"),
        ("oẹ", "ọe"),
        ("uỳ", "ùy"),
        ("uý", "úy"),
        ("uỷ", "ủy"),
        ("uỹ", "ũy"),
        ("uỵ", "ụy"),
    ];
    // Only at the end of a word: "hoà"/"hòa", but "đoạn" is one spelling.
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < chars.len() {
        if i + 1 < chars.len() && !chars.get(i + 2).is_some_and(|c| c.is_alphabetic()) {
            let pair: String = chars[i..i + 2].iter().collect();
            if let Some((_, new)) = PAIRS.iter().find(|(old, _)| *old == pair) {
                // "quý" is written that way in both placements.
                if !(pair == "uý" && i > 0 && chars[i - 1] == 'q') {
                    out.push_str(new);
                    i += 2;
                    continue;
                }
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// Lowercase, NFC, new tone placement, punctuation as spaces, one space
/// between words. The form names are compared in.
pub fn fold(s: &str) -> String {
    fold_keeping(s, "&/")
}

/// `fold`, keeping the punctuation in `keep` (dates need '/', '-' and '.').
pub fn fold_keeping(s: &str, keep: &str) -> String {
    let lower: String = s.nfc().flat_map(char::to_lowercase).collect();
    let toned = tone(&lower);
    let spaced: String = toned
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || keep.contains(c) {
                c
            } else {
                ' '
            }
        })
        .collect();
    spaced.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The letters without their marks, "đ" as "d": "Huyện ủy" and "Huyên uy"
/// become "huyen uy".
pub fn strip_marks(s: &str) -> String {
    s.nfd()
        .filter(|c| !('\u{300}'..='\u{36f}').contains(c))
        .map(|c| match c {
            'đ' => 'd',
            'Đ' => 'D',
            c => c,
        })
        .collect()
}

/// ASCII letters and digits of a text, for codes and keys.
pub fn ascii(s: &str) -> String {
    strip_marks(s).chars().filter(|c| c.is_ascii()).collect()
}

/// A lowercase ASCII slug of at most `max` characters: "Dân vận khéo" → "dan-van-kheo".
pub fn slug(s: &str, max: usize) -> String {
    let mut out = String::new();
    for word in ascii(&s.to_lowercase()).split(|c: char| !c.is_ascii_alphanumeric()) {
        if word.is_empty() {
            continue;
        }
        if !out.is_empty() {
            if out.len() + 1 + word.len() > max {
                break;
            }
            out.push('-');
        } else if word.len() > max {
            out.push_str(&word[..max]);
            break;
        }
        out.push_str(word);
    }
    out
}

/// Levenshtein distance over characters, for names a letter apart.
pub fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb { prev } else { 1 + prev.min(row[j]).min(cur) };
            prev = cur;
        }
    }
    row[b.len()]
}

/// The first letter upper case: "các tổ chức…" → "Các tổ chức…".
pub fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A number as Vietnamese documents write it: "10.000" (thousands), "0,4"
/// (decimal comma), "2.5" (a decimal point, when not followed by exactly
/// three digits), "01".
pub fn number(s: &str) -> Option<f64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let normalised = if s.contains(',') {
        s.replace('.', "").replace(',', ".")
    } else if s.split('.').skip(1).all(|g| g.len() == 3) && s.contains('.') {
        s.replace('.', "")
    } else {
        s.to_string()
    };
    normalised.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Upper-case Roman numeral to its value (I…XX).
pub fn roman(s: &str) -> Option<u32> {
    const NUMERALS: [&str; 20] = [
        "I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII", "XIII", "XIV", "XV", "XVI", "XVII",
        "XVIII", "XIX", "XX",
    ];
    NUMERALS.iter().position(|n| *n == s).map(|i| i as u32 + 1)
}

pub fn to_roman(n: u32) -> String {
    const NUMERALS: [(u32, &str); 9] = [
        (50, "L"),
        (40, "XL"),
        (10, "X"),
        (9, "IX"),
        (5, "V"),
        (4, "IV"),
        (1, "I"),
        (0, ""),
        (0, ""),
    ];
    let mut n = n;
    let mut out = String::new();
    for (value, numeral) in NUMERALS {
        while value > 0 && n >= value {
            out.push_str(numeral);
            n -= value;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_bidi_characters_of_an_export_become_spaces() {
        assert_eq!(clean("Dòng một\u{b}dòng hai"), "Dòng một dòng hai");
        assert_eq!(clean("a\u{1b}[2Jb \u{202e}c"), "a [2Jb c");
    }

    #[test]
    fn spellings_of_one_name_fold_together() {
        assert_eq!(fold("Huyện uỷ"), fold("Huyện ủy"));
        assert_eq!(fold("Văn hóa - Thông tin"), fold("Văn hoá, Thông tin"));
        assert_eq!(strip_marks(&fold("Huyên ủy")), strip_marks(&fold("Huyện ủy")));
        assert_eq!(fold("Cơ quan Tổ chức – Nội vụ"), "cơ quan tổ chức nội vụ");
    }

    #[test]
    fn numbers_as_written() {
        assert_eq!(number("10.000"), Some(10000.0));
        assert_eq!(number("0,4"), Some(0.4));
        assert_eq!(number("2.5"), Some(2.5));
        assert_eq!(number("01"), Some(1.0));
        assert_eq!(number("1.500"), Some(1500.0));
        assert_eq!(number("x"), None);
    }

    #[test]
    fn romans_and_slugs() {
        assert_eq!(roman("IV"), Some(4));
        assert_eq!(to_roman(4), "IV");
        assert_eq!(to_roman(19), "XIX");
        assert_eq!(slug("Dân vận khéo “mô hình”", 20), "dan-van-kheo-mo-hinh");
    }
}
