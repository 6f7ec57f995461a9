//! A small CQL (Confluence Query Language) subset: the clauses a filesystem client needs to
//! find content, joined by `AND`, `OR`, `NOT` and parentheses (`AND` binds tighter than `OR`),
//! with an optional `ORDER BY`.
//!
//! Supported fields: `type`, `space` (and `space.key`), `title`, `id`, `parent`, `ancestor`,
//! `container`, `lastmodified`, `created`, `text` and `siteSearch` (the last two with `~`/`!~`
//! only); operators `=`, `!=`, `~`, `!~`, `<`, `<=`, `>`,
//! `>=`, `in (…)`, `not in (…)`. Anything else is refused the way Confluence refuses an
//! unknown field (`No field exists with the name: 'x'`), so a client never silently gets an
//! unfiltered result for a query this server does not understand.

use crate::clock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    Type,
    Space,
    Title,
    Id,
    Parent,
    Ancestor,
    Container,
    LastModified,
    Created,
    /// `text ~`: title, body text and attachment file names.
    Text,
    /// `siteSearch ~`: what the site's search box searches; here the same as `text`.
    SiteSearch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Contains,
    NotContains,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    NotIn,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Clause {
    pub field: Field,
    pub op: Op,
    pub values: Vec<String>,
}

/// A query's condition: clauses joined by `AND`, `OR`, `NOT` and parentheses.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    Clause(Clause),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
}

impl Expr {
    /// True when `holds` is true of the clauses as the operators combine them.
    pub(crate) fn eval(&self, holds: &mut impl FnMut(&Clause) -> bool) -> bool {
        match self {
            Expr::Clause(c) => holds(c),
            Expr::And(v) => v.iter().all(|e| e.eval(holds)),
            Expr::Or(v) => v.iter().any(|e| e.eval(holds)),
            Expr::Not(e) => !e.eval(holds),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Query {
    pub expr: Option<Expr>,
    /// (field, descending)
    pub order: Option<(Field, bool)>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub(crate) enum CqlError {
    #[error("No field exists with the name: '{0}'")]
    UnknownField(String),
    #[error("Could not parse cql : {0}")]
    Syntax(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Str(String),
    Op(String),
    LParen,
    RParen,
    Comma,
}

fn tokenize(s: &str) -> Result<Vec<Token>, CqlError> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            _ if c.is_whitespace() => i += 1,
            '(' => {
                out.push(Token::LParen);
                i += 1;
            }
            ')' => {
                out.push(Token::RParen);
                i += 1;
            }
            ',' => {
                out.push(Token::Comma);
                i += 1;
            }
            '"' | '\'' => {
                let quote = c;
                let mut v = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(CqlError::Syntax(s.to_string())),
                        Some('\\') => {
                            if let Some(n) = chars.get(i + 1) {
                                v.push(*n);
                            }
                            i += 2;
                        }
                        Some(ch) if *ch == quote => {
                            i += 1;
                            break;
                        }
                        Some(ch) => {
                            v.push(*ch);
                            i += 1;
                        }
                    }
                }
                out.push(Token::Str(v));
            }
            '=' | '~' => {
                out.push(Token::Op(c.to_string()));
                i += 1;
            }
            '!' | '<' | '>' => {
                let next = chars.get(i + 1).copied();
                if matches!(next, Some('=') | Some('~')) {
                    out.push(Token::Op(format!("{c}{}", next.unwrap_or('='))));
                    i += 2;
                } else if c == '!' {
                    return Err(CqlError::Syntax(s.to_string()));
                } else {
                    out.push(Token::Op(c.to_string()));
                    i += 1;
                }
            }
            _ => {
                let start = i;
                while i < chars.len()
                    && !chars[i].is_whitespace()
                    && !"()=~!<>,\"'".contains(chars[i])
                {
                    i += 1;
                }
                out.push(Token::Word(chars[start..i].iter().collect()));
            }
        }
    }
    Ok(out)
}

fn field(name: &str) -> Result<Field, CqlError> {
    Ok(match name.to_ascii_lowercase().as_str() {
        "type" => Field::Type,
        "space" | "space.key" => Field::Space,
        "title" => Field::Title,
        "id" | "content" => Field::Id,
        "parent" => Field::Parent,
        "ancestor" => Field::Ancestor,
        "container" => Field::Container,
        "lastmodified" => Field::LastModified,
        "created" => Field::Created,
        "text" => Field::Text,
        "sitesearch" => Field::SiteSearch,
        _ => return Err(CqlError::UnknownField(name.to_string())),
    })
}

struct Parser<'a> {
    toks: Vec<Token>,
    i: usize,
    src: &'a str,
}

impl Parser<'_> {
    fn syntax(&self) -> CqlError {
        CqlError::Syntax(self.src.to_string())
    }

    fn word_is(&self, w: &str) -> bool {
        matches!(self.toks.get(self.i), Some(Token::Word(x)) if x.eq_ignore_ascii_case(w))
    }

    /// or := and (OR and)*
    fn or(&mut self) -> Result<Expr, CqlError> {
        let mut parts = vec![self.and()?];
        while self.word_is("or") {
            self.i += 1;
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 {
            parts.pop().expect("one")
        } else {
            Expr::Or(parts)
        })
    }

    /// and := not (AND not)*
    fn and(&mut self) -> Result<Expr, CqlError> {
        let mut parts = vec![self.not()?];
        while self.word_is("and") {
            self.i += 1;
            parts.push(self.not()?);
        }
        Ok(if parts.len() == 1 {
            parts.pop().expect("one")
        } else {
            Expr::And(parts)
        })
    }

    /// not := NOT not | '(' or ')' | clause
    fn not(&mut self) -> Result<Expr, CqlError> {
        if self.word_is("not") {
            self.i += 1;
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        if self.toks.get(self.i) == Some(&Token::LParen) {
            self.i += 1;
            let e = self.or()?;
            if self.toks.get(self.i) != Some(&Token::RParen) {
                return Err(self.syntax());
            }
            self.i += 1;
            return Ok(e);
        }
        self.clause().map(Expr::Clause)
    }

    fn clause(&mut self) -> Result<Clause, CqlError> {
        let Some(Token::Word(name)) = self.toks.get(self.i) else {
            return Err(self.syntax());
        };
        let f = field(name)?;
        self.i += 1;
        let op = match self.toks.get(self.i) {
            Some(Token::Op(o)) => match o.as_str() {
                "=" => Op::Eq,
                "!=" => Op::Ne,
                "~" => Op::Contains,
                "!~" => Op::NotContains,
                "<" => Op::Lt,
                "<=" => Op::Le,
                ">" => Op::Gt,
                ">=" => Op::Ge,
                _ => return Err(self.syntax()),
            },
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("in") => Op::In,
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("not") => {
                self.i += 1;
                if !self.word_is("in") {
                    return Err(self.syntax());
                }
                Op::NotIn
            }
            _ => return Err(self.syntax()),
        };
        self.i += 1;
        let mut values = Vec::new();
        if matches!(op, Op::In | Op::NotIn) {
            if self.toks.get(self.i) != Some(&Token::LParen) {
                return Err(self.syntax());
            }
            self.i += 1;
            loop {
                match self.toks.get(self.i) {
                    Some(Token::Word(v)) | Some(Token::Str(v)) => values.push(v.clone()),
                    _ => return Err(self.syntax()),
                }
                self.i += 1;
                match self.toks.get(self.i) {
                    Some(Token::Comma) => self.i += 1,
                    Some(Token::RParen) => {
                        self.i += 1;
                        break;
                    }
                    _ => return Err(self.syntax()),
                }
            }
        } else {
            match self.toks.get(self.i) {
                Some(Token::Word(v)) | Some(Token::Str(v)) => values.push(v.clone()),
                _ => return Err(self.syntax()),
            }
            self.i += 1;
        }
        if matches!(f, Field::LastModified | Field::Created) {
            for v in &values {
                if clock::parse_cql_date(v).is_none() {
                    return Err(CqlError::Syntax(format!("{} (bad date {v:?})", self.src)));
                }
            }
        }
        // Text fields take only the contains operators, as in Confluence.
        if matches!(f, Field::Text | Field::SiteSearch)
            && !matches!(op, Op::Contains | Op::NotContains)
        {
            return Err(self.syntax());
        }
        Ok(Clause {
            field: f,
            op,
            values,
        })
    }
}

pub(crate) fn parse(s: &str) -> Result<Query, CqlError> {
    let mut p = Parser {
        toks: tokenize(s)?,
        i: 0,
        src: s,
    };
    let mut q = Query::default();
    if !p.word_is("order") && !p.toks.is_empty() {
        q.expr = Some(p.or()?);
    }
    if p.word_is("order") {
        p.i += 1;
        if !p.word_is("by") {
            return Err(p.syntax());
        }
        p.i += 1;
        let Some(Token::Word(f)) = p.toks.get(p.i) else {
            return Err(p.syntax());
        };
        let f = field(f)?;
        p.i += 1;
        let mut desc = false;
        if p.word_is("desc") {
            desc = true;
            p.i += 1;
        } else if p.word_is("asc") {
            p.i += 1;
        }
        q.order = Some((f, desc));
    }
    if p.i != p.toks.len() || q.expr.is_none() {
        return Err(p.syntax());
    }
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_supported_subset() {
        let q = parse(r#"type=attachment AND space="DOCS" and title ~ "rep" AND lastmodified >= "2024-01-15 10:30" order by lastmodified desc"#).unwrap();
        let Some(Expr::And(c)) = &q.expr else {
            panic!("{q:?}")
        };
        let clause = |e: &Expr| match e {
            Expr::Clause(c) => c.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(c.len(), 4);
        assert_eq!(clause(&c[0]).field, Field::Type);
        assert_eq!(clause(&c[1]).values, vec!["DOCS".to_string()]);
        assert_eq!(clause(&c[2]).op, Op::Contains);
        assert_eq!(clause(&c[3]).op, Op::Ge);
        assert_eq!(q.order, Some((Field::LastModified, true)));
        let q = parse("type in (page, blogpost)").unwrap();
        assert_eq!(clause(q.expr.as_ref().unwrap()).values.len(), 2);
        // OR binds looser than AND; NOT and parentheses nest.
        let q =
            parse(r#"type = page AND (title ~ "a" OR text ~ "b c") AND NOT space = HR"#).unwrap();
        let Some(Expr::And(c)) = &q.expr else {
            panic!("{q:?}")
        };
        assert!(matches!(&c[1], Expr::Or(v) if v.len() == 2));
        assert!(matches!(&c[2], Expr::Not(_)));
        let q = parse("type = page OR type = blogpost and space = X").unwrap();
        assert!(matches!(&q.expr, Some(Expr::Or(v)) if matches!(v[1], Expr::And(_))));
        assert!(parse(r#"siteSearch ~ "mount" order by created"#).is_ok());
    }

    #[test]
    fn refuses_unknown_fields_and_garbage() {
        assert_eq!(
            parse("status = current"),
            Err(CqlError::UnknownField("status".to_string()))
        );
        assert!(matches!(parse("type = page OR"), Err(CqlError::Syntax(_))));
        assert!(matches!(parse("(type = page"), Err(CqlError::Syntax(_))));
        assert!(matches!(
            parse(r#"text = "exact""#),
            Err(CqlError::Syntax(_))
        ));
        assert!(matches!(parse("title ~ \"open"), Err(CqlError::Syntax(_))));
        assert!(matches!(
            parse("lastmodified > \"soon\""),
            Err(CqlError::Syntax(_))
        ));
    }
}
