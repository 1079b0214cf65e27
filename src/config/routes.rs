//! Notification routes: `[[route]]` tables of the config file, each a webhook with filters on
//! the incident's lines (programs, hosts, statuses, a regex on the message), a minimum of
//! lines, `only-new`, and its throttling interval. `--notify URL` is the one-route shorthand
//! (route `notify`, no filters). Validated once at start, with errors that name the route.

use super::choices::NotifyFormat;
use super::config_error;
use super::values::{Invalid, NotifyInterval, WebhookUrl};
use serde::Deserialize;
use std::time::Duration;

/// The name of the route `--notify` makes.
pub const NOTIFY_ROUTE: &str = "notify";

/// At most one message per route per this long, unless the route says otherwise.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// A `[[route]]` table as written in the file.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct RouteFile {
    pub name: Option<String>,
    pub url: Option<String>,
    pub format: Option<String>,
    pub programs: Vec<String>,
    pub hosts: Vec<String>,
    pub statuses: Vec<String>,
    #[serde(rename = "match")]
    pub match_: Option<String>,
    pub min_lines: Option<u64>,
    pub interval: Option<String>,
    pub only_new: bool,
}

/// Which lines of an incident a route wants. Empty lists want everything.
#[derive(Debug, Clone, Default)]
pub struct LineFilter {
    /// Globs on the syslog program (`docker/shop-*`).
    pub programs: Vec<glob::Pattern>,
    /// Globs on the host of the line.
    pub hosts: Vec<glob::Pattern>,
    /// Globs on the status (`502`, `50?`).
    pub statuses: Vec<glob::Pattern>,
    /// A regex on the message.
    pub matches: Option<regex::Regex>,
}

impl LineFilter {
    /// Whether it wants every line (then the incident's own digest is the route's).
    pub fn is_empty(&self) -> bool {
        self.programs.is_empty()
            && self.hosts.is_empty()
            && self.statuses.is_empty()
            && self.matches.is_none()
    }

    /// Whether a line with these fields passes.
    pub fn passes(&self, host: &str, program: &str, status: &str, message: &str) -> bool {
        let any = |globs: &[glob::Pattern], value: &str| {
            globs.is_empty() || globs.iter().any(|g| g.matches(value))
        };
        any(&self.programs, program)
            && any(&self.hosts, host)
            && any(&self.statuses, status)
            && self.matches.as_ref().map_or(true, |r| r.is_match(message))
    }
}

/// A validated route.
#[derive(Debug, Clone)]
pub struct Route {
    pub name: String,
    /// The webhook; a secret (Slack's carry their token): only its host is ever logged.
    pub url: String,
    pub format: NotifyFormat,
    pub filter: LineFilter,
    /// Incidents with fewer of the route's lines are not sent to it.
    pub min_lines: u64,
    /// Only incidents with a message never seen before.
    pub only_new: bool,
    /// At most one message per this long; incidents in between are folded into the next.
    pub interval: Duration,
}

impl Route {
    /// `https://hooks.slack.com/...` -> `https://hooks.slack.com`: what logs may show.
    pub fn redacted_url(&self) -> String {
        super::redact_url(&self.url)
    }

    /// The route `--notify` makes: every incident, `--notify-interval`.
    pub fn shorthand(url: String, format: NotifyFormat, interval: Duration) -> Route {
        Route {
            name: NOTIFY_ROUTE.to_string(),
            url,
            format,
            filter: LineFilter::default(),
            min_lines: 1,
            only_new: false,
            interval,
        }
    }
}

/// Validates the file's routes; `index` counts from 1 in errors, which name the route.
pub fn validate(file: &[RouteFile], shorthand: Option<&Route>) -> anyhow::Result<Vec<Route>> {
    let mut routes: Vec<Route> = shorthand.into_iter().cloned().collect();
    for (i, raw) in file.iter().enumerate() {
        let route = validate_one(i + 1, raw)?;
        if routes.iter().any(|r| r.name == route.name) {
            return Err(config_error(format!(
                "config file [[route]] #{} has the name {:?} of another route{}; give each route its own name",
                i + 1,
                route.name,
                if route.name == NOTIFY_ROUTE { " (notify is the route --notify makes)" } else { "" }
            )));
        }
        routes.push(route);
    }
    Ok(routes)
}

fn validate_one(index: usize, raw: &RouteFile) -> anyhow::Result<Route> {
    let name = raw.name.clone().unwrap_or_else(|| format!("route-{index}"));
    let what = format!("config file [[route]] #{index} ({name:?})");
    let bad = |key: &str, value: &str, why: String| {
        config_error(format!(
            "{what}: {key} {value:?} {why}; fix it in the config file"
        ))
    };
    let invalid = |key: &str, e: Invalid| {
        config_error(format!("{what}: {}; fix it in the config file", e.at(key)))
    };
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(bad(
            "name",
            &name,
            "is not made of letters, digits, - and _".into(),
        ));
    }
    let url = match &raw.url {
        None => {
            return Err(config_error(format!(
                "{what}: no url; give the webhook's URL (url = \"https://...\")"
            )))
        }
        Some(u) => u.parse::<WebhookUrl>().map_err(|e| invalid("url", e))?.0,
    };
    let format = match &raw.format {
        None => NotifyFormat::Slack,
        Some(f) => f.parse().map_err(|e| invalid("format", e))?,
    };
    let globs = |key: &str, values: &[String]| -> anyhow::Result<Vec<glob::Pattern>> {
        values
            .iter()
            .map(|v| {
                glob::Pattern::new(v).map_err(|e| bad(key, v, format!("is not a valid glob ({e})")))
            })
            .collect()
    };
    let matches = match &raw.match_ {
        None => None,
        Some(m) => Some(regex::Regex::new(m).map_err(|e| {
            bad(
                "match",
                m,
                format!("is not a valid regular expression: {e}"),
            )
        })?),
    };
    let interval = match &raw.interval {
        None => DEFAULT_INTERVAL,
        Some(text) => {
            text.parse::<NotifyInterval>()
                .map_err(|e| invalid("interval", e))?
                .0
        }
    };
    let min_lines = match raw.min_lines {
        Some(0) => return Err(bad("min-lines", "0", "is not at least 1".into())),
        Some(n) => n,
        None => 1,
    };
    Ok(Route {
        name,
        url,
        format,
        filter: LineFilter {
            programs: globs("programs", &raw.programs)?,
            hosts: globs("hosts", &raw.hosts)?,
            statuses: globs("statuses", &raw.statuses)?,
            matches,
        },
        min_lines,
        only_new: raw.only_new,
        interval,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> Vec<RouteFile> {
        #[derive(Deserialize)]
        struct F {
            route: Vec<RouteFile>,
        }
        toml::from_str::<F>(text).unwrap().route
    }

    #[test]
    fn routes_are_validated_with_errors_that_name_them() {
        let routes = validate(
            &file(
                "[[route]]\nname = \"shop\"\nurl = \"https://hooks.example/T/1\"\nprograms = [\"docker/shop-*\"]\n\
                 statuses = [\"50?\"]\nmin-lines = 5\ninterval = \"1m\"\nonly-new = true\n\
                 [[route]]\nurl = \"http://127.0.0.1:9/x\"\nformat = \"json\"\nmatch = \"timeout\"\ninterval = \"0s\"\n",
            ),
            None,
        )
        .unwrap();
        assert_eq!(routes.len(), 2);
        assert_eq!(routes[0].name, "shop");
        assert_eq!(routes[0].interval, Duration::from_secs(60));
        assert!(routes[0].only_new && routes[0].min_lines == 5);
        assert!(routes[0]
            .filter
            .passes("web1", "docker/shop-web", "502", "x"));
        assert!(!routes[0].filter.passes("web1", "docker/blog", "502", "x"));
        assert!(!routes[0]
            .filter
            .passes("web1", "docker/shop-web", "510", "x"));
        assert_eq!(routes[1].name, "route-2");
        assert_eq!(routes[1].format, NotifyFormat::Json);
        assert_eq!(routes[1].interval, Duration::ZERO);
        assert!(routes[1].filter.passes("h", "p", "500", "upstream timeout"));
        assert!(!routes[1].filter.passes("h", "p", "500", "refused"));

        for (text, expected) in [
            ("[[route]]\nname = \"a\"\n", "[[route]] #1 (\"a\"): no url"),
            (
                "[[route]]\nurl = \"ftp://x\"\n",
                "url is not an http:// or https:// URL",
            ),
            (
                "[[route]]\nurl = \"http://x/\"\nprograms = [\"[\"]\n",
                "programs \"[\" is not a valid glob",
            ),
            (
                "[[route]]\nurl = \"http://x/\"\nmatch = \"(\"\n",
                "match \"(\" is not a valid regular expression",
            ),
            (
                "[[route]]\nurl = \"http://x/\"\ninterval = \"soon\"\n",
                "interval \"soon\"",
            ),
            (
                "[[route]]\nurl = \"http://x/\"\nmin-lines = 0\n",
                "min-lines \"0\" is not at least 1",
            ),
            (
                "[[route]]\nurl = \"http://x/\"\nformat = \"xml\"\n",
                "format \"xml\"",
            ),
            (
                "[[route]]\nname = \"a b\"\nurl = \"http://x/\"\n",
                "name \"a b\" is not made of",
            ),
        ] {
            let e = validate(&file(text), None).unwrap_err().to_string();
            assert!(e.contains(expected), "{text}: {e}");
        }
        let shorthand = Route::shorthand("http://x/".into(), NotifyFormat::Slack, DEFAULT_INTERVAL);
        let e = validate(
            &file("[[route]]\nname = \"notify\"\nurl = \"http://y/\"\n"),
            Some(&shorthand),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("the name \"notify\" of another route (notify is the route --notify makes)"),
            "{e}"
        );
    }

    #[test]
    fn unknown_keys_in_a_route_are_refused() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct F {
            route: Vec<RouteFile>,
        }
        let e =
            toml::from_str::<F>("[[route]]\nurl = \"http://x/\"\nprogram = [\"a\"]\n").unwrap_err();
        assert!(e.to_string().contains("unknown field `program`"), "{e}");
    }
}
