//! A small document model rendered to Markdown and to one self-contained HTML file, so the two
//! formats always carry the same numbers (each is produced once, from the run's own files).
use std::path::Path;

use anyhow::{Context, Result};
use base64::Engine;

pub enum Block {
    Heading(String),
    Paragraph(String),
    /// Header row, then body rows.
    Table(Vec<String>, Vec<Vec<String>>),
    /// Caption and PNG file name relative to the document.
    Image(String, String),
}

pub fn markdown(blocks: &[Block]) -> String {
    let mut s = String::new();
    for b in blocks {
        match b {
            Block::Heading(t) => s.push_str(&format!("## {t}\n\n")),
            Block::Paragraph(t) => s.push_str(&format!("{t}\n\n")),
            Block::Table(head, rows) => {
                s.push_str(&format!("| {} |\n", head.join(" | ")));
                s.push_str(&format!("|{}\n", "---|".repeat(head.len())));
                for r in rows {
                    s.push_str(&format!("| {} |\n", r.join(" | ")));
                }
                s.push('\n');
            }
            Block::Image(caption, file) => s.push_str(&format!("![{caption}]({file})\n\n")),
        }
    }
    s
}

fn escape(t: &str) -> String {
    t.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// HTML with every image embedded as a data URI (one file to mail or attach).
pub fn html(title: &str, blocks: &[Block], dir: &Path) -> Result<String> {
    let mut s = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{}</title>\n<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}}table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #bbb;padding:3px 8px;text-align:right}}th{{background:#eee}}img{{max-width:100%}}</style></head><body>\n<h1>{}</h1>\n",
        escape(title),
        escape(title)
    );
    for b in blocks {
        match b {
            Block::Heading(t) => s.push_str(&format!("<h2>{}</h2>\n", escape(t))),
            Block::Paragraph(t) => s.push_str(&format!("<p>{}</p>\n", escape(t))),
            Block::Table(head, rows) => {
                s.push_str("<table><tr>");
                for h in head {
                    s.push_str(&format!("<th>{}</th>", escape(h)));
                }
                s.push_str("</tr>\n");
                for r in rows {
                    s.push_str("<tr>");
                    for c in r {
                        s.push_str(&format!("<td>{}</td>", escape(c)));
                    }
                    s.push_str("</tr>\n");
                }
                s.push_str("</table>\n");
            }
            Block::Image(caption, file) => {
                let path = dir.join(file);
                let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
                let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
                s.push_str(&format!(
                    "<figure><img alt=\"{0}\" src=\"data:image/png;base64,{b64}\"><figcaption>{0}</figcaption></figure>\n",
                    escape(caption)
                ));
            }
        }
    }
    s.push_str("</body></html>\n");
    Ok(s)
}
