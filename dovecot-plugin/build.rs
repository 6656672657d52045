//! Compiles the plugin's thin C layer (vtables and glue) against the installed
//! Dovecot headers (`dovecot-dev`) and passes Dovecot's ABI version to the Rust side.

use std::path::Path;

const DOVECOT_INCLUDE: &str = "/usr/include/dovecot";
const DOVECOT_LIBDIR: &str = "/usr/lib/dovecot";
const C_FILES: &[&str] = &[
    "rbox-storage.c",
    "rbox-mail.c",
    "rbox-save.c",
    "rbox-sync.c",
];

fn main() {
    let include = std::env::var("DOVECOT_INCLUDE").unwrap_or_else(|_| DOVECOT_INCLUDE.into());
    let config_h = Path::new(&include).join("config.h");
    let config = std::fs::read_to_string(&config_h).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; install dovecot-dev (make test does: e2e/lib/common.sh apt_ensure)",
            config_h.display()
        )
    });
    let abi = config
        .lines()
        .find_map(|l| l.strip_prefix("#define DOVECOT_ABI_VERSION "))
        .map(|v| v.trim().trim_matches('"').to_string())
        .unwrap_or_else(|| panic!("{}: no DOVECOT_ABI_VERSION", config_h.display()));
    println!("cargo:rustc-env=RBOX_DOVECOT_ABI_VERSION={abi}");
    println!("cargo:rerun-if-env-changed=DOVECOT_INCLUDE");
    println!("cargo:rerun-if-changed={}", config_h.display());

    let mut build = cc::Build::new();
    build
        .include(&include)
        .define("HAVE_CONFIG_H", None)
        .flag("-std=gnu99")
        .flag_if_supported("-Wno-unused-parameter")
        .flag_if_supported("-Wno-sign-compare")
        .flag_if_supported("-Wmissing-prototypes")
        .warnings(true)
        .extra_warnings(true)
        .warnings_into_errors(true);
    for f in C_FILES {
        let p = format!("c/{f}");
        println!("cargo:rerun-if-changed={p}");
        build.file(p);
    }
    println!("cargo:rerun-if-changed=c/rbox-storage.h");
    println!("cargo:rerun-if-changed=c/rbox-ffi.h");
    build.compile("rbox_dovecot_c");

    // Dovecot's processes have these loaded already; linking them lets test binaries
    // link too, and the rpath finds them outside the standard library path.
    println!("cargo:rustc-link-search=native={DOVECOT_LIBDIR}");
    println!("cargo:rustc-link-lib=dylib=dovecot-storage");
    println!("cargo:rustc-link-lib=dylib=dovecot");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{DOVECOT_LIBDIR}");
    // Dovecot unloads mail plugins between users of a reused process; the tokio runtime's
    // threads and librados' would then run unmapped code. NODELETE keeps the module (and
    // its one Ceph connection) mapped for the life of the process.
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
}
