//! License expressions: SPDX expressions evaluated for a choice (see the module above), and how
//! license ids compare.

use super::{Evaluator, MAX_EXPRESSION_DEPTH};

/// The licenses that make an expression fail; it passes when both are empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct LicenseFailures<'a> {
    pub(super) denied: Vec<&'a str>,
    pub(super) not_allowed: Vec<&'a str>,
}

impl<'a> LicenseFailures<'a> {
    pub(super) fn passes(&self) -> bool {
        self.denied.is_empty() && self.not_allowed.is_empty()
    }

    /// Both must hold: every failing license counts.
    pub(super) fn and(mut self, other: &LicenseFailures<'a>) -> Self {
        for (into, from) in [(&mut self.denied, &other.denied), (&mut self.not_allowed, &other.not_allowed)] {
            for l in from {
                if !into.iter().any(|x| canonical(x) == canonical(l)) {
                    into.push(l);
                }
            }
        }
        self
    }

    /// Either may hold: passes when one does; otherwise every alternative's failures count.
    pub(super) fn or(self, other: LicenseFailures<'a>) -> Self {
        if self.passes() || other.passes() {
            LicenseFailures::default()
        } else {
            self.and(&other)
        }
    }
}

/// How license ids compare: case-insensitively, with the GNU variants of one version equal.
pub(super) fn canonical(id: &str) -> String {
    let mut s = id.trim().trim_end_matches('+').to_ascii_lowercase();
    for suffix in ["-or-later", "-only"] {
        if let Some(stripped) = s.strip_suffix(suffix) {
            s.truncate(stripped.len());
            break;
        }
    }
    s
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Token<'a> {
    Open,
    Close,
    And,
    Or,
    With,
    Id(&'a str),
}

/// A recursive-descent evaluator over `or := and (OR and)*`, `and := with (AND with)*`,
/// `with := id [WITH id] | ( or )`. Operators are read in any case (npm writes `or`).
pub(super) struct Expression<'a> {
    pub(super) tokens: Vec<Token<'a>>,
    pub(super) pos: usize,
    pub(super) depth: usize,
}

impl<'a> Expression<'a> {
    /// Tokenises; `None` when the text holds characters no SPDX id has.
    pub(super) fn new(text: &'a str) -> Option<Self> {
        let mut tokens = Vec::new();
        let mut rest = text;
        loop {
            rest = rest.trim_start();
            let Some(c) = rest.chars().next() else { break };
            match c {
                '(' => {
                    tokens.push(Token::Open);
                    rest = rest.strip_prefix('(').unwrap_or_default();
                }
                ')' => {
                    tokens.push(Token::Close);
                    rest = rest.strip_prefix(')').unwrap_or_default();
                }
                _ => {
                    let end = rest.find(|c: char| c.is_whitespace() || c == '(' || c == ')').unwrap_or(rest.len());
                    let (word, after) = rest.split_at_checked(end)?;
                    if !word.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.+:".contains(&b)) {
                        return None;
                    }
                    tokens.push(match word {
                        w if w.eq_ignore_ascii_case("AND") => Token::And,
                        w if w.eq_ignore_ascii_case("OR") => Token::Or,
                        w if w.eq_ignore_ascii_case("WITH") => Token::With,
                        w => Token::Id(w),
                    });
                    rest = after;
                }
            }
        }
        (!tokens.is_empty()).then_some(Expression { tokens, pos: 0, depth: 0 })
    }

    pub(super) fn next(&mut self) -> Option<Token<'a>> {
        let t = self.tokens.get(self.pos).copied();
        self.pos += 1;
        t
    }

    pub(super) fn peek(&self) -> Option<Token<'a>> {
        self.tokens.get(self.pos).copied()
    }

    /// The verdict of the whole text; `None` when it is not an SPDX expression.
    pub(super) fn evaluate(&mut self, ev: &Evaluator<'_, 'a>) -> Option<LicenseFailures<'a>> {
        let v = self.or(ev)?;
        (self.pos == self.tokens.len()).then_some(v)
    }

    pub(super) fn or(&mut self, ev: &Evaluator<'_, 'a>) -> Option<LicenseFailures<'a>> {
        let mut v = self.and(ev)?;
        while self.peek() == Some(Token::Or) {
            self.pos += 1;
            v = v.or(self.and(ev)?);
        }
        Some(v)
    }

    pub(super) fn and(&mut self, ev: &Evaluator<'_, 'a>) -> Option<LicenseFailures<'a>> {
        let mut v = self.with(ev)?;
        while self.peek() == Some(Token::And) {
            self.pos += 1;
            v = v.and(&self.with(ev)?);
        }
        Some(v)
    }

    pub(super) fn with(&mut self, ev: &Evaluator<'_, 'a>) -> Option<LicenseFailures<'a>> {
        match self.next()? {
            Token::Id(id) => {
                if self.peek() == Some(Token::With) {
                    self.pos += 1;
                    // The exception adds permissions; the license is what the lists judge.
                    let Token::Id(_) = self.next()? else { return None };
                }
                Some(ev.leaf(id))
            }
            Token::Open => {
                self.depth += 1;
                if self.depth > MAX_EXPRESSION_DEPTH {
                    return None;
                }
                let v = self.or(ev)?;
                self.depth -= 1;
                (self.next()? == Token::Close).then_some(v)
            }
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// RFC 3339 times.
