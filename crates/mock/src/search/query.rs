//! The query tree of `POST /inquiries/search`: parsed and checked as the spec describes it
//! (and/or/not to 2 levels, 20 clauses per and/or, predicates on five attributes with
//! eq/gt/gte/lt/lte), and evaluated on what is known of an inquiry, which for a generated one
//! may be only a range for `updated_at`.

use std::cmp::Ordering;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;

/// "Maximum nesting depth: 2 levels" (and/or/not clauses; predicates are not a level).
pub const MAX_DEPTH: usize = 2;
/// "Maximum clauses per AND" (and per OR).
pub const MAX_CLAUSES: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attr {
    Status,
    CreatedAt,
    UpdatedAt,
    ReferenceId,
    TemplateId,
}

impl Attr {
    pub fn parse(name: &str) -> Option<Attr> {
        Some(match name {
            "status" => Attr::Status,
            "created_at" => Attr::CreatedAt,
            "updated_at" => Attr::UpdatedAt,
            "reference_id" => Attr::ReferenceId,
            "inquiry_template_id" => Attr::TemplateId,
            _ => return None,
        })
    }

    fn is_time(self) -> bool {
        matches!(self, Attr::CreatedAt | Attr::UpdatedAt)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Gt,
    Gte,
    Lt,
    Lte,
}

impl Op {
    fn parse(name: &str) -> Option<Op> {
        Some(match name {
            "eq" => Op::Eq,
            "gt" => Op::Gt,
            "gte" => Op::Gte,
            "lt" => Op::Lt,
            "lte" => Op::Lte,
            _ => return None,
        })
    }

    /// Whether `ordering` (value compared with the operand) satisfies the operator.
    fn holds(self, ordering: Ordering) -> bool {
        match self {
            Op::Eq => ordering == Ordering::Equal,
            Op::Gt => ordering == Ordering::Greater,
            Op::Gte => ordering != Ordering::Less,
            Op::Lt => ordering == Ordering::Less,
            Op::Lte => ordering != Ordering::Greater,
        }
    }
}

/// A predicate's value: milliseconds since the epoch for the timestamps, text otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operand {
    Time(i64),
    Text(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    Leaf { attr: Attr, op: Op, value: Operand },
}

/// Three-valued truth: `Maybe` when `updated_at` is known only as a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truth {
    Yes,
    No,
    Maybe,
}

impl Truth {
    fn of(b: bool) -> Truth {
        if b { Truth::Yes } else { Truth::No }
    }
}

/// What the query looks at of one inquiry; `updated` is `(lo, hi)`, equal when exact.
pub struct Known<'a> {
    pub status: &'a str,
    pub created_at: i64,
    pub updated: (i64, i64),
    pub reference_id: Option<&'a str>,
    pub template_id: Option<&'a str>,
}

/// Parse and check a `query` value.
pub fn parse(value: &Value) -> Result<Node, String> {
    parse_at(value, 0)
}

fn parse_at(value: &Value, depth: usize) -> Result<Node, String> {
    let Value::Object(clause) = value else {
        return Err("each query clause must be a JSON object".into());
    };
    let boolean = ["and", "or", "not"]
        .into_iter()
        .find(|k| clause.contains_key(*k));
    let Some(kind) = boolean else {
        return parse_leaf(clause);
    };
    if clause.len() != 1 {
        return Err(format!(
            "a query clause with {kind:?} must have no other key"
        ));
    }
    if depth + 1 > MAX_DEPTH {
        return Err(format!(
            "the query is nested deeper than {MAX_DEPTH} levels of and/or/not"
        ));
    }
    let inner = &clause[kind];
    if kind == "not" {
        if !inner.is_object() {
            return Err("not takes one clause (a JSON object)".into());
        }
        return Ok(Node::Not(Box::new(parse_at(inner, depth + 1)?)));
    }
    let Value::Array(items) = inner else {
        return Err(format!("{kind} takes an array of clauses"));
    };
    if items.is_empty() || items.len() > MAX_CLAUSES {
        return Err(format!(
            "{kind} takes 1 to {MAX_CLAUSES} clauses, not {}",
            items.len()
        ));
    }
    let nodes = (items.iter())
        .map(|item| parse_at(item, depth + 1))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(if kind == "and" {
        Node::And(nodes)
    } else {
        Node::Or(nodes)
    })
}

fn parse_leaf(clause: &serde_json::Map<String, Value>) -> Result<Node, String> {
    if let Some(other) =
        (clause.keys()).find(|k| !["attribute", "operator", "value"].contains(&k.as_str()))
    {
        return Err(format!("unknown key {other:?} in a query predicate"));
    }
    let text = |key: &str| match clause.get(key) {
        Some(Value::String(s)) => Ok(s.as_str()),
        Some(_) => Err(format!("{key} of a query predicate must be a string")),
        None => Err(format!("a query predicate needs {key}")),
    };
    let name = text("attribute")?;
    let attr = Attr::parse(name).ok_or_else(|| {
        format!(
            "{name:?} is not a searchable attribute (status, created_at, updated_at, \
             reference_id, inquiry_template_id)"
        )
    })?;
    let op_name = text("operator")?;
    let op = Op::parse(op_name)
        .ok_or_else(|| format!("{op_name:?} is not an operator (eq, gt, gte, lt, lte)"))?;
    let value = match clause.get("value") {
        None => return Err("a query predicate needs value".into()),
        Some(Value::String(s)) if attr.is_time() => Operand::Time(
            parse_time(s)
                .ok_or_else(|| format!("{name} takes an ISO-8601 date or date-time, not {s:?}"))?,
        ),
        Some(Value::String(s)) => Operand::Text(s.clone()),
        Some(other) => {
            return Err(format!("{name} takes a string value, not {other}"));
        }
    };
    Ok(Node::Leaf { attr, op, value })
}

/// RFC 3339, or a bare date (its midnight, UTC), in milliseconds.
pub fn parse_time(text: &str) -> Option<i64> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp_millis());
    }
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis())
}

pub fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

impl Node {
    /// Whether an inquiry matches, as far as `known` tells.
    pub fn eval(&self, known: &Known) -> Truth {
        match self {
            Node::And(nodes) => {
                let mut result = Truth::Yes;
                for node in nodes {
                    match node.eval(known) {
                        Truth::No => return Truth::No,
                        Truth::Maybe => result = Truth::Maybe,
                        Truth::Yes => {}
                    }
                }
                result
            }
            Node::Or(nodes) => {
                let mut result = Truth::No;
                for node in nodes {
                    match node.eval(known) {
                        Truth::Yes => return Truth::Yes,
                        Truth::Maybe => result = Truth::Maybe,
                        Truth::No => {}
                    }
                }
                result
            }
            Node::Not(node) => match node.eval(known) {
                Truth::Yes => Truth::No,
                Truth::No => Truth::Yes,
                Truth::Maybe => Truth::Maybe,
            },
            Node::Leaf { attr, op, value } => leaf(*attr, *op, value, known),
        }
    }

    /// Bounds `(lo, hi)` on `created_at` that every match of a generated inquiry satisfies,
    /// given that its `updated_at` lies in `created_at..=created_at + max_story`.
    pub fn created_bounds(&self, max_story: i64) -> (i64, i64) {
        const ALL: (i64, i64) = (i64::MIN, i64::MAX);
        match self {
            Node::And(nodes) => nodes.iter().fold(ALL, |(lo, hi), n| {
                let (l, h) = n.created_bounds(max_story);
                (lo.max(l), hi.min(h))
            }),
            Node::Or(nodes) => nodes.iter().fold((i64::MAX, i64::MIN), |(lo, hi), n| {
                let (l, h) = n.created_bounds(max_story);
                (lo.min(l), hi.max(h))
            }),
            Node::Not(_) => ALL,
            Node::Leaf {
                attr,
                op,
                value: Operand::Time(v),
            } => {
                let v = *v;
                let (lo, hi) = match op {
                    Op::Eq => (v, v),
                    Op::Gt | Op::Gte => (v, i64::MAX),
                    Op::Lt | Op::Lte => (i64::MIN, v),
                };
                match attr {
                    Attr::CreatedAt => (lo, hi),
                    // created_at <= updated_at <= created_at + max_story
                    _ => (lo.saturating_sub(max_story), hi),
                }
            }
            Node::Leaf { .. } => ALL,
        }
    }
}

fn leaf(attr: Attr, op: Op, value: &Operand, known: &Known) -> Truth {
    match (attr, value) {
        (Attr::CreatedAt, Operand::Time(v)) => Truth::of(op.holds(known.created_at.cmp(v))),
        (Attr::UpdatedAt, Operand::Time(v)) => {
            let (lo, hi) = known.updated;
            let at_lo = op.holds(lo.cmp(v));
            let at_hi = op.holds(hi.cmp(v));
            // Every operator is an interval of values, so checking the ends settles all but
            // `eq` with the operand strictly inside (lo, hi).
            if lo == hi {
                Truth::of(at_lo)
            } else if at_lo && at_hi && op != Op::Eq {
                Truth::Yes
            } else if !(at_lo || at_hi || (op == Op::Eq && lo < *v && *v < hi)) {
                Truth::No
            } else {
                Truth::Maybe
            }
        }
        (Attr::Status, Operand::Text(v)) => Truth::of(op.holds(known.status.cmp(v.as_str()))),
        (Attr::ReferenceId, Operand::Text(v)) => text_leaf(op, known.reference_id, v),
        (Attr::TemplateId, Operand::Text(v)) => text_leaf(op, known.template_id, v),
        _ => Truth::No,
    }
}

/// A missing (null) attribute matches no predicate.
fn text_leaf(op: Op, have: Option<&str>, want: &str) -> Truth {
    Truth::of(have.is_some_and(|have| op.holds(have.cmp(want))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn known(updated: (i64, i64)) -> Known<'static> {
        Known {
            status: "approved",
            created_at: 100,
            updated,
            reference_id: None,
            template_id: Some("itmpl_b"),
        }
    }

    fn at(op: &str, value: &str) -> Node {
        parse(&json!({"attribute": "updated_at", "operator": op, "value": value})).unwrap()
    }

    #[test]
    fn a_range_of_updated_at_answers_only_when_it_can() {
        let t = |ms: i64| {
            DateTime::from_timestamp_millis(ms)
                .unwrap()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        };
        let range = known((1_000, 2_000));
        assert_eq!(at("gte", &t(1_000)).eval(&range), Truth::Yes);
        assert_eq!(at("gte", &t(1_500)).eval(&range), Truth::Maybe);
        assert_eq!(at("gt", &t(2_000)).eval(&range), Truth::No);
        assert_eq!(at("lt", &t(1_000)).eval(&range), Truth::No);
        assert_eq!(at("lte", &t(2_000)).eval(&range), Truth::Yes);
        assert_eq!(at("eq", &t(1_500)).eval(&range), Truth::Maybe);
        assert_eq!(at("eq", &t(2_500)).eval(&range), Truth::No);
        let not = Node::Not(Box::new(at("gte", &t(1_500))));
        assert_eq!(not.eval(&range), Truth::Maybe);
        assert_eq!(not.eval(&known((1_600, 1_600))), Truth::No);
        // A null attribute matches no predicate, so its negation matches.
        let reference =
            json!({"not": {"attribute": "reference_id", "operator": "lt", "value": "z"}});
        assert_eq!(parse(&reference).unwrap().eval(&range), Truth::Yes);
        let template =
            json!({"attribute": "inquiry_template_id", "operator": "gt", "value": "itmpl_a"});
        assert_eq!(parse(&template).unwrap().eval(&range), Truth::Yes);
    }

    #[test]
    fn created_bounds_follow_and_or_not() {
        let day = 86_400_000;
        let since = at("gte", "2026-01-02");
        let (lo, hi) = since.created_bounds(day);
        assert_eq!(lo, parse_time("2026-01-01").unwrap());
        assert_eq!(hi, i64::MAX);
        let created = |op: &str, v: &str| {
            parse(&json!({"attribute": "created_at", "operator": op, "value": v})).unwrap()
        };
        let and = Node::And(vec![
            created("gte", "2026-01-01"),
            created("lt", "2026-02-01"),
        ]);
        assert_eq!(
            and.created_bounds(day),
            (
                parse_time("2026-01-01").unwrap(),
                parse_time("2026-02-01").unwrap()
            )
        );
        let or = Node::Or(vec![
            created("eq", "2026-01-01"),
            created("eq", "2026-03-01"),
        ]);
        assert_eq!(
            or.created_bounds(day),
            (
                parse_time("2026-01-01").unwrap(),
                parse_time("2026-03-01").unwrap()
            )
        );
        let not = Node::Not(Box::new(created("gte", "2026-01-01")));
        assert_eq!(not.created_bounds(day), (i64::MIN, i64::MAX));
    }
}
