//! Delivery: the one mechanism every target uses to get an item to its remote.
//!
//! A target (`item::Target`) makes one *attempt* at a time and answers with an `Outcome` value
//! — delivered, retry later, or rejected — never with an error: HTTP status is data. The
//! `deliverer` turns attempts into a final result: it retries inside a time budget, spools what
//! is still undeliverable (`outbox/`), keeps rejected items as dead letters, and never claims
//! delivery it did not see. `attempt` is one attempt with the ledger, sending marker and lookup
//! around it; `flush` drains the outbox later through the same attempt.

pub mod attempt;
pub mod deliverer;
pub mod flush;
