//! Typed errors of the transaction layer. Nothing here is fatal to the process: a message that
//! cannot be matched or fed to a transaction is reported to the caller, which drops it (or, for
//! a request it cannot even key, answers 400 through [`crate::disposition`]).

use thiserror::Error;

/// Why the transaction layer refused an input.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TransactionError {
    /// A response was given where a request is required, or the other way round.
    #[error("expected a {expected}")]
    WrongKind {
        /// `"request"` or `"response"`.
        expected: &'static str,
    },
    /// A header the transaction layer needs is absent.
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    /// A header the transaction layer needs does not parse.
    #[error("malformed {header} header: {reason}")]
    BadHeader {
        /// The header's canonical name.
        header: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// A request this element sends must carry an RFC 3261 branch (`z9hG4bK…`, §8.1.1.7).
    #[error("top Via of an outgoing request has no RFC 3261 branch")]
    MissingBranch,
    /// The request's method does not fit the machine (an OPTIONS given to an INVITE client …).
    #[error("method {got} does not fit this transaction (expected {expected})")]
    WrongMethod {
        /// What the machine runs.
        expected: &'static str,
        /// What it was given.
        got: String,
    },
    /// ACK is never a client transaction (RFC 3261 §17.1): the TU sends the ACK for a 2xx itself.
    #[error("ACK does not start a transaction")]
    AckIsNotATransaction,
    /// A status code outside 100–699, or a 100 Trying where only other codes are allowed.
    #[error("status {0} is not valid here")]
    InvalidStatus(u16),
    /// The input is not allowed in the machine's current state (a response after the final one,
    /// a CANCEL of a transaction that already has its final response …).
    #[error("{action} is not allowed in state {state}")]
    InvalidState {
        /// The state's name.
        state: &'static str,
        /// What was attempted.
        action: &'static str,
    },
    /// The table holds as many transactions as it was built for.
    #[error("transaction table full ({capacity} transactions)")]
    TableFull {
        /// The configured bound.
        capacity: usize,
    },
    /// No transaction with this key (it never existed or has terminated).
    #[error("no such transaction")]
    NoSuchTransaction,
    /// A client transaction with this key already exists (the branch was reused).
    #[error("a transaction with this key already exists")]
    DuplicateKey,
    /// Only an INVITE client transaction can be cancelled.
    #[error("only an INVITE client transaction can be cancelled")]
    NotCancellable,
    /// Timer values that would make the machines misbehave (T1 of zero, T2 below T1).
    #[error("invalid timer configuration: {0}")]
    InvalidConfig(&'static str),
}

impl TransactionError {
    /// The status of a stateless answer to a *received request* the table refused: 503 when the
    /// table is full (the caller adds Retry-After), 400 when the headers transactions match on
    /// are missing or malformed. `None` otherwise (drop, or a TU programming error).
    pub fn status_for_request(&self) -> Option<u16> {
        match self {
            TransactionError::TableFull { .. } => Some(503),
            TransactionError::MissingHeader(_) | TransactionError::BadHeader { .. } => Some(400),
            _ => None,
        }
    }
}
