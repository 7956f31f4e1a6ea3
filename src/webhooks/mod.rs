//! Webhooks: Understory's events about bookings, events and experiences, received in `run` mode
//! so the file is fresh within seconds, with the scheduled listing sync as the safety net that
//! catches and counts what a delivery missed.
//!
//! Rooms: `signature` (Standard Webhooks HMAC), `secrets` (the subscriptions' signing secrets,
//! sealed), `delivery` (what a delivery's body says), `receiver` (the HTTP endpoint that
//! verifies and records deliveries in the inbox before answering 2xx), `subscriptions` (the
//! API calls behind `webhooks register|list|unregister`). The applier, which stores the items
//! deliveries name through the listing sync's own path, is `crate::sync::apply`.

pub(crate) mod delivery;
pub mod receiver;
pub mod secrets;
pub(crate) mod signature;
pub mod subscriptions;
