//! README.md and docs/*.md: every relative link points at a file that exists and, with a
//! `#anchor`, at a heading of the linked Markdown file (GitHub's slugs); README.md stays a short
//! front page that lists every docs page. Offline, std only.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

const README_MAX_LINES: usize = 200;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// docs/*.md, sorted.
fn docs_pages() -> Vec<PathBuf> {
    let docs = root().join("docs");
    let entries =
        fs::read_dir(&docs).unwrap_or_else(|e| panic!("cannot read {}: {e}", docs.display()));
    let mut pages: Vec<PathBuf> = entries
        .map(|entry| entry.expect("an entry of docs/").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    pages.sort();
    pages
}

/// The lines outside fenced code blocks (``` or ~~~), with their 1-based numbers.
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut lines = Vec::new();
    let mut fence: Option<&str> = None;
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        match fence {
            Some(marker) => {
                if trimmed.starts_with(marker) {
                    fence = None;
                }
            }
            None => {
                if trimmed.starts_with("```") {
                    fence = Some("```");
                } else if trimmed.starts_with("~~~") {
                    fence = Some("~~~");
                } else {
                    lines.push((index + 1, line));
                }
            }
        }
    }
    lines
}

/// The line without its inline code spans, so that code is never read as a link.
fn without_code_spans(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '`' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        // A span opens with a run of backticks and closes with a run of the same length.
        let run = chars[i..].iter().take_while(|&&c| c == '`').count();
        let mut j = i + run;
        let mut close = None;
        while j < chars.len() {
            if chars[j] == '`' {
                let other = chars[j..].iter().take_while(|&&c| c == '`').count();
                if other == run {
                    close = Some(j + other);
                    break;
                }
                j += other;
            } else {
                j += 1;
            }
        }
        match close {
            Some(end) => i = end,
            None => {
                // No closing run: the backticks are literal text.
                for _ in 0..run {
                    out.push('`');
                }
                i += run;
            }
        }
    }
    out
}

/// The targets of the inline links `[text](target)` of a line without code spans.
fn link_targets(line: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut rest = line;
    while let Some(start) = rest.find("](") {
        let after = &rest[start + 2..];
        let Some(end) = after.find(')') else {
            break;
        };
        // Drop an optional title (`[text](target "title")`) and angle brackets.
        let target = after[..end].split_whitespace().next().unwrap_or("");
        let target = target.trim_start_matches('<').trim_end_matches('>');
        targets.push(target.to_string());
        rest = &after[end + 1..];
    }
    targets
}

/// GitHub's anchor for a heading: lowercase, spaces become '-', punctuation other than '-'
/// and '_' is dropped.
fn slug(heading: &str) -> String {
    let mut slug = String::new();
    for c in heading.trim().chars() {
        if c == ' ' {
            slug.push('-');
        } else if c.is_alphanumeric() || c == '-' || c == '_' {
            slug.extend(c.to_lowercase());
        }
    }
    slug
}

/// The anchors of a Markdown text's headings; a repeated slug gets `-1`, `-2`, … as on GitHub.
fn anchors(text: &str) -> HashSet<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut anchors = HashSet::new();
    for (_, line) in prose_lines(text) {
        let trimmed = line.trim_start();
        if line.len() - trimmed.len() > 3 {
            continue; // indented code
        }
        let hashes = trimmed.chars().take_while(|&c| c == '#').count();
        if hashes == 0 || hashes > 6 {
            continue;
        }
        let rest = &trimmed[hashes..];
        if !(rest.is_empty() || rest.starts_with(' ')) {
            continue;
        }
        let base = slug(rest.trim().trim_end_matches('#'));
        let count = seen.entry(base.clone()).or_insert(0);
        let anchor = if *count == 0 {
            base
        } else {
            format!("{base}-{count}")
        };
        *count += 1;
        anchors.insert(anchor);
    }
    anchors
}

/// What is wrong with a link of `file` (whose own heading anchors are `own`), if anything.
fn problem(file: &Path, own: &HashSet<String>, target: &str) -> Option<String> {
    let lower = target.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") || lower.starts_with("mailto:")
    {
        return None;
    }
    if target.is_empty() {
        return Some("empty link target".to_string());
    }
    let (path, anchor) = match target.split_once('#') {
        Some((path, anchor)) => (path, Some(anchor)),
        None => (target, None),
    };
    if path.is_empty() {
        let anchor = anchor.unwrap_or("");
        if own.contains(anchor) {
            return None;
        }
        return Some(format!("no heading with anchor `#{anchor}` in this file"));
    }
    let linked = file.parent().expect("a file has a directory").join(path);
    if !linked.exists() {
        return Some(format!("{} does not exist", linked.display()));
    }
    // Without an anchor, the file existing is enough.
    let anchor = anchor?;
    if linked.extension().is_none_or(|ext| ext != "md") {
        return None; // anchors are checked in Markdown files only
    }
    if anchors(&read(&linked)).contains(anchor) {
        return None;
    }
    Some(format!("no heading with anchor `#{anchor}` in {path}"))
}

#[test]
fn relative_links_in_readme_and_docs_resolve() {
    let mut files = vec![root().join("README.md")];
    files.extend(docs_pages());
    let mut broken = Vec::new();
    for file in &files {
        let text = read(file);
        let own = anchors(&text);
        let name = file
            .strip_prefix(root())
            .unwrap_or(file.as_path())
            .display()
            .to_string();
        for (number, line) in prose_lines(&text) {
            for target in link_targets(&without_code_spans(line)) {
                if let Some(why) = problem(file, &own, &target) {
                    broken.push(format!("{name}:{number}: broken link ({target}): {why}"));
                }
            }
        }
    }
    assert!(
        broken.is_empty(),
        "{} broken link(s):\n{}",
        broken.len(),
        broken.join("\n")
    );
}

#[test]
fn readme_is_a_short_front_page() {
    let lines = read(&root().join("README.md")).lines().count();
    assert!(
        lines <= README_MAX_LINES,
        "README.md has {lines} lines, over {README_MAX_LINES}: move reference material to docs/"
    );
}

#[test]
fn readme_links_every_docs_page() {
    let readme = read(&root().join("README.md"));
    let targets: HashSet<String> = prose_lines(&readme)
        .into_iter()
        .flat_map(|(_, line)| link_targets(&without_code_spans(line)))
        .map(|target| target.split('#').next().unwrap_or("").to_string())
        .collect();
    let missing: Vec<String> = docs_pages()
        .iter()
        .map(|page| format!("docs/{}", page.file_name().unwrap().to_string_lossy()))
        .filter(|page| !targets.contains(page))
        .collect();
    assert!(
        missing.is_empty(),
        "README.md links no page {}: add it to the Reference list",
        missing.join(", ")
    );
}
