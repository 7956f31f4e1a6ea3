//! Understory's resource types (`understory-api.md` §2), shared by the sync client, which
//! parses them, and the sandbox, which renders them — one source of truth for field names.
//!
//! Enums are kept as `String`: the API adds values without notice (§6.11) and a value we do not
//! know must be stored, not rejected. Optional fields are `Option` and accept both an absent key
//! and `null`, because the docs mark nothing nullable yet say nothing of absence either (§6.10).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Timestamps are RFC 3339 in the API; parsed so that comparisons do not depend on formatting.
pub type Timestamp = DateTime<Utc>;

/// A string→string map, as the API's `metadata` objects are.
pub type Metadata = BTreeMap<String, String>;

/// An amount in the currency's smallest unit: `value / 10^exponent` is the decimal amount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    pub currency: String,
    pub value: i64,
    pub exponent: i32,
}

/// The envelope of every paged list: the end is `next` empty **or absent** (§1.1).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Page<T> {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    pub items: Vec<T>,
}

/// The envelope of order sub-resources: all items, no `next` (§6.13).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Items<T> {
    pub items: Vec<T>,
}

/// The error body of every 400–599 answer from the resource API (§4).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiErrorBody {
    pub code: String,
    pub message: String,
}

/// The error body of the token endpoint, RFC 6749 §5.2.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OAuthErrorBody {
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

/// `GET /v1/me`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Me {
    pub company_id: String,
    pub company_name: String,
    pub user_id: String,
    pub email: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Address {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub address_lines: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zip_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

/// The PRIVATE/COMPANY customer union, discriminated by `customer_type`. Kept as one struct with
/// every key optional because the COMPANY contact name is `full_name` in some captures and `name`
/// in others (§2, Customer).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    pub customer_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vat_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Booking {
    pub id: String,
    pub status: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub company_id: String,
    pub experience_id: String,
    pub event_id: String,
    pub customer: Customer,
    pub locale: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_note: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderOrigin {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderTotals {
    pub discount: Money,
    pub vat_amount: Money,
    pub amount: Money,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub id: String,
    pub number: String,
    pub status: String,
    /// Newer field (absent from older captures), hence optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_status: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub customer: Customer,
    pub origin: OrderOrigin,
    pub totals: OrderTotals,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LineItemDetails {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experience_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gift_card_id: Option<String>,
}

/// The docs' singular `discount` (§6.15); its shape is unsettled, so only the amount is typed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineItemDiscount {
    pub amount: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// A line item has no id or timestamps: it is identified by its order and position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineItem {
    pub quantity: i64,
    pub unit_price: Money,
    pub unit_vat_amount: Money,
    pub product_type: String,
    pub product_id: String,
    pub details: LineItemDetails,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discount: Option<LineItemDiscount>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TransactionDetails {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gift_card_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transaction {
    pub id: String,
    pub status: String,
    pub provider: String,
    pub amount: Money,
    pub created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<TransactionDetails>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Refund {
    pub id: String,
    pub status: String,
    pub amount: Money,
    pub transaction_id: String,
    pub created_at: Timestamp,
}

/// A reference from a consent to a related entity; shape invented by §6.12, kept raw in SQLite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsentReference {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
}

/// Legacy consents carry no `id` (and no `references`): their key is (company, email, source).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MarketingConsent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub company_id: String,
    pub full_name: String,
    pub email: String,
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub references: Option<Vec<ConsentReference>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Capacity {
    pub total: i64,
    pub reserved: i64,
}

/// Session times are local wall-clock times without offset, in `timezone` (§2, Event).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub id: String,
    pub start_time: String,
    pub end_time: String,
    pub timezone: String,
    pub location_id: String,
    pub languages: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: String,
    pub state: String,
    pub visibility: String,
    pub experience_id: String,
    pub capacity: Capacity,
    pub sessions: Vec<Session>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Media {
    #[serde(rename = "type")]
    pub kind: String,
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Experience {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub state: String,
    pub name: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_ids: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<Vec<Media>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
}

impl MarketingConsent {
    /// The consent's identity in the store: `id` when the API sends one, else the
    /// (`company_id`, `email`, `source`) triple that legacy rows are unique on (§6.12).
    pub fn natural_key(&self) -> String {
        match &self.id {
            Some(id) => format!("id:{id}"),
            None => format!(
                "legacy:{}\u{1f}{}\u{1f}{}",
                self.company_id, self.email, self.source
            ),
        }
    }
}
