//! The query parameters of the list endpoint, from `ListFilters`.
//!
//! `filter[created-at-start]` and `filter[created-at-end]` are `format: date-time` in the spec:
//! a plain date becomes the first (start) or last (end) millisecond of that day in UTC, and a
//! date-time is sent in UTC, in the form Persona itself writes (`2023-10-11T04:59:21.764Z`).

use chrono::{DateTime, NaiveDate, NaiveTime, SubsecRound, TimeDelta, Utc};

use crate::{Error, ListFilters, Result};

/// Which end of a creation-date window a value bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// `filter[created-at-start]`: equal to or later than.
    Start,
    /// `filter[created-at-end]`: earlier than or equal to.
    End,
}

/// A user's date or RFC 3339 date-time as the UTC date-time Persona's filter expects.
pub fn created_at_bound(text: &str, bound: Bound) -> std::result::Result<String, String> {
    let text = text.trim();
    let at: DateTime<Utc> = if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let start = day.and_time(NaiveTime::MIN).and_utc();
        match bound {
            Bound::Start => start,
            Bound::End => start + TimeDelta::days(1) - TimeDelta::milliseconds(1),
        }
    } else if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        let t = t.with_timezone(&Utc);
        // Persona keeps milliseconds: round inwards so the window never grows.
        let floor = t.trunc_subsecs(3);
        match bound {
            Bound::Start if floor < t => floor + TimeDelta::milliseconds(1),
            _ => floor,
        }
    } else {
        let shown: String = text.chars().take(40).collect();
        return Err(format!(
            "{shown:?} is neither a date (2024-01-31) nor an RFC 3339 date-time \
             (2024-01-31T12:00:00Z)"
        ));
    };
    Ok(at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
}

/// The `filter[…]` parameters of a listing, in a fixed order.
pub fn filter_params(filters: &ListFilters) -> Result<Vec<(&'static str, String)>> {
    let mut params = Vec::new();
    if !filters.status.is_empty() {
        params.push(("filter[status]", filters.status.join(",")));
    }
    if !filters.inquiry_ids.is_empty() {
        params.push(("filter[inquiry-id]", filters.inquiry_ids.join(",")));
    }
    let singles = [
        ("filter[account-id]", &filters.account_id),
        ("filter[reference-id]", &filters.reference_id),
        ("filter[inquiry-template-id]", &filters.inquiry_template_id),
    ];
    for (name, value) in singles {
        if let Some(v) = value {
            params.push((name, v.clone()));
        }
    }
    let dates = [
        (
            "filter[created-at-start]",
            &filters.created_after,
            Bound::Start,
        ),
        (
            "filter[created-at-end]",
            &filters.created_before,
            Bound::End,
        ),
    ];
    for (name, value, bound) in dates {
        if let Some(v) = value {
            let v =
                created_at_bound(v, bound).map_err(|e| Error::Config(format!("{name}: {e}")))?;
            params.push((name, v));
        }
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_become_query_parameters() {
        let filters = ListFilters {
            status: vec!["approved".into(), "declined".into()],
            inquiry_ids: vec!["inq_1".into(), "inq_2".into()],
            reference_id: Some("ref".into()),
            created_after: Some("2024-01-01T00:00:00Z".into()),
            ..Default::default()
        };
        let params = filter_params(&filters).unwrap();
        assert!(params.contains(&("filter[status]", "approved,declined".into())));
        assert!(params.contains(&("filter[inquiry-id]", "inq_1,inq_2".into())));
        assert!(params.contains(&("filter[reference-id]", "ref".into())));
        assert!(params.contains(&(
            "filter[created-at-start]",
            "2024-01-01T00:00:00.000Z".into()
        )));
        assert_eq!(params.len(), 4);
    }

    #[test]
    fn a_plain_date_covers_the_whole_utc_day() {
        assert_eq!(
            created_at_bound("2023-01-01", Bound::Start).unwrap(),
            "2023-01-01T00:00:00.000Z"
        );
        assert_eq!(
            created_at_bound("2023-01-01", Bound::End).unwrap(),
            "2023-01-01T23:59:59.999Z"
        );
        assert_eq!(
            created_at_bound("2024-02-29", Bound::End).unwrap(),
            "2024-02-29T23:59:59.999Z"
        );
        let filters = ListFilters {
            created_after: Some("2023-01-01".into()),
            created_before: Some("2023-01-31".into()),
            ..Default::default()
        };
        assert_eq!(
            filter_params(&filters).unwrap(),
            [
                (
                    "filter[created-at-start]",
                    "2023-01-01T00:00:00.000Z".into()
                ),
                ("filter[created-at-end]", "2023-01-31T23:59:59.999Z".into()),
            ]
        );
    }

    #[test]
    fn date_times_are_sent_in_utc_with_milliseconds() {
        for bound in [Bound::Start, Bound::End] {
            assert_eq!(
                created_at_bound("2023-10-11T04:59:21.764Z", bound).unwrap(),
                "2023-10-11T04:59:21.764Z"
            );
            assert_eq!(
                created_at_bound("2023-10-11T06:59:21+02:00", bound).unwrap(),
                "2023-10-11T04:59:21.000Z"
            );
            assert_eq!(
                created_at_bound("2023-12-31T20:00:00-05:00", bound).unwrap(),
                "2024-01-01T01:00:00.000Z",
                "the offset moves it to the next day and year"
            );
        }
        // Finer than a millisecond: rounded inwards.
        assert_eq!(
            created_at_bound("2023-10-11T04:59:21.7641Z", Bound::Start).unwrap(),
            "2023-10-11T04:59:21.765Z"
        );
        assert_eq!(
            created_at_bound("2023-10-11T04:59:21.7649Z", Bound::End).unwrap(),
            "2023-10-11T04:59:21.764Z"
        );
    }

    #[test]
    fn anything_else_is_a_clear_error() {
        for bad in [
            "yesterday",
            "2023-13-01",
            "2023-01-01T00:00:00",
            "01/02/2023",
            "",
        ] {
            let err = created_at_bound(bad, Bound::Start).unwrap_err();
            assert!(err.contains("RFC 3339"), "{bad}: {err}");
        }
        let filters = ListFilters {
            created_before: Some("next week".into()),
            ..Default::default()
        };
        let err = filter_params(&filters).unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{err:?}");
        assert!(err.to_string().contains("filter[created-at-end]"), "{err}");
    }
}
