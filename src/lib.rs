//! StackFlow for Splunk: the library behind the `stackflow` binary, so that tests and benchmarks
//! can reach its pure functions.

pub mod splunk;
