//! The bundled load-test harness (filled by the load-test issue).

fn main() -> anyhow::Result<()> {
    println!("loadtest {}", env!("CARGO_PKG_VERSION"));
    Ok(())
}
