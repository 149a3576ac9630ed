//! The state already reached, recorded from the office's paper files when a
//! plan is adopted part-way ("ghi nhận từ hồ sơ"): one row of a sheet per
//! obligation. The date a row claims is kept as claimed and judges on-time
//! or late; the event's stamp says when it was recorded and by whom.

use crate::domain::ids::{AgencyCode, MilestoneId};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// What a row says of an obligation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordedState {
    /// Đã hoàn thành: on the claimed date.
    Done,
    /// Đang thực hiện: still owed, some work reported.
    InProgress,
    /// Chưa thực hiện: still owed, nothing done yet.
    NotStarted,
    /// Không thực hiện: the deadline passed without it; no more reminders.
    NotDone,
}

impl RecordedState {
    pub const ALL: [RecordedState; 4] = [Self::Done, Self::InProgress, Self::NotStarted, Self::NotDone];

    /// As the sheet writes it.
    pub fn label_vi(self) -> &'static str {
        match self {
            Self::Done => "đã hoàn thành",
            Self::InProgress => "đang thực hiện",
            Self::NotStarted => "chưa thực hiện",
            Self::NotDone => "không thực hiện",
        }
    }

    /// A state as a person typed it: case, marks and spaces do not matter
    /// ("Đã hoàn thành", "da hoan thanh", "hoàn thành").
    pub fn parse_vi(text: &str) -> Option<Self> {
        let folded = plain(text);
        Self::ALL
            .into_iter()
            .find(|s| plain(s.label_vi()) == folded || (*s == Self::Done && folded == "hoan thanh"))
    }
}

/// Lower case, without marks, one space between words: "Đã  hoàn thành" →
/// "da hoan thanh".
fn plain(text: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let letters: String = text
        .nfd()
        .filter(|c| !('\u{300}'..='\u{36f}').contains(c))
        .flat_map(char::to_lowercase)
        .map(|c| if c == 'đ' { 'd' } else { c })
        .collect();
    letters.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The sheet a row came from: its file name and the SHA-256 of its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SheetRef {
    pub file: String,
    pub sha256: String,
}

/// One row, read and resolved against the plan: the obligation of `agency`
/// on `milestone`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRow {
    /// The row's number in the sheet, as the spreadsheet shows it.
    pub row: u32,
    pub milestone: MilestoneId,
    pub agency: AgencyCode,
    pub state: RecordedState,
    /// The day it was done, as claimed (required for `Done`).
    pub done_on: Option<NaiveDate>,
    pub note: String,
    /// Where the paper record is kept.
    pub record: String,
}

/// What the last recorded row said of an obligation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    pub state: RecordedState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done_on: Option<NaiveDate>,
    pub sheet: SheetRef,
    pub row: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_as_people_type_them() {
        assert_eq!(RecordedState::parse_vi("Đã hoàn thành"), Some(RecordedState::Done));
        assert_eq!(RecordedState::parse_vi(" đã  hoàn thành "), Some(RecordedState::Done));
        assert_eq!(RecordedState::parse_vi("Hoàn thành"), Some(RecordedState::Done));
        assert_eq!(
            RecordedState::parse_vi("ĐANG THỰC HIỆN"),
            Some(RecordedState::InProgress)
        );
        assert_eq!(
            RecordedState::parse_vi("chưa thực hiện"),
            Some(RecordedState::NotStarted)
        );
        assert_eq!(RecordedState::parse_vi("Không thực hiện"), Some(RecordedState::NotDone));
        assert_eq!(RecordedState::parse_vi("xong rồi"), None);
        assert_eq!(RecordedState::parse_vi(""), None);
    }
}
