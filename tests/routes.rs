//! Notification routes and throttling (issue 15): each team's webhook hears only of its own
//! lines; a flapping service posts one message per interval, the incidents in between folded
//! into the next message and none lost, across a restart of `watch`; a 429's `Retry-After`
//! is waited for. A real syslog-ng feeding `watch`, webhook receivers on loopback.

use crate::util::webhook::{Answer, Webhook};
use crate::util::*;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(60);

/// A 5xx line of `program`, with a sequence number.
fn line(program: &str, path: &str, status: u16, seq: u64) -> String {
    format!(
        "<14>Nov 21 12:00:{:02} {program}[42]: 10.0.0.{} - - \"GET {path} HTTP/1.1\" {status} 17 seq={seq}\n",
        seq % 60,
        seq % 200
    )
}

fn routes_file(env: &TestEnv, routes: &str) {
    std::fs::write(env.config_file(), routes).unwrap();
}

#[test]
fn each_team_hears_only_of_its_own_lines() {
    let env = TestEnv::new();
    let (shop, blog, all) = (
        Webhook::start(Answer::Ok),
        Webhook::start(Answer::Ok),
        Webhook::start(Answer::Ok),
    );
    routes_file(
        &env,
        &format!(
            "[[route]]\nname = \"shop\"\nurl = \"{}\"\nformat = \"json\"\nprograms = [\"docker/shop-*\"]\n\
             [[route]]\nname = \"blog\"\nurl = \"{}\"\nformat = \"json\"\nprograms = [\"docker/blog\"]\nmin-lines = 5\n\
             [[route]]\nname = \"payments-503\"\nurl = \"{}\"\nformat = \"json\"\nstatuses = [\"503\"]\nmatch = \"/pay\"\n",
            shop.url(),
            blog.url(),
            all.url()
        ),
    );
    let mut sng = SyslogNg::start(&env, Some(&["--quiet", "500ms"]));
    let mut seq = 0;
    let mut send = |sng: &mut SyslogNg, program: &str, path: &str, status: u16, n: u64| {
        for _ in 0..n {
            sng.send(&line(program, path, status, seq));
            seq += 1;
        }
    };
    send(&mut sng, "docker/shop-web", "/cart", 502, 7);
    send(&mut sng, "docker/shop-api", "/pay", 503, 3);
    send(&mut sng, "docker/blog", "/post", 500, 2);
    send(&mut sng, "docker/blog", "/", 200, 4);
    env.wait_for("the incident to be told", WAIT, || {
        shop.accepted_json().len() == 1 && all.accepted_json().len() == 1
    });
    env.wait_for("fasttrack to be idle with nothing queued", WAIT, || {
        notify_queue(&env).is_empty()
    });

    let shop_msg = &shop.accepted_json()[0];
    assert_eq!(shop_msg["digest"]["lines"], 10, "{shop_msg}");
    assert_eq!(shop_msg["digest"]["statuses"]["502"], 7, "{shop_msg}");
    assert_eq!(shop_msg["digest"]["statuses"]["503"], 3, "{shop_msg}");
    assert!(
        shop_msg["digest"]["statuses"].get("500").is_none(),
        "{shop_msg}"
    );
    let programs: Vec<&str> = shop_msg["digest"]["programs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["key"].as_str().unwrap())
        .collect();
    assert!(!programs.contains(&"docker/blog"), "{programs:?}");

    let pay = &all.accepted_json()[0];
    assert_eq!(pay["digest"]["lines"], 3, "{pay}");
    assert_eq!(pay["digest"]["statuses"]["503"], 3, "{pay}");

    // The blog had 2 lines of the incident, fewer than its min-lines: not told.
    assert_eq!(blog.received(), 0, "{}", env.dump());
    // All three are told of the same shipped object.
    assert_eq!(shop_msg["object"]["key"], pay["object"]["key"]);
    drop(sng);
}

/// The notification jobs waiting in the state dir.
fn notify_queue(env: &TestEnv) -> Vec<String> {
    std::fs::read_dir(env.state().join("notify"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect()
}

#[test]
fn a_flapping_service_posts_once_per_interval_and_folds_the_rest_across_a_restart() {
    let env = TestEnv::new();
    let hook = Webhook::start(Answer::Ok);
    let interval = Duration::from_secs(20);
    routes_file(
        &env,
        &format!(
            "[[route]]\nname = \"flappy\"\nurl = \"{}\"\nformat = \"json\"\ninterval = \"20s\"\n",
            hook.url()
        ),
    );
    let mut sng = SyslogNg::start(&env, Some(&["--quiet", "500ms"]));
    let mut seq = 0;
    let incidents = 4;
    for i in 0..incidents {
        for _ in 0..3 {
            sng.send(&line("docker/flappy", "/x", 502, seq));
            seq += 1;
        }
        env.wait_for("the incident to be shipped", WAIT, || {
            env.shipped()
                .iter()
                .filter(|o| o.name.ends_with(".gz"))
                .count()
                == i + 1
        });
        if i == 1 {
            // syslog-ng restarts `watch` on a reload: the fold waiting survives it.
            sng.ctl(&env, &["reload"]);
        }
    }
    env.wait_for("every incident to be told", Duration::from_secs(90), || {
        told(&hook.accepted_json()) == incidents
    });
    let messages = hook.accepted_json();
    let at = hook.accepted_at.lock().unwrap().clone();
    assert!(messages.len() < incidents, "folded: {messages:#?}");
    for pair in at.windows(2) {
        assert!(
            pair[1] - pair[0] >= interval - Duration::from_millis(1500),
            "two messages less than the interval apart: {:?}",
            pair[1] - pair[0]
        );
    }
    let folded = messages
        .iter()
        .find(|m| m.get("folded").is_some())
        .expect("a folded message");
    assert_eq!(
        folded["incidents"].as_u64().unwrap() as usize,
        folded["folded"].as_array().unwrap().len() + 1
    );
    // Each shipped log is told exactly once.
    let mut logs: Vec<String> = messages
        .iter()
        .flat_map(|m| {
            let mut names = vec![m["log"].as_str().unwrap().to_string()];
            if let Some(f) = m["folded"].as_array() {
                names.extend(f.iter().map(|x| x["log"].as_str().unwrap().to_string()));
            }
            names
        })
        .collect();
    logs.sort();
    let mut shipped: Vec<String> = env
        .shipped()
        .into_iter()
        .map(|o| o.name)
        .filter(|n| n.ends_with(".gz"))
        .collect();
    shipped.sort();
    assert_eq!(logs, shipped);
    drop(sng);
}

/// How many incidents `messages` tell of, folds included.
fn told(messages: &[serde_json::Value]) -> usize {
    messages
        .iter()
        .map(|m| m["incidents"].as_u64().unwrap_or(1) as usize)
        .sum()
}

#[test]
fn a_429_is_waited_for_as_retry_after_says() {
    let env = TestEnv::new();
    let hook = Webhook::start(Answer::TooMany { n: 1, secs: 3 });
    env.set_notify(&hook.url(), "notify-interval = \"0s\"\n");
    std::fs::write(env.log(), line("docker/api", "/a", 502, 0)).unwrap();
    let asked = Instant::now();
    env.cmd("rotate", &["--reopen", "none"])
        .status(0)
        .stderr_has("notification pending: route notify: HTTP 429")
        .run_in(&env);
    assert_eq!(hook.received(), 1);
    assert_eq!(notify_queue(&env).len(), 1, "kept for later");
    let throttle: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.state().join("notify-throttle.json")).unwrap())
            .unwrap();
    assert!(
        throttle["routes"]["notify"]["not_before"].as_u64().unwrap() > 0,
        "{throttle}"
    );

    // Until Retry-After has passed, nothing is posted; then the message goes.
    env.wait_for(
        "the notification after Retry-After",
        Duration::from_secs(30),
        || {
            env.cmd("upload", &["--reopen", "none"]).status(0).run();
            hook.received() == 2
        },
    );
    assert!(
        asked.elapsed() >= Duration::from_secs(2),
        "posted before Retry-After"
    );
    assert_eq!(hook.accepted_json().len(), 1);
    assert!(notify_queue(&env).is_empty());
}

#[test]
fn an_only_new_route_hears_only_of_incidents_with_a_message_never_seen() {
    let env = TestEnv::new();
    let (fresh, every) = (Webhook::start(Answer::Ok), Webhook::start(Answer::Ok));
    routes_file(
        &env,
        &format!(
            "[[route]]\nname = \"fresh\"\nurl = \"{}\"\nformat = \"json\"\nonly-new = true\ninterval = \"0s\"\n\
             [[route]]\nname = \"every\"\nurl = \"{}\"\nformat = \"json\"\ninterval = \"0s\"\n",
            fresh.url(),
            every.url()
        ),
    );
    let mut seq = 0;
    for path in ["/orders", "/orders", "/stock"] {
        let text: String = (0..3)
            .map(|_| {
                seq += 1;
                line("docker/shop", path, 502, seq)
            })
            .collect();
        std::fs::write(env.log(), text).unwrap();
        env.cmd("rotate", &["--reopen", "none"])
            .status(0)
            .run_in(&env);
    }
    assert_eq!(every.accepted_json().len(), 3, "{}", env.dump());
    let told: Vec<String> = fresh
        .accepted_json()
        .iter()
        .map(|m| {
            m["digest"]["messages"][0]["template"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        told,
        ["GET /orders 502", "GET /stock 502"],
        "the second /orders incident is known"
    );
}
