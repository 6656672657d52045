//! Bridging librados aio completions to tokio.
//!
//! The completion callback owns everything the operation points into (the C op handle,
//! output buffers, `prval` slots). It hands that bundle back through a oneshot channel; if the
//! awaiting future was dropped (timeout, cancellation), the bundle is dropped in the callback
//! instead — so librados never writes into freed memory, whatever the caller does.

use std::time::Duration;

use tokio::sync::oneshot;

use super::ffi;
use super::{RadosError, RadosResult};

struct Flight<R> {
    tx: Option<oneshot::Sender<(i32, R)>>,
    res: Option<R>,
}

extern "C" fn on_complete<R: Send + 'static>(c: ffi::rados_completion_t, arg: *mut libc::c_void) {
    // SAFETY: arg is the Box<Flight<R>> leaked in `submit`; librados calls this exactly once.
    let mut flight = unsafe { Box::from_raw(arg.cast::<Flight<R>>()) };
    // SAFETY: c is the live completion this callback was registered on. Releasing inside the
    // callback is allowed: librados holds its own reference while running callbacks.
    let rv = unsafe {
        let rv = ffi::rados_aio_get_return_value(c);
        ffi::rados_aio_release(c);
        rv
    };
    if let (Some(tx), Some(res)) = (flight.tx.take(), flight.res.take()) {
        // A dropped receiver returns the bundle here and it is freed with `flight`.
        let _ = tx.send((rv, res));
    }
}

/// Start an aio operation and await it.
///
/// `res` is the bundle the op points into; it must keep every pointer handed to librados
/// valid while it lives (heap-allocated fields, not moved out). `start` receives the
/// completion and a stable pointer to the bundle, submits the op and returns librados' rc;
/// it must not use the pointer after submitting.
pub(crate) async fn submit<R: Send + 'static>(
    what: &str,
    timeout: Duration,
    res: R,
    start: impl FnOnce(ffi::rados_completion_t, *mut R) -> i32,
) -> RadosResult<(i32, R)> {
    // The raw pointers stay inside `launch`, so this future is `Send`.
    let rx = launch(what, res, start)?;
    match tokio::time::timeout(timeout, rx).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(_)) => Err(RadosError::Other {
            errno: -libc::EIO,
            context: format!("{what}: completion lost"),
        }),
        Err(_) => Err(RadosError::Timeout(format!(
            "{what} took longer than {timeout:?}"
        ))),
    }
}

fn launch<R: Send + 'static>(
    what: &str,
    res: R,
    start: impl FnOnce(ffi::rados_completion_t, *mut R) -> i32,
) -> RadosResult<oneshot::Receiver<(i32, R)>> {
    let (tx, rx) = oneshot::channel();
    let flight = Box::into_raw(Box::new(Flight {
        tx: Some(tx),
        res: Some(res),
    }));
    let mut c: ffi::rados_completion_t = std::ptr::null_mut();
    // SAFETY: flight is a valid heap pointer; on_complete::<R> matches rados_callback_t.
    let rc = unsafe {
        ffi::rados_aio_create_completion(flight.cast(), Some(on_complete::<R>), None, &mut c)
    };
    if rc < 0 {
        // SAFETY: no callback will run; reclaim the box.
        drop(unsafe { Box::from_raw(flight) });
        return Err(RadosError::from_errno(
            rc,
            format!("{what}: aio_create_completion"),
        ));
    }
    // A raw pointer, not a borrow: once submitted, the callback may take the bundle on
    // another thread, so `start` must not touch it after submitting.
    // SAFETY: flight is live until the callback runs, and the callback cannot run before
    // `start` submits.
    let res_ptr: *mut R = unsafe {
        match (*flight).res.as_mut() {
            Some(r) => r,
            None => std::ptr::null_mut(),
        }
    };
    let rc = start(c, res_ptr);
    if rc < 0 {
        // Submission failed: librados will not call back, so release and reclaim here.
        // SAFETY: c is live and unused; flight was never handed to a running op.
        unsafe {
            ffi::rados_aio_release(c);
            drop(Box::from_raw(flight));
        }
        return Err(RadosError::from_errno(rc, what.to_string()));
    }
    Ok(rx)
}
