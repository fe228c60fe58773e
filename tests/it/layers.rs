//! The layers point down (README, "Layout"): protocol <- storage <- shard/server, with
//! cluster, group and producer beside the shard. This reads every `crate::` path in `src/`
//! and fails on one that reaches a module its layer may not use, and checks that the
//! protocol crate stays pure (no executor, no I/O).

use std::path::{Path, PathBuf};

/// Which top-level modules each module may use (itself always).
const ALLOWED: &[(&str, &[&str])] = &[
    ("storage", &[]),
    ("runtime", &[]),
    ("producer", &["storage"]),
    ("group", &["storage"]),
    ("cluster", &["storage"]),
    ("config", &["storage", "cluster", "group", "producer"]),
    // The binary's `cluster up` launcher (beside main.rs): it runs `spindle serve`
    // processes and uses no library module.
    ("cluster_up", &[]),
    // The binary's `top` (beside main.rs): it reads the metrics endpoint over HTTP, like
    // any scraper, and uses no library module.
    ("top", &[]),
    // The binary's admin CLI (beside main.rs): it talks the Kafka protocol to a broker, as
    // any client does, and uses no library module.
    ("admin", &[]),
    (
        "shard",
        &[
            "storage", "cluster", "group", "producer", "config", "runtime",
        ],
    ),
    (
        "server",
        &[
            "storage", "cluster", "group", "producer", "config", "runtime", "shard",
        ],
    ),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file of `src/` belongs to (`src/storage/log/mod.rs` -> storage).
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).expect("under src");
    let first = relative.components().next().expect("a component");
    first
        .as_os_str()
        .to_str()
        .expect("utf-8")
        .trim_end_matches(".rs")
        .to_string()
}

/// Every module named right after `crate::` in `text` (comments included: a doc link
/// upward is a dependency too).
fn crate_references(text: &str) -> Vec<String> {
    text.match_indices("crate::")
        .filter(|&(at, _)| {
            // `spindle_crate::` or the like is not ours.
            at == 0
                || !text.as_bytes()[at - 1].is_ascii_alphanumeric()
                    && text.as_bytes()[at - 1] != b'_'
        })
        .map(|(at, _)| {
            text[at + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        })
        .collect()
}

#[test]
fn no_module_uses_a_layer_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut violations = Vec::new();
    for file in &files {
        let module = module_of(&src, file);
        let Some((_, allowed)) = ALLOWED.iter().find(|(name, _)| *name == module) else {
            continue; // lib.rs and main.rs sit on top.
        };
        let text = std::fs::read_to_string(file).expect("read");
        for used in crate_references(&text) {
            if used != module && !allowed.contains(&used.as_str()) {
                violations.push(format!("{} uses crate::{used}", file.display()));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "upward imports:\n{}",
        violations.join("\n")
    );
}

#[test]
fn every_module_is_placed_in_a_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    for file in &files {
        let module = module_of(&src, file);
        assert!(
            ["lib", "main"].contains(&module.as_str())
                || ALLOWED.iter().any(|(name, _)| *name == module),
            "{}: add its module to ALLOWED in tests/it/layers.rs",
            file.display()
        );
    }
}

#[test]
fn the_protocol_crate_is_pure() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/spindle-protocol");
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).expect("manifest");
    for forbidden in ["glommio", "tokio", "spindle ="] {
        assert!(
            !manifest.contains(forbidden),
            "spindle-protocol depends on {forbidden}"
        );
    }
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read");
        // Tests may write files (the fuzz seed corpus); the library may not.
        let library = text.split("#[cfg(test)]").next().unwrap_or_default();
        for forbidden in ["async fn", "std::fs", "std::net", "glommio", "unsafe {"] {
            assert!(
                !library.contains(forbidden),
                "{} holds `{forbidden}`",
                file.display()
            );
        }
    }
}

#[test]
fn the_reference_scan_sees_a_violation() {
    // The check itself can fail: an upward path is found, a lookalike is not.
    assert_eq!(
        crate_references("use crate::server::shard;"),
        vec!["server"]
    );
    assert!(crate_references("use spindle_protocol::x; // my_crate::y").is_empty());
}
