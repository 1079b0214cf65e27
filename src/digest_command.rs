//! `fasttrack digest FILE...`: the incident digest of any log, plain or gzipped, local or
//! `s3://BUCKET/KEY`, as text or (`--json`) as the JSON written next to rotated logs. A file
//! that cannot be read is reported and the others are still digested; the exit code says so.

use crate::cli::DigestArgs;
use crate::config::Config;
use crate::digest::scan::{scan_path, scan_written};
use crate::digest::{render_text, Builder};
use crate::exit::Outcome;
use crate::output::{eprint, stdout_error};
use anyhow::{anyhow, Context, Result};
use std::io::Write;
use std::path::Path;

pub fn run(config: &Config, args: &DigestArgs) -> Result<Outcome> {
    let mut failed = 0;
    let stdout = std::io::stdout();
    for (i, file) in args.files.iter().enumerate() {
        match digest_one(config, file) {
            Ok(builder) => {
                let mut d = builder.digest(&config.host, config.incident.top);
                d.log = Some(file.clone());
                let mut out = stdout.lock();
                let text = if args.json {
                    serde_json::to_string_pretty(&d).context("cannot serialise the digest")? + "\n"
                } else {
                    let sep = if i > 0 { "\n" } else { "" };
                    format!("{sep}{}", render_text(&d, file))
                };
                // A reader that went away (`| head`) ends the command quietly (src/output.rs).
                out.write_all(text.as_bytes())
                    .and_then(|()| out.flush())
                    .map_err(stdout_error)?;
            }
            Err(e) => {
                eprint(format_args!("fasttrack: {file}: {e:#}\n"));
                failed += 1;
            }
        }
    }
    if failed > 0 {
        return Err(anyhow!(
            "{failed} of {} file(s) could not be digested",
            args.files.len()
        ));
    }
    Ok(Outcome::Done)
}

fn digest_one(config: &Config, file: &str) -> Result<Builder> {
    let Some(rest) = file.strip_prefix("s3://") else {
        let path = Path::new(file);
        if path.is_dir() {
            return Err(anyhow!("is a directory; name the log files in it"));
        }
        return scan_path(path, &config.incident);
    };
    let (bucket, key) = rest
        .split_once('/')
        .filter(|(b, k)| !b.is_empty() && !k.is_empty())
        .ok_or_else(|| anyhow!("an S3 log is named s3://BUCKET/KEY"))?;
    let store = crate::dest::s3::S3Dest::new(bucket, &config.s3, &config.state_dir)?;
    scan_written(&config.incident, |sink| {
        store.read_object(key, sink).map(|_| ())
    })
    .with_context(|| format!("cannot digest {file}"))
}
