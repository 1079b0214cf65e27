//! The kernel's SELinux interfaces `check` reads, and nothing else: where selinuxfs is
//! mounted (/proc/mounts), whether it enforces (`enforce`), a file's label (the
//! `security.selinux` extended attribute, read with lgetxattr so a symlink is not followed),
//! and the kernel's access decision for a (source, target, class) triple, asked through
//! selinuxfs's `access` file — the interface libselinux's `security_compute_av` uses: write
//! "SCONTEXT TCONTEXT CLASS-NUMBER", read back "ALLOWED DECIDED AUDITALLOW AUDITDENY SEQNO
//! FLAGS" in hex, where bit N-1 of ALLOWED is the permission numbered N in
//! `class/CLASS/perms/PERM`. The decisions are turned into verdicts by the pure code in
//! `selinux.rs`.

use super::selinux::{self, AccessError, Kernel, Mode};
use crate::config::Config;
use crate::dest::CheckItem;
use crate::reopen::Reopener;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The SELinux lines of `check` for this host and configuration.
pub fn items(config: &Config) -> Vec<CheckItem> {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let fs = SelinuxFs {
        root: selinux::selinuxfs_mount(&mounts).unwrap_or_default(),
    };
    if fs.root.as_os_str().is_empty() {
        return selinux::items(Mode::Absent, &fs, "", &[]);
    }
    let mode = match fs.enforcing() {
        Ok(true) => Mode::Enforcing,
        Ok(false) => Mode::Permissive,
        Err(e) => {
            return vec![CheckItem::warn(
                "SELinux",
                format!("cannot read {}: {e}", fs.root.join("enforce").display()),
            )]
        }
    };
    let reopener = Reopener::new(&config.reopen);
    let syslog_ng = reopener
        .syslog_ng_pid()
        .ok()
        .and_then(|pid| fs.process_label(pid.as_raw()).ok());
    let scontext = selinux::watch_context(syslog_ng.as_deref());
    let (socket, pidfile) = (reopener.control_socket(), reopener.pidfile());
    let targets = selinux::targets(&selinux::Paths {
        log: &config.log,
        state_dir: &config.state_dir,
        dest: config.dest.as_ref(),
        metrics_file: config.metrics_file.as_deref(),
        control_socket: socket.as_deref(),
        pidfile: pidfile.as_deref(),
    });
    selinux::items(mode, &fs, &scontext, &targets)
}

/// The running kernel, through the selinuxfs mounted at `root` (usually /sys/fs/selinux).
pub struct SelinuxFs {
    pub root: PathBuf,
}

impl SelinuxFs {
    /// 1 in `enforce`: enforcing; 0: permissive.
    pub fn enforcing(&self) -> std::io::Result<bool> {
        let text = std::fs::read_to_string(self.root.join("enforce"))?;
        Ok(text.trim() == "1")
    }

    fn class_number(&self, class: &str) -> Result<u16, AccessError> {
        read_number(&self.root.join("class").join(class).join("index"))
            .map_err(|e| AccessError::Other(format!("class {class}: {e}")))
    }

    fn perm_bit(&self, class: &str, perm: &str) -> Result<u32, AccessError> {
        let path = self.root.join("class").join(class).join("perms").join(perm);
        let n: u16 = read_number(&path)
            .map_err(|e| AccessError::Other(format!("permission {class} {perm}: {e}")))?;
        1u32.checked_shl(u32::from(n).saturating_sub(1))
            .ok_or_else(|| AccessError::Other(format!("permission {class} {perm} is {n}")))
    }
}

fn read_number(path: &Path) -> Result<u16, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.trim()
        .parse()
        .map_err(|_| format!("{} holds {:?}, not a number", path.display(), text.trim()))
}

impl Kernel for SelinuxFs {
    fn label(&self, path: &Path) -> std::io::Result<String> {
        let mut buf = [0u8; 512];
        let n = rustix::fs::lgetxattr(path, "security.selinux", &mut buf[..])?;
        let raw = buf.get(..n).unwrap_or_default();
        // The kernel's value ends with a NUL.
        let raw = raw.strip_suffix(&[0]).unwrap_or(raw);
        Ok(String::from_utf8_lossy(raw).into_owned())
    }

    fn denied(
        &self,
        scontext: &str,
        tcontext: &str,
        class: &str,
        perms: &[&str],
    ) -> Result<Vec<String>, AccessError> {
        let number = self.class_number(class)?;
        let allowed = self.allowed_vector(scontext, tcontext, number)?;
        let mut denied = Vec::new();
        for perm in perms {
            if allowed & self.perm_bit(class, perm)? == 0 {
                denied.push((*perm).to_string());
            }
        }
        Ok(denied)
    }

    fn process_label(&self, pid: i32) -> std::io::Result<String> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/attr/current"))?;
        Ok(text.trim_end_matches(['\0', '\n']).to_string())
    }
}

impl SelinuxFs {
    fn allowed_vector(&self, scon: &str, tcon: &str, class: u16) -> Result<u32, AccessError> {
        let path = self.root.join("access");
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| AccessError::Other(format!("{}: {e}", path.display())))?;
        if let Err(e) = file.write_all(format!("{scon} {tcon} {class}").as_bytes()) {
            // EINVAL: a context the loaded policy does not know (fasttrack_t without the module).
            return Err(if e.kind() == std::io::ErrorKind::InvalidInput {
                AccessError::InvalidContext
            } else {
                AccessError::Other(format!("{}: {e}", path.display()))
            });
        }
        let mut answer = String::new();
        file.read_to_string(&mut answer)
            .map_err(|e| AccessError::Other(format!("{}: {e}", path.display())))?;
        answer
            .split_whitespace()
            .next()
            .and_then(|allowed| u32::from_str_radix(allowed, 16).ok())
            .ok_or_else(|| {
                AccessError::Other(format!(
                    "unexpected answer {answer:?} from {}",
                    path.display()
                ))
            })
    }
}
