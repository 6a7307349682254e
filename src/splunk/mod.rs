//! Everything that speaks Splunk's formats. This part: the SCP v2 custom search command stack,
//! from framing (`chunked`) through the CSV body codec (`splunk_csv`) to the getinfo/execute
//! driver (`search_command`).

pub mod chunked;
pub mod search_command;
pub mod splunk_csv;
