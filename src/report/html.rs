//! `report/index.html`: the index as one self-contained page (no script, no network; the
//! figures are the PNG files beside it), rendered from the same blocks as `index.md`
//! ([`super::page`]), so the two never say different things. Inline text (`code`,
//! [links](url), images) is turned into HTML here.

use super::page::{Align, Block, Grid};

/// The page's look, inline: a page must not fetch anything.
const STYLE: &str = "\
body{font:15px/1.5 system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;max-width:72rem;padding:0 1rem;color:#1b1b1b}\
h1{font-size:1.7rem;border-bottom:2px solid #ddd;padding-bottom:.3rem}\
h2{font-size:1.35rem;margin-top:2.2rem;border-bottom:1px solid #eee}\
h3{font-size:1.15rem;margin-top:1.6rem}h4{font-size:1rem}\
table{border-collapse:collapse;margin:.6rem 0 1rem;font-size:.9rem}\
th,td{border:1px solid #d6d6d6;padding:.25rem .6rem}th{background:#f3f3f3}\
tr:nth-child(even) td{background:#fafafa}\
td.r,th.r{text-align:right;font-variant-numeric:tabular-nums}td.c,th.c{text-align:center}\
code{background:#f2f2f2;padding:0 .25rem;border-radius:3px;font-size:.88em}\
img{max-width:100%;height:auto;border:1px solid #eee}\
.maps{display:grid;grid-template-columns:repeat(auto-fill,minmax(30rem,1fr));gap:1rem;padding:0;list-style:none}\
.maps figure{margin:0}.maps figcaption{font-size:.8rem;word-break:break-all}";

/// The page of `blocks`, titled `title`.
pub fn index_html(title: &str, blocks: &[Block]) -> String {
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        escape(title)
    );
    for block in blocks {
        match block {
            Block::Heading { level, text } => {
                let level = (*level).clamp(1, 6);
                out.push_str(&format!("<h{level}>{}</h{level}>\n", inline(text)));
            }
            Block::Paragraph(text) => out.push_str(&format!("<p>{}</p>\n", inline(text))),
            Block::Table(grid) => out.push_str(&table(grid)),
            Block::List(items) => {
                out.push_str("<ul>\n");
                for item in items {
                    out.push_str(&format!("<li>{}</li>\n", inline(item)));
                }
                out.push_str("</ul>\n");
            }
            Block::Gallery(images) => {
                out.push_str("<ul class=\"maps\">\n");
                for (label, url) in images {
                    out.push_str(&format!(
                        "<li><figure><a href=\"{u}\"><img src=\"{u}\" alt=\"{l}\"></a>\
                         <figcaption>{l}</figcaption></figure></li>\n",
                        u = escape(url),
                        l = escape(label)
                    ));
                }
                out.push_str("</ul>\n");
            }
            Block::Figure { title, png, svg } => {
                out.push_str(&format!(
                    "<figure><img src=\"{p}\" alt=\"{t}\"><figcaption>{t}</figcaption></figure>\n\
                     <p><a href=\"{p}\">PNG</a> · <a href=\"{s}\">SVG</a></p>\n",
                    p = escape(png),
                    s = escape(svg),
                    t = escape(title)
                ));
            }
        }
    }
    out.push_str("</body>\n</html>\n");
    out
}

fn table(grid: &Grid) -> String {
    let class = |j: usize| match grid.align.get(j) {
        Some(Align::Right) => " class=\"r\"",
        Some(Align::Centre) => " class=\"c\"",
        _ => "",
    };
    let mut out = String::from("<table>\n<thead><tr>");
    for (j, c) in grid.header.iter().enumerate() {
        out.push_str(&format!("<th{}>{}</th>", class(j), inline(c)));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in &grid.rows {
        out.push_str("<tr>");
        for (j, c) in row.iter().enumerate() {
            out.push_str(&format!("<td{}>{}</td>", class(j), inline(c)));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
    out
}

/// `[label](url)` at the start of `text`: label, url and the bytes it spans.
fn link(text: &str) -> Option<(&str, &str, usize)> {
    let rest = text.strip_prefix('[')?;
    let close = rest.find("](")?;
    let label = &rest[..close];
    let after = &rest[close + 2..];
    let end = after.find(')')?;
    Some((label, &after[..end], 1 + close + 2 + end + 1))
}

/// Inline Markdown: images, links, `code`; everything else escaped.
fn inline(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('!')
            && let Some((alt, url, len)) = link(after)
        {
            out.push_str(&format!(
                "<figure><img src=\"{}\" alt=\"{a}\"><figcaption>{a}</figcaption></figure>",
                escape(url),
                a = escape(alt)
            ));
            rest = &after[len..];
        } else if let Some((label, url, len)) = link(rest) {
            out.push_str(&format!(
                "<a href=\"{}\">{}</a>",
                escape(url),
                inline(label)
            ));
            rest = &rest[len..];
        } else if let Some(after) = rest.strip_prefix('`')
            && let Some(end) = after.find('`')
        {
            out.push_str(&format!("<code>{}</code>", escape(&after[..end])));
            rest = &after[end + 1..];
        } else {
            let next = rest
                .char_indices()
                .skip(1)
                .find(|&(_, c)| "![`".contains(c))
                .map_or(rest.len(), |(j, _)| j);
            out.push_str(&escape(&rest[..next]));
            rest = &rest[next..];
        }
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_keep_their_alignment_and_their_cells_whole() {
        let mut grid = Grid::with(&[
            ("Run", Align::Left),
            ("Acc", Align::Right),
            ("✓", Align::Centre),
        ]);
        grid.rows
            .push(vec!["`a<b`".into(), "1.5".into(), "x | y".into()]);
        let html = index_html("t", &[Block::Table(grid)]);
        assert!(
            html.contains("<th>Run</th><th class=\"r\">Acc</th><th class=\"c\">✓</th>"),
            "{html}"
        );
        assert!(
            html.contains(
                "<td><code>a&lt;b</code></td><td class=\"r\">1.5</td><td class=\"c\">x | y</td>"
            ),
            "{html}"
        );
    }

    #[test]
    fn headings_paragraphs_figures_and_links() {
        let html = index_html(
            "Report: x",
            &[
                Block::heading(1, "Report: x"),
                Block::paragraph("Some `code` and [a link](t.csv)."),
                Block::Figure {
                    title: "A <figure>".into(),
                    png: "figures/a.png".into(),
                    svg: "figures/a.svg".into(),
                },
            ],
        );
        assert!(html.contains("<title>Report: x</title>"));
        assert!(html.contains("<h1>Report: x</h1>"));
        assert!(
            html.contains("<p>Some <code>code</code> and <a href=\"t.csv\">a link</a>.</p>"),
            "{html}"
        );
        assert!(
            html.contains("<img src=\"figures/a.png\" alt=\"A &lt;figure&gt;\">"),
            "{html}"
        );
        assert!(
            html.contains("<a href=\"figures/a.png\">PNG</a> · <a href=\"figures/a.svg\">SVG</a>"),
            "{html}"
        );
        assert!(!html.contains("<script"));
    }

    #[test]
    fn a_gallery_shows_its_images_and_a_list_its_items() {
        let html = index_html(
            "t",
            &[Block::Gallery(vec![
                ("run-a".into(), "figures/maps/run-a.png".into()),
                ("run-b".into(), "figures/maps/run-b.png".into()),
            ])],
        );
        assert_eq!(
            html.matches("<img src=\"figures/maps/run-").count(),
            2,
            "{html}"
        );
        let html = index_html(
            "t",
            &[Block::List(vec![
                "`run-a`: failed (lock present)".into(),
                "`b`".into(),
            ])],
        );
        assert!(
            html.contains("<li><code>run-a</code>: failed (lock present)</li>"),
            "{html}"
        );
    }
}
