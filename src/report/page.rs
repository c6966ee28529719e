//! The report's pages as values: blocks of headings, paragraphs, tables, lists and
//! figures, which `index.md` (and each table's own file) and `index.html` both render, so
//! the two say the same thing without either being read back from the other. Text inside
//! a block is inline Markdown (`code`, [links](url)); each renderer turns it into its own.

/// How a column's cells are aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
    Centre,
}

/// A table: a header, each column's alignment, and rows of cells.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    pub header: Vec<String>,
    pub align: Vec<Align>,
    pub rows: Vec<Vec<String>>,
}

impl Grid {
    /// A grid whose first column is left-aligned and the others right-aligned (numbers).
    pub fn numeric(header: Vec<String>) -> Grid {
        let align = (0..header.len())
            .map(|j| if j == 0 { Align::Left } else { Align::Right })
            .collect();
        Grid {
            header,
            align,
            rows: Vec::new(),
        }
    }

    /// A grid with the columns' alignments given.
    pub fn with(columns: &[(&str, Align)]) -> Grid {
        Grid {
            header: columns.iter().map(|(h, _)| h.to_string()).collect(),
            align: columns.iter().map(|&(_, a)| a).collect(),
            rows: Vec::new(),
        }
    }
}

/// One block of a page.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    Heading {
        level: usize,
        text: String,
    },
    Paragraph(String),
    Table(Grid),
    List(Vec<String>),
    /// Links to images shown as a gallery of the images themselves (each run's maps).
    Gallery(Vec<(String, String)>),
    /// A figure with links to its PNG and SVG files.
    Figure {
        title: String,
        png: String,
        svg: String,
    },
}

impl Block {
    pub fn heading(level: usize, text: impl Into<String>) -> Block {
        Block::Heading {
            level,
            text: text.into(),
        }
    }

    pub fn paragraph(text: impl Into<String>) -> Block {
        Block::Paragraph(text.into())
    }
}

/// The blocks as Markdown: each block's lines, a blank line between blocks.
pub fn markdown(blocks: &[Block]) -> String {
    let parts: Vec<String> = blocks.iter().map(block_markdown).collect();
    parts.join("\n")
}

fn block_markdown(block: &Block) -> String {
    match block {
        Block::Heading { level, text } => format!("{} {text}\n", "#".repeat(*level)),
        Block::Paragraph(text) => format!("{text}\n"),
        Block::Table(grid) => {
            let mut out = row_markdown(&grid.header);
            out.push('|');
            for a in &grid.align {
                out.push_str(match a {
                    Align::Left => ":---|",
                    Align::Right => "---:|",
                    Align::Centre => ":---:|",
                });
            }
            out.push('\n');
            for row in &grid.rows {
                out.push_str(&row_markdown(row));
            }
            out
        }
        Block::List(items) => items.iter().map(|i| format!("- {i}\n")).collect(),
        Block::Gallery(images) => images
            .iter()
            .map(|(label, url)| format!("- [{label}]({url})\n"))
            .collect(),
        Block::Figure { title, png, svg } => {
            format!("![{title}]({png})\n\n[PNG]({png}) · [SVG]({svg})\n")
        }
    }
}

/// `| a | b |`; a cell's bars are escaped and its line breaks become spaces.
fn row_markdown(cells: &[String]) -> String {
    let mut out = String::from("|");
    for c in cells {
        let c = c.replace('|', "\\|").replace('\n', " ");
        if c.is_empty() {
            out.push_str(" |");
        } else {
            out.push_str(&format!(" {c} |"));
        }
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_render_as_the_report_has_always_written_them() {
        let mut grid = Grid::with(&[
            ("", Align::Left),
            ("Acc", Align::Right),
            ("✓", Align::Centre),
        ]);
        grid.rows
            .push(vec!["`a`".into(), "1.5".into(), "x | y".into()]);
        let md = markdown(&[
            Block::heading(2, "Tables"),
            Block::paragraph("Some `code`."),
            Block::Table(grid),
            Block::List(vec!["one".into()]),
            Block::Figure {
                title: "T".into(),
                png: "f.png".into(),
                svg: "f.svg".into(),
            },
        ]);
        assert_eq!(
            md,
            "## Tables\n\nSome `code`.\n\n| | Acc | ✓ |\n|:---|---:|:---:|\n| `a` | 1.5 | x \\| y |\n\n- one\n\n\
             ![T](f.png)\n\n[PNG](f.png) · [SVG](f.svg)\n"
        );
    }
}
