//! What a regex matcher's value reduces to, so that most regexes never run.
//!
//! The regexes users write in routes, inhibit rules and silences are mostly
//! a few alternatives (`service=~"api|web"`), a character class
//! (`host-1[0-9]`) or a prefix (`instance=~"db-.*"`). Running the regex
//! engine for those costs a search (and a cache taken from the regex's
//! pool) per label value; a sorted set or a prefix comparison decides the
//! same answer for a fraction of it. Every reduction is exact: a value the
//! form accepts is a value the anchored regex accepts, and no other.

use regex_syntax::hir::{Class, Dot, Hir, HirKind, Look};

/// Larger finite languages are left to the regex: expanding them costs
/// more at build time than it saves per alert.
const MAX_SET: usize = 64;

/// A regex's exact answer without the regex engine.
#[derive(Debug)]
pub(crate) enum Form {
    /// The value is one of these (sorted): a regex with a finite language.
    Set(Box<[Box<[u8]>]>),
    /// The value starts with one of these and the rest is what `.*`
    /// matches: any text (`(?s)`), or text without a newline.
    Prefix {
        prefixes: Box<[Box<[u8]>]>,
        newline_ok: bool,
    },
}

impl Form {
    /// Whether the anchored regex accepts `v`.
    pub(crate) fn matches(&self, v: &str) -> bool {
        match self {
            Form::Set(values) => values.binary_search_by(|x| (**x).cmp(v.as_bytes())).is_ok(),
            Form::Prefix {
                prefixes,
                newline_ok,
            } => prefixes.iter().any(|p| {
                v.as_bytes()
                    .strip_prefix(&**p)
                    .is_some_and(|rest| *newline_ok || !rest.contains(&b'\n'))
            }),
        }
    }
}

/// What every value a regex accepts holds: one of these values (none
/// empty), or this prefix (not empty).
pub(crate) enum Required {
    Values(Vec<Box<[u8]>>),
    Prefix(Box<[u8]>),
}

/// A regex matcher's value as the regex it compiles to (`^(?:value)$`),
/// parsed: the route and silence indexes read from it what every match
/// must begin with. `None` for a value that does not parse.
pub(crate) fn anchored_hir(value: &str) -> Option<Hir> {
    regex_syntax::Parser::new()
        .parse(&format!("^(?:{value})$"))
        .ok()
}

/// The literals one of which begins every match of `hir`, or `None` when
/// they are not a finite set or the regex matches nothing (left to a full
/// evaluation).
pub(crate) fn prefix_literals(hir: &Hir) -> Option<Vec<Vec<u8>>> {
    let seq = regex_syntax::hir::literal::Extractor::new().extract(hir);
    let lits = seq.literals()?;
    if lits.is_empty() {
        return None;
    }
    Some(lits.iter().map(|l| l.as_bytes().to_vec()).collect())
}

/// The plain test equivalent to the anchored regex Herald compiles for a
/// matcher value (`^(?:value)$`, see `Matcher::new`), if there is one, and
/// what any matching value must hold (for an index to file it under).
pub(crate) fn reduce_regex(value: &str) -> (Option<Form>, Option<Required>) {
    let Some(hir) = anchored_hir(value) else {
        return (None, None);
    };
    // What every match starts with (look-arounds count as empty, so this
    // holds for any regex).
    let required = || {
        let starts: Vec<Box<[u8]>> = prefix_literals(&hir)?
            .into_iter()
            .map(Vec::into_boxed_slice)
            .collect();
        common_prefix(&starts).map(Required::Prefix)
    };
    let inner = match hir.kind() {
        HirKind::Concat(parts)
            if parts.len() >= 2
                && matches!(parts[0].kind(), HirKind::Look(Look::Start))
                && matches!(parts[parts.len() - 1].kind(), HirKind::Look(Look::End)) =>
        {
            &parts[1..parts.len() - 1]
        }
        _ => return (None, required()),
    };
    if let Some(set) = finite_concat(inner) {
        let key = (!set.iter().any(|v| v.is_empty())).then(|| Required::Values(set.clone()));
        return (Some(Form::Set(set.into())), key);
    }
    if let Some((last, init)) = inner.split_last() {
        if let HirKind::Repetition(r) = last.kind() {
            let newline_ok = if *r.sub == Hir::dot(Dot::AnyChar) {
                Some(true)
            } else if *r.sub == Hir::dot(Dot::AnyCharExceptLF) {
                Some(false)
            } else {
                None
            };
            if let (0, None, Some(newline_ok), Some(prefixes)) =
                (r.min, r.max, newline_ok, finite_concat(init))
            {
                let key = common_prefix(&prefixes).map(Required::Prefix);
                let form = Form::Prefix {
                    prefixes: prefixes.into(),
                    newline_ok,
                };
                return (Some(form), key);
            }
        }
    }
    (None, required())
}

fn common_prefix(values: &[Box<[u8]>]) -> Option<Box<[u8]>> {
    let first = values.first()?;
    let len = values.iter().fold(first.len(), |len, v| {
        first[..len]
            .iter()
            .zip(v.iter())
            .take_while(|(a, b)| a == b)
            .count()
    });
    (len > 0).then(|| first[..len].into())
}

/// The strings a concatenation matches, sorted, if they are few; `None`
/// also for anything holding a look-around, whose answer depends on more
/// than the string's membership in a set.
fn finite_concat(parts: &[Hir]) -> Option<Vec<Box<[u8]>>> {
    let mut out: Vec<Vec<u8>> = vec![Vec::new()];
    for p in parts {
        out = cross(&out, &finite(p)?)?;
    }
    Some(sorted(out))
}

fn sorted(mut v: Vec<Vec<u8>>) -> Vec<Box<[u8]>> {
    v.sort();
    v.dedup();
    v.into_iter().map(Vec::into_boxed_slice).collect()
}

fn cross(a: &[Vec<u8>], b: &[Vec<u8>]) -> Option<Vec<Vec<u8>>> {
    if a.len().saturating_mul(b.len()) > MAX_SET {
        return None;
    }
    Some(
        a.iter()
            .flat_map(|x| b.iter().map(move |y| [x.as_slice(), y].concat()))
            .collect(),
    )
}

fn finite(h: &Hir) -> Option<Vec<Vec<u8>>> {
    let out = match h.kind() {
        HirKind::Empty => vec![Vec::new()],
        HirKind::Literal(l) => vec![l.0.to_vec()],
        HirKind::Class(Class::Unicode(c)) => {
            let mut out = Vec::new();
            for r in c.ranges() {
                if (r.end() as u32 - r.start() as u32) as usize >= MAX_SET {
                    return None;
                }
                for ch in r.start()..=r.end() {
                    out.push(ch.to_string().into_bytes());
                }
            }
            out
        }
        HirKind::Class(Class::Bytes(c)) => {
            let mut out = Vec::new();
            for r in c.ranges() {
                // Bytes past ASCII are parts of characters, not text.
                if r.end() >= 0x80 || usize::from(r.end() - r.start()) >= MAX_SET {
                    return None;
                }
                out.extend((r.start()..=r.end()).map(|b| vec![b]));
            }
            out
        }
        HirKind::Look(_) => return None,
        HirKind::Repetition(r) => {
            let max = r.max?;
            if max > 8 {
                return None;
            }
            let sub = finite(&r.sub)?;
            let mut power: Vec<Vec<u8>> = vec![Vec::new()];
            let mut out = Vec::new();
            for k in 0..=max {
                if k >= r.min {
                    out.extend(power.iter().cloned());
                }
                if k < max {
                    power = cross(&power, &sub)?;
                }
                if out.len() > MAX_SET {
                    return None;
                }
            }
            out
        }
        HirKind::Capture(c) => finite(&c.sub)?,
        HirKind::Concat(parts) => finite_concat(parts)?.into_iter().map(Vec::from).collect(),
        HirKind::Alternation(alts) => {
            let mut out = Vec::new();
            for a in alts {
                out.extend(finite(a)?);
                if out.len() > MAX_SET {
                    return None;
                }
            }
            out
        }
    };
    (out.len() <= MAX_SET).then_some(out)
}
