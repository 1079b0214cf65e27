//! A hand-written walk over one JSON object: no allocation, one pass, depth-limited. It finds
//! the status fields [`super`] reads and tells a whole object from anything else.

use super::step;

pub enum Outcome {
    Status(u16),
    /// A JSON object without a status field.
    NoStatus,
    /// Not one whole JSON object up to the end of the line.
    NotJson,
}

/// Deeper objects are not looked into (and a line nested deeper is not taken as JSON).
const MAX_DEPTH: usize = 32;

struct Walk<'a> {
    b: &'a [u8],
    i: usize,
    /// A status at the top level (wins), and one inside `http`/`response`.
    top: Option<u16>,
    nested: Option<u16>,
}

pub fn status(text: &[u8]) -> Outcome {
    let mut w = Walk {
        b: text,
        i: 0,
        top: None,
        nested: None,
    };
    if w.object(0, Parent::Top).is_none() {
        return Outcome::NotJson;
    }
    w.blanks();
    if w.i != w.b.len() {
        return Outcome::NotJson;
    }
    match w.top.or(w.nested) {
        Some(s) => Outcome::Status(s),
        None => Outcome::NoStatus,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Parent {
    Top,
    /// An object under a key named `http` or `response`.
    Http,
    Other,
}

impl<'a> Walk<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn blanks(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.i += 1;
            step(1);
        }
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        self.blanks();
        (self.peek()? == c).then(|| self.i += 1)
    }

    fn object(&mut self, depth: usize, parent: Parent) -> Option<()> {
        if depth >= MAX_DEPTH {
            return None;
        }
        self.eat(b'{')?;
        self.blanks();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Some(());
        }
        loop {
            self.blanks();
            let key = self.string()?;
            self.eat(b':')?;
            self.blanks();
            let wanted = match parent {
                Parent::Top => top_status_key(key),
                Parent::Http => nested_status_key(key),
                Parent::Other => false,
            };
            match self.peek()? {
                b'{' => {
                    let child = if parent == Parent::Top && container_key(key) {
                        Parent::Http
                    } else {
                        Parent::Other
                    };
                    self.object(depth + 1, child)?;
                }
                b'[' => self.array(depth + 1)?,
                b'"' => {
                    let value = self.string()?;
                    if wanted {
                        self.found(parent, status_text(value));
                    }
                }
                _ => {
                    let value = self.scalar()?;
                    if wanted {
                        self.found(parent, status_text(value));
                    }
                }
            }
            self.blanks();
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    fn found(&mut self, parent: Parent, status: Option<u16>) {
        let slot = if parent == Parent::Top {
            &mut self.top
        } else {
            &mut self.nested
        };
        if slot.is_none() {
            *slot = status;
        }
    }

    fn array(&mut self, depth: usize) -> Option<()> {
        if depth >= MAX_DEPTH {
            return None;
        }
        self.eat(b'[')?;
        self.blanks();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Some(());
        }
        loop {
            self.value(depth)?;
            self.blanks();
            match self.peek()? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    fn value(&mut self, depth: usize) -> Option<()> {
        self.blanks();
        match self.peek()? {
            b'{' => self.object(depth + 1, Parent::Other),
            b'[' => self.array(depth + 1),
            b'"' => self.string().map(drop),
            _ => self.scalar().map(drop),
        }
    }

    /// A string's raw bytes between its quotes (escapes left as they are).
    fn string(&mut self) -> Option<&'a [u8]> {
        if self.peek()? != b'"' {
            return None;
        }
        let start = self.i + 1;
        let mut i = start;
        loop {
            let rel = memchr::memchr2(b'"', b'\\', &self.b[i..])?;
            step(rel + 1);
            i += rel;
            if self.b[i] == b'\\' {
                i += 2;
                if i > self.b.len() {
                    return None;
                }
            } else {
                self.i = i + 1;
                return Some(&self.b[start..i]);
            }
        }
    }

    /// A number, true, false or null.
    fn scalar(&mut self) -> Option<&'a [u8]> {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'+' | b'.'))
        {
            self.i += 1;
            step(1);
        }
        let token = &self.b[start..self.i];
        let ok = matches!(token, b"true" | b"false" | b"null")
            || token
                .first()
                .is_some_and(|c| c.is_ascii_digit() || *c == b'-');
        ok.then_some(token)
    }
}

fn lower_eq(key: &[u8], names: &[&[u8]]) -> bool {
    names.iter().any(|n| n.eq_ignore_ascii_case(key))
}

fn top_status_key(key: &[u8]) -> bool {
    super::is_status_key(key)
}

fn nested_status_key(key: &[u8]) -> bool {
    lower_eq(key, &[b"status", b"status_code", b"statuscode"])
}

fn container_key(key: &[u8]) -> bool {
    lower_eq(key, &[b"http", b"response"])
}

/// 502 or "502" (a status written as a number or a string).
fn status_text(v: &[u8]) -> Option<u16> {
    if v.len() != 3 {
        return None;
    }
    super::status_at(v, 0)
}
