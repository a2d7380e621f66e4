//! Address ranges in CIDR notation (`203.0.113.0/24`, `2001:db8::/32`, or a
//! single address), for `trusted_proxies` and per-account allowlists.
//!
//! # Invariants
//! - A range's host bits are zero: `203.0.113.5/24` is refused at parse
//!   (it names a host, not a network; the operator meant one or the other).
//! - An IPv4-mapped IPv6 peer (`::ffff:203.0.113.5`, what a dual-stack
//!   socket reports) is matched as the IPv4 address it maps.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A network: an address and the number of leading bits that name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cidr {
    network: IpAddr,
    prefix_bits: u8,
}

impl Cidr {
    /// The range holding exactly `address`.
    pub fn host(address: IpAddr) -> Cidr {
        let prefix_bits = if address.is_ipv4() { 32 } else { 128 };
        Cidr { network: address, prefix_bits }
    }

    /// True when `address` lies in the range.
    pub fn contains(&self, address: IpAddr) -> bool {
        match (self.network, canonical(address)) {
            (IpAddr::V4(network), IpAddr::V4(address)) => {
                let mask = mask_v4(self.prefix_bits);
                u32::from(address) & mask == u32::from(network)
            }
            (IpAddr::V6(network), IpAddr::V6(address)) => {
                let mask = mask_v6(self.prefix_bits);
                u128::from(address) & mask == u128::from(network)
            }
            _ => false,
        }
    }
}

/// `address`, or the IPv4 address an IPv4-mapped IPv6 one stands for.
pub fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        IpAddr::V4(_) => address,
    }
}

fn mask_v4(prefix_bits: u8) -> u32 {
    if prefix_bits == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix_bits))
    }
}

fn mask_v6(prefix_bits: u8) -> u128 {
    if prefix_bits == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(prefix_bits))
    }
}

/// Why a text is not a range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CidrError(String);

impl fmt::Display for CidrError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(text: &str) -> Result<Cidr, CidrError> {
        let expected = "expected an address or a range such as \"203.0.113.0/24\" or \"2001:db8::/32\"";
        let (address_text, prefix_text) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr = address_text.parse().map_err(|_| CidrError(format!("\"{text}\" is not an address; {expected}")))?;
        let address = canonical(address);
        let bits_max = if address.is_ipv4() { 32 } else { 128 };
        let prefix_bits = match prefix_text {
            None => bits_max,
            Some(prefix) => match prefix.parse::<u8>() {
                Ok(bits) if bits <= bits_max && !prefix.starts_with('+') => bits,
                _ => return Err(CidrError(format!("\"{text}\": prefix \"{prefix}\" is not 0..={bits_max}; {expected}"))),
            },
        };
        let network = match address {
            IpAddr::V4(v4) => IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask_v4(prefix_bits))),
            IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask_v6(prefix_bits))),
        };
        if network != address {
            return Err(CidrError(format!("\"{text}\" has host bits set; expected the network \"{network}/{prefix_bits}\" or the host \"{address}\"")));
        }
        Ok(Cidr { network, prefix_bits })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}/{}", self.network, self.prefix_bits)
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Cidr, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn ranges_parse_match_and_refuse_what_is_not_a_network() {
        // Shows v4 and v6 ranges and single hosts match what they hold and nothing else, mapped v4 peers match v4 ranges, and malformed or host-bit text is refused with the expected form named.
        let range: Cidr = "203.0.113.0/24".parse().unwrap();
        assert!(range.contains(ip("203.0.113.0")) && range.contains(ip("203.0.113.255")));
        assert!(!range.contains(ip("203.0.114.0")) && !range.contains(ip("2001:db8::1")));
        assert!(range.contains(ip("::ffff:203.0.113.7")), "an IPv4-mapped peer");
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:ffff::1")) && !v6.contains(ip("2001:db9::1")) && !v6.contains(ip("203.0.113.1")));
        let host: Cidr = "127.0.0.1".parse().unwrap();
        assert!(host.contains(ip("127.0.0.1")) && !host.contains(ip("127.0.0.2")));
        assert_eq!(host, Cidr::host(ip("127.0.0.1")));
        let any: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(any.contains(ip("198.51.100.1")) && !any.contains(ip("::1")));
        assert!("::/0".parse::<Cidr>().unwrap().contains(ip("::1")));
        assert_eq!(range.to_string(), "203.0.113.0/24");
        assert_eq!("::ffff:10.0.0.0/8".parse::<Cidr>().unwrap().to_string(), "10.0.0.0/8");
        for (bad, says) in [
            ("203.0.113.5/24", "host bits set; expected the network \"203.0.113.0/24\""),
            ("203.0.113.0/33", "prefix \"33\" is not 0..=32"),
            ("2001:db8::/129", "prefix \"129\" is not 0..=128"),
            ("203.0.113.0/+8", "prefix \"+8\""),
            ("example.com", "is not an address"),
            ("", "is not an address"),
        ] {
            let error = bad.parse::<Cidr>().unwrap_err().to_string();
            assert!(error.contains(says) && error.contains("expected"), "{bad}: {error}");
        }
        let json = serde_json::to_string(&v6).unwrap();
        assert_eq!(serde_json::from_str::<Cidr>(&json).unwrap(), v6);
    }
}
