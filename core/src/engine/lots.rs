//! Volume arithmetic in integer units of 1e-8 lot: sizing an open to the
//! slave's step, minimum and maximum, and sizing each close so that the
//! remainder carries and a sequence of closes closes exactly what opened.
//!
//! # Layout
//! - `lots_to_units`, `units_to_lots`: the only f64 <-> integer crossings.
//! - [`LotSpec`]: a slave symbol's minimum, maximum and step, in units.
//! - [`open_units`]: rounds a sized volume down to the step, clamps it, and
//!   applies `below_min`.
//! - [`close_units`]: the proportional close with carried remainder.
//!
//! # Invariants
//! - Volumes are `u64` units of 1e-8 lot; sums and differences are exact.
//! - `step_units >= 1`, `step_units <= min_units <= max_units`, and
//!   `max_units` is a multiple of the step.
//! - `units_to_lots` returns the f64 nearest to the decimal value, so 0.07
//!   lot is the same double as the literal `0.07`.
//! - A close is never zero, never above what the slave holds, and never
//!   below the minimum unless it closes everything the slave holds.

use crate::config::BelowMin;

use super::skip::SkipReason;

/// Units per lot: 1e-8 lot resolves every step brokers use (0.001 at the
/// finest) with room to spare, and keeps 10 million lots below 2^53 so the
/// conversion to f64 is exact.
pub const UNITS_PER_LOT: u64 = 100_000_000;

/// Largest volume represented (10 million lots); larger inputs saturate.
pub const UNITS_MAX: u64 = 10_000_000 * UNITS_PER_LOT;

/// Lots to units, rounded to the nearest unit. `None` for a negative or
/// not-a-number input; infinity and huge values saturate at 10 million lots.
pub fn lots_to_units(lots: f64) -> Option<u64> {
    if lots.is_nan() || lots < 0.0 {
        return None;
    }
    let units = (lots * UNITS_PER_LOT as f64).round();
    if units >= UNITS_MAX as f64 {
        return Some(UNITS_MAX);
    }
    // In range and non-negative, so the cast is exact for integers below 2^53.
    Some(units as u64)
}

/// Units to lots: the double nearest to `units / 1e8`, since the division of
/// two exactly represented integers is correctly rounded.
pub fn units_to_lots(units: u64) -> f64 {
    assert!(units <= UNITS_MAX, "volumes stay below 10 million lots");
    units as f64 / UNITS_PER_LOT as f64
}

/// A slave symbol's volume limits, in units.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LotSpec {
    /// Smallest volume of an order (at least one step).
    pub min_units: u64,
    /// Largest volume of an order, a multiple of the step.
    pub max_units: u64,
    /// Volume increment.
    pub step_units: u64,
}

impl LotSpec {
    /// Used while a slave's symbol list is unknown: min 0.01, step 0.01,
    /// max 100 lots, the most common retail FX specification. The Executor
    /// normalises again against the real one.
    pub const DEFAULT: LotSpec = LotSpec {
        min_units: UNITS_PER_LOT / 100,
        max_units: 100 * UNITS_PER_LOT,
        step_units: UNITS_PER_LOT / 100,
    };

    /// Builds a spec from a slave symbol's lots; `None` when the figures
    /// cannot describe a tradable symbol (step not above 0, max below min,
    /// not finite).
    pub fn from_lots(min_lots: f64, max_lots: f64, step_lots: f64) -> Option<LotSpec> {
        if !(min_lots.is_finite() && max_lots.is_finite() && step_lots.is_finite()) {
            return None;
        }
        let step_units = lots_to_units(step_lots)?;
        if step_units == 0 {
            return None;
        }
        let min_units = lots_to_units(min_lots)?.max(step_units);
        let max_units = lots_to_units(max_lots)? / step_units * step_units;
        if max_units < min_units {
            return None;
        }
        let spec = LotSpec {
            min_units,
            max_units,
            step_units,
        };
        assert!(spec.step_units >= 1 && spec.min_units >= spec.step_units);
        assert!(spec.max_units >= spec.min_units && spec.floor(spec.max_units) == spec.max_units);
        Some(spec)
    }

    /// Largest multiple of the step not above `units`.
    pub fn floor(&self, units: u64) -> u64 {
        units / self.step_units * self.step_units
    }
}

/// Sizes an open: rounds `lots` down to the step (a trader expects never to
/// exceed the intended size), clamps to the symbol's maximum and to
/// `cap_units` (the follow's `max_lot`), then applies `below_min`.
pub fn open_units(
    spec: &LotSpec,
    lots: f64,
    below_min: BelowMin,
    cap_units: Option<u64>,
) -> Result<u64, SkipReason> {
    assert!(spec.step_units >= 1 && spec.min_units <= spec.max_units);
    let units = lots_to_units(lots).unwrap_or(0);
    let cap = spec.floor(spec.max_units.min(cap_units.unwrap_or(UNITS_MAX)));
    let sized = spec.floor(units).min(cap);
    if sized >= spec.min_units {
        assert!(sized <= spec.max_units && spec.floor(sized) == sized);
        return Ok(sized);
    }
    match below_min {
        BelowMin::Min if spec.min_units <= cap => Ok(spec.min_units),
        _ => Err(SkipReason::BelowMinLot),
    }
}

/// The volume to close on the slave after a master close.
///
/// - `opened_units`: what the slave's copy opened with (its filled volume);
/// - `held_units`: what the slave holds now, counting closes in flight;
/// - `master_base_units`: the master's volume when the copy was opened;
/// - `master_remaining_units`: what the master holds after this close.
///
/// The slave's target is `opened x remaining / base` rounded to the nearest
/// step; the close is `held - target`. A close below the minimum is not sent
/// (0 is returned) and the difference carries to the next close, which then
/// catches it up. A partial close never leaves less than the minimum open
/// (it leaves the minimum instead, also when the target rounds to 0). When
/// the master holds nothing more, the
/// close is everything the slave holds, so a sequence of closes always sums
/// to what was opened and a close never rounds to zero and vanishes.
pub fn close_units(
    spec: &LotSpec,
    opened_units: u64,
    held_units: u64,
    master_base_units: u64,
    master_remaining_units: u64,
) -> u64 {
    assert!(spec.step_units >= 1 && spec.min_units <= spec.max_units);
    if held_units == 0 {
        return 0;
    }
    if master_remaining_units == 0 || master_base_units == 0 {
        // A single order is capped at the maximum; opens never exceed it, so
        // only a slave that grew its copy by hand can leave a rest, which the
        // next reconciliation closes.
        return held_units.min(spec.max_units);
    }
    if master_remaining_units >= master_base_units {
        return 0;
    }
    let target = proportional_target(
        spec,
        opened_units,
        master_base_units,
        master_remaining_units,
    );
    // A partial close must leave at least the minimum open, even when the
    // proportional target rounds to 0: the master still holds some, so the
    // slave keeps its minimum until the master's final close.
    let target = target.max(spec.min_units);
    if target >= held_units {
        return 0;
    }
    let close = spec.floor(held_units - target).min(spec.max_units);
    if close < spec.min_units {
        return 0;
    }
    assert!(close <= held_units && held_units - close >= spec.min_units);
    close
}

/// `opened x remaining / base`, rounded to the nearest step (halves up),
/// computed in 128 bits so that no product overflows.
fn proportional_target(
    spec: &LotSpec,
    opened_units: u64,
    base_units: u64,
    remaining_units: u64,
) -> u64 {
    assert!(base_units > 0 && remaining_units < base_units);
    let numerator = u128::from(opened_units) * u128::from(remaining_units);
    let step_denominator = u128::from(base_units) * u128::from(spec.step_units);
    let steps = (2 * numerator + step_denominator) / (2 * step_denominator);
    let target = steps * u128::from(spec.step_units);
    assert!(target <= u128::from(opened_units) + u128::from(spec.step_units));
    // Below `opened_units` plus one step, which is a u64.
    target as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn spec(min: f64, max: f64, step: f64) -> LotSpec {
        LotSpec::from_lots(min, max, step).unwrap()
    }

    fn units(lots: f64) -> u64 {
        lots_to_units(lots).unwrap()
    }

    #[test]
    fn conversion_gives_clean_doubles() {
        // Shows that float noise from sizing is absorbed and the output double is the clean literal.
        assert_eq!(lots_to_units(0.1 * 0.7), Some(7_000_000));
        assert_eq!(units_to_lots(7_000_000), 0.07);
        assert_eq!(units_to_lots(units(0.1) + units(0.2)), 0.3);
        assert_eq!(lots_to_units(-0.01), None);
        assert_eq!(lots_to_units(f64::NAN), None);
        assert_eq!(lots_to_units(f64::INFINITY), Some(UNITS_MAX));
    }

    #[test]
    fn spec_refuses_nonsense() {
        // Shows that a zero step, max below min or non-finite figures give no spec.
        assert!(LotSpec::from_lots(0.01, 100.0, 0.0).is_none());
        assert!(LotSpec::from_lots(1.0, 0.5, 0.01).is_none());
        assert!(LotSpec::from_lots(f64::NAN, 1.0, 0.01).is_none());
        assert_eq!(
            spec(0.0, 1.0, 0.01).min_units,
            units(0.01),
            "a zero minimum becomes one step"
        );
    }

    #[test]
    fn open_rounds_down_to_the_step() {
        // Shows that opens round down, never up, to the step.
        let fx = spec(0.01, 100.0, 0.01);
        assert_eq!(
            open_units(&fx, 0.079, BelowMin::Skip, None),
            Ok(units(0.07))
        );
        assert_eq!(
            open_units(&fx, 0.1 * 0.7, BelowMin::Skip, None),
            Ok(units(0.07))
        );
        let coarse = spec(0.1, 50.0, 0.1);
        assert_eq!(
            open_units(&coarse, 0.39, BelowMin::Skip, None),
            Ok(units(0.3))
        );
    }

    #[test]
    fn open_below_min_skips_or_uses_min() {
        // Shows the two below_min behaviours.
        let fx = spec(0.1, 100.0, 0.01);
        assert_eq!(
            open_units(&fx, 0.05, BelowMin::Skip, None),
            Err(SkipReason::BelowMinLot)
        );
        assert_eq!(open_units(&fx, 0.05, BelowMin::Min, None), Ok(units(0.1)));
        assert_eq!(
            open_units(&fx, 0.0, BelowMin::Skip, None),
            Err(SkipReason::BelowMinLot)
        );
    }

    #[test]
    fn open_clamps_to_symbol_max_and_max_lot() {
        // Shows clamping to the symbol maximum and to the follow's max_lot.
        let fx = spec(0.01, 5.0, 0.01);
        assert_eq!(open_units(&fx, 7.5, BelowMin::Skip, None), Ok(units(5.0)));
        assert_eq!(
            open_units(&fx, 7.5, BelowMin::Skip, Some(units(2.345))),
            Ok(units(2.34))
        );
        let tight_cap = Some(units(0.005));
        assert_eq!(
            open_units(&fx, 1.0, BelowMin::Min, tight_cap),
            Err(SkipReason::BelowMinLot)
        );
    }

    #[test]
    fn partial_closes_carry_their_remainder() {
        // Shows that a close rounding below the step is not sent and a later close catches it up.
        let fx = spec(0.01, 100.0, 0.01);
        let opened = units(0.03);
        let base = units(1.0);
        // Master closes 0.1 of 1.0: target 0.027 rounds to 0.03, nothing to close yet.
        assert_eq!(close_units(&fx, opened, opened, base, units(0.9)), 0);
        // Master closes another 0.1: target 0.024 rounds to 0.02, close 0.01.
        assert_eq!(
            close_units(&fx, opened, opened, base, units(0.8)),
            units(0.01)
        );
        // Master closes all: the slave closes everything it still holds.
        assert_eq!(close_units(&fx, opened, units(0.02), base, 0), units(0.02));
    }

    #[test]
    fn partial_close_respects_min_on_both_sides() {
        // Shows that a partial close leaves at least min and closes at least min.
        let broker = spec(0.1, 100.0, 0.01);
        let opened = units(0.15);
        // Half closed on master: target 0.075 -> 0.08 -> raised to the 0.1 minimum; close 0.05 < min: carried.
        assert_eq!(
            close_units(&broker, opened, opened, units(1.0), units(0.5)),
            0
        );
        let opened = units(0.5);
        // 90% closed: target 0.05 raised to 0.1, close 0.4.
        assert_eq!(
            close_units(&broker, opened, opened, units(1.0), units(0.1)),
            units(0.4)
        );
    }

    #[test]
    fn partial_close_whose_target_rounds_to_zero_keeps_the_minimum() {
        // Shows that while the master holds any volume, a target rounding to 0 is raised to min, not closed in full.
        let fx = spec(0.01, 100.0, 0.01);
        // 0.01 of a 1.0 master that keeps 0.3: target 0.003 rounds to 0.
        assert_eq!(
            close_units(&fx, units(0.01), units(0.01), units(1.0), units(0.3)),
            0
        );
        // 0.05 of a 1.0 master that keeps 0.05: target 0.0025 rounds to 0; close down to the minimum.
        assert_eq!(
            close_units(&fx, units(0.05), units(0.05), units(1.0), units(0.05)),
            units(0.04)
        );
        assert_eq!(
            close_units(&fx, units(0.05), units(0.01), units(1.0), 0),
            units(0.01)
        );
    }

    #[test]
    fn close_never_exceeds_what_is_held() {
        // Shows that a slave holding less than its target closes nothing, and a final close takes only what is held.
        let fx = spec(0.01, 100.0, 0.01);
        assert_eq!(
            close_units(&fx, units(1.0), units(0.3), units(1.0), units(0.5)),
            0
        );
        assert_eq!(
            close_units(&fx, units(1.0), units(0.3), units(1.0), 0),
            units(0.3)
        );
        assert_eq!(close_units(&fx, units(1.0), 0, units(1.0), 0), 0);
    }

    /// A random symbol spec: step from brokers' usual set, min a multiple of it.
    fn arbitrary_spec() -> impl Strategy<Value = LotSpec> {
        (
            prop::sample::select(vec![0.001, 0.01, 0.1, 1.0]),
            1u64..=10,
            10u64..=10_000,
        )
            .prop_map(|(step, min_steps, max_steps)| {
                let step_units = units(step);
                LotSpec {
                    min_units: step_units * min_steps,
                    max_units: step_units * min_steps * max_steps,
                    step_units,
                }
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        #[test]
        fn closes_sum_to_the_open(
            spec in arbitrary_spec(),
            master_lots in 0.01f64..50.0,
            multiplier in 0.01f64..20.0,
            below_min_uses_min in any::<bool>(),
            fractions in prop::collection::vec(0.0f64..1.0, 0..12),
        ) {
            // Shows for random specs, sizes and partial-close sequences: closes sum exactly to the open,
            // each close is non-zero, at most what remains, at least min unless it closes all, at most max.
            let below_min = if below_min_uses_min { BelowMin::Min } else { BelowMin::Skip };
            let Ok(opened) = open_units(&spec, master_lots * multiplier, below_min, None) else {
                prop_assert!(spec.floor(units(master_lots * multiplier)) < spec.min_units);
                return Ok(());
            };
            prop_assert!(opened >= spec.min_units && opened <= spec.max_units && opened % spec.step_units == 0);
            let base = units(master_lots);
            let mut remaining = base;
            let mut held = opened;
            let mut closed_sum = 0u64;
            for fraction in fractions.iter().copied().chain(std::iter::once(1.0)) {
                let master_close = if fraction >= 1.0 { remaining } else { (remaining as f64 * fraction) as u64 };
                remaining -= master_close;
                let close = close_units(&spec, opened, held, base, remaining);
                prop_assert!(close <= held);
                prop_assert!(close <= spec.max_units);
                if close > 0 && close < held {
                    prop_assert!(close >= spec.min_units, "a partial close is at least min");
                    prop_assert!(held - close >= spec.min_units, "a partial close leaves at least min");
                }
                held -= close;
                closed_sum += close;
                let ideal = u128::from(opened) * u128::from(remaining) / u128::from(base);
                let drift = (i128::from(held) - i128::try_from(ideal).unwrap()).unsigned_abs();
                // The minimum rules can hold back up to two minimums: a close below min is carried,
                // and a partial close may not leave less than min.
                prop_assert!(drift <= u128::from(2 * spec.min_units + spec.step_units), "the carry stays bounded");
            }
            prop_assert_eq!(held, 0);
            prop_assert_eq!(closed_sum, opened);
        }

        #[test]
        fn opens_stay_on_the_grid(spec in arbitrary_spec(), lots in 0.0f64..100_000.0, cap in 0.001f64..1_000.0) {
            // Shows that any sized open lies on the step grid, between min and the tighter of max and max_lot.
            let cap_units = units(cap);
            if let Ok(opened) = open_units(&spec, lots, BelowMin::Min, Some(cap_units)) {
                prop_assert_eq!(opened % spec.step_units, 0);
                prop_assert!(opened >= spec.min_units);
                prop_assert!(opened <= spec.max_units.min(cap_units));
                prop_assert!(opened <= units(lots).max(spec.min_units), "rounding never goes up, except to min");
            } else {
                prop_assert!(spec.floor(spec.max_units.min(cap_units)) < spec.min_units);
            }
        }
    }
}
