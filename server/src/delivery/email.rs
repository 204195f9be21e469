//! Email over SMTP (lettre): one multipart message per delivery, identified by the delivery
//! id in `Message-ID` and `X-Herald-Delivery`, so a resend after a crash is recognisable.

use std::time::Duration;

use herald_core::outbox::{Delivery, kind};
use lettre::message::header::{Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{SendError, render};
use crate::config::{EmailSettings, TlsMode};

/// Sends deliveries of the email channel.
pub struct EmailSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    reply_to: Option<Mailbox>,
    base_url: url::Url,
    /// The domain part of Message-IDs.
    id_domain: String,
}

/// `X-Herald-Delivery`: the delivery id, for receivers that deduplicate.
#[derive(Clone, Debug)]
struct DeliveryId(String);

impl Header for DeliveryId {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("X-Herald-Delivery")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(DeliveryId(s.to_string()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

impl EmailSender {
    /// A sender for the configured SMTP server.
    pub fn new(cfg: &EmailSettings, base_url: url::Url, timeout: Duration) -> anyhow::Result<EmailSender> {
        let host = cfg.host.as_str();
        let mut builder = match cfg.tls {
            TlsMode::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
            TlsMode::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)
                .map_err(|e| anyhow::anyhow!("email.host: {e}"))?,
            TlsMode::Tls => {
                AsyncSmtpTransport::<Tokio1Executor>::relay(host).map_err(|e| anyhow::anyhow!("email.host: {e}"))?
            }
        };
        builder = builder.port(cfg.port).timeout(Some(timeout));
        if let Some(user) = &cfg.username {
            builder = builder.credentials(Credentials::new(user.clone(), cfg.password.expose().to_string()));
        }
        let from: Mailbox = cfg.from.parse().map_err(|e| anyhow::anyhow!("email.from '{}': {e}", cfg.from))?;
        let reply_to = match &cfg.reply_to {
            Some(r) => Some(r.parse().map_err(|e| anyhow::anyhow!("email.reply_to '{r}': {e}"))?),
            None => None,
        };
        let id_domain = base_url.host_str().unwrap_or("herald").to_string();
        Ok(EmailSender { transport: builder.build(), from, reply_to, base_url, id_domain })
    }

    /// Sends one delivery.
    pub async fn send(&self, d: &Delivery) -> Result<(), SendError> {
        let to: Mailbox =
            d.target.parse().map_err(|e| SendError::Permanent(format!("bad address '{}': {e}", d.target)))?;
        let list = d.notifications().map_err(|e| SendError::Permanent(format!("unreadable delivery: {e}")))?;
        let mail = render::email(&list, d.kind == kind::DIGEST, d.kind == kind::UPDATE, &self.base_url);
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject)
            .message_id(Some(format!("<{}@{}>", d.id, self.id_domain)))
            .header(DeliveryId(d.id.clone()));
        if let Some(r) = &self.reply_to {
            builder = builder.reply_to(r.clone());
        }
        let message = builder
            .multipart(MultiPart::alternative_plain_html(mail.text, mail.html))
            .map_err(|e| SendError::Permanent(format!("cannot build the message: {e}")))?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            // 5xx: the server refuses for good (unknown mailbox, policy).
            Err(e) if e.is_permanent() => Err(SendError::Permanent(format!("SMTP: {e}"))),
            // 4xx, timeouts, refused connections: try again later.
            Err(e) => Err(SendError::transient(format!("SMTP: {e}"))),
        }
    }
}
