//! `personafs mock-server`. STUB — the mock-server work fills it in.

/// Arguments of `personafs mock-server`.
#[derive(Debug, Clone, clap::Args)]
pub struct MockServerArgs {}

/// Run the mock server until killed; prints `api=…` and `files=…` on stdout first.
pub fn run(_args: MockServerArgs) -> anyhow::Result<()> {
    anyhow::bail!("not implemented")
}
