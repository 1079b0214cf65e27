//! fasttrack's integration tests: one binary (`autotests = false`), real syslog-ng, the real
//! `fasttrack` executable, temp dirs killed and removed on drop.

mod util;

mod check;
mod cli;
mod corruption;
mod crash;
mod faults;
mod incident;
mod metrics;
mod modes;
mod recovery;
mod reliability;
mod report;
mod s3;
mod signal;
mod status_json;
mod syslog;
