//! Reports: run folders under `bench-results/`, `summary.json`, `.hgrm`
//! percentile distributions and latency plots.

pub mod hgrm;
