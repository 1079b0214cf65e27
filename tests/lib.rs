//! fasttrack's integration tests: one binary (`autotests = false`), real syslog-ng, the real
//! `fasttrack` executable, temp dirs killed and removed on drop.

mod util;

mod check;
mod cli;
mod corruption;
mod crash;
mod docker;
mod enterprise;
mod faults;
mod incident;
mod known;
mod metrics;
mod modes;
mod progress;
mod recovery;
mod reliability;
mod report;
mod routes;
mod s3;
mod signal;
mod status_json;
mod stream;
mod syslog;
