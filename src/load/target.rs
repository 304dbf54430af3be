//! The server under load: `http://host:port`, resolved once before the run.

use std::net::{SocketAddr, ToSocketAddrs};

use hyper::header::HeaderValue;
use hyper::Uri;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("target `{url}`: {reason}")]
pub struct InvalidTarget {
    pub url: String,
    pub reason: String,
}

#[derive(Clone, Debug)]
pub struct Target {
    /// The base URL as given, without a trailing slash.
    pub url: String,
    pub addr: SocketAddr,
    /// The `Host` header of every request.
    pub host: HeaderValue,
}

impl Target {
    pub fn parse(url: &str) -> Result<Target, InvalidTarget> {
        let invalid = |reason: &str| InvalidTarget {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let uri: Uri = url.parse().map_err(|_| invalid("not a URL"))?;
        if uri.scheme_str() != Some("http") {
            return Err(invalid("only http:// URLs are supported"));
        }
        let authority = uri.authority().ok_or_else(|| invalid("no host"))?;
        if authority.as_str().contains('@') {
            return Err(invalid("credentials in the URL are not supported"));
        }
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            return Err(invalid(
                "give the server's base URL, without a path: requests go to /v1/score and /v1/outcomes",
            ));
        }
        let host_port = match authority.port_u16() {
            Some(_) => authority.as_str().to_owned(),
            None => format!("{}:80", authority.as_str()),
        };
        let addr = host_port
            .to_socket_addrs()
            .map_err(|err| invalid(&format!("cannot resolve {host_port}: {err}")))?
            .next()
            .ok_or_else(|| invalid(&format!("{host_port} resolves to no address")))?;
        let host = HeaderValue::from_str(authority.as_str())
            .map_err(|_| invalid("the host is not a valid Host header"))?;
        Ok(Target {
            url: url.trim_end_matches('/').to_owned(),
            addr,
            host,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_parse() {
        let target = Target::parse("http://127.0.0.1:8080/").unwrap();
        assert_eq!(target.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(target.host, "127.0.0.1:8080");
        assert_eq!(target.url, "http://127.0.0.1:8080");
        let target = Target::parse("http://[::1]:9000").unwrap();
        assert_eq!(target.addr, "[::1]:9000".parse().unwrap());
        let target = Target::parse("http://127.0.0.1").unwrap();
        assert_eq!(target.addr.port(), 80);
    }

    #[test]
    fn other_urls_are_refused_with_a_reason() {
        for url in [
            "https://127.0.0.1:8080",
            "127.0.0.1:8080",
            "http://127.0.0.1:8080/v1/score",
            "http://user:pw@127.0.0.1:8080",
            "not a url",
        ] {
            let err = Target::parse(url).unwrap_err();
            assert!(!err.reason.is_empty(), "{url}");
        }
    }
}
