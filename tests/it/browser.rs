//! The HTML report in a real browser: a tiny experiment (a failed run among them) is
//! trained and reported, then headless Chromium opens `report/index.html` through
//! WebDriver (`scripts/browser_check.py`): it must render with no console error, no
//! broken image and no network request. The screenshot is kept in
//! `target/tmp/report-screenshot.png`.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::common::TinyExperiment;

#[test]
fn the_html_report_renders_in_chromium_with_every_table_and_figure() {
    // lambda 1e39 overflows: that run fails and the report lists it.
    let tiny = TinyExperiment::new(
        "html",
        "grid: { lambda: [1, 1.0e+39] }\npruning: { methods: [l2], proportions: [0, 0.5] }\n",
    );
    tiny.expect("run", &[], 1);
    let report = tiny.results.join("html").join("report");
    let page = report.join("index.html");
    let html = std::fs::read_to_string(&page).unwrap();
    let markdown = std::fs::read_to_string(report.join("index.md")).unwrap();

    // The page says what the index says: its headings, the failed run and its reason.
    for line in markdown.lines().filter(|l| l.starts_with('#')) {
        let level = line.chars().take_while(|&c| c == '#').count();
        let text = line[level..].trim().replace('`', "");
        let tag = format!("<h{level}>");
        assert!(
            html.lines().any(|l| l.starts_with(&tag)
                && l.replace("<code>", "")
                    .replace("</code>", "")
                    .contains(&text)),
            "heading `{line}` missing from index.html"
        );
    }
    for needle in [
        "Failed runs",
        "λ chosen",
        "(not finite)",
        "figures/pruning_l2.png",
    ] {
        assert!(html.contains(needle), "`{needle}` missing from index.html");
    }
    for src in html.split("src=\"").skip(1) {
        let src = &src[..src.find('"').unwrap()];
        assert!(report.join(src).is_file(), "{src} is not beside the page");
    }

    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-screenshot.png");
    let check = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/browser_check.py"))
        .arg(&page)
        .arg("--screenshot")
        .arg(&screenshot)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "Chromium found problems (exit {:?}): {stdout}\n{}",
        check.status.code(),
        String::from_utf8_lossy(&check.stderr)
    );
    let seen: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(seen["title"], "Report: html", "{seen}");
    let tables = html.matches("<table>").count() as u64;
    assert!(tables >= 4, "{tables} tables");
    assert_eq!(seen["tables"].as_u64(), Some(tables), "{seen}");
    let images = html.matches("<img ").count() as u64;
    assert!(images >= 5, "{images} images");
    assert_eq!(seen["images"].as_u64(), Some(images), "{seen}");
    assert!(seen["height"].as_u64().unwrap() > 2000, "{seen}");
    let png = std::fs::read(&screenshot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 50_000,
        "{} bytes",
        png.len()
    );
    eprintln!("screenshot: {}", screenshot.display());
}
