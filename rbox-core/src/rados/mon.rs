//! Monitor commands (`rados_mon_command`), JSON in and out.

use super::cluster::Cluster;
use super::ffi;
use super::{RadosError, RadosResult, cstring};

/// What a monitor command returned: the data buffer (JSON when `format: json` was asked)
/// and the status string.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MonReply {
    pub out: Vec<u8>,
    pub status: String,
}

impl MonReply {
    /// The data buffer parsed as JSON.
    pub fn json(&self) -> RadosResult<serde_json::Value> {
        serde_json::from_slice(&self.out).map_err(|e| RadosError::Other {
            errno: -libc::EINVAL,
            context: format!(
                "monitor reply is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.out)
            ),
        })
    }
}

impl Cluster {
    /// Send one command (a JSON object with `prefix`) to the monitors. An error carries the
    /// monitor's status string, which names the problem (e.g. a missing cap).
    pub async fn mon_command(&self, cmd: &serde_json::Value) -> RadosResult<MonReply> {
        self.mon_command_with_input(cmd, Vec::new()).await
    }

    pub async fn mon_command_with_input(
        &self,
        cmd: &serde_json::Value,
        input: Vec<u8>,
    ) -> RadosResult<MonReply> {
        let prefix = cmd
            .get("prefix")
            .and_then(|p| p.as_str())
            .unwrap_or("?")
            .to_string();
        let text = cstring(&cmd.to_string())?;
        let handle = self.handle.clone();
        self.blocking(&format!("mon command '{prefix}'"), move || {
            let mut cmds = [text.as_ptr()];
            let mut outbuf: *mut libc::c_char = std::ptr::null_mut();
            let mut outlen: usize = 0;
            let mut outs: *mut libc::c_char = std::ptr::null_mut();
            let mut outslen: usize = 0;
            // SAFETY: all pointers valid; librados allocates outbuf/outs, freed below by length
            // (they are not NUL-terminated).
            let rc = unsafe {
                ffi::rados_mon_command(
                    handle.raw,
                    cmds.as_mut_ptr(),
                    1,
                    input.as_ptr().cast(),
                    input.len(),
                    &mut outbuf,
                    &mut outlen,
                    &mut outs,
                    &mut outslen,
                )
            };
            // SAFETY: copy by length, then free each buffer exactly once.
            let (out, status) = unsafe {
                let out = if outbuf.is_null() {
                    Vec::new()
                } else {
                    std::slice::from_raw_parts(outbuf.cast::<u8>(), outlen).to_vec()
                };
                let status = if outs.is_null() {
                    String::new()
                } else {
                    String::from_utf8_lossy(std::slice::from_raw_parts(outs.cast::<u8>(), outslen))
                        .into_owned()
                };
                if !outbuf.is_null() {
                    ffi::rados_buffer_free(outbuf);
                }
                if !outs.is_null() {
                    ffi::rados_buffer_free(outs);
                }
                (out, status)
            };
            if rc < 0 {
                let ctx = if status.is_empty() {
                    format!("mon command '{prefix}'")
                } else {
                    format!("mon command '{prefix}': {status}")
                };
                return Err(RadosError::from_errno(rc, ctx));
            }
            Ok(MonReply { out, status })
        })
        .await
    }
}
