//! The classifier on hand-picked lines, on the generated corpus (`tests/corpus/`), against the
//! shipped filter and the article's rule, and as properties: no panic, linear work.

use super::*;

fn v(line: &str) -> Verdict {
    classify(line.as_bytes())
}

#[test]
fn access_lines_read_the_status_not_the_size() {
    use Verdict::*;
    let p = "Nov 22 04:26:15 web1 docker/api[1]: ";
    assert_eq!(v(&format!("{p}1.2.3.4 - - [22/Nov/2026:04:26:15 +0000] \"GET /a HTTP/1.1\" 200 512 \"-\" \"curl\"")), NotServerError(200));
    assert_eq!(
        v(&format!("{p}1.2.3.4 - - \"GET /a HTTP/1.1\" 502 12")),
        ServerError(502)
    );
    assert_eq!(
        v(&format!(
            "{p}::1 - - \"GET /v1/500/items HTTP/2.0\" 201 503"
        )),
        NotServerError(201)
    );
    assert_eq!(v("GET /x HTTP/1.1 500 12"), ServerError(500));
    assert_eq!(
        v("[2026-11-22T04:26:15.310Z] \"POST /api HTTP/2\" 503 UH 0 91 2 - \"-\""),
        ServerError(503)
    );
    assert_eq!(v("\"GET / HTTP/1.1\"\t504\t0"), ServerError(504));
    // a status must end where it ends
    assert_eq!(v("\"GET / HTTP/1.1\" 5023 0"), NoStatus);
    assert_eq!(v("\"GET / HTTP/1.1\" 999 0"), NoStatus);
    // no status after the protocol (nginx error log): nothing found
    assert_eq!(
        v("upstream timed out, request: \"GET /a HTTP/1.1\", upstream: \"http://x\""),
        NoStatus
    );
}

#[test]
fn haproxy_status_follows_the_timers() {
    let line = "haproxy[14389]: 10.0.1.2:33317 [06/Feb/2009:12:14:14.655] http-in static/srv1 10/0/30/69/109 502 2750 - - ---- 1/1/1/1/0 0/0 {1wt.eu} {} \"GET /index.html HTTP/1.1\"";
    assert_eq!(
        classify_with_source(line.as_bytes()),
        (Verdict::ServerError(502), Source::Haproxy)
    );
    let line = "haproxy[1]: 10.0.1.2:1 [06/Feb/2009:12:14:14.655] fe be/srv -1/-1/-1/-1/+3001 200 0 - - cD-- 0/0/0/0/0 0/0 \"GET / HTTP/1.1\"";
    assert_eq!(v(line), Verdict::NotServerError(200));
}

#[test]
fn json_fields_at_the_top_or_under_http() {
    use Verdict::*;
    assert_eq!(
        v(r#"h p: {"level":"error","status":502,"msg":"bad gateway"}"#),
        ServerError(502)
    );
    assert_eq!(v(r#"{"statusCode":"503"}"#), ServerError(503));
    assert_eq!(
        v(r#"{"http":{"method":"GET","status_code":504}}"#),
        ServerError(504)
    );
    assert_eq!(
        v(r#"{"response":{"status":500},"upstream_status":200}"#),
        ServerError(500)
    );
    assert_eq!(
        v(r#"{"status":"error","http":{"status_code":502}}"#),
        ServerError(502)
    );
    // a top-level status beats a nested one; a 5xx inside a message string is text
    assert_eq!(
        v(r#"{"status":200,"http":{"status":502},"msg":"upstream said HTTP/1.1 502 "}"#),
        NotServerError(200)
    );
    assert_eq!(
        v(r#"{"upstream_status":502,"status":200}"#),
        NotServerError(200)
    );
    assert_eq!(
        v(r#"{"msg":"GET / HTTP/1.1 502 ","level":"info"}"#),
        NoStatus
    );
    assert_eq!(v(r#"{"STATUS":500}"#), ServerError(500));
    assert_eq!(
        v(r#"{"a":[1,{"status":200}],"b":"x\"y","status":503}"#),
        ServerError(503)
    );
    // broken JSON falls back to the text rules
    assert_eq!(v(r#"{"status":502,"msg":"cut"#), ServerError(502));
    assert_eq!(
        classify_with_source(br#"{"status": "200" , "x":1"#),
        (NotServerError(200), Source::KeyValue)
    );
}

#[test]
fn key_value_fields() {
    use Verdict::*;
    assert_eq!(
        v("level=error status=502 path=/a rt=0.512"),
        ServerError(502)
    );
    assert_eq!(v("method=GET http_status=\"503\""), ServerError(503));
    assert_eq!(
        v("status=200 rt=0.512 upstream_status=502"),
        NotServerError(200)
    );
    assert_eq!(v("upstream_status=502 bytes=10"), NoStatus);
    assert_eq!(v("http.status_code=500"), ServerError(500));
    assert_eq!(v("Status=504"), ServerError(504));
    assert_eq!(v("status=ok"), NoStatus);
}

/// The corpus written by `tests/corpus/generate.py`: hundreds of lines of every format,
/// each with the classification it must get.
const CORPUS: &str = include_str!("../../tests/corpus/http-status.jsonl");
const SNIPPET: &str = include_str!("../../syslog-ng/fasttrack.conf");

struct Case {
    format: String,
    expect: String,
    status: Option<u16>,
    line: String,
}

fn corpus() -> Vec<Case> {
    CORPUS
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("corpus line is JSON");
            Case {
                format: v["format"].as_str().unwrap().to_string(),
                expect: v["expect"].as_str().unwrap().to_string(),
                status: v["status"].as_u64().map(|n| n as u16),
                line: v["line"].as_str().unwrap().to_string(),
            }
        })
        .collect()
}

/// The regex of the shipped snippet's f_5xxERR-hook.
fn snippet_filter() -> String {
    let def = SNIPPET
        .lines()
        .find(|l| l.starts_with("filter f_5xxERR-hook"))
        .expect("the snippet defines f_5xxERR-hook");
    let start = def.find("message('").expect("a message('...') filter") + 9;
    let end = def[start..].find("')").expect("closed") + start;
    def[start..end].to_string()
}

#[test]
fn the_snippet_and_the_default_match_are_the_same_rule() {
    assert_eq!(snippet_filter(), crate::digest::DEFAULT_MATCH);
}

#[test]
fn every_corpus_line_gets_its_classification_with_or_without_a_syslog_header() {
    let cases = corpus();
    assert!(cases.len() >= 300, "{} lines", cases.len());
    let mut wrong = Vec::new();
    for c in &cases {
        let want = match (c.expect.as_str(), c.status) {
            ("5xx", Some(s)) => Verdict::ServerError(s),
            ("other", Some(s)) => Verdict::NotServerError(s),
            _ => Verdict::NoStatus,
        };
        for line in [
            c.line.clone(),
            format!("Nov 22 04:26:15 web1 docker/shop-api[812]: {}", c.line),
            format!(
                "2026-11-22T04:26:15+00:00 web1 docker/shop-api[812]: {}\r",
                c.line
            ),
        ] {
            let got = classify(line.as_bytes());
            if got != want {
                wrong.push(format!("{} {want:?} got {got:?}: {line}", c.format));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// True and false positives and negatives of the article's rule, the shipped filter and
/// the filter followed by the classifier (`cargo test corpus_counts -- --nocapture`).
#[test]
fn corpus_counts_of_the_article_rule_the_filter_and_the_classifier() {
    let article = regex::bytes::Regex::new(crate::digest::ARTICLE_MATCH).unwrap();
    let filter = regex::bytes::Regex::new(&snippet_filter()).unwrap();
    #[derive(Default, Debug, PartialEq)]
    struct Counts {
        tp: u32,
        fp: u32,
        fn_: u32,
        tn: u32,
        no_status_selected: u32,
    }
    let mut counts: [Counts; 3] = Default::default();
    for c in corpus() {
        let line = c.line.as_bytes();
        let by_filter = filter.is_match(line);
        let selected = [
            article.is_match(line),
            by_filter,
            by_filter && classify(line).is_incident(),
        ];
        for (n, &sel) in counts.iter_mut().zip(&selected) {
            match (c.expect.as_str(), sel) {
                ("5xx", true) => n.tp += 1,
                ("5xx", false) => n.fn_ += 1,
                ("other", true) => n.fp += 1,
                ("other", false) => n.tn += 1,
                (_, true) => n.no_status_selected += 1,
                _ => {}
            }
        }
    }
    for (name, n) in ["article's rule", "shipped filter", "filter + classifier"]
        .iter()
        .zip(&counts)
    {
        println!(
            "{name:<20} true pos {:>3}  false pos {:>3}  false neg {:>3}  true neg {:>3}  no-status lines selected {:>2}",
            n.tp, n.fp, n.fn_, n.tn, n.no_status_selected
        );
    }
    let [article, filter, classifier] = counts;
    assert_eq!(filter.fn_, 0, "the shipped filter misses a 5xx line");
    assert!(filter.tp >= article.tp);
    assert!(
        article.fp > 0 && filter.fp * 3 <= article.fp,
        "far fewer false positives: {} vs {}",
        filter.fp,
        article.fp
    );
    assert_eq!((classifier.fp, classifier.fn_), (0, 0));
}

fn steps_of(line: &[u8]) -> u64 {
    steps::COUNT.with(|c| c.set(0));
    let _ = classify(line);
    steps::COUNT.with(|c| c.get())
}

/// Work per byte stays bounded: a scan that went back over the line for every candidate
/// would be quadratic, and these lines would show it.
const STEPS_PER_BYTE: u64 = 80;

#[test]
fn pathological_lines_stay_linear() {
    for unit in [
        &b"HTTP/1.1\" "[..],
        b"HTTP/",
        b"{\"a\":",
        b"[",
        b"{\"status\":{\"status\":",
        b"\"",
        b"\\\"",
        b"1/2/3/4/",
        b"123456789012/",
        b"/",
        b"status=",
        b"xstatus",
        b" status_code=\"",
        b"tatus",
    ] {
        for reps in [10, 1000, 20_000] {
            let line = unit.repeat(reps);
            let steps = steps_of(&line);
            assert!(
                steps <= STEPS_PER_BYTE * (line.len() as u64 + 1),
                "{} steps for {} bytes of {:?}",
                steps,
                line.len(),
                String::from_utf8_lossy(unit)
            );
        }
    }
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn corpus_lines() -> Vec<Vec<u8>> {
        corpus().into_iter().map(|c| c.line.into_bytes()).collect()
    }

    /// A corpus line with bytes replaced, inserted, removed and runs repeated.
    fn mutated() -> impl Strategy<Value = Vec<u8>> {
        let lines = corpus_lines();
        (
            0..lines.len(),
            proptest::collection::vec((any::<u16>(), 0u8..4, any::<u8>(), 1usize..200), 0..8),
        )
            .prop_map(move |(i, edits)| {
                let mut l = lines[i].clone();
                for (at, kind, byte, reps) in edits {
                    let at = usize::from(at) % (l.len() + 1);
                    match kind {
                        0 if at < l.len() => l[at] = byte,
                        1 => l.insert(at, byte),
                        2 if at < l.len() => {
                            l.remove(at);
                        }
                        _ => {
                            let end = (at + 12).min(l.len());
                            let piece = l[at..end].to_vec();
                            for _ in 0..reps {
                                l.splice(at..at, piece.iter().copied());
                            }
                        }
                    }
                }
                l
            })
    }

    fn check(line: &[u8]) -> Result<(), TestCaseError> {
        let steps = steps_of(line);
        prop_assert!(
            steps <= STEPS_PER_BYTE * (line.len() as u64 + 1),
            "{} steps for {} bytes",
            steps,
            line.len()
        );
        // The digest's parser and grouping take the same line without panicking.
        let text = String::from_utf8_lossy(line);
        let mut b = crate::digest::Builder::new("file");
        b.add(&text, chrono::Utc::now());
        let _ = crate::digest::parse_line(&text, chrono::Utc::now());
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn arbitrary_bytes_never_panic_and_stay_linear(line in proptest::collection::vec(any::<u8>(), 0..3000)) {
            check(&line)?;
        }

        #[test]
        fn mutated_corpus_lines_never_panic_and_stay_linear(line in mutated()) {
            check(&line)?;
        }
    }
}
