//! A small CQL (Confluence Query Language) subset: the clauses a filesystem client needs to
//! find content, joined by `AND`, with an optional `ORDER BY`.
//!
//! Supported fields: `type`, `space` (and `space.key`), `title`, `id`, `parent`, `ancestor`,
//! `container`, `lastmodified` and `created`; operators `=`, `!=`, `~`, `!~`, `<`, `<=`, `>`,
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

#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Query {
    pub clauses: Vec<Clause>,
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
        _ => return Err(CqlError::UnknownField(name.to_string())),
    })
}

pub(crate) fn parse(s: &str) -> Result<Query, CqlError> {
    let toks = tokenize(s)?;
    let syntax = || CqlError::Syntax(s.to_string());
    let mut q = Query::default();
    let mut i = 0;
    let word_is =
        |t: Option<&Token>, w: &str| matches!(t, Some(Token::Word(x)) if x.eq_ignore_ascii_case(w));
    loop {
        if word_is(toks.get(i), "order") {
            if !word_is(toks.get(i + 1), "by") {
                return Err(syntax());
            }
            let Some(Token::Word(f)) = toks.get(i + 2) else {
                return Err(syntax());
            };
            let f = field(f)?;
            let mut desc = false;
            i += 3;
            if word_is(toks.get(i), "desc") {
                desc = true;
                i += 1;
            } else if word_is(toks.get(i), "asc") {
                i += 1;
            }
            q.order = Some((f, desc));
            if i != toks.len() {
                return Err(syntax());
            }
            break;
        }
        let Some(Token::Word(name)) = toks.get(i) else {
            return Err(syntax());
        };
        let f = field(name)?;
        i += 1;
        let op = match toks.get(i) {
            Some(Token::Op(o)) => match o.as_str() {
                "=" => Op::Eq,
                "!=" => Op::Ne,
                "~" => Op::Contains,
                "!~" => Op::NotContains,
                "<" => Op::Lt,
                "<=" => Op::Le,
                ">" => Op::Gt,
                ">=" => Op::Ge,
                _ => return Err(syntax()),
            },
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("in") => Op::In,
            Some(Token::Word(w))
                if w.eq_ignore_ascii_case("not") && word_is(toks.get(i + 1), "in") =>
            {
                i += 1;
                Op::NotIn
            }
            _ => return Err(syntax()),
        };
        i += 1;
        let mut values = Vec::new();
        if matches!(op, Op::In | Op::NotIn) {
            if toks.get(i) != Some(&Token::LParen) {
                return Err(syntax());
            }
            i += 1;
            loop {
                match toks.get(i) {
                    Some(Token::Word(v)) | Some(Token::Str(v)) => values.push(v.clone()),
                    _ => return Err(syntax()),
                }
                i += 1;
                match toks.get(i) {
                    Some(Token::Comma) => i += 1,
                    Some(Token::RParen) => {
                        i += 1;
                        break;
                    }
                    _ => return Err(syntax()),
                }
            }
        } else {
            match toks.get(i) {
                Some(Token::Word(v)) | Some(Token::Str(v)) => values.push(v.clone()),
                _ => return Err(syntax()),
            }
            i += 1;
        }
        if matches!(f, Field::LastModified | Field::Created) {
            for v in &values {
                if clock::parse_cql_date(v).is_none() {
                    return Err(CqlError::Syntax(format!("{s} (bad date {v:?})")));
                }
            }
        }
        q.clauses.push(Clause {
            field: f,
            op,
            values,
        });
        if i >= toks.len() {
            break;
        }
        if word_is(toks.get(i), "and") {
            i += 1;
            continue;
        }
        if word_is(toks.get(i), "order") {
            continue;
        }
        return Err(syntax());
    }
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_supported_subset() {
        let q = parse(r#"type=attachment AND space="DOCS" and title ~ "rep" AND lastmodified >= "2024-01-15 10:30" order by lastmodified desc"#).unwrap();
        assert_eq!(q.clauses.len(), 4);
        assert_eq!(q.clauses[0].field, Field::Type);
        assert_eq!(q.clauses[1].values, vec!["DOCS".to_string()]);
        assert_eq!(q.clauses[2].op, Op::Contains);
        assert_eq!(q.clauses[3].op, Op::Ge);
        assert_eq!(q.order, Some((Field::LastModified, true)));
        let q = parse("type in (page, blogpost)").unwrap();
        assert_eq!(q.clauses[0].values.len(), 2);
    }

    #[test]
    fn refuses_unknown_fields_and_garbage() {
        assert_eq!(
            parse("status = current"),
            Err(CqlError::UnknownField("status".to_string()))
        );
        assert!(matches!(
            parse("type = page OR type = blogpost"),
            Err(CqlError::Syntax(_))
        ));
        assert!(matches!(parse("title ~ \"open"), Err(CqlError::Syntax(_))));
        assert!(matches!(
            parse("lastmodified > \"soon\""),
            Err(CqlError::Syntax(_))
        ));
    }
}
