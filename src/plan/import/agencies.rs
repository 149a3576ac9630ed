//! Agencies named in the document: lists split into bodies, every spelling
//! of one body gathered into one entry, and a short code proposed for each.

use super::words::{ascii, capitalise, clean, distance, fold, strip_marks};
use serde::Serialize;

/// Words that start a new body in a list ("…, UBND thị xã", "…, các tổ chức …").
pub(super) const HEADS: &[&str] = &[
    "các ",
    "ủy ban",
    "uỷ ban",
    "ubnd",
    "ubmttq",
    "ban ",
    "thường trực",
    "mặt trận",
    "mttq",
    "hội ",
    "đảng ủy",
    "đảng uỷ",
    "đảng bộ",
    "văn phòng",
    "phòng ",
    "sở ",
    "cơ quan",
    "công an",
    "ban chỉ huy",
    "bộ chỉ huy",
    "liên đoàn",
    "đoàn ",
    "huyện đoàn",
    "thị đoàn",
    "tỉnh đoàn",
    "thành đoàn",
    "trung tâm",
    "trường",
    "chi cục",
    "kho bạc",
    "bảo hiểm",
    "tòa án",
    "toà án",
    "viện kiểm sát",
    "đài ",
    "hạt ",
    "chi nhánh",
    "ngân hàng",
    "hđnd",
    "tổ chức chính trị",
    "hội đồng",
    "tòa",
    "chi bộ các",
    "thanh tra",
    "bưu điện",
    "điện lực",
    "viettel",
    "vnpt",
    "công ty",
    "bệnh viện",
    "trạm ",
    "đội ",
    "chi hội",
    "hợp tác xã",
    "ban quản lý",
    "quỹ ",
    "đồn ",
    "huyện ủy",
    "huyện uỷ",
    "thị ủy",
    "thị uỷ",
];

/// Locality words that end a body's name: the Party's and the State's.
/// Two-word ones are compared without marks ("thi xã" is a misspelt "thị
/// xã"); one-word ones with them ("quan" in "cơ quan" is not "quận").
const PARTY_LOCALITIES: [&str; 6] = ["thi uy", "huyen uy", "tinh uy", "thanh uy", "quan uy", "dang uy"];
const STATE_LOCALITIES: [&str; 3] = ["thi xa", "thanh pho", "thi tran"];
const STATE_WORDS: [&str; 5] = ["huyện", "tỉnh", "quận", "xã", "phường"];

fn starts_new_body(piece: &str) -> bool {
    let piece = piece.trim();
    let first = piece.split_whitespace().next().unwrap_or("");
    let letters: Vec<char> = first.chars().filter(|c| c.is_alphabetic()).collect();
    if letters.len() >= 2 && letters.iter().all(|c| c.is_uppercase()) {
        return true;
    }
    let lower = format!("{} ", fold(piece));
    HEADS.iter().any(|h| lower.starts_with(&format!("{} ", fold(h))))
}

/// Splits an agency list ("Thường trực HĐND, UBND thị xã; Mặt trận Tổ quốc
/// và các tổ chức chính trị - xã hội thị xã; các đảng ủy, chi bộ trực thuộc
/// Thị ủy") into the bodies it names. A comma inside a name ("các đảng ủy,
/// chi bộ …", "Đảng ủy các xã, phường") stays in it; a locality shared by
/// several names ("Thường trực HĐND, UBND thị xã") is given to each.
pub fn split_list(list: &str) -> Vec<Mention> {
    // "HĐND&UBND" is "HĐND và UBND".
    let list = clean(&list.replace('&', " và "));
    let list = list.trim().trim_end_matches(['.', ';', ',', ':']).trim();
    let mut out = Vec::new();
    for segment in list.split(';') {
        let segment = segment.trim().trim_start_matches(['-', '+', '•']).trim();
        if segment.is_empty() {
            continue;
        }
        // " và " / " với " before a new body splits; inside a name it does not
        // ("Phòng Văn hóa và Thông tin").
        let mut pieces: Vec<String> = Vec::new();
        for part in split_keeping(segment, &[" và ", " với ", " cùng "]) {
            for (i, comma_piece) in part.split(',').enumerate() {
                let p = comma_piece.trim();
                if p.is_empty() {
                    continue;
                }
                // After a comma a body is written with its capital ("…, Bưu
                // điện huyện") or as "các …"; "Các phòng, ban, ngành" is one.
                let lower_kind = p.chars().next().is_some_and(char::is_lowercase) && !fold(p).starts_with("các ");
                match pieces.last_mut() {
                    Some(last) if i > 0 && (!starts_new_body(p) || lower_kind) => {
                        last.push_str(", ");
                        last.push_str(p);
                    }
                    _ => pieces.push(p.to_string()),
                }
            }
        }
        // A locality written once at the end belongs to every piece before it.
        let shared = pieces.last().and_then(|p| trailing_locality(p));
        let n = pieces.len();
        for (i, piece) in pieces.into_iter().enumerate() {
            let spelled = without_remark(&piece);
            let spelled = spelled.trim().trim_end_matches(['.', ',']).trim().to_string();
            let full = match (&shared, i + 1 < n && trailing_locality(&spelled).is_none()) {
                (Some(loc), true) if is_body_without_locality(&spelled) => Some(format!("{spelled} {loc}")),
                _ => None,
            };
            if !spelled.is_empty() {
                out.push(Mention {
                    spelled,
                    completed: full,
                });
            }
        }
    }
    out
}

/// A body as the document spelled it, and with a shared locality added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mention {
    pub spelled: String,
    pub completed: Option<String>,
}

impl Mention {
    pub fn name(&self) -> &str {
        self.completed.as_deref().unwrap_or(&self.spelled)
    }
}

fn is_body_without_locality(s: &str) -> bool {
    let f = fold(s);
    !f.starts_with("các ") && !f.contains(" các ")
}

/// A body's name without a remark after it: "Phòng Văn hóa và Thông tin là
/// cơ quan thường trực", "Ban Dân vận (cơ quan thường trực)".
fn without_remark(piece: &str) -> String {
    let mut s = piece.to_string();
    if let Some(open) = s.find(" (") {
        if s.trim_end().ends_with(')') {
            s.truncate(open);
        }
    }
    for remark in [" là cơ quan", " là đơn vị", " làm cơ quan", " (cơ quan"] {
        if let Some(at) = s.find(remark) {
            s.truncate(at);
        }
    }
    s
}

/// "Văn phòng HĐND và UBND huyện" is one office, not two bodies.
fn joint_office(before: &str, after: &str) -> bool {
    let b = fold(before);
    let a = fold(after);
    (b.ends_with("văn phòng hđnd") || b.ends_with("văn phòng hội đồng nhân dân"))
        && (a.starts_with("ubnd") || a.starts_with("ủy ban nhân dân"))
}

/// Splits on the separators when the text after one starts a new body.
fn split_keeping(segment: &str, separators: &[&str]) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut rest = segment;
    'outer: while !rest.is_empty() {
        for sep in separators {
            if let Some(after) = rest.strip_prefix(sep) {
                let before = out.last().map(String::as_str).unwrap_or("");
                if starts_new_body(after) && !before.trim().is_empty() && !joint_office(before, after) {
                    out.push(String::new());
                    rest = after;
                    continue 'outer;
                }
            }
        }
        let c = rest.chars().next().unwrap_or(' ');
        out.last_mut().expect("never empty").push(c);
        rest = &rest[c.len_utf8()..];
    }
    out.into_iter().filter(|s| !s.trim().is_empty()).collect()
}

/// "thị xã", "Thị ủy", "huyện Ba Tơ" at the end of a name, as written.
fn trailing_locality(name: &str) -> Option<String> {
    let words: Vec<&str> = name.split_whitespace().collect();
    let n = words.len();
    let proper = |from: usize| {
        words[from.min(n)..]
            .iter()
            .all(|w| w.chars().next().is_some_and(char::is_uppercase))
    };
    let is_two = |i: usize| {
        i + 1 < n && {
            let two = strip_marks(&fold(&words[i..i + 2].join(" ")));
            PARTY_LOCALITIES.contains(&two.as_str()) || STATE_LOCALITIES.contains(&two.as_str())
        }
    };
    let is_one = |i: usize| STATE_WORDS.contains(&fold(words[i]).as_str());
    // "các xã, phường", "xã, thị trấn": places listed, not a locality.
    let listed = |i: usize| {
        let before = fold(words[i - 1]);
        before == "các" || before == "và" || STATE_WORDS.contains(&before.as_str()) || words[i - 1].ends_with(',')
    };
    for start in n.saturating_sub(5).max(1)..n {
        if is_two(start) && proper(start + 2) && !listed(start) {
            return Some(words[start..].join(" "));
        }
        if is_one(start) && proper(start + 1) && !listed(start) && !(start >= 1 && is_two(start - 1)) {
            return Some(words[start..].join(" "));
        }
    }
    None
}

/// The name reduced for comparing: folded, abbreviations expanded, "các"
/// and "Việt Nam" dropped, and the locality taken off (kept as a marker:
/// the Party's or the State's, so "Văn phòng Thị ủy" is not "Văn phòng thị xã").
#[derive(Debug, Clone, PartialEq, Eq)]
struct Core {
    words: Vec<String>,
    locality: Option<bool>,
}

fn core(name: &str) -> Core {
    let name = &clean(name);
    let locality = trailing_locality(name);
    let base = match &locality {
        Some(loc) => name[..name.len() - loc.len()].trim().to_string(),
        None => name.to_string(),
    };
    let party = locality.as_ref().map(|l| {
        let f = strip_marks(&fold(l));
        PARTY_LOCALITIES.iter().any(|p| f.starts_with(p))
    });
    let mut f = format!(" {} ", fold(&base));
    for (abbr, full) in [
        (" ubmttq ", " ủy ban mặt trận tổ quốc "),
        (" ubnd ", " ủy ban nhân dân "),
        (" hđnd ", " hội đồng nhân dân "),
        (" mttq ", " mặt trận tổ quốc "),
        (" ubkt ", " ủy ban kiểm tra "),
        (" btv ", " ban thường vụ "),
        (" bch ", " ban chấp hành "),
        (" ctxh ", " chính trị xã hội "),
        (" vh tt ", " văn hóa thông tin "),
        (" vh ", " văn hóa "),
        (" tt ", " thông tin "),
        (" lđtb&xh ", " lao động thương binh và xã hội "),
        (" tn&mt ", " tài nguyên và môi trường "),
        (" uỷ ", " ủy "),
    ] {
        while f.contains(abbr) {
            f = f.replace(abbr, full);
        }
    }
    let mut words: Vec<String> = f.split_whitespace().map(str::to_string).collect();
    if words.first().is_some_and(|w| w == "các") {
        words.remove(0);
    }
    if words.len() > 2 && words[0] == "ủy" && words[1] == "ban" && words.get(2).is_some_and(|w| w == "mặt") {
        words.drain(0..2);
    }
    if let Some(i) = words.windows(2).position(|w| w[0] == "việt" && w[1] == "nam") {
        words.drain(i..i + 2);
    }
    // "Phòng Văn hóa và Thông tin" and "Phòng Văn hóa - Thông tin".
    words.retain(|w| w != "và");
    Core { words, locality: party }
}

impl Core {
    fn same_body(&self, other: &Core) -> bool {
        let localities_agree = match (self.locality, other.locality) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        };
        if !localities_agree || self.words.is_empty() || other.words.is_empty() {
            return false;
        }
        if self.words == other.words {
            return true;
        }
        let (a, b) = (self.words.join(" "), other.words.join(" "));
        // A letter off, or marks off: "Huyên ủy", "thi xã".
        if strip_marks(&a) == strip_marks(&b) && distance(&a, &b) <= 2 {
            return true;
        }
        if a.chars().count() >= 12 && distance(&a, &b) <= 1 {
            return true;
        }
        // A word or two more in one spelling: "các cơ quan (chuyên trách)
        // tham mưu, giúp việc", "đơn vị (có) liên quan".
        let (short, long) = if self.words.len() <= other.words.len() {
            (&self.words, &other.words)
        } else {
            (&other.words, &self.words)
        };
        short.len() >= 4 && long.len() - short.len() <= 2 && is_subsequence(short, long) && short[0] == long[0]
    }
}

fn is_subsequence(short: &[String], long: &[String]) -> bool {
    let mut it = long.iter();
    short.iter().all(|w| it.any(|l| l == w))
}

/// One body of the directory being built.
#[derive(Debug, Clone, Serialize)]
pub struct Body {
    pub code: String,
    pub name: String,
    pub aliases: Vec<String>,
    /// Known from `--directory`: code, addresses and members kept.
    #[serde(skip)]
    pub known: Option<crate::domain::plan::Agency>,
    /// Addresses given on review (a body not in the directory has none
    /// until a person fills them in).
    pub emails: Vec<String>,
    /// How many times the document names it.
    pub mentions: usize,
    /// Where it is first named (line), for the report.
    pub first_line: u32,
    #[serde(skip)]
    spellings: Vec<String>,
    #[serde(skip)]
    cores: Vec<Core>,
}

/// The bodies found so far; `resolve` gives each mention its body.
#[derive(Debug, Default, Clone)]
pub struct Registry {
    pub bodies: Vec<Body>,
}

impl Registry {
    /// Seeds the registry with a directory already in use.
    pub fn with_directory(agencies: &[crate::domain::plan::Agency]) -> Self {
        let bodies = agencies
            .iter()
            .map(|a| {
                let mut spellings = vec![a.name.clone()];
                spellings.extend(a.aliases.iter().cloned());
                Body {
                    code: a.code.to_string(),
                    name: a.name.clone(),
                    aliases: a.aliases.clone(),
                    known: Some(a.clone()),
                    emails: Vec::new(),
                    mentions: 0,
                    first_line: 0,
                    cores: spellings.iter().map(|s| core(s)).collect(),
                    spellings,
                }
            })
            .collect();
        Self { bodies }
    }

    /// The index of the body a mention names, adding one when it is new.
    pub fn resolve(&mut self, mention: &Mention, line: u32) -> usize {
        let spelled = mention.spelled.trim().to_string();
        let names: Vec<&str> = std::iter::once(spelled.as_str())
            .chain(mention.completed.as_deref())
            .collect();
        let cores: Vec<Core> = names.iter().map(|n| core(n)).collect();
        let found = self
            .bodies
            .iter()
            .position(|b| b.spellings.iter().any(|s| fold(s) == fold(&spelled)))
            .or_else(|| {
                self.bodies.iter().position(|b| {
                    b.cores
                        .iter()
                        .any(|bc| cores.iter().any(|c| bc.words == c.words && bc.same_body(c)))
                })
            })
            .or_else(|| {
                self.bodies
                    .iter()
                    .position(|b| b.cores.iter().any(|bc| cores.iter().any(|c| bc.same_body(c))))
            });
        let index = match found {
            Some(i) => i,
            None => {
                self.bodies.push(Body {
                    code: String::new(),
                    name: String::new(),
                    aliases: Vec::new(),
                    known: None,
                    emails: Vec::new(),
                    mentions: 0,
                    first_line: line,
                    spellings: Vec::new(),
                    cores: Vec::new(),
                });
                self.bodies.len() - 1
            }
        };
        let body = &mut self.bodies[index];
        body.mentions += 1;
        if body.first_line == 0 {
            body.first_line = line;
        }
        for (name, c) in names.iter().zip(cores) {
            if !body.spellings.iter().any(|s| s == name) {
                body.spellings.push(name.to_string());
                body.cores.push(c);
            }
        }
        index
    }

    /// Names, aliases and codes for the bodies found; known bodies keep theirs.
    pub fn finish(&mut self) {
        let mut taken: Vec<String> = self
            .bodies
            .iter()
            .filter(|b| b.known.is_some())
            .map(|b| b.code.clone())
            .collect();
        for body in &mut self.bodies {
            if body.known.is_some() {
                let mut aliases = body.aliases.clone();
                for s in &body.spellings {
                    if s != &body.name && !aliases.contains(s) {
                        aliases.push(s.clone());
                    }
                }
                body.aliases = aliases;
                continue;
            }
            let name = best_name(&body.spellings);
            body.aliases = body
                .spellings
                .iter()
                .filter(|s| **s != name)
                .cloned()
                .fold(Vec::new(), |mut acc, s| {
                    if !acc.contains(&s) {
                        acc.push(s);
                    }
                    acc
                });
            body.name = name;
            let code = propose_code(&body.name, &taken);
            taken.push(code.clone());
            body.code = code;
        }
    }
}

/// The spelling to show: written out in full (no "UBND"), with its
/// locality, the most used; capitalised.
fn best_name(spellings: &[String]) -> String {
    let score = |s: &String| {
        let abbreviated = s
            .split_whitespace()
            .any(|w| w.chars().count() >= 2 && w.chars().all(|c| c.is_uppercase()));
        let has_locality = trailing_locality(s).is_some();
        (!abbreviated, has_locality, s.chars().count())
    };
    // Equal scores: the spelling written first ("thị xã" before a later "thi xã").
    spellings
        .iter()
        .enumerate()
        .max_by_key(|(i, s)| (score(s), std::cmp::Reverse(*i)))
        .map(|(_, s)| s)
        .map(|s| capitalise(s.trim()))
        .unwrap_or_default()
}

fn propose_code(name: &str, taken: &[String]) -> String {
    let c = core(name);
    let skip = ["các", "của", "và", "trên", "tại", "có", "với"];
    let mut letters: String = c
        .words
        .iter()
        .filter(|w| !skip.contains(&w.as_str()))
        .filter_map(|w| ascii(w).chars().next())
        .filter(|ch| ch.is_ascii_alphanumeric())
        .map(|ch| ch.to_ascii_uppercase())
        .collect();
    if letters.len() > 8 {
        letters.truncate(8);
    }
    while letters.len() < 2 {
        letters.push('X');
    }
    if !taken.contains(&letters) {
        return letters;
    }
    // The same initials for another body: add the locality's ("VPTU"), then a number.
    let local: String = trailing_locality(name)
        .map(|l| {
            ascii(&l)
                .split_whitespace()
                .filter_map(|w| w.chars().next())
                .map(|c| c.to_ascii_uppercase())
                .collect()
        })
        .unwrap_or_default();
    let with_local = format!("{letters}{local}");
    if !local.is_empty() && with_local.len() <= 10 && !taken.contains(&with_local) {
        return with_local;
    }
    (2..)
        .map(|n| format!("{letters}{n}"))
        .find(|c| c.len() <= 10 && !taken.contains(c))
        .unwrap_or_else(|| "CQ".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &str) -> Vec<String> {
        split_list(list).iter().map(|m| m.name().to_string()).collect()
    }

    #[test]
    fn lists_split_into_bodies() {
        assert_eq!(
            names("Thường trực HĐND thị xã; UBND thị xã; Mặt trận Tổ quốc và các tổ chức chính trị - xã hội thị xã; các đảng ủy, chi bộ trực thuộc Thị ủy; các đơn vị lực lượng vũ trang trên địa bàn thị xã."),
            vec![
                "Thường trực HĐND thị xã",
                "UBND thị xã",
                "Mặt trận Tổ quốc thị xã",
                "các tổ chức chính trị - xã hội thị xã",
                "các đảng ủy, chi bộ trực thuộc Thị ủy",
                "các đơn vị lực lượng vũ trang trên địa bàn thị xã"
            ]
        );
        assert_eq!(
            names("Ủy ban nhân dân thị xã, các đảng ủy, chi bộ trực thuộc Thị ủy."),
            vec!["Ủy ban nhân dân thị xã", "các đảng ủy, chi bộ trực thuộc Thị ủy"]
        );
        assert_eq!(
            names("Thường trực HĐND, UBND thị xã; các cơ quan chuyên trách tham mưu, giúp việc Thị ủy"),
            vec![
                "Thường trực HĐND thị xã",
                "UBND thị xã",
                "các cơ quan chuyên trách tham mưu, giúp việc Thị ủy"
            ]
        );
        assert_eq!(
            names("Ủy ban nhân dân thị xã; Đảng ủy các xã, phường và các cơ quan, đơn vị liên quan."),
            vec![
                "Ủy ban nhân dân thị xã",
                "Đảng ủy các xã, phường",
                "các cơ quan, đơn vị liên quan"
            ]
        );
        assert_eq!(
            names("Mặt trận Tổ quốc, các tổ chức chính trị - xã hội thị xã"),
            vec!["Mặt trận Tổ quốc thị xã", "các tổ chức chính trị - xã hội thị xã"]
        );
        assert_eq!(
            names("Phòng Văn hóa và Thông tin huyện; Phòng Văn hóa, Thông tin"),
            vec!["Phòng Văn hóa và Thông tin huyện", "Phòng Văn hóa, Thông tin"]
        );
        assert_eq!(
            names("Ban Tuyên giáo Thị ủy; Ban Dân vận Thị ủy."),
            vec!["Ban Tuyên giáo Thị ủy", "Ban Dân vận Thị ủy"]
        );
    }

    #[test]
    fn spellings_of_one_body_are_one_entry() {
        let mut r = Registry::default();
        let groups = [
            vec![
                "Ủy ban nhân dân thị xã",
                "UBND thị xã",
                "Ủy ban nhân dân thi xã",
                "Ủy ban nhân dân",
            ],
            vec![
                "Ủy ban Mặt trận Tổ quốc Việt Nam thị xã",
                "Mặt trận Tổ quốc",
                "Mặt trận Tổ quốc Việt Nam thị xã",
                "Ủy ban MTTQ Việt Nam thị xã",
            ],
            vec!["Ban Dân vận Thị ủy", "Ban Dân vận"],
            vec!["Huyện ủy", "Huyện uỷ", "Huyên ủy"],
            vec![
                "Các cơ quan chuyên trách tham mưu, giúp việc Thị ủy",
                "các cơ quan tham mưu, giúp việc Thị ủy",
            ],
            vec![
                "Phòng Văn hóa - Thông tin huyện",
                "Phòng Văn hóa, Thông tin",
                "Phòng Văn hoá và Thông tin huyện",
            ],
            vec!["Văn phòng thị xã"],
            vec!["Văn phòng Thị ủy"],
            vec!["Thường trực HĐND thị xã", "Thường trực HĐND"],
            vec!["Ban Thường vụ Thị ủy"],
            vec!["Ủy ban Kiểm tra Thị ủy"],
            vec![
                "các tổ chức chính trị - xã hội thị xã",
                "tổ chức chính trị - xã hội thị xã",
            ],
            vec!["Các cơ quan, đơn vị liên quan", "các cơ quan, đơn vị có liên quan"],
            vec!["Đảng ủy các xã, phường"],
            vec!["các đảng ủy, chi bộ trực thuộc Thị ủy"],
        ];
        let mut seen = Vec::new();
        for group in &groups {
            let ids: Vec<usize> = group
                .iter()
                .map(|s| {
                    r.resolve(
                        &Mention {
                            spelled: s.to_string(),
                            completed: None,
                        },
                        1,
                    )
                })
                .collect();
            assert!(ids.iter().all(|i| *i == ids[0]), "{group:?} gave {ids:?}");
            assert!(!seen.contains(&ids[0]), "{group:?} merged with an earlier body");
            seen.push(ids[0]);
        }
        r.finish();
        let codes: Vec<&str> = r.bodies.iter().map(|b| b.code.as_str()).collect();
        assert_eq!(&codes[..4], ["UBND", "MTTQ", "BDV", "HU"]);
        assert_eq!(r.bodies[0].name, "Ủy ban nhân dân thị xã");
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), codes.len());
    }
}
