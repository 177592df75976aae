//! Compiled resource globs, matched on the check path without allocating. The rules are in the
//! [`selector`](super::selector) module doc; here a pattern becomes a list of segment tokens, and matching
//! runs the classic greedy wildcard algorithm twice over: across segments (`**` is the star, every other
//! token consumes exactly one segment) and inside a segment (`*` is the star, bytes are the units). Both
//! levels backtrack only to the last star seen, so matching is O(pattern x resource) at worst, whatever
//! pattern an operator writes.
//!
//! Why that bound holds: at the segment level each token after the last `**` is compared with a given
//! segment at most once (a retry shifts the alignment by one segment), and comparing a token with a
//! segment costs at most their two lengths multiplied (the in-segment algorithm is the same greedy one,
//! over bytes). Summed over all pairs that is at most |pattern| x |resource| byte steps. [`Glob::work`]
//! counts those steps, and a property test holds the matcher to `work <= 4 x (|pattern| + 1) x
//! (|resource| + 1)` while comparing its answers with a naive recursive matcher. Resource ids are at
//! most `MAX_RESOURCE_ID_LEN` bytes and selectors `MAX_SELECTOR_LEN` (checked before the index is
//! asked), so one glob costs at most about 66 000 steps, a few microseconds.

/// One compiled segment of a pattern.
#[derive(Debug, Clone)]
enum Token {
    /// `**` not at the end: zero or more whole segments.
    Segments,
    /// A segment made only of `*`: any one segment.
    AnySegment,
    /// A segment without `*`: exactly this text.
    Literal(Box<str>),
    /// A segment with `*` among other characters.
    Pattern(Box<[u8]>),
}

#[derive(Debug, Clone)]
pub(crate) struct Glob {
    tokens: Box<[Token]>,
}

impl Glob {
    /// Compiles any string; a string without `*` compiles to an exact match.
    pub(crate) fn compile(pattern: &str) -> Glob {
        let parts: Vec<&str> = pattern.split('/').collect();
        let mut tokens = Vec::with_capacity(parts.len() + 1);
        for (i, part) in parts.iter().enumerate() {
            if *part == "**" {
                // Consecutive `**` say no more than one does.
                if matches!(tokens.last(), Some(Token::Segments)) {
                    tokens.pop();
                }
                if i + 1 == parts.len() {
                    // A trailing `**` matches one or more segments: one any-segment, then zero or more.
                    tokens.push(Token::AnySegment);
                }
                tokens.push(Token::Segments);
            } else if part.bytes().all(|b| b == b'*') && !part.is_empty() {
                tokens.push(Token::AnySegment);
            } else if part.contains('*') {
                tokens.push(Token::Pattern(part.as_bytes().into()));
            } else {
                tokens.push(Token::Literal((*part).into()));
            }
        }
        Glob { tokens: tokens.into_boxed_slice() }
    }

    pub(crate) fn matches(&self, resource: &str) -> bool {
        self.run(resource, &mut 0)
    }

    /// The steps [`matches`](Glob::matches) takes on `resource` (each token tried on a segment, each
    /// byte compared or scanned, each retry), with its answer.
    pub(crate) fn work(&self, resource: &str) -> (bool, u64) {
        let mut steps = 0;
        let matched = self.run(resource, &mut steps);
        (matched, steps)
    }

    fn run(&self, resource: &str, steps: &mut u64) -> bool {
        let tokens = &self.tokens;
        let mut t = 0;
        // Byte offset of the next unmatched segment; None once every segment is matched.
        let mut at: Option<usize> = Some(0);
        // Where to resume after the last `**`: the token after it, and where its run of segments ends.
        let mut resume: Option<(usize, Option<usize>)> = None;
        loop {
            *steps += 1;
            if let Some(token) = tokens.get(t) {
                if let Token::Segments = token {
                    resume = Some((t + 1, at));
                    t += 1;
                    continue;
                }
                if let Some(offset) = at {
                    let (segment, next) = segment_at(resource, offset, steps);
                    if token_matches(token, segment, steps) {
                        t += 1;
                        at = next;
                        continue;
                    }
                }
            } else if at.is_none() {
                return true;
            }
            // Mismatch: let the last `**` swallow one more segment, if there is one left.
            match resume {
                Some((after, Some(offset))) => {
                    let (_, next) = segment_at(resource, offset, steps);
                    resume = Some((after, next));
                    t = after;
                    at = next;
                }
                _ => return false,
            }
        }
    }
}

/// The segment starting at byte `offset`, and the offset of the one after it (None if it is the last).
fn segment_at<'a>(resource: &'a str, offset: usize, steps: &mut u64) -> (&'a str, Option<usize>) {
    let rest = &resource[offset..];
    let found = rest.bytes().position(|b| b == b'/');
    *steps += found.unwrap_or(rest.len()) as u64;
    match found {
        Some(end) => (&rest[..end], Some(offset + end + 1)),
        None => (rest, None),
    }
}

fn token_matches(token: &Token, segment: &str, steps: &mut u64) -> bool {
    match token {
        Token::Segments | Token::AnySegment => true,
        Token::Literal(text) => {
            *steps += text.len().min(segment.len()) as u64;
            **text == *segment
        }
        Token::Pattern(pattern) => segment_matches(pattern, segment.as_bytes(), steps),
    }
}

/// `*` matches any run of bytes. Literal runs are whole UTF-8 strings, so they can only match at
/// character boundaries of a UTF-8 segment: comparing bytes is exact.
fn segment_matches(pattern: &[u8], segment: &[u8], steps: &mut u64) -> bool {
    let (mut p, mut s) = (0, 0);
    let mut resume: Option<(usize, usize)> = None;
    while s < segment.len() {
        *steps += 1;
        match pattern.get(p) {
            Some(b'*') => {
                resume = Some((p + 1, s));
                p += 1;
            }
            Some(&b) if b == segment[s] => {
                p += 1;
                s += 1;
            }
            _ => match resume {
                Some((after, from)) => {
                    resume = Some((after, from + 1));
                    p = after;
                    s = from + 1;
                }
                None => return false,
            },
        }
    }
    *steps += (pattern.len() - p) as u64;
    pattern[p..].iter().all(|&b| b == b'*')
}

/// The glob rules written as plainly as they read, by recursion: exponential on hostile input, so only
/// for checking [`Glob`] on small inputs (the property tests and the `glob_match` fuzz target).
pub(crate) fn reference(pattern: &str, resource: &str) -> bool {
    // The rules read as recursion; each call is remembered by its position in pattern and input, so
    // the reference stays polynomial (plain recursion is exponential on `*a*a*a...` against `aaaa...`).
    fn one(p: &[u8], s: &[u8], i: usize, j: usize, memo: &mut [Option<bool>]) -> bool {
        let key = i * (s.len() + 1) + j;
        if let Some(v) = memo[key] {
            return v;
        }
        let v = match p.get(i) {
            None => j == s.len(),
            Some(b'*') => (j..=s.len()).any(|k| one(p, s, i + 1, k, memo)),
            Some(c) => s.get(j) == Some(c) && one(p, s, i + 1, j + 1, memo),
        };
        memo[key] = Some(v);
        v
    }
    fn segment(p: &str, s: &str) -> bool {
        let mut memo = vec![None; (p.len() + 1) * (s.len() + 1)];
        one(p.as_bytes(), s.as_bytes(), 0, 0, &mut memo)
    }
    fn segments(p: &[&str], r: &[&str], i: usize, j: usize, memo: &mut [Option<bool>]) -> bool {
        let key = i * (r.len() + 1) + j;
        if let Some(v) = memo[key] {
            return v;
        }
        let v = match p.get(i) {
            None => j == r.len(),
            // A trailing `**` takes one or more segments, any other `**` zero or more.
            Some(&"**") if i + 1 == p.len() => j < r.len(),
            Some(&"**") => (j..=r.len()).any(|k| segments(p, r, i + 1, k, memo)),
            Some(first) => j < r.len() && segment(first, r[j]) && segments(p, r, i + 1, j + 1, memo),
        };
        memo[key] = Some(v);
        v
    }
    let pattern: Vec<&str> = pattern.split('/').collect();
    let resource: Vec<&str> = resource.split('/').collect();
    let mut memo = vec![None; (pattern.len() + 1) * (resource.len() + 1)];
    segments(&pattern, &resource, 0, 0, &mut memo)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_matcher_stays_polynomial_on_many_stars() {
        // Plain recursion took longer than the fuzzer's patience on this (found fuzzing glob_match).
        let resource = "a".repeat(32);
        assert!(!reference("*a*a*a*a*a*a*a*a*a*a*a*b", &resource));
        assert!(reference("*a*a*a*a*a*a*a*a*a*a*a*a", &resource));
        let deep = vec!["a"; 32].join("/");
        assert!(!reference("**/a/**/a/**/a/**/a/**/b", &deep));
    }

    #[test]
    fn glob_table() {
        // (pattern, resource, matches)
        let cases: &[(&str, &str, bool)] = &[
            ("line1/*", "line1/press3", true),
            ("line1/*", "line1/", true),
            ("line1/*", "line1/a/b", false),
            ("line1/*", "line1", false),
            ("line1/*", "line2/press3", false),
            ("line1/**", "line1/a", true),
            ("line1/**", "line1/a/b", true),
            ("line1/**", "line1", false),
            ("line1/**", "line10/a", false),
            ("**/press3", "press3", true),
            ("**/press3", "line1/press3", true),
            ("**/press3", "line1/cell2/press3", true),
            ("**/press3", "line1/press4", false),
            ("line1/**/valve", "line1/valve", true),
            ("line1/**/valve", "line1/a/b/valve", true),
            ("line1/**/valve", "line1/a/b/valve/x", false),
            ("**", "anything/at/all", true),
            ("**", "x", true),
            ("*", "x", true),
            ("*", "x/y", false),
            ("*/press*", "line1/press3", true),
            ("*/press*", "line1/press", true),
            ("*/press*", "line1/pres", false),
            ("line*/press?", "line1/press?", true),
            ("*3", "press3", true),
            ("*3", "press33", true),
            ("*3", "press34", false),
            ("p*s*3", "press3", true),
            ("a*b*c", "aXbYbZc", true),
            ("a*b*c", "aXbYbZ", false),
            ("presse/ü*", "presse/über", true),
            ("presse/*r", "presse/über", true),
            ("a/**/**/b", "a/b", true),
            ("a/**/**", "a", false),
            ("a/**/**", "a/x", true),
            ("a//*", "a//x", true),
            ("a/*/**/*", "a/x/y", true),
            ("a/*/**/*", "a/x", false),
        ];
        for &(pattern, resource, want) in cases {
            assert_eq!(Glob::compile(pattern).matches(resource), want, "{pattern:?} vs {resource:?}");
        }
    }

    #[test]
    fn many_stars_stay_fast() {
        // A pathological pattern for a naive backtracking matcher.
        let pattern = "*a*a*a*a*a*a*a*a*a*a*a*a*b";
        let resource = "a".repeat(200);
        assert!(!Glob::compile(pattern).matches(&resource));
        let pattern = "**/a/**/a/**/a/**/a/**/a/**/a/**/b";
        let resource = vec!["a"; 60].join("/");
        assert!(!Glob::compile(pattern).matches(&resource));
    }

    #[test]
    fn forty_two_nested_deep_wildcards_cost_a_bounded_number_of_steps() {
        // The pattern of issue 13 (42 `**`), stored before selectors were capped, against the longest id.
        let pattern = vec!["**/a"; 42].join("/") + "/b";
        let resource = vec!["a"; 128].join("/");
        let resource = &resource[..crate::authz::MAX_RESOURCE_ID_LEN - 1];
        let (matched, work) = Glob::compile(&pattern).work(resource);
        assert!(!matched);
        let bound = 4 * (pattern.len() as u64 + 1) * (resource.len() as u64 + 1);
        assert!(work <= bound, "{work} steps, bound {bound}");
        // And work grows linearly with the resource: twice the id, about twice the steps.
        let (_, half) = Glob::compile(&pattern).work(&resource[..resource.len() / 2]);
        assert!(work <= 3 * half, "{work} vs {half}");
    }
}
