//! Presigned download links that say truly until when they work (issue 15).
//!
//! S3 refuses a presigned URL once the credentials that signed it have expired, whatever its
//! `X-Amz-Expires` says: a link signed with an instance role's or an SSO session's temporary
//! credentials dies when they do, hours after it was sent rather than the 7 days it claimed.
//! So each link is signed with credentials resolved for it, whose expiry is known, and lasts
//! the earlier of `--notify-link-expiry` and that expiry ([`validity`]); the notification
//! says which and why. `--link-profile` names an AWS profile used only to sign links (a
//! dedicated IAM user's long-lived keys, README "Honest links"): its credentials are resolved
//! once at start, so a profile that does not exist or gives no credentials is a
//! configuration error then, not a link missing from some later notification.

use super::S3Dest;
use crate::config::{ConfigError, LinkProfile, S3Options};
use crate::dest::Link;
use crate::naming::ObjectKey;
use anyhow::{anyhow, Result};
use aws_config::profile::ProfileFileCredentialsProvider;
use aws_config::provider_config::ProviderConfig;
use aws_sdk_s3::config::{ProvideCredentials, Region, SharedCredentialsProvider};
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::presigning::PresigningConfig;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The credentials that sign links when they are not the shipping ones.
pub(super) struct LinkSigner {
    provider: SharedCredentialsProvider,
    profile: String,
}

/// How long a link lasts, from when, and whether its credentials cut it short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    pub from: SystemTime,
    pub lasts: Duration,
    pub cut_by_credentials: bool,
}

impl Validity {
    pub fn until(&self) -> SystemTime {
        self.from + self.lasts
    }
}

/// A link signed at `now` (whole seconds: what the signature records) for `asked`, with
/// credentials that expire at `credentials_expire` (`None`: long-lived keys).
pub fn validity(
    now: SystemTime,
    asked: Duration,
    credentials_expire: Option<SystemTime>,
) -> Validity {
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let from = UNIX_EPOCH + Duration::from_secs(secs);
    match credentials_expire {
        Some(expire) if expire < from + asked => Validity {
            from,
            lasts: expire.duration_since(from).unwrap_or_default(),
            cut_by_credentials: true,
        },
        _ => Validity {
            from,
            lasts: asked,
            cut_by_credentials: false,
        },
    }
}

impl S3Dest {
    /// Signs links with `profile`'s credentials instead of the shipping ones; they must
    /// resolve now (a [`ConfigError`] names the profile and the files it was looked up in).
    pub fn sign_links_with(&mut self, profile: &LinkProfile) -> Result<()> {
        // An HTTP client for the profiles that need one (a role to assume, SSO).
        let config = ProviderConfig::without_region()
            .with_http_client(super::https_client(&self.opts)?)
            .with_region(Some(Region::new(self.region.clone())));
        let mut builder = ProfileFileCredentialsProvider::builder()
            .configure(&config)
            .profile_name(&profile.name);
        if let Some(files) = super::profile_files(&self.opts) {
            builder = builder.profile_files(files);
        }
        let provider = builder.build();
        if let Err(e) = self.rt.block_on(provider.provide_credentials()) {
            return Err(ConfigError(format!(
                "{} {:?}: no credentials from this profile of {} ({}); define the profile \
                 (README, \"Honest links\") or fix {}",
                profile.origin,
                profile.name,
                profile_files_named(&self.opts),
                DisplayErrorContext(&e),
                profile.origin
            ))
            .into());
        }
        self.link_signer = Some(LinkSigner {
            provider: SharedCredentialsProvider::new(provider),
            profile: profile.name.clone(),
        });
        Ok(())
    }

    /// A presigned GET of `key` for `asked`, or less if its credentials expire sooner.
    pub(super) async fn presign(&self, key: &ObjectKey, asked: Duration) -> Result<Link> {
        let (provider, whose) = match (&self.link_signer, &self.credentials) {
            (Some(s), _) => (&s.provider, format!("link-profile {:?}", s.profile)),
            (None, Some(p)) => (p, "the shipping credentials".to_string()),
            (None, None) => return Err(anyhow!("no AWS credentials to sign a link with")),
        };
        let credentials = provider.provide_credentials().await.map_err(|e| {
            anyhow!(
                "cannot get credentials ({whose}) to sign a link to {}: {}",
                self.url(key.as_str()),
                DisplayErrorContext(&e)
            )
        })?;
        let v = validity(SystemTime::now(), asked, credentials.expiry());
        let presigning = PresigningConfig::builder()
            .start_time(v.from)
            .expires_in(v.lasts)
            .build()
            .map_err(|e| {
                anyhow!(
                    "cannot presign a link valid for {:?} (the credentials that sign it \
                     expire at {}): {e}",
                    v.lasts,
                    credentials.expiry().map_or("-".into(), rfc3339)
                )
            })?;
        // Exactly these credentials sign: their expiry is the one the link is given.
        let conf = self
            .client
            .config()
            .to_builder()
            .credentials_provider(credentials)
            .build();
        let request = aws_sdk_s3::Client::from_conf(conf)
            .get_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .presigned(presigning)
            .await
            .map_err(|e| {
                anyhow!(
                    "cannot presign a link to {}: {}",
                    self.url(key.as_str()),
                    DisplayErrorContext(&e)
                )
            })?;
        let until = rfc3339(v.until());
        Ok(Link {
            url: request.uri().to_string(),
            credentials_expire: v.cut_by_credentials.then(|| until.clone()),
            expires: Some(until),
        })
    }
}

/// RFC 3339 in whole seconds, UTC, as notifications show times.
fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The shared files a profile is looked up in, for messages: the explicit ones, else the
/// SDK's defaults (its `AWS_CONFIG_FILE` and `AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws`).
fn profile_files_named(opts: &S3Options) -> String {
    let named = |explicit: &Option<std::path::PathBuf>, var: &str, default: &str| {
        explicit
            .as_ref()
            .map(|p| p.display().to_string())
            .or_else(|| std::env::var(var).ok())
            .unwrap_or_else(|| default.to_string())
    };
    format!(
        "{} and {}",
        named(&opts.aws_config_file, "AWS_CONFIG_FILE", "~/.aws/config"),
        named(
            &opts.aws_credentials_file,
            "AWS_SHARED_CREDENTIALS_FILE",
            "~/.aws/credentials"
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);
    const WEEK: Duration = Duration::from_secs(7 * 24 * 3600);

    fn at(secs: u64, nanos: u32) -> SystemTime {
        UNIX_EPOCH + Duration::new(secs, nanos)
    }

    #[test]
    fn a_link_lasts_as_asked_unless_its_credentials_expire_first() {
        let now = at(1_800_000_000, 400_000_000);
        // Long-lived keys: as asked, from the whole second the signature records.
        let v = validity(now, WEEK, None);
        assert_eq!(
            (v.from, v.lasts, v.cut_by_credentials),
            (at(1_800_000_000, 0), WEEK, false)
        );
        assert_eq!(v.until(), at(1_800_000_000, 0) + WEEK);
        // Temporary credentials with 2 hours left: 2 hours, and why.
        let expire = at(1_800_000_000 + 2 * 3600, 0);
        let v = validity(now, WEEK, Some(expire));
        assert_eq!((v.until(), v.cut_by_credentials), (expire, true));
        assert_eq!(v.lasts, 2 * HOUR);
        // Credentials outliving the link: as asked.
        let v = validity(now, HOUR, Some(expire));
        assert_eq!((v.lasts, v.cut_by_credentials), (HOUR, false));
        // Already expired: a link of no duration, which presigning refuses (no link is sent).
        let v = validity(now, HOUR, Some(at(1_700_000_000, 0)));
        assert_eq!((v.lasts, v.cut_by_credentials), (Duration::ZERO, true));
    }
}
