/// Returns the URI that tonic connects to for a node API address.
///
/// Addresses in `Status` and in the leader hint metadata are `host:port`, so they get an `http://`
/// scheme. An address that already has a scheme is returned as it is.
pub fn endpoint_uri(address: &str) -> String {
    let address = address.trim();

    if address.contains("://") {
        address.to_owned()
    } else {
        format!("http://{address}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_gets_http_scheme() {
        assert_eq!(endpoint_uri("127.0.0.1:7001"), "http://127.0.0.1:7001");
    }

    #[test]
    fn uri_with_scheme_is_kept() {
        assert_eq!(
            endpoint_uri("http://127.0.0.1:7001"),
            "http://127.0.0.1:7001"
        );
        assert_eq!(endpoint_uri("https://node-1:7001"), "https://node-1:7001");
    }

    #[test]
    fn surrounding_whitespace_is_trimmed() {
        assert_eq!(endpoint_uri(" 127.0.0.1:7001\n"), "http://127.0.0.1:7001");
    }
}
