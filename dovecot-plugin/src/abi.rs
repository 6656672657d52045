//! The `#[repr(C)]` mirror of `c/rbox-ffi.h`. Field order and types must match it.

use std::ffi::{c_char, c_void};

pub const RBOX_RS_OK: i32 = 0;
pub const RBOX_RS_ERR_TEMP: i32 = -1;
pub const RBOX_RS_ERR_NOTFOUND: i32 = -2;
pub const RBOX_RS_ERR_TOO_LARGE: i32 = -3;
pub const RBOX_RS_ERR_NOSPACE: i32 = -4;
pub const RBOX_RS_ERR_CORRUPT: i32 = -5;
pub const RBOX_RS_ERR_PARAMS: i32 = -6;
pub const RBOX_RS_ERR_PERM: i32 = -7;
pub const RBOX_RS_ERR_BUG: i32 = -8;

#[repr(C)]
#[derive(Debug)]
pub struct Setting {
    pub key: *const c_char,
    pub value: *const c_char,
}

#[repr(C)]
#[derive(Debug)]
pub struct Mailbox {
    pub guid: [u8; 16],
    pub name: *const c_char,
}

#[repr(C)]
#[derive(Debug)]
pub struct SaveMail {
    pub uid: u32,
    pub oid: [u8; 16],
    pub guid: [u8; 16],
    pub guid_text: *const c_char,
    pub data: *const u8,
    pub size: usize,
    pub src_oid: *const [u8; 16],
    pub received_date: i64,
    pub save_date: i64,
    pub flags: u8,
    pub keywords: *const *const c_char,
    pub keyword_count: usize,
    pub pop3_uidl: *const c_char,
    pub pop3_order: u32,
}

#[repr(C)]
#[derive(Debug)]
pub struct Body {
    pub data: *const u8,
    pub size: usize,
    pub owner: *mut c_void,
}

#[repr(C)]
#[derive(Debug)]
pub struct Expunge {
    pub uid: u32,
    pub oid: [u8; 16],
}

#[repr(C)]
#[derive(Debug)]
pub struct Flags {
    pub uid: u32,
    pub flags: u8,
    pub keywords: *const *const c_char,
    pub keyword_count: usize,
}

#[repr(C)]
#[derive(Debug)]
pub struct FoundMail {
    pub oid: [u8; 16],
    pub uid: u32,
    pub guid: *const c_char,
    pub received_date: i64,
    pub save_date: i64,
    pub size: u64,
}

pub type FoundCallback = unsafe extern "C" fn(context: *mut c_void, mail: *const FoundMail);
