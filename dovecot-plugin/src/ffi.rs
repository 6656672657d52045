//! The C ABI (`c/rbox-ffi.h`). Every entry point catches panics, validates its pointers,
//! and reports failures as a status code plus a Rust-owned message that the C side
//! copies and frees with [`rbox_rs_free_string`].

use std::ffi::{CStr, CString, c_char, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};

use rbox_core::error::StoreError;
use rbox_core::format::flags::MailFlags;
use rbox_core::format::guid::{Guid128, MailGuid};
use rbox_core::store::{ExternalFlags, ExternalMail, ExternalMailbox, MirrorOp, external_records};

use crate::abi::*;
use crate::runtime::{self, User};
use crate::settings::PluginSettings;
use crate::status;

type Fail = (i32, String);

fn store_fail(e: StoreError) -> Fail {
    (status::of_store(&e), e.to_string())
}

fn params(msg: impl Into<String>) -> Fail {
    (RBOX_RS_ERR_PARAMS, msg.into())
}

/// Write a message into `*out` (if the caller gave a slot) as a Rust-owned C string.
fn put_string(out: *mut *mut c_char, msg: String) {
    if out.is_null() {
        return;
    }
    let c = CString::new(msg.replace('\0', " ")).unwrap_or_default();
    // SAFETY: the caller passed a valid slot (checked non-null above).
    unsafe { *out = c.into_raw() };
}

/// Run `f`, turning errors and panics into a status code and message.
fn run(error_r: *mut *mut c_char, f: impl FnOnce() -> Result<(), Fail>) -> i32 {
    if !error_r.is_null() {
        // SAFETY: non-null slot from the caller.
        unsafe { *error_r = std::ptr::null_mut() };
    }
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => RBOX_RS_OK,
        Ok(Err((code, msg))) => {
            put_string(error_r, msg);
            code
        }
        Err(p) => {
            let what = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".into());
            put_string(
                error_r,
                format!("internal error in the rbox plugin: {what}"),
            );
            RBOX_RS_ERR_BUG
        }
    }
}

/// # Safety
/// `p` is NULL or a NUL-terminated string alive for the call.
unsafe fn opt_text(p: *const c_char) -> Result<Option<String>, Fail> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: per the function contract.
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str()
        .map(|s| Some(s.to_string()))
        .map_err(|_| params("string is not UTF-8"))
}

/// # Safety
/// As [`opt_text`].
unsafe fn text(p: *const c_char, what: &str) -> Result<String, Fail> {
    // SAFETY: forwarded contract.
    unsafe { opt_text(p) }?.ok_or_else(|| params(format!("{what} missing")))
}

/// # Safety
/// `ptr` points at `count` valid items (or `count` is 0).
unsafe fn slice<'a, T>(ptr: *const T, count: usize) -> &'a [T] {
    if count == 0 || ptr.is_null() {
        &[]
    } else {
        // SAFETY: per the function contract.
        unsafe { std::slice::from_raw_parts(ptr, count) }
    }
}

/// # Safety
/// `ptr` points at `count` NUL-terminated strings.
unsafe fn keywords(ptr: *const *const c_char, count: usize) -> Result<Vec<String>, Fail> {
    // SAFETY: per the function contract.
    unsafe { slice(ptr, count) }
        .iter()
        // SAFETY: each entry is a string per the contract.
        .map(|&k| unsafe { text(k, "keyword") })
        .collect()
}

/// # Safety
/// `oid` is NULL or points at 16 readable bytes.
unsafe fn oid_arg(oid: *const [u8; 16]) -> Result<Guid128, Fail> {
    // SAFETY: per the function contract.
    let raw = unsafe { oid.as_ref() }.ok_or_else(|| params("no oid"))?;
    Ok(Guid128::from_bytes(*raw))
}

/// # Safety
/// `user` is a handle from [`rbox_rs_user_open`], not yet freed.
unsafe fn user_ref<'a>(user: *mut User) -> Result<&'a User, Fail> {
    // SAFETY: per the function contract.
    unsafe { user.as_ref() }.ok_or_else(|| params("no user handle"))
}

/// # Safety
/// `b` is NULL or a valid mailbox description.
unsafe fn mailbox(b: *const Mailbox) -> Result<ExternalMailbox, Fail> {
    // SAFETY: per the function contract.
    let b = unsafe { b.as_ref() }.ok_or_else(|| params("no mailbox"))?;
    Ok(ExternalMailbox {
        guid: Guid128::from_bytes(b.guid),
        // SAFETY: name is a string per the header's contract.
        name: unsafe { text(b.name, "mailbox name") }?,
    })
}

/// # Safety
/// See `c/rbox-ffi.h`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rbox_rs_user_open(
    settings: *const Setting,
    count: usize,
    username: *const c_char,
    user_r: *mut *mut User,
    error_r: *mut *mut c_char,
) -> i32 {
    run(error_r, || {
        if user_r.is_null() {
            return Err(params("no user slot"));
        }
        let mut pairs = Vec::with_capacity(count);
        // SAFETY: `settings` holds `count` entries per the contract.
        for s in unsafe { slice(settings, count) } {
            // SAFETY: key/value are strings per the contract.
            let k = unsafe { text(s.key, "setting name") }?;
            let v = unsafe { opt_text(s.value) }?.unwrap_or_default();
            pairs.push((k, v));
        }
        let parsed =
            PluginSettings::parse(&pairs, std::env::var("CEPH_CONF").ok()).map_err(params)?;
        // SAFETY: string per the contract.
        let name = unsafe { text(username, "user name") }?;
        // A missing pool is a deployment fault, not a missing mail.
        let user = runtime::open_user(&parsed, &name).map_err(|e| match store_fail(e) {
            (RBOX_RS_ERR_NOTFOUND, msg) => (RBOX_RS_ERR_TEMP, msg),
            other => other,
        })?;
        // SAFETY: non-null slot (checked above).
        unsafe { *user_r = Box::into_raw(Box::new(user)) };
        Ok(())
    })
}

/// # Safety
/// `user` is NULL or a handle from [`rbox_rs_user_open`]; it is not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rbox_rs_user_free(user: *mut User) {
    if !user.is_null() {
        let _ = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: ownership comes back from `Box::into_raw` in user_open.
            drop(unsafe { Box::from_raw(user) })
        }));
    }
}

/// # Safety
/// See `c/rbox-ffi.h`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rbox_rs_save(
    user: *mut User,
    b: *const Mailbox,
    mails: *mut SaveMail,
    count: usize,
    error_r: *mut *mut c_char,
) -> i32 {
    run(error_r, || {
        // SAFETY: per the contract.
        let (user, mb) = unsafe { (user_ref(user)?, mailbox(b)?) };
        if mails.is_null() && count > 0 {
            return Err(params("no mails"));
        }
        // SAFETY: `mails` holds `count` entries per the contract; we write back `oid`.
        let raw = unsafe { std::slice::from_raw_parts_mut(mails, count) };
        let mut list = Vec::with_capacity(count);
        for m in raw.iter() {
            // SAFETY: the strings and data of each mail are valid per the contract.
            let guid = match unsafe { opt_text(m.guid_text) }? {
                Some(t) => MailGuid::parse(&t),
                None => MailGuid::Compact(Guid128::from_bytes(m.guid)),
            };
            list.push(ExternalMail {
                uid: m.uid,
                oid: Guid128::from_bytes(m.oid),
                guid,
                // SAFETY: `data` holds `size` bytes.
                body: unsafe { slice(m.data, m.size) },
                // SAFETY: NULL or 16 readable bytes per the contract.
                source: unsafe { m.src_oid.as_ref() }.map(|o| Guid128::from_bytes(*o)),
                received: m.received_date,
                saved: m.save_date,
                flags: MailFlags(m.flags & MailFlags::ALL & !MailFlags::RECENT.bits()),
                // SAFETY: per the contract.
                keywords: unsafe { keywords(m.keywords, m.keyword_count) }?,
                pop3_uidl: unsafe { opt_text(m.pop3_uidl) }?,
                pop3_order: (m.pop3_order != 0).then_some(m.pop3_order),
            });
        }
        // Durable first (the commit waits for it), the omap mirror queued behind it.
        let written = runtime::block_on(async {
            let written = user.space.write_external(&mb, &list).await?;
            let records = external_records(&list, &written);
            let op = MirrorOp::Saves {
                mailbox: mb.clone(),
                records,
            };
            user.mirror.push(&user.space, op).await;
            Ok::<_, StoreError>(written)
        })
        .map_err(store_fail)?;
        for (m, w) in raw.iter_mut().zip(&written) {
            m.oid = *w.oid.as_bytes();
        }
        Ok(())
    })
}

/// # Safety
/// See `c/rbox-ffi.h`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rbox_rs_read(
    user: *mut User,
    oid: *const [u8; 16],
    body_r: *mut Body,
    error_r: *mut *mut c_char,
) -> i32 {
    run(error_r, || {
        // SAFETY: per the contract.
        let user = unsafe { user_ref(user) }?;
        // SAFETY: 16 readable bytes per the contract.
        let oid = unsafe { oid_arg(oid) }?;
        // SAFETY: valid out-pointer per the contract.
        let out = unsafe { body_r.as_mut() }.ok_or_else(|| params("no body slot"))?;
        let data = runtime::block_on(user.prefetch.read(&user.space, &oid)).map_err(store_fail)?;
        let boxed: Box<Vec<u8>> = Box::new(data);
        out.data = boxed.as_ptr();
        out.size = boxed.len();
        out.owner = Box::into_raw(boxed) as *mut c_void;
        Ok(())
    })
}

/// # Safety
/// See `c/rbox-ffi.h`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rbox_rs_prefetch(user: *mut User, oid: *const [u8; 16]) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: per the contract.
        if let (Ok(user), Ok(oid)) = unsafe { (user_ref(user), oid_arg(oid)) } {
            user.prefetch.start(&user.space, oid);
        }
    }));
}

/// # Safety
/// `body` was filled by [`rbox_rs_read`] and is not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rbox_rs_body_free(body: *mut Body) {
    // SAFETY: per the contract.
    if let Some(b) = unsafe { body.as_mut() }
        && !b.owner.is_null()
    {
        // SAFETY: `owner` came from `Box::into_raw` of a `Vec<u8>` in rbox_rs_read.
        drop(unsafe { Box::from_raw(b.owner as *mut Vec<u8>) });
        b.owner = std::ptr::null_mut();
        b.data = std::ptr::null();
        b.size = 0;
    }
}

/// # Safety
/// See `c/rbox-ffi.h`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rbox_rs_mail_guid(
    user: *mut User,
    oid: *const [u8; 16],
    guid_r: *mut *mut c_char,
    error_r: *mut *mut c_char,
) -> i32 {
    run(error_r, || {
        // SAFETY: per the contract.
        let user = unsafe { user_ref(user) }?;
        // SAFETY: per the contract.
        let oid = unsafe { oid_arg(oid) }?;
        let info = runtime::block_on(user.space.mail_info(&oid.to_hex())).map_err(store_fail)?;
        let guid = info
            .metadata
            .guid
            .ok_or_else(|| (RBOX_RS_ERR_CORRUPT, format!("object {oid} has no G xattr")))?;
        put_string(guid_r, guid.to_string());
        Ok(())
    })
}

/// # Safety
/// See `c/rbox-ffi.h`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rbox_rs_expunge(
    user: *mut User,
    b: *const Mailbox,
    mails: *const Expunge,
    count: usize,
    error_r: *mut *mut c_char,
) -> i32 {
    run(error_r, || {
        // SAFETY: per the contract.
        let (user, mb) = unsafe { (user_ref(user)?, mailbox(b)?) };
        let list: Vec<(u32, Guid128)> = unsafe { slice(mails, count) }
            .iter()
            .map(|m| (m.uid, Guid128::from_bytes(m.oid)))
            .collect();
        runtime::block_on(async {
            user.space.remove_external_objects(&list).await?;
            let op = MirrorOp::Expunges {
                mailbox: mb,
                mails: list,
            };
            user.mirror.push(&user.space, op).await;
            Ok(())
        })
        .map_err(store_fail)
    })
}

/// # Safety
/// See `c/rbox-ffi.h`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rbox_rs_set_flags(
    user: *mut User,
    b: *const Mailbox,
    mails: *const Flags,
    count: usize,
    error_r: *mut *mut c_char,
) -> i32 {
    run(error_r, || {
        // SAFETY: per the contract.
        let (user, mb) = unsafe { (user_ref(user)?, mailbox(b)?) };
        let mut list = Vec::with_capacity(count);
        for m in unsafe { slice(mails, count) } {
            list.push(ExternalFlags {
                uid: m.uid,
                flags: MailFlags(m.flags & MailFlags::ALL & !MailFlags::RECENT.bits()),
                // SAFETY: per the contract.
                keywords: unsafe { keywords(m.keywords, m.keyword_count) }?,
            });
        }
        let op = MirrorOp::Flags {
            mailbox: mb,
            changes: list,
        };
        runtime::block_on(user.mirror.push(&user.space, op));
        Ok(())
    })
}

/// # Safety
/// See `c/rbox-ffi.h`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rbox_rs_mailbox_update(
    user: *mut User,
    b: *const Mailbox,
    error_r: *mut *mut c_char,
) -> i32 {
    run(error_r, || {
        // SAFETY: per the contract.
        let (user, mb) = unsafe { (user_ref(user)?, mailbox(b)?) };
        runtime::block_on(user.mirror.push(&user.space, MirrorOp::Mailbox(mb)));
        Ok(())
    })
}

/// # Safety
/// See `c/rbox-ffi.h`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rbox_rs_mailbox_delete(
    user: *mut User,
    b: *const Mailbox,
    error_r: *mut *mut c_char,
) -> i32 {
    run(error_r, || {
        // SAFETY: per the contract.
        let (user, mb) = unsafe { (user_ref(user)?, mailbox(b)?) };
        runtime::block_on(user.mirror.push(&user.space, MirrorOp::DeleteMailbox(mb)));
        Ok(())
    })
}

/// # Safety
/// See `c/rbox-ffi.h`; `callback` is called on this thread before the call returns.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rbox_rs_list_mailbox(
    user: *mut User,
    b: *const Mailbox,
    callback: Option<FoundCallback>,
    context: *mut c_void,
    error_r: *mut *mut c_char,
) -> i32 {
    run(error_r, || {
        // SAFETY: per the contract.
        let (user, mb) = unsafe { (user_ref(user)?, mailbox(b)?) };
        let cb = callback.ok_or_else(|| params("no callback"))?;
        // The scan reads the omap index's mailbox list: apply what is queued first.
        let found = runtime::block_on(async {
            user.mirror.flush().await;
            user.space.list_external(&mb).await
        })
        .map_err(store_fail)?;
        for info in found {
            let Ok(oid) = Guid128::parse_hex(&info.oid) else {
                continue;
            };
            let md = &info.metadata;
            let guid = CString::new(md.guid.as_ref().map(|g| g.to_string()).unwrap_or_default())
                .unwrap_or_default();
            let saved = info
                .mtime
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            let mail = FoundMail {
                oid: *oid.as_bytes(),
                uid: md.uid.unwrap_or(0),
                guid: guid.as_ptr(),
                received_date: md.received.unwrap_or(saved),
                save_date: saved,
                size: info.size,
            };
            // SAFETY: the callback contract is the C side's; `mail` lives for the call.
            unsafe { cb(context, &mail) };
        }
        Ok(())
    })
}

/// # Safety
/// See `c/rbox-ffi.h`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rbox_rs_adopt(
    user: *mut User,
    b: *const Mailbox,
    oid: *const [u8; 16],
    uid: u32,
    error_r: *mut *mut c_char,
) -> i32 {
    run(error_r, || {
        // SAFETY: per the contract.
        let (user, mb) = unsafe { (user_ref(user)?, mailbox(b)?) };
        // SAFETY: per the contract.
        let oid = unsafe { oid_arg(oid) }?;
        runtime::block_on(user.space.adopt_external(&mb, &oid, uid)).map_err(store_fail)
    })
}

/// # Safety
/// `s` is NULL or a string this library returned; it is not used afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rbox_rs_free_string(s: *mut c_char) {
    if !s.is_null() {
        // SAFETY: `s` came from `CString::into_raw`.
        drop(unsafe { CString::from_raw(s) });
    }
}
