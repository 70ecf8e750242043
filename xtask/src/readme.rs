//! `cargo xtask readme`: the shell examples of README.md, keys-example/README.md and docs/*.md,
//! run as written, so that the docs cannot rot.
//!
//! # What runs, and how
//!
//! Every fenced block tagged `sh` is run, in the order of the file, by **one** `sh -e` session
//! per file (as if pasted, block after block, into one terminal: `cd` and `export` carry over),
//! in a fresh scratch directory: `target/readme/` for README.md, `target/readme-<name>/` for the
//! others (two levels below the repository root, so `../../` names the clone). `target/debug`,
//! holding the `sbsfu` just built from the workspace, comes first on the PATH; standard input is
//! `/dev/null` (no terminal); `SBSFU_*` variables are cleared. A command that fails stops the run,
//! which fails naming the file and line of that command.
//!
//! Other blocks are never run: `rust` blocks are excerpts (the compiled, tested examples are the
//! crates' documentation), untagged and `text` blocks are output, formats or diagrams. A block
//! tagged `bash`, `shell`, `console` or `zsh`, or an untagged one whose lines look like commands
//! (`$ `, `sbsfu `, `cargo `), is an error: it would otherwise escape the test.
//!
//! # Markers (shell comments, so a pasted block still runs)
//!
//! - `# not run: REASON` as the **first line** of a block: the block is not run (a board, an
//!   HSM, a probe, minutes of benchmarks). The reason is required.
//! - `# exit N` starting the trailing comment of a command (`sbsfu verify ... # exit 3: revoked`):
//!   the command must exit with status N; the run goes on.
//! - `#> TEXT` lines right after a command: its output (standard output and error, in order) must
//!   be exactly these lines. `...` inside a line matches any text; a line that is only `...`
//!   matches any number of lines.
//!
//! # What the runner refuses (to stay simple enough to be right)
//!
//! One command per logical line (`\` continues a line; `&&`, `|` and `;` within it are fine):
//! a line ending in `|`, `&&`, `||`, `do`, `then`, `{` or `(`, and here-documents (`<<`), are
//! refused with their line; write a file with `printf` instead. A command may run in the
//! background (`... &`, a simulated device for instance); whatever is still running when the
//! file's last command ends is stopped.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::{Result, root, sbsfu_cli, setup, step};

/// The files whose shell blocks run, besides every `docs/*.md`.
const FILES: [&str; 2] = ["README.md", "keys-example/README.md"];

/// Seconds a whole file may take (a command waiting for input would otherwise hang CI).
const TIMEOUT_SECONDS: u32 = 300;

/// Info strings of shell dialects the runner does not run: refused, so none escapes the test.
const OTHER_SHELLS: [&str; 5] = ["bash", "shell", "console", "zsh", "shell-session"];

/// How an untagged block that is really commands gives itself away.
const COMMAND_STARTS: [&str; 3] = ["$ ", "sbsfu ", "cargo "];

/// A fenced code block.
#[derive(Debug)]
struct Block {
    /// Line of the opening fence (1-based).
    line: usize,
    /// First word of the info string (`sh`, `rust`, empty).
    lang: String,
    /// The content lines with their line numbers, the fence's indentation removed.
    lines: Vec<(usize, String)>,
}

/// One command of an `sh` block and what it must do.
#[derive(Debug, PartialEq)]
struct Step {
    /// Line where the command starts.
    line: usize,
    /// The command as written (continuation lines included).
    text: String,
    /// `# exit N`.
    exit: Option<i32>,
    /// `#> ` lines.
    output: Vec<String>,
}

impl Step {
    /// Whether the runner must capture its status and output.
    fn checked(&self) -> bool {
        self.exit.is_some() || !self.output.is_empty()
    }
}

/// The blocks of a Markdown text (fences of three or more backticks or tildes, indented or not).
fn blocks(text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<(String, usize, Block)> = None;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let trimmed = raw.trim_start();
        let indent = raw.len() - trimmed.len();
        let fence: String = trimmed
            .chars()
            .take_while(|&c| c == '`' || c == '~')
            .collect();
        let is_fence = fence.len() >= 3 && fence.chars().all(|c| c == fence.as_bytes()[0] as char);
        match &mut open {
            Some((f, _, _))
                if is_fence && fence.starts_with(f.as_str()) && trimmed.trim() == fence =>
            {
                if let Some((_, _, block)) = open.take() {
                    out.push(block);
                }
            }
            Some((_, ind, block)) => {
                let line = raw.get(indent.min(*ind)..).unwrap_or(trimmed);
                block.lines.push((n, line.to_owned()));
            }
            None if is_fence => {
                let info = trimmed[fence.len()..].split_whitespace().next();
                let lang = info.and_then(|i| i.split(',').next()).unwrap_or("");
                let lang = lang.to_owned();
                open = Some((
                    fence,
                    indent,
                    Block {
                        line: n,
                        lang,
                        lines: Vec::new(),
                    },
                ));
            }
            None => {}
        }
    }
    // An unclosed fence runs to the end of the document (CommonMark): still a block.
    if let Some((_, _, block)) = open {
        out.push(block);
    }
    out
}

/// The reason of a `# not run: REASON` first line, if there is one.
fn not_run_reason(block: &Block, file: &str) -> Result<Option<String>> {
    let mut lines = block.lines.iter().filter(|(_, l)| !l.trim().is_empty());
    let Some((n, first)) = lines.next() else {
        return Ok(None);
    };
    let marker = |l: &str| l.trim_start().strip_prefix("# not run").map(str::to_owned);
    if let Some(rest) = marker(first) {
        let reason = rest.trim_start().strip_prefix(':').map(str::trim);
        return match reason {
            Some(r) if !r.is_empty() => Ok(Some(r.to_owned())),
            _ => Err(format!(
                "{file}:{n}: `# not run` needs a reason: `# not run: REASON`"
            )),
        };
    }
    if let Some((n, _)) = lines.find(|(_, l)| marker(l).is_some()) {
        return Err(format!(
            "{file}:{n}: `# not run:` must be the first line of its block"
        ));
    }
    Ok(None)
}

/// Where a shell comment starts in a line: a `#` at the start or after whitespace (quotes are
/// not parsed: README commands do not quote a `#`).
fn comment_start(line: &str) -> Option<usize> {
    line.char_indices()
        .find(|&(i, c)| c == '#' && (i == 0 || line[..i].ends_with(char::is_whitespace)))
        .map(|(i, _)| i)
}

/// The commands of an `sh` block, with their expectations.
fn steps(block: &Block, file: &str) -> Result<Vec<Step>> {
    let mut steps: Vec<Step> = Vec::new();
    // Whether `#>` lines may still attach to the last command.
    let mut attach = false;
    let mut lines = block.lines.iter().peekable();
    while let Some((n, line)) = lines.next() {
        let t = line.trim();
        if let Some(expected) = t.strip_prefix("#>") {
            match steps.last_mut() {
                Some(step) if attach => {
                    let expected = expected.strip_prefix(' ').unwrap_or(expected);
                    step.output.push(expected.trim_end().to_owned());
                }
                _ => {
                    return Err(format!(
                        "{file}:{n}: `#>` output must follow its command directly"
                    ));
                }
            }
            continue;
        }
        attach = false;
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        // The logical line: `\` at the end continues it.
        let mut text = line.clone();
        let mut last = line.clone();
        while last.trim_end().ends_with('\\') {
            let Some((_, next)) = lines.next() else {
                return Err(format!(
                    "{file}:{n}: the block ends inside a `\\` continuation"
                ));
            };
            text.push('\n');
            text.push_str(next);
            last = next.clone();
        }
        let (code, comment) = match comment_start(&last) {
            Some(at) => (&last[..at], Some(last[at + 1..].trim())),
            None => (last.as_str(), None),
        };
        let code = code.trim_end();
        if text.contains("<<") {
            return Err(format!(
                "{file}:{n}: here-documents are not run; write the file with printf"
            ));
        }
        if ["|", "&&", "||", "{", "("]
            .iter()
            .any(|e| code.ends_with(e))
            || [" do", " then"].iter().any(|e| code.ends_with(e))
            || ["do", "then"].contains(&code)
        {
            return Err(format!(
                "{file}:{n}: one command per line: this one continues on the next line \
                 (end it here, or use `\\`)"
            ));
        }
        let exit = match comment.and_then(|c| c.strip_prefix("exit")) {
            Some(rest) if rest.starts_with([' ', ':']) || rest.is_empty() => {
                let number: String = rest
                    .trim_start_matches([' ', ':'])
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                match number.parse::<i32>() {
                    Ok(code) if code <= 255 => Some(code),
                    _ => {
                        return Err(format!(
                            "{file}:{n}: write the expected status as `# exit N` (0 to 255)"
                        ));
                    }
                }
            }
            _ => None,
        };
        steps.push(Step {
            line: *n,
            text,
            exit,
            output: Vec::new(),
        });
        attach = true;
    }
    Ok(steps)
}

/// Whether one line matches an expected line, where `...` matches any text.
fn line_matches(expected: &str, actual: &str) -> bool {
    let mut parts = expected.split("...");
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = actual.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// Whether output lines match the expected lines (a line `...` matches any number of lines).
fn output_matches(expected: &[String], actual: &[&str]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((e, rest)) if e == "..." => {
            (0..=actual.len()).any(|skip| output_matches(rest, &actual[skip..]))
        }
        Some((e, rest)) => actual
            .split_first()
            .is_some_and(|(a, more)| line_matches(e, a) && output_matches(rest, more)),
    }
}

/// Quotes a string for `sh`.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The script one file's blocks make: `__line` tracks the command running, for the report.
fn script(steps: &[Step], state: &Path) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "__state={}", quote(&state.display().to_string()));
    let _ = writeln!(s, "__line=0");
    let _ = writeln!(
        s,
        "trap 'printf \"%s\\n\" \"$__line\" >\"$__state/line\"' EXIT"
    );
    // One stream, so that a failure's message comes after what ran before it.
    let _ = writeln!(s, "exec 2>&1");
    let _ = writeln!(s, "set -e");
    for step in steps {
        let n = step.line;
        let _ = writeln!(s, "__line={n}");
        let _ = writeln!(s, "printf '+ line %s\\n' {n}");
        if step.checked() {
            // In an `&&`/`||` list `set -e` does not stop the shell: the status is ours to check.
            let expected = step.exit.unwrap_or(0);
            let _ = writeln!(
                s,
                "{{ {}\n}} >\"$__state/{n}.out\" 2>&1 && __rc=0 || __rc=$?",
                step.text
            );
            let _ = writeln!(s, "cat \"$__state/{n}.out\"");
            let _ = writeln!(s, "printf '%s\\n' \"$__rc\" >\"$__state/{n}.rc\"");
            let _ = writeln!(s, "[ \"$__rc\" -eq {expected} ] || exit 86");
        } else {
            let _ = writeln!(s, "{}", step.text);
        }
    }
    let _ = writeln!(s, "__line=end");
    s
}

/// What one file held.
#[derive(Debug, Default)]
struct Tally {
    blocks_run: usize,
    commands: usize,
    checked: usize,
    not_run: Vec<(usize, String)>,
}

/// The `sh` commands of a file, in order, after checking every block's marking.
fn collect(file: &str, text: &str) -> Result<(Vec<Step>, Tally)> {
    let mut all = Vec::new();
    let mut tally = Tally::default();
    for block in blocks(text) {
        let lang = block.lang.as_str();
        if OTHER_SHELLS.contains(&lang) {
            return Err(format!(
                "{file}:{}: shell examples are tagged `sh` (run by `sh -e`), not `{lang}`",
                block.line
            ));
        }
        if lang.is_empty() || lang == "text" {
            if let Some((n, _)) = block
                .lines
                .iter()
                .find(|(_, l)| COMMAND_STARTS.iter().any(|s| l.trim_start().starts_with(s)))
            {
                return Err(format!(
                    "{file}:{n}: commands in a block that is not tagged `sh`: tag it `sh` so it \
                     runs (or `# not run: REASON`), or `text` if it is output"
                ));
            }
            continue;
        }
        if lang != "sh" {
            continue;
        }
        if let Some(reason) = not_run_reason(&block, file)? {
            tally.not_run.push((block.line, reason));
            continue;
        }
        let steps = steps(&block, file)?;
        tally.blocks_run += 1;
        tally.commands += steps.len();
        tally.checked += steps.iter().filter(|s| s.checked()).count();
        all.extend(steps);
    }
    Ok((all, tally))
}

/// The scratch directory of a file: two levels below the root, like `target/readme`.
fn scratch_name(file: &str) -> String {
    match file {
        "README.md" => "readme".to_owned(),
        other => format!(
            "readme-{}",
            other
                .trim_end_matches(".md")
                .replace(['/', '.'], "-")
                .to_lowercase()
        ),
    }
}

/// The last `n` lines of a text, indented.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| format!("    {l}\n"))
        .collect()
}

/// Runs one file's commands; fails naming the line of the first command that did not do what
/// the file says.
fn run_file(file: &str, steps: &[Step]) -> Result {
    let root = root();
    let scratch = root.join("target").join(scratch_name(file));
    let state = root.join("target/readme-state").join(scratch_name(file));
    for dir in [&scratch, &state] {
        if dir.exists() {
            fs::remove_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let script_path = state.join("script.sh");
    fs::write(&script_path, script(steps, &state)).map_err(|e| e.to_string())?;
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![root.join("target/debug")];
    paths.extend(std::env::split_paths(&path));
    let mut cmd = Command::new("timeout");
    cmd.arg(TIMEOUT_SECONDS.to_string())
        .args(["sh", "-e"])
        .arg(&script_path)
        .current_dir(&scratch)
        .env(
            "PATH",
            std::env::join_paths(paths).map_err(|e| e.to_string())?,
        )
        .stdin(Stdio::null());
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("SBSFU_") {
            cmd.env_remove(key);
        }
    }
    // Into a file, not a pipe: a job a block left in the background cannot keep the run waiting.
    let log_path = state.join("output.log");
    let log_file =
        fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let mut child = cmd
        .stdout(log_file.try_clone().map_err(|e| e.to_string())?)
        .stderr(log_file)
        .spawn()
        .map_err(|e| format!("cannot run sh under timeout: {e}"))?;
    let status = child.wait().map_err(|e| e.to_string())?;
    // `timeout` leads a process group of its own: what is still running there is stopped.
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .stderr(Stdio::null())
        .status();
    let log = fs::read_to_string(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let stopped_at = fs::read_to_string(state.join("line")).unwrap_or_default();
    let stopped_at = stopped_at.trim();
    let shown = |step: &Step| {
        let first = step.text.lines().next().unwrap_or("").trim();
        if step.text.lines().count() > 1 {
            format!("`{first} ...`")
        } else {
            format!("`{first}`")
        }
    };
    // The first command in file order that did not do what the file says.
    for step in steps {
        let n = step.line;
        let reached = stopped_at == "end" || stopped_at.parse::<usize>().is_ok_and(|at| at >= n);
        if !reached {
            break;
        }
        if step.checked() {
            let rc = fs::read_to_string(state.join(format!("{n}.rc"))).unwrap_or_default();
            let output = fs::read_to_string(state.join(format!("{n}.out"))).unwrap_or_default();
            let expected = step.exit.unwrap_or(0);
            if rc.trim() != expected.to_string() {
                return Err(format!(
                    "{file}:{n}: {} exited with {}, the file says {expected}; its output:\n{}",
                    shown(step),
                    rc.trim(),
                    tail(&output, 20)
                ));
            }
            let actual: Vec<&str> = output.lines().map(str::trim_end).collect();
            if !step.output.is_empty() && !output_matches(&step.output, &actual) {
                return Err(format!(
                    "{file}:{n}: {} printed other lines than the file shows\n  the file:\n{}  \
                     printed:\n{}",
                    shown(step),
                    tail(&step.output.join("\n"), 40),
                    tail(&output, 40)
                ));
            }
        } else if stopped_at == n.to_string() && !status.success() {
            let code = status.code().map_or("a signal".into(), |c| c.to_string());
            return Err(format!(
                "{file}:{n}: {} failed (exit status {code}); the run's last output:\n{}",
                shown(step),
                tail(&log, 25)
            ));
        }
    }
    if status.code() == Some(124) {
        return Err(format!(
            "{file}: the examples took over {TIMEOUT_SECONDS} s (line {stopped_at}): is a \
             command waiting for input?"
        ));
    }
    if !status.success() || stopped_at != "end" {
        return Err(format!(
            "{file}: the examples stopped at line {stopped_at} ({}):\n{}",
            status,
            tail(&log, 25)
        ));
    }
    Ok(())
}

/// The Markdown files whose `sh` blocks run: [`FILES`], then `docs/*.md` in name order.
fn files() -> Result<Vec<String>> {
    let mut files: Vec<String> = FILES.iter().map(|f| (*f).to_owned()).collect();
    let docs = root().join("docs");
    let mut names: Vec<String> = fs::read_dir(&docs)
        .map_err(|e| format!("{}: {e}", docs.display()))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".md"))
        .collect();
    names.sort();
    files.extend(names.into_iter().map(|n| format!("docs/{n}")));
    Ok(files)
}

/// `cargo xtask readme`.
pub fn readme() -> Result {
    setup::host_tools()?;
    step("the sbsfu CLI the examples run");
    sbsfu_cli()?;
    let mut not_run: BTreeMap<String, Vec<(usize, String)>> = BTreeMap::new();
    for file in files()? {
        let path: PathBuf = root().join(&file);
        let text = fs::read_to_string(&path).map_err(|e| format!("{file}: {e}"))?;
        let (steps, tally) = collect(&file, &text)?;
        if tally.blocks_run == 0 && tally.not_run.is_empty() {
            continue;
        }
        step(&format!(
            "{file}: {} commands in {} block{}, in target/{}",
            tally.commands,
            tally.blocks_run,
            if tally.blocks_run == 1 { "" } else { "s" },
            scratch_name(&file)
        ));
        run_file(&file, &steps)?;
        println!(
            "{file}: {} commands ran as written ({} with their exit status or output checked)",
            tally.commands, tally.checked
        );
        if !tally.not_run.is_empty() {
            not_run.insert(file, tally.not_run);
        }
    }
    println!("\nblocks not run, and why:");
    for (file, blocks) in not_run {
        for (line, reason) in blocks {
            println!("  {file}:{line}: {reason}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "text\n\
```sh\n\
# not run: needs a board\n\
probe-rs run x\n\
```\n\
\n  ```\n  output, indented\n  ```\n\
```sh\n\
# a comment\n\
sbsfu sign --key k \\\n    --out x   # exit 3: refused\n\
#> sbsfu: error: ...\n\
echo ok\n\
```\n\
```rust\nlet x = 1;\n```\n";

    #[test]
    fn blocks_steps_and_markers_are_read_with_their_lines() {
        let (steps, tally) = collect("DOC", DOC).unwrap();
        assert_eq!(tally.not_run, vec![(2, "needs a board".to_owned())]);
        assert_eq!(tally.blocks_run, 1);
        assert_eq!(
            steps,
            vec![
                Step {
                    line: 12,
                    text: "sbsfu sign --key k \\\n    --out x   # exit 3: refused".into(),
                    exit: Some(3),
                    output: vec!["sbsfu: error: ...".into()],
                },
                Step {
                    line: 15,
                    text: "echo ok".into(),
                    exit: None,
                    output: vec![],
                },
            ]
        );
    }

    #[test]
    fn what_would_escape_the_test_is_refused() {
        for (doc, why) in [
            ("```bash\nls\n```\n", "tagged `sh`"),
            ("```\nsbsfu inspect a.sfu\n```\n", "not tagged `sh`"),
            ("```sh\n# not run\nls\n```\n", "needs a reason"),
            ("```sh\nls\n# not run: late\n```\n", "first line"),
            ("```sh\n#> out\n```\n", "follow its command"),
            ("```sh\nls\n\n#> out\n```\n", "follow its command"),
            ("```sh\nls |\nwc\n```\n", "one command per line"),
            ("```sh\ncat <<EOF\nx\nEOF\n```\n", "here-documents"),
            ("```sh\nfalse # exit three\n```\n", "`# exit N`"),
            ("```sh\nls \\\n```\n", "continuation"),
            ("text\n```sh\nls |\n", "one command per line"),
        ] {
            let e = collect("DOC", doc).unwrap_err();
            assert!(e.contains(why), "{doc:?}: {e}");
        }
    }

    #[test]
    fn comments_that_are_not_markers_are_comments() {
        let (steps, _) = collect("DOC", "```sh\nls   # exits early\necho a#b\n```\n").unwrap();
        assert_eq!(steps[0].exit, None);
        assert_eq!(steps[1].text, "echo a#b");
    }

    #[test]
    fn expected_output_matches_with_wildcards() {
        let e = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(output_matches(&e(&["a ... c"]), &["a b c"]));
        assert!(output_matches(&e(&["a ... c"]), &["a  c"]));
        assert!(!output_matches(&e(&["a ... c"]), &["a b c d"]));
        assert!(!output_matches(&e(&["a"]), &["a", "b"]));
        assert!(output_matches(&e(&["a", "..."]), &["a", "b", "c"]));
        assert!(output_matches(&e(&["...", "c"]), &["a", "b", "c"]));
        assert!(output_matches(&e(&["..."]), &[]));
        assert!(!output_matches(&e(&["...", "d"]), &["a", "b", "c"]));
        assert!(line_matches("x...y...z", "x1y2z"));
        assert!(!line_matches("ab...ba", "aba"));
    }

    /// Runs a document under a name of its own (its own scratch directory).
    fn run_doc(name: &str, doc: &str) -> Result {
        let (steps, _) = collect(name, doc)?;
        run_file(name, &steps)
    }

    #[test]
    fn a_document_that_does_what_it_says_passes() {
        let doc = "```sh\nprintf 'a\\nb\\n' > f.txt\nexport X=1\n```\ntext\n```sh\n\
                   cd . && cat f.txt   # exit 0\n#> a\n#> ...\n\
                   sh -c 'echo \"no $X\" >&2; exit 3'   # exit 3: refused\n#> no 1\n```\n";
        run_doc("selftest-pass.md", doc).unwrap();
    }

    #[test]
    fn the_first_command_that_differs_is_reported_with_its_line() {
        for (doc, at, what) in [
            (
                "```sh\ntrue\nfalse\ntrue\n```\n",
                ":3:",
                "`false` failed (exit status 1)",
            ),
            (
                "```sh\ntrue\n\ntrue   # exit 2\nfalse\n```\n",
                ":4:",
                "exited with 0, the file says 2",
            ),
            (
                "```sh\nfalse  # exit 1\n#> yes\n```\n",
                ":2:",
                "printed other lines",
            ),
            (
                "```sh\necho no\n#> yes\nfalse\n```\n",
                ":2:",
                "printed other lines",
            ),
            (
                "```sh\nsleep 600 &\necho \"$PATH\" | grep -q /target/debug:\ntest -t 0   # exit 1\n```\n",
                "",
                "",
            ),
        ] {
            match run_doc("selftest-fail.md", doc) {
                Err(e) => assert!(e.contains(at) && e.contains(what), "{doc:?}: {e}"),
                Ok(()) => assert!(at.is_empty(), "{doc:?} passed"),
            }
        }
    }

    #[test]
    fn scratch_directories_sit_two_levels_below_the_root() {
        assert_eq!(scratch_name("README.md"), "readme");
        assert_eq!(
            scratch_name("keys-example/README.md"),
            "readme-keys-example-readme"
        );
        assert_eq!(scratch_name("docs/BOOT.md"), "readme-docs-boot");
    }
}
