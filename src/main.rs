fn main() -> anyhow::Result<()> { ember_cli::main() }
