//! Tickets: the server state between the two round trips of registration and recovery, sealed
//! by the HSM and held by the client. See [`crate::ticket_claims`] for the sealed contents.

use std::fmt;

use keyfleet_hsm::SealedBlob;

use crate::{MAX_TICKET_LEN, VaultError};

/// Kind of a ticket: the exchange it belongs to. Each kind is sealed under its own purpose, so a ticket
/// of one kind never opens as the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketKind {
    /// Issued by registration start, sealed with purpose `"registration-ticket"`.
    Registration,
    /// Issued by recovery start, sealed with purpose `"login-ticket"`.
    Login,
}

impl TicketKind {
    /// Returns the HSM seal purpose of this kind.
    pub fn purpose(self) -> &'static str {
        match self {
            Self::Registration => "registration-ticket",
            Self::Login => "login-ticket",
        }
    }
}

impl fmt::Display for TicketKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Registration => f.write_str("registration ticket"),
            Self::Login => f.write_str("login ticket"),
        }
    }
}

/// A sealed registration ticket. `Debug` prints only its length.
#[derive(Debug, Clone)]
pub struct RegistrationTicket(SealedBlob);

/// A sealed login ticket. `Debug` prints only its length.
#[derive(Debug, Clone)]
pub struct LoginTicket(SealedBlob);

impl RegistrationTicket {
    pub(crate) fn new(blob: SealedBlob) -> Self {
        Self(blob)
    }

    /// Parses ticket bytes from the client, checking the length and the sealed blob header.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, VaultError> {
        parse(TicketKind::Registration, bytes).map(Self)
    }

    /// Returns the bytes to send to the client.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    pub(crate) fn blob(&self) -> &SealedBlob {
        &self.0
    }
}

impl LoginTicket {
    pub(crate) fn new(blob: SealedBlob) -> Self {
        Self(blob)
    }

    /// Parses ticket bytes from the client, checking the length and the sealed blob header.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, VaultError> {
        parse(TicketKind::Login, bytes).map(Self)
    }

    /// Returns the bytes to send to the client.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    pub(crate) fn blob(&self) -> &SealedBlob {
        &self.0
    }
}

fn parse(kind: TicketKind, bytes: Vec<u8>) -> Result<SealedBlob, VaultError> {
    if bytes.len() > MAX_TICKET_LEN {
        return Err(VaultError::TicketInvalid {
            kind,
            reason: format!(
                "{} bytes is over the maximum of {MAX_TICKET_LEN} bytes",
                bytes.len()
            ),
        });
    }

    SealedBlob::from_bytes(bytes).map_err(|error| VaultError::TicketInvalid {
        kind,
        reason: error.to_string(),
    })
}
