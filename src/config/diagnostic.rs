//! A problem in an experiment, located and rendered as
//! `file:line:col: key.path: message`, then the line and a caret.

use std::fmt;
use std::path::{Path, PathBuf};

/// Where a problem comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A place in a file; `line` 1-based, `col` 0-based, `len` characters to underline.
    File {
        path: PathBuf,
        line: usize,
        col: usize,
        len: usize,
        line_text: Option<String>,
    },
    /// A `--set key=value` on the command line.
    Set(String),
    /// A `TOPO_...` environment variable.
    Env(String),
}

impl Origin {
    /// The start of a file, for problems with the file as a whole.
    pub fn file_start(path: &Path) -> Origin {
        Origin::File {
            path: path.to_path_buf(),
            line: 1,
            col: 0,
            len: 0,
            line_text: None,
        }
    }

    /// A place in a file whose text is known, so the line can be shown.
    pub fn in_file(path: &Path, text: &str, line: usize, col: usize, len: usize) -> Origin {
        let line_text = text.lines().nth(line.saturating_sub(1)).map(str::to_string);
        Origin::File {
            path: path.to_path_buf(),
            line: line.max(1),
            col,
            len,
            line_text,
        }
    }
}

/// One problem, with an optional hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub origin: Origin,
    /// `grid.topography[2]`; empty for the file as a whole.
    pub key_path: String,
    pub message: String,
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn new(
        origin: Origin,
        key_path: impl Into<String>,
        message: impl Into<String>,
    ) -> Diagnostic {
        Diagnostic {
            origin,
            key_path: key_path.into(),
            message: message.into(),
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: Option<String>) -> Diagnostic {
        self.hint = hint;
        self
    }

    /// For sorting: file, then line, then column.
    pub fn sort_key(&self) -> (String, usize, usize) {
        match &self.origin {
            Origin::File {
                path, line, col, ..
            } => (path.display().to_string(), *line, *col),
            Origin::Env(v) => (format!("~env {v}"), 0, 0),
            Origin::Set(s) => (format!("~set {s}"), 0, 0),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Origin::File {
                path, line, col, ..
            } => write!(f, "{}:{}:{}: ", path.display(), line, col + 1)?,
            Origin::Set(s) => write!(f, "--set {s}: ")?,
            Origin::Env(v) => write!(f, "environment variable {v}: ")?,
        }
        if !self.key_path.is_empty() {
            write!(f, "{}: ", self.key_path)?;
        }
        write!(f, "{}", self.message)?;
        if let Origin::File {
            line,
            col,
            len,
            line_text: Some(text),
            ..
        } = &self.origin
        {
            let number = line.to_string();
            let pad = " ".repeat(number.len());
            let (shown, col) = window(text, *col);
            let len = (*len).clamp(1, WINDOW);
            // Tabs keep their width so the caret lines up under the offending text.
            let lead: String = shown
                .chars()
                .take(col)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            write!(
                f,
                "\n{pad} |\n{number} | {shown}\n{pad} | {lead}{}",
                "^".repeat(len)
            )?;
        }
        if let Some(hint) = &self.hint {
            write!(
                f,
                "\n{} = hint: {hint}",
                " ".repeat(self.line_number_width())
            )?;
        }
        Ok(())
    }
}

/// Longest stretch of a line shown under a message.
const WINDOW: usize = 100;

/// The part of a long line around `col`, and the column within it.
fn window(text: &str, col: usize) -> (String, usize) {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= WINDOW {
        return (text.to_string(), col);
    }
    let start = col
        .saturating_sub(WINDOW / 2)
        .min(chars.len().saturating_sub(WINDOW));
    let end = (start + WINDOW).min(chars.len());
    let mut shown: String = chars[start..end].iter().collect();
    let mut col = col - start;
    if start > 0 {
        shown = format!("...{shown}");
        col += 3;
    }
    if end < chars.len() {
        shown.push_str("...");
    }
    (shown, col)
}

impl Diagnostic {
    fn line_number_width(&self) -> usize {
        match &self.origin {
            Origin::File {
                line,
                line_text: Some(_),
                ..
            } => line.to_string().len(),
            _ => 0,
        }
    }
}

/// Every problem found in one experiment, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// Sorts by place and drops exact repeats (one mistake seen by two checks).
    pub fn finish(mut self) -> Diagnostics {
        self.0.sort_by_key(|d| d.sort_key());
        self.0.dedup();
        self
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.0 {
            writeln!(f, "{d}\n")?;
        }
        let n = self.0.len();
        write!(f, "{n} problem{} found", if n == 1 { "" } else { "s" })
    }
}

impl std::error::Error for Diagnostics {}

/// Edit distance counting an adjacent transposition as one edit (`gird` -> `grid`),
/// for "did you mean" hints.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// The closest candidate, if close enough to be a likely typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        // A name cut short (`vgg16` for `vgg16_bn`) is as likely a slip as a typo.
        .map(|c| {
            (
                if c.starts_with(word) && word.len() >= 3 {
                    1
                } else {
                    edit_distance(word, c)
                },
                c,
            )
        })
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `a`, `b` or `c` — for messages listing the accepted values.
pub fn one_of<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let items: Vec<String> = items.into_iter().map(|s| format!("`{s}`")).collect();
    match items.len() {
        0 => String::new(),
        1 => items[0].clone(),
        n => format!("{} or {}", items[..n - 1].join(", "), items[n - 1]),
    }
}
