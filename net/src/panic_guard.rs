//! Catching a panic where the bridge can go on without the work that
//! panicked (the replay of one journal record at start), while any other
//! panic still ends the process (the binary's panic hook exits with 70 so
//! that the service manager restarts it on its journal).
//!
//! The hook asks [`is_catching`]: true only on a thread inside [`catch`],
//! where the panic is reported and then unwinds to `catch` instead of
//! exiting.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};

thread_local! {
    static CATCHING: Cell<bool> = const { Cell::new(false) };
}

/// True while this thread runs inside [`catch`].
pub fn is_catching() -> bool {
    CATCHING.with(Cell::get)
}

/// Runs `work`; a panic in it is returned as its message instead of ending
/// the process. The caller must treat whatever `work` was changing as
/// possibly half-done.
pub fn catch<R>(work: impl FnOnce() -> R) -> Result<R, String> {
    let outer = CATCHING.with(|catching| catching.replace(true));
    let outcome = catch_unwind(AssertUnwindSafe(work));
    CATCHING.with(|catching| catching.set(outer));
    outcome.map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|text| (*text).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_inside_catch_is_returned_and_the_flag_is_only_set_inside() {
        // Shows catch returns the value or the panic's message, and is_catching is true inside only (nested too).
        assert!(!is_catching());
        assert_eq!(catch(|| 7), Ok(7));
        assert_eq!(catch(|| -> u8 { panic!("record {} broke", 3) }), Err("record 3 broke".to_owned()));
        assert_eq!(catch(|| -> u8 { panic!("plain") }), Err("plain".to_owned()));
        assert_eq!(catch(|| catch(is_catching).map(|inner| inner && is_catching())), Ok(Ok(true)));
        assert!(!is_catching());
    }
}
