//! `docs/rbox-cli.md` documents every subcommand and option `rbox --help` shows: this test
//! fails when one is added to the tool and not to the doc.

use std::process::Command;

fn help(path: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_rbox"))
        .args(path)
        .arg("-h")
        .output()
        .expect("run rbox -h");
    assert_eq!(out.status.code(), Some(0), "rbox {path:?} -h");
    String::from_utf8(out.stdout).expect("help is UTF-8")
}

/// Names in the `Commands:` section of a help text (without `help`).
fn subcommands(text: &str) -> Vec<String> {
    text.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| *n != "help")
        .map(str::to_string)
        .collect()
}

/// Every `--long` option of a help text.
fn long_options(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with('-'))
        .filter_map(|l| {
            l.split([' ', ','])
                .find(|w| w.starts_with("--"))
                .map(|w| w.trim_end_matches('=').to_string())
        })
        .collect()
}

fn doc() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/rbox-cli.md");
    std::fs::read_to_string(path).expect("docs/rbox-cli.md exists")
}

#[test]
fn every_subcommand_and_option_is_documented() {
    let doc = doc();
    let top = help(&[]);
    let commands = subcommands(&top);
    assert!(commands.len() >= 12, "parsed {commands:?} from:\n{top}");
    let mut missing = Vec::new();
    for o in long_options(&top) {
        if !doc.contains(&format!("`{o}")) {
            missing.push(format!("global option {o}"));
        }
    }
    for c in &commands {
        if !doc.contains(&format!("### `rbox {c}`")) {
            missing.push(format!("section ### `rbox {c}`"));
        }
        let text = help(&[c]);
        let mut paths = vec![vec![c.clone()]];
        for sub in subcommands(&text) {
            paths.push(vec![c.clone(), sub]);
        }
        for p in paths {
            let words: Vec<&str> = p.iter().map(String::as_str).collect();
            if !doc.contains(&format!("rbox {}", words.join(" "))) {
                missing.push(format!("usage of rbox {}", words.join(" ")));
            }
            for o in long_options(&help(&words)) {
                if !doc.contains(&o) {
                    missing.push(format!("option {o} of rbox {}", words.join(" ")));
                }
            }
        }
    }
    for code in 0..=6 {
        if !doc.contains(&format!("| {code} |")) {
            missing.push(format!("exit code {code}"));
        }
    }
    assert!(missing.is_empty(), "docs/rbox-cli.md lacks: {missing:#?}");
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_rbox"))
            .args(args)
            .output()
            .expect("run rbox")
    };
    assert_eq!(run(&["--help"]).status.code(), Some(0));
    assert_eq!(run(&["--version"]).status.code(), Some(0));
    let bad = run(&["frobnicate"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("frobnicate"));
    assert_eq!(run(&["ls", "--sort", "size"]).status.code(), Some(2));
    // A bad query is refused before any connection attempt (no cluster needed).
    let q = run(&[
        "-N",
        "alice_u",
        "ls",
        "U<abc",
        "-c",
        "/nonexistent/ceph.conf",
    ]);
    assert_eq!(q.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&q.stderr).contains("decimal number"));
    // So is a namespace or user name that cannot exist.
    for target in [["-N", ""], ["-u", " alice"], ["-u", "a\u{7}b"]] {
        let r = run(&[target[0], target[1], "ls", "-c", "/nonexistent/ceph.conf"]);
        assert_eq!(r.status.code(), Some(2), "{target:?}");
    }
}
