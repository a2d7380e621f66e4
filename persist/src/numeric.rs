//! `u64` as Postgres `numeric` in the binary wire format, for the columns
//! that hold protocol integers up to 2^64-1 (bigint stops at 2^63-1).
//!
//! Binary numeric: `ndigits` (i16), `weight` (i16), `sign` (u16, 0 =
//! positive), `dscale` (u16), then `ndigits` base-10000 digits (i16), most
//! significant first; trailing zero digits are left out and `weight` is the
//! power of 10000 of the first digit.

use bytes::{BufMut, BytesMut};
use postgres_types::{accepts, to_sql_checked, IsNull, ToSql, Type};

/// A `u64` written as `numeric(20,0)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Numeric(pub u64);

/// Base-10000 digits of a `u64`: 2^64-1 has 20 decimal digits, 5 groups.
const GROUPS_MAX: usize = 5;

impl ToSql for Numeric {
    fn to_sql(&self, _type: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        // Least significant group first.
        let mut groups = [0i16; GROUPS_MAX];
        let mut count = 0;
        let mut value = self.0;
        while value > 0 {
            groups[count] = (value % 10_000) as i16;
            value /= 10_000;
            count += 1;
        }
        let trailing_zeros = groups[..count].iter().take_while(|group| **group == 0).count();
        let digits = count - trailing_zeros;
        out.put_i16(digits as i16);
        out.put_i16(if count == 0 { 0 } else { (count - 1) as i16 });
        out.put_u16(0);
        out.put_u16(0);
        for group in groups[trailing_zeros..count].iter().rev() {
            out.put_i16(*group);
        }
        Ok(IsNull::No)
    }

    accepts!(NUMERIC);
    to_sql_checked!();
}

/// An optional `u64` as a nullable numeric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OptionalNumeric(pub Option<u64>);

impl ToSql for OptionalNumeric {
    fn to_sql(&self, kind: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self.0 {
            Some(value) => Numeric(value).to_sql(kind, out),
            None => Ok(IsNull::Yes),
        }
    }

    accepts!(NUMERIC);
    to_sql_checked!();
}
