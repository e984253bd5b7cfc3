//! The generator's offline address plan: which public blocks subscribers live in (with the city
//! each block geolocates to), which blocks normal traffic goes to, and which blocks anomalies use.
//!
//! The blocks are illustrative, not a GeoIP database: they exist so generated events carry
//! plausible, self-consistent geo fields without any network lookup. Don't geolocate real traffic
//! with this table. The three families are disjoint by construction (a test holds them to it), which
//! is what lets every anomaly episode use a /22 that no subscriber's normal traffic touches.

use std::net::{IpAddr, Ipv4Addr};

/// Where one home /16 block geolocates to. `country` is ISO 3166-1 alpha-2.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeoRecord {
    /// The first two octets of the /16 block.
    pub block: [u8; 2],
    pub country: &'static str,
    pub city: &'static str,
    pub latitude: f64,
    pub longitude: f64,
}

const fn geo(
    block: [u8; 2],
    country: &'static str,
    city: &'static str,
    latitude: f64,
    longitude: f64,
) -> GeoRecord {
    GeoRecord {
        block,
        country,
        city,
        latitude,
        longitude,
    }
}

/// Home blocks: subscribers' srcIPs, and the spoofed sources of fan-in floods, are drawn from here.
pub const GEO_TABLE: [GeoRecord; 20] = [
    geo([24, 90], "US", "New York", 40.7128, -74.006),
    geo([71, 201], "US", "Chicago", 41.8781, -87.6298),
    geo([76, 91], "US", "Los Angeles", 34.0522, -118.2437),
    geo([99, 224], "CA", "Toronto", 43.6532, -79.3832),
    geo([177, 32], "BR", "São Paulo", -23.5505, -46.6333),
    geo([189, 203], "MX", "Mexico City", 19.4326, -99.1332),
    geo([86, 128], "GB", "London", 51.5072, -0.1276),
    geo([90, 84], "FR", "Paris", 48.8566, 2.3522),
    geo([84, 128], "DE", "Berlin", 52.52, 13.405),
    geo([83, 32], "ES", "Madrid", 40.4168, -3.7038),
    geo([77, 160], "NL", "Amsterdam", 52.3676, 4.9041),
    geo([78, 64], "SE", "Stockholm", 59.3293, 18.0686),
    geo([83, 24], "PL", "Warsaw", 52.2297, 21.0122),
    geo([88, 230], "TR", "Istanbul", 41.0082, 28.9784),
    geo([105, 112], "NG", "Lagos", 6.5244, 3.3792),
    geo([41, 13], "ZA", "Johannesburg", -26.2041, 28.0473),
    geo([117, 192], "IN", "Mumbai", 19.076, 72.8777),
    geo([116, 88], "SG", "Singapore", 1.3521, 103.8198),
    geo([126, 100], "JP", "Tokyo", 35.6762, 139.6503),
    geo([1, 144], "AU", "Sydney", -33.8688, 151.2093),
];

/// /16 blocks of large content and DNS/NTP providers: the pool normal destinations come from.
pub const SERVICE_BLOCKS: [[u8; 2]; 12] = [
    [142, 250],
    [172, 217],
    [151, 101],
    [104, 16],
    [23, 32],
    [52, 84],
    [13, 107],
    [157, 240],
    [17, 253],
    [8, 8],
    [9, 9],
    [162, 159],
];

/// /8 blocks for anomaly destinations (the "new external" hosts of exfiltration, scans and
/// beacons). No home or service block lies inside them.
pub const ANOMALY_BLOCKS: [u8; 6] = [5, 37, 45, 185, 193, 195];

/// The city a source address geolocates to, if it lies in one of the home blocks.
pub fn lookup(ip: IpAddr) -> Option<&'static GeoRecord> {
    let IpAddr::V4(v4) = ip else {
        return None;
    };
    let [a, b, _, _] = v4.octets();
    GEO_TABLE.iter().find(|record| record.block == [a, b])
}

/// The /22 network an IPv4 address belongs to, the unit the feature SQL groups destinations by.
pub fn subnet22(ip: Ipv4Addr) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(ip) & 0xFFFF_FC00)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_families_are_disjoint() {
        for record in &GEO_TABLE {
            assert!(!SERVICE_BLOCKS.contains(&record.block), "{record:?}");
            assert!(!ANOMALY_BLOCKS.contains(&record.block[0]), "{record:?}");
        }
        for block in &SERVICE_BLOCKS {
            assert!(!ANOMALY_BLOCKS.contains(&block[0]), "{block:?}");
        }
        let mut blocks: Vec<_> = GEO_TABLE.iter().map(|r| r.block).collect();
        blocks.sort_unstable();
        blocks.dedup();
        assert_eq!(
            blocks.len(),
            GEO_TABLE.len(),
            "home blocks must be distinct"
        );
    }

    #[test]
    fn lookup_finds_home_blocks_only() {
        let london = lookup("86.128.7.9".parse().unwrap()).unwrap();
        assert_eq!((london.country, london.city), ("GB", "London"));
        assert!(lookup("142.250.1.1".parse().unwrap()).is_none());
        assert!(lookup("::1".parse().unwrap()).is_none());
        assert_eq!(
            subnet22(Ipv4Addr::new(142, 250, 7, 200)),
            Ipv4Addr::new(142, 250, 4, 0)
        );
    }
}
