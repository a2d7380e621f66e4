//! The `tradebridge` binary. Serving arrives with the bridge issue; until then
//! it only reports its version so the workspace builds end to end.

fn main() -> anyhow::Result<()> {
    println!("tradebridge {}", env!("CARGO_PKG_VERSION"));
    Ok(())
}
