//! The text of an error for the terminal: the message followed by its
//! causes, each cause left out when the text before already says it (an
//! error that embeds its source in its own message would otherwise print
//! the same words twice).

/// `outer: cause: deeper cause`, without repeats.
pub fn error_text(e: &anyhow::Error) -> String {
    join_chain(e.chain())
}

/// [`error_text`] for any error and its sources.
pub fn source_text(e: &(dyn std::error::Error + 'static)) -> String {
    join_chain(std::iter::successors(Some(e), |e| e.source()))
}

fn join_chain<'a>(chain: impl Iterator<Item = &'a (dyn std::error::Error + 'static)>) -> String {
    let mut text = String::new();
    for link in chain {
        let part = link.to_string();
        if part.is_empty() || text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("tile input [68, 68, 68]: {0}")]
    struct Embeds(#[source] std::io::Error);

    #[test]
    fn a_cause_is_printed_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let e = anyhow::Error::new(Embeds(io)).context("card.json");
        assert_eq!(error_text(&e), "card.json: tile input [68, 68, 68]: no such file");
    }

    #[test]
    fn distinct_causes_are_all_kept() {
        let e = anyhow::anyhow!("disk full")
            .context("cannot write out.nii.gz")
            .context("scan.nii.gz");
        assert_eq!(error_text(&e), "scan.nii.gz: cannot write out.nii.gz: disk full");
    }
}
