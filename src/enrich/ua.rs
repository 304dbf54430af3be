//! User-Agent parsing (woothee): browser and OS with versions, device type.

use crate::event::{ClientInfo, DeviceType};

/// woothee's placeholder for a field it could not read.
const UNKNOWN: &str = "UNKNOWN";

/// Automation clients that identify themselves; woothee files most of them
/// under "UNKNOWN" rather than as crawlers.
const AUTOMATION_MARKERS: [&str; 10] = [
    "curl/",
    "wget/",
    "python-requests",
    "python-urllib",
    "go-http-client",
    "okhttp",
    "java/",
    "libwww-perl",
    "headlesschrome",
    "phantomjs",
];

/// Parsed User-Agents kept in memory. Parsing one costs a few µs of
/// regular expressions (a tenth of a score request's CPU, profiled), and a
/// user base sends a few thousand distinct strings, so they repeat. Bounded:
/// a flood of random strings only churns the cache.
pub const UA_CACHE_ENTRIES: usize = 8192;

pub struct UaParser {
    parser: woothee::parser::Parser,
    cache: quick_cache::sync::Cache<String, ClientInfo>,
}

impl Default for UaParser {
    fn default() -> Self {
        UaParser {
            parser: woothee::parser::Parser::new(),
            cache: quick_cache::sync::Cache::new(UA_CACHE_ENTRIES),
        }
    }
}

impl UaParser {
    pub fn parse(&self, user_agent: &str) -> ClientInfo {
        if let Some(client) = self.cache.get(user_agent) {
            return client;
        }
        let client = self.parse_uncached(user_agent);
        self.cache.insert(user_agent.to_owned(), client.clone());
        client
    }

    fn parse_uncached(&self, user_agent: &str) -> ClientInfo {
        let lowered = user_agent.to_ascii_lowercase();
        let automation = AUTOMATION_MARKERS.iter().any(|m| lowered.contains(m));
        let Some(result) = self.parser.parse(user_agent) else {
            let device_type = if automation {
                DeviceType::Bot
            } else {
                DeviceType::Unknown
            };
            return ClientInfo {
                browser: None,
                os: None,
                device_type,
            };
        };
        let browser = known(result.name).map(|name| match known(result.version) {
            Some(version) => format!("{name} {version}"),
            None => name.to_owned(),
        });
        let os = known(result.os).map(|os| {
            let version = result.os_version.as_ref();
            // woothee names Windows by release ("Windows 10") and gives the
            // NT kernel as the version; others ("Android", "10") need both.
            if known(version).is_some() && !os.starts_with("Windows") && !os.ends_with(version) {
                format!("{os} {version}")
            } else {
                os.to_owned()
            }
        });
        let device_type = match result.category {
            _ if automation => DeviceType::Bot,
            "pc" => DeviceType::Desktop,
            "smartphone" | "mobilephone" => {
                if lowered.contains("ipad") || lowered.contains("tablet") {
                    DeviceType::Tablet
                } else {
                    DeviceType::Mobile
                }
            }
            "crawler" => DeviceType::Bot,
            _ => DeviceType::Unknown,
        };
        ClientInfo {
            browser,
            os,
            device_type,
        }
    }
}

fn known(value: &str) -> Option<&str> {
    (!value.is_empty() && value != UNKNOWN).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_desktop_chrome_is_read() {
        let c = UaParser::default().parse(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/80.0.3987.149 Safari/537.36",
        );
        assert_eq!(c.browser.as_deref(), Some("Chrome 80.0.3987.149"));
        assert_eq!(c.os.as_deref(), Some("Windows 10"));
        assert_eq!(c.device_type, DeviceType::Desktop);
    }

    #[test]
    fn a_cached_reading_equals_a_fresh_one_and_the_cache_stays_bounded() {
        let parser = UaParser::default();
        let ua = "Mozilla/5.0 (iPad; CPU OS 13_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.1 Mobile/15E148 Safari/604.1";
        let first = parser.parse(ua);
        assert_eq!(parser.cache.get(ua), Some(first.clone()), "cached");
        assert_eq!(parser.parse(ua), first);
        assert_eq!(parser.parse(ua), parser.parse_uncached(ua));
        for i in 0..UA_CACHE_ENTRIES * 2 {
            parser.parse(&format!("curl/{i}"));
        }
        assert!(
            parser.cache.len() <= UA_CACHE_ENTRIES,
            "{}",
            parser.cache.len()
        );
    }

    #[test]
    fn a_phone_is_mobile_and_an_ipad_a_tablet() {
        let parser = UaParser::default();
        let phone = parser.parse("Mozilla/5.0 (iPhone; CPU iPhone OS 13_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.1 Mobile/15E148 Safari/604.1");
        assert_eq!(phone.device_type, DeviceType::Mobile);
        let ipad = parser.parse("Mozilla/5.0 (iPad; CPU OS 13_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/13.1 Mobile/15E148 Safari/604.1");
        assert_eq!(ipad.device_type, DeviceType::Tablet);
    }

    #[test]
    fn crawlers_and_automation_clients_are_bots() {
        let parser = UaParser::default();
        assert_eq!(
            parser
                .parse("Googlebot/2.1 (+http://www.google.com/bot.html)")
                .device_type,
            DeviceType::Bot
        );
        assert_eq!(parser.parse("curl/8.5.0").device_type, DeviceType::Bot);
        assert_eq!(
            parser.parse("python-requests/2.31.0").device_type,
            DeviceType::Bot
        );
    }

    #[test]
    fn garbage_is_unknown_not_an_error() {
        let c = UaParser::default().parse("\u{0}\u{1}???");
        assert_eq!(c, ClientInfo::default());
    }
}
