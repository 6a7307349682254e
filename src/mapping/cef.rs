//! The CIM → CEF field table and CEF `contains` types (external-apis.md §2).
