//! `report/index.html`: the index as one self-contained page (no script, no network; the
//! figures are the PNG files beside it). It is rendered from `index.md` itself, so the two
//! never say different things: this is a renderer of the Markdown subset the report
//! writes (headings, paragraphs, pipe tables, lists, images, links, inline code).

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

/// The page for the Markdown `markdown`, titled `title`.
pub fn index_html(title: &str, markdown: &str) -> String {
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        escape(title)
    );
    let lines: Vec<&str> = markdown.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if line.trim().is_empty() {
            i += 1;
        } else if let Some((level, text)) = heading(line) {
            out.push_str(&format!("<h{level}>{}</h{level}>\n", inline(text)));
            i += 1;
        } else if line.starts_with('|') {
            let end = block_end(&lines, i, |l| l.starts_with('|'));
            out.push_str(&table(&lines[i..end]));
            i = end;
        } else if line.starts_with("- ") {
            let end = block_end(&lines, i, |l| l.starts_with("- "));
            out.push_str(&list(&lines[i..end]));
            i = end;
        } else {
            let end = block_end(&lines, i, |l| {
                !l.trim().is_empty() && heading(l).is_none() && !l.starts_with('|')
            });
            let text: Vec<&str> = lines[i..end].iter().map(|l| l.trim()).collect();
            out.push_str(&format!("<p>{}</p>\n", inline(&text.join(" "))));
            i = end;
        }
    }
    out.push_str("</body>\n</html>\n");
    out
}

/// The first line from `start` on that is not part of the block.
fn block_end(lines: &[&str], start: usize, part: impl Fn(&str) -> bool) -> usize {
    (start..lines.len())
        .find(|&j| !part(lines[j]))
        .unwrap_or(lines.len())
}

fn heading(line: &str) -> Option<(usize, &str)> {
    let level = line.chars().take_while(|&c| c == '#').count();
    let text = line[level..].strip_prefix(' ')?;
    (1..=6).contains(&level).then_some((level, text))
}

/// Column alignment from a `|:---|---:|:---:|` row.
#[derive(Clone, Copy)]
enum Align {
    Left,
    Right,
    Centre,
}

fn cells(row: &str) -> Vec<String> {
    let inner = row.trim().trim_start_matches('|');
    let inner = inner.strip_suffix('|').unwrap_or(inner);
    // `\|` is a bar inside a cell.
    let mut out = vec![String::new()];
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                chars.next();
                if let Some(last) = out.last_mut() {
                    last.push('|');
                }
            }
            '|' => out.push(String::new()),
            _ => {
                if let Some(last) = out.last_mut() {
                    last.push(c);
                }
            }
        }
    }
    out.into_iter().map(|c| c.trim().to_string()).collect()
}

fn table(rows: &[&str]) -> String {
    let is_rule = |r: &str| {
        cells(r)
            .iter()
            .all(|c| !c.is_empty() && c.chars().all(|ch| "-: ".contains(ch)))
    };
    let (head, aligns, body) = match rows {
        [head, rule, body @ ..] if is_rule(rule) => {
            let aligns: Vec<Align> = cells(rule)
                .iter()
                .map(|c| match (c.starts_with(':'), c.ends_with(':')) {
                    (true, true) => Align::Centre,
                    (false, true) => Align::Right,
                    _ => Align::Left,
                })
                .collect();
            (Some(*head), aligns, body)
        }
        _ => (None, Vec::new(), rows),
    };
    let class = |j: usize| match aligns.get(j) {
        Some(Align::Right) => " class=\"r\"",
        Some(Align::Centre) => " class=\"c\"",
        _ => "",
    };
    let mut out = String::from("<table>\n");
    if let Some(head) = head {
        out.push_str("<thead><tr>");
        for (j, c) in cells(head).iter().enumerate() {
            out.push_str(&format!("<th{}>{}</th>", class(j), inline(c)));
        }
        out.push_str("</tr></thead>\n");
    }
    out.push_str("<tbody>\n");
    for row in body {
        out.push_str("<tr>");
        for (j, c) in cells(row).iter().enumerate() {
            out.push_str(&format!("<td{}>{}</td>", class(j), inline(c)));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
    out
}

/// A list; one whose items are all links to PNG files (each run's maps) is shown as a
/// gallery of the images themselves.
fn list(items: &[&str]) -> String {
    let texts: Vec<&str> = items.iter().map(|l| &l[2..]).collect();
    let images: Option<Vec<(String, String)>> = texts
        .iter()
        .map(|t| match link(t) {
            Some((label, url, len)) if len == t.len() && url.ends_with(".png") => {
                Some((label.to_string(), url.to_string()))
            }
            _ => None,
        })
        .collect();
    match images {
        Some(images) => {
            let mut out = String::from("<ul class=\"maps\">\n");
            for (label, url) in images {
                out.push_str(&format!(
                    "<li><figure><a href=\"{u}\"><img src=\"{u}\" alt=\"{l}\"></a>\
                     <figcaption>{l}</figcaption></figure></li>\n",
                    u = escape(&url),
                    l = escape(&label)
                ));
            }
            out.push_str("</ul>\n");
            out
        }
        None => {
            let mut out = String::from("<ul>\n");
            for t in texts {
                out.push_str(&format!("<li>{}</li>\n", inline(t)));
            }
            out.push_str("</ul>\n");
            out
        }
    }
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
    fn tables_keep_their_alignment_and_escaped_bars() {
        let html = index_html(
            "t",
            "| Run | Acc | ✓ |\n|:---|---:|:---:|\n| `a<b` | 1.5 | x \\| y |\n",
        );
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
    fn headings_paragraphs_images_and_links() {
        let md = "# Report: x\n\nSome `code` and\na second line.\n\n![A <figure>](figures/a.png)\n\n[PNG](figures/a.png) · [CSV](t.csv)\n";
        let html = index_html("Report: x", md);
        assert!(html.contains("<title>Report: x</title>"));
        assert!(html.contains("<h1>Report: x</h1>"));
        assert!(
            html.contains("<p>Some <code>code</code> and a second line.</p>"),
            "{html}"
        );
        assert!(
            html.contains("<img src=\"figures/a.png\" alt=\"A &lt;figure&gt;\">"),
            "{html}"
        );
        assert!(
            html.contains("<a href=\"figures/a.png\">PNG</a> · <a href=\"t.csv\">CSV</a>"),
            "{html}"
        );
        assert!(!html.contains("<script"));
    }

    #[test]
    fn a_list_of_png_links_is_a_gallery_and_others_stay_lists() {
        let html = index_html(
            "t",
            "- [run-a](figures/maps/run-a.png)\n- [run-b](figures/maps/run-b.png)\n",
        );
        assert_eq!(
            html.matches("<img src=\"figures/maps/run-").count(),
            2,
            "{html}"
        );
        let html = index_html("t", "- `run-a`: failed (lock present)\n- `b`\n");
        assert!(
            html.contains("<li><code>run-a</code>: failed (lock present)</li>"),
            "{html}"
        );
    }
}
