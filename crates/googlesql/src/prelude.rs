//! The DuckDB macros translated SQL relies on, installed once per connection.

/// DuckDB macros that translated SQL may call. The engine runs this once per connection (the
/// macros are `TEMP`, so they live in the connection, never in the database file) before running
/// any output of [`super::translate`]. Running it again is harmless (`CREATE OR REPLACE`).
///
/// Macros rather than inline expressions where an argument would otherwise be repeated several
/// times in the printed SQL, which analysts read in `netsentinel compile` output. A macro's
/// argument is pasted wherever the body uses it, so nested calls multiply: a body that uses its
/// argument more than once binds it once, as the lambda parameter of a one-element
/// `list_transform` (`NET.IP_TO_STRING(NET.IP_TRUNC(NET.IP_FROM_STRING(ip), 22))` otherwise
/// parsed the address dozens of times per row, ten times slower).
///
/// IPv4 addresses are BIGINT in 0..=4294967295. Errors mirror BigQuery's: the non-`SAFE`
/// functions raise on bad input instead of returning NULL.
pub const DUCKDB_PRELUDE: &str = r#"CREATE OR REPLACE TEMP MACRO ns_floor_div(a, b) AS
  (a // b) - CASE WHEN a % b < 0 THEN 1 ELSE 0 END;
CREATE OR REPLACE TEMP MACRO ns_substr(s, p) AS
  substring(s, CASE WHEN p = 0 OR p < -length(s) THEN 1 ELSE p END),
  (s, p, n) AS
  CASE WHEN n < 0 THEN error('SUBSTR: negative length ' || n)
       ELSE substring(s, CASE WHEN p = 0 OR p < -length(s) THEN 1 ELSE p END, n) END;
CREATE OR REPLACE TEMP MACRO ns_ipv4_parse(s) AS
  CASE WHEN regexp_full_match(s, '((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])')
       THEN CAST(split_part(s, '.', 1) AS BIGINT) * 16777216 + CAST(split_part(s, '.', 2) AS BIGINT) * 65536
          + CAST(split_part(s, '.', 3) AS BIGINT) * 256 + CAST(split_part(s, '.', 4) AS BIGINT) END;
CREATE OR REPLACE TEMP MACRO ns_safe_ip_from_string(s) AS ns_ipv4_parse(s);
CREATE OR REPLACE TEMP MACRO ns_ip_from_string(s) AS
  CASE WHEN s IS NULL THEN NULL
       ELSE coalesce(ns_ipv4_parse(s), error('NET.IP_FROM_STRING: not an IPv4 address (the local engine has no IPv6): ' || s)) END;
CREATE OR REPLACE TEMP MACRO ns_ip_check(ip) AS
  list_transform([ip], lambda v: CASE WHEN v IS NULL OR v BETWEEN 0 AND 4294967295 THEN v
       ELSE error('NET: IPv4 value out of range: ' || v) END)[1];
CREATE OR REPLACE TEMP MACRO ns_mask(prefix) AS
  CASE WHEN prefix BETWEEN 0 AND 32 THEN 4294967296 - (CAST(1 AS BIGINT) << (32 - prefix))
       ELSE error('NET: IPv4 prefix length must be in 0..32, got ' || prefix) END;
CREATE OR REPLACE TEMP MACRO ns_ip_to_string(ip) AS
  list_transform([ns_ip_check(ip)], lambda v: CAST((v >> 24) & 255 AS VARCHAR) || '.'
  || CAST((v >> 16) & 255 AS VARCHAR) || '.' || CAST((v >> 8) & 255 AS VARCHAR) || '.'
  || CAST(v & 255 AS VARCHAR))[1];
CREATE OR REPLACE TEMP MACRO ns_ip_trunc(ip, prefix) AS ns_ip_check(ip) & ns_mask(prefix);
CREATE OR REPLACE TEMP MACRO ns_ip_net_mask(bytes, prefix) AS
  CASE WHEN bytes = 4 THEN ns_mask(prefix)
       ELSE error('NET.IP_NET_MASK: only 4-byte (IPv4) masks on the local engine, got ' || bytes) END;
CREATE OR REPLACE TEMP MACRO ns_ipv4_to_int64(ip) AS ns_ip_check(ip);
CREATE OR REPLACE TEMP MACRO ns_ipv4_from_int64(i) AS
  CASE WHEN i BETWEEN -2147483648 AND 4294967295 THEN i & 4294967295
       ELSE error('NET.IPV4_FROM_INT64: value does not fit in 32 bits: ' || i) END;
"#;
