//! Tidy: the house's order, checked from the code's own imports (in the manner of
//! rust-analyzer's `xtask/src/tidy.rs`).
//!
//! The order is written once, as the code-map table of ARCHITECTURE.md: each row names one or
//! more rooms (`src/<room>/` or `src/<room>.rs` in its first cell), the top row is the highest.
//! A room may import rooms of lower rows only — never a room of its own row or above — so no
//! two folders can import each other. This test reads every `src/**/*.rs`, collects the
//! `crate::<room>` paths (in `use` lines, brace groups and inline paths; `stackflow::<room>`
//! in `main.rs`), and fails naming file and line for each arrow that points up. It also fails
//! when a module of `src/` (a room, or a module inside a room) is not named in the code map.
//!
//! `TIDY_SRC=<dir>` checks another tree's `src/` against this order (e.g. an older checkout).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// A room and the row of the code map that names it (0 = top), with the text of that row.
struct Order {
    rank: BTreeMap<String, usize>,
    rows: Vec<String>,
}

/// The code-map table: the first table after `## Code map`.
fn order(architecture: &str) -> Order {
    let section = architecture.split("## Code map").nth(1).expect("ARCHITECTURE.md has a code map");
    let mut rank = BTreeMap::new();
    let mut rows = Vec::new();
    let table = section.lines().skip_while(|line| !line.starts_with('|'));
    for line in table.take_while(|line| line.starts_with('|')) {
        let first = line.split('|').nth(1).unwrap_or_default();
        let mut rooms: Vec<String> = backticked(first).filter_map(room_of).collect();
        rooms.dedup(); // `src/settings.rs`, `src/settings/`
        if rooms.is_empty() {
            continue;
        }
        for room in rooms {
            let previous = rank.insert(room.clone(), rows.len());
            assert!(previous.is_none(), "the code map names `{room}` in two rows");
        }
        rows.push(line.to_string());
    }
    Order { rank, rows }
}

/// The `text` of each `` `text` `` in a cell.
fn backticked(cell: &str) -> impl Iterator<Item = &str> {
    cell.split('`').skip(1).step_by(2)
}

/// `src/cmd/` → `cmd`, `src/settings.rs` → `settings`; `None` outside `src/`.
fn room_of(path: &str) -> Option<String> {
    let rest = path.strip_prefix("src/")?;
    let first = rest.split('/').next()?;
    Some(first.trim_end_matches(".rs").to_string())
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).expect("read src") {
            let path = entry.expect("read src").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The rooms a line of code names through `prefix::` (`crate` or `stackflow`), including every
/// top-level item of a `prefix::{…}` group. Comment lines name nothing.
fn rooms_named(line: &str, prefix: &str) -> Vec<String> {
    let code = line.trim_start();
    if code.starts_with("//") {
        return Vec::new();
    }
    let needle = format!("{prefix}::");
    let mut rooms = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find(&needle) {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + needle.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            rooms.extend(group_heads(group));
        } else {
            rooms.push(ident(rest).to_string());
        }
    }
    rooms.retain(|room| !room.is_empty() && room != "self");
    rooms
}

/// The first identifier of each top-level item of a brace group (`a, b::{c, d}, e}` → a, b, e).
fn group_heads(group: &str) -> Vec<String> {
    let mut heads = Vec::new();
    let mut depth = 0usize;
    let mut start = true;
    for (index, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => start = true,
            c if start && !c.is_whitespace() => {
                heads.push(ident(&group[index..]).to_string());
                start = false;
            }
            _ => {}
        }
    }
    heads
}

fn ident(text: &str) -> &str {
    let end = text.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(text.len());
    &text[..end]
}

/// `src/<room>/…` or `src/<room>.rs` → the room of a file.
fn room_of_file(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).expect("under src");
    let first = relative.components().next().expect("a path").as_os_str().to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// Every arrow that points up, as `file:line: room imports room (rows)`.
fn violations(src: &Path, order: &Order) -> Vec<String> {
    let mut found = Vec::new();
    for file in rust_files(src) {
        let room = room_of_file(src, &file);
        let Some(&own) = order.rank.get(&room) else {
            continue; // reported by `every_module_is_in_the_code_map`
        };
        let prefix = if room == "main" { "stackflow" } else { "crate" };
        let text = fs::read_to_string(&file).expect("read a source file");
        // A `use` group may span lines: join each statement before reading it.
        let mut statement = String::new();
        let mut statement_line = 0;
        for (number, line) in text.lines().enumerate() {
            let trimmed = line.trim_start();
            if statement.is_empty()
                && (trimmed.starts_with("use ")
                    || trimmed.starts_with("pub use ")
                    || trimmed.starts_with("pub(crate) use "))
                && !trimmed.contains(';')
            {
                statement = line.to_string();
                statement_line = number + 1;
                continue;
            }
            let (text, at) = if statement.is_empty() {
                (line.to_string(), number + 1)
            } else {
                statement.push(' ');
                statement.push_str(trimmed);
                if !trimmed.contains(';') {
                    continue;
                }
                (std::mem::take(&mut statement), statement_line)
            };
            for target in rooms_named(&text, prefix) {
                if target == room {
                    continue;
                }
                match order.rank.get(&target) {
                    Some(&rank) if rank > own => {}
                    Some(&rank) => found.push(format!(
                        "{}:{at}: `{room}` (row {}) imports `{target}` (row {}), which is not below it",
                        file.display(),
                        own + 1,
                        rank + 1
                    )),
                    None => found.push(format!(
                        "{}:{at}: `{room}` imports `{target}`, a room the code map does not name",
                        file.display()
                    )),
                }
            }
        }
    }
    found
}

/// Modules of `src/` the code map does not name: each room in a row's first cell, and each
/// module inside a room (`src/<room>/<module>.rs` or `src/<room>/<module>/`) as `` `module` ``
/// (or a path ending in it) somewhere in its room's row. Test modules are exempt.
fn unnamed_modules(src: &Path, order: &Order) -> Vec<String> {
    let mut missing = Vec::new();
    let mut entries: Vec<PathBuf> =
        fs::read_dir(src).expect("read src").map(|entry| entry.expect("read src").path()).collect();
    entries.sort();
    for entry in entries {
        let name = entry.file_name().unwrap_or_default().to_string_lossy().to_string();
        let room = name.trim_end_matches(".rs").to_string();
        let Some(&rank) = order.rank.get(&room) else {
            missing.push(format!("src/{name}: a room the code map does not name"));
            continue;
        };
        if !entry.is_dir() {
            continue;
        }
        let row = &order.rows[rank];
        let mut modules: Vec<String> = fs::read_dir(&entry)
            .expect("read a room")
            .map(|child| child.expect("read a room").path())
            .map(|child| child.file_name().unwrap_or_default().to_string_lossy().to_string())
            .map(|child| child.trim_end_matches(".rs").to_string())
            .filter(|module| module != "mod" && module != "tests" && !module.ends_with("_tests"))
            .collect();
        modules.sort();
        modules.dedup();
        for module in modules {
            let named = backticked(row).any(|text| {
                text.split(['/', ' ', ',', '+', '(', ')']).any(|part| {
                    part.trim_end_matches(".rs") == module
                        || part.split("::").any(|segment| segment == module)
                })
            });
            if !named {
                missing.push(format!("src/{room}/{module}: not named in the `{room}` row"));
            }
        }
    }
    missing
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn src() -> PathBuf {
    std::env::var_os("TIDY_SRC").map(PathBuf::from).unwrap_or_else(|| root().join("src"))
}

fn the_order() -> Order {
    let order =
        order(&fs::read_to_string(root().join("ARCHITECTURE.md")).expect("read ARCHITECTURE.md"));
    assert!(order.rows.len() > 3, "the code map table has too few rows of rooms");
    order
}

#[test]
fn arrows_point_down() {
    let found = violations(&src(), &the_order());
    assert!(found.is_empty(), "{} imports point up:\n{}", found.len(), found.join("\n"));
}

#[test]
fn every_module_is_in_the_code_map() {
    let missing = unnamed_modules(&src(), &the_order());
    assert!(missing.is_empty(), "{} modules unnamed:\n{}", missing.len(), missing.join("\n"));
}

#[test]
fn the_reader_sees_groups_inline_paths_and_not_comments() {
    assert_eq!(rooms_named("use crate::net::http::HttpClient;", "crate"), ["net"]);
    assert_eq!(
        rooms_named("use crate::{item::Target, net::{self, Outcome}, error};", "crate"),
        ["item", "net", "error"]
    );
    assert_eq!(rooms_named("    let now = crate::civil_time::now();", "crate"), ["civil_time"]);
    assert_eq!(
        rooms_named("use stackflow::{cmd, error::ExitCode};", "stackflow"),
        ["cmd", "error"]
    );
    assert!(rooms_named("// see crate::cmd::run", "crate").is_empty());
    assert!(rooms_named("use other_crate::cmd;", "crate").is_empty());
}

#[test]
fn an_upward_import_fails_naming_file_and_line() {
    let order = order(
        "## Code map\n\n| folder | job |\n|---|---|\n| `src/top/` | a |\n| `src/low.rs` | b |\n",
    );
    let dir = std::env::temp_dir().join(format!("stackflow-tidy-{}", std::process::id()));
    fs::create_dir_all(dir.join("top")).expect("temp tree");
    fs::write(dir.join("top/mod.rs"), "use crate::low::f;\n").expect("temp tree");
    fs::write(dir.join("low.rs"), "//! x\n\nuse crate::{\n    top::g,\n};\n").expect("temp tree");
    let found = violations(&dir, &order);
    let missing = unnamed_modules(&dir, &order);
    fs::remove_dir_all(&dir).expect("temp tree");
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].ends_with("low.rs:3: `low` (row 2) imports `top` (row 1), which is not below it")
    );
    assert!(missing.is_empty(), "{missing:?}");
}
