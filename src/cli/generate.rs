//! `confluencefs completions SHELL` and `confluencefs man`: both generated at run time from the
//! clap definitions the parser uses, so they cannot drift from the flags, and need no build
//! step or files shipped beside the binary.
//!
//! clap_mangen writes one page per command; a user looks in one place, so the subcommands'
//! pages are folded into the top page, each as a section named after the command whose own
//! sections (synopsis, description, options) become subsections.

use std::io::Write;

use anyhow::Context;
use clap::CommandFactory;

/// Writes the completion script for `shell` to stdout.
pub(super) fn completions(shell: clap_complete::Shell) -> anyhow::Result<()> {
    let mut command = super::Args::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command, "confluencefs", &mut out);
    write_stdout(&out)
}

/// Writes the man page (roff) to stdout.
pub(super) fn man() -> anyhow::Result<()> {
    write_stdout(&man_page()?)
}

fn man_page() -> anyhow::Result<Vec<u8>> {
    let mut command = super::Args::command();
    command.build();
    let top = clap_mangen::Man::new(command.clone());
    let mut page = Vec::new();
    top.render_title(&mut page)?;
    top.render_name_section(&mut page)?;
    top.render_synopsis_section(&mut page)?;
    top.render_description_section(&mut page)?;
    top.render_options_section(&mut page)?;
    let subcommands: Vec<&clap::Command> = command
        .get_subcommands()
        .filter(|s| s.get_name() != "help")
        .collect();
    // The list points at the sections below, not at pages of their own that do not exist.
    writeln!(page, ".SH COMMANDS")?;
    for sub in &subcommands {
        let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
        writeln!(
            page,
            ".TP\n\\fBconfluencefs {}\\fR\n{}",
            sub.get_name(),
            escape(&about)
        )?;
    }
    for sub in subcommands {
        let man = clap_mangen::Man::new(sub.clone());
        let mut part = Vec::new();
        man.render_synopsis_section(&mut part)?;
        man.render_description_section(&mut part)?;
        if sub.get_arguments().any(|a| !a.is_hide_set()) {
            man.render_options_section(&mut part)?;
        }
        writeln!(
            page,
            ".SH \"CONFLUENCEFS {}\"",
            sub.get_name().to_uppercase()
        )?;
        for line in String::from_utf8_lossy(&part).lines() {
            // Each rendering repeats the quote-string preamble the title already defined.
            if line.starts_with(".ie ") || line.starts_with(".el ") {
                continue;
            }
            match line.strip_prefix(".SH ") {
                Some(heading) => writeln!(page, ".SS {heading}")?,
                None => writeln!(page, "{line}")?,
            }
        }
    }
    top.render_version_section(&mut page)?;
    // Plain ASCII, as roff expects without preconv: anything else as a \[uXXXX] escape.
    let page = String::from_utf8_lossy(&page)
        .chars()
        .map(|c| match c {
            c if c.is_ascii() => c.to_string(),
            c => format!("\\[u{:04X}]", c as u32),
        })
        .collect::<String>();
    Ok(page.into_bytes())
}

/// Text for roff: backslashes as `\e`, hyphens as `\-`, a leading dot or quote kept from
/// being taken for a request.
fn escape(text: &str) -> String {
    let text = text.replace('\\', "\\e").replace('-', "\\-");
    match text.starts_with(['.', '\'']) {
        true => format!("\\&{text}"),
        false => text,
    }
}

fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .context("cannot write to stdout")
}
