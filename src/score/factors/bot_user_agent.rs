//! `bot_user_agent`: the client is a bot: device type "bot", from the
//! request's `client.device_type` or the User-Agent (crawlers, curl,
//! HTTP libraries, headless browsers).

use crate::event::DeviceType;
use crate::score::{Contribution, Factor, FactorInput};

pub struct BotUserAgent {
    pub weight: f64,
}

impl Factor for BotUserAgent {
    fn code(&self) -> &'static str {
        "bot_user_agent"
    }

    fn evaluate(&self, input: &FactorInput<'_>) -> Option<Contribution> {
        if input.attempt.client.device_type != DeviceType::Bot {
            return None;
        }
        let ua = input.attempt.user_agent.as_deref().unwrap_or("(none)");
        let shown: String = ua.chars().take(60).collect();
        Some(Contribution {
            logit: self.weight,
            value: Some(1.0),
            detail: format!("automated client: {shown}"),
            forces: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::score::factors::test_support::Fixture;

    #[test]
    fn fires_for_bots_only() {
        let factor = BotUserAgent { weight: 3.0 };
        let fx = Fixture::new();
        let mut a = fx.attempt("d", "192.0.2.1", "NO", 64500);
        assert_eq!(fx.evaluate_attempt(&factor, &a), None);
        a.client.device_type = DeviceType::Bot;
        a.user_agent = Some("python-requests/2.31".into());
        assert!(fx
            .evaluate_attempt(&factor, &a)
            .unwrap()
            .detail
            .contains("python-requests"));
    }
}
