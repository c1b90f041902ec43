//! The `chat-sys` binary: a thin shell over the `chat_sys` library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    // Fault-injection points from FAILPOINTS (test builds with the `failpoints` feature).
    #[cfg(feature = "failpoints")]
    let _failpoints = fail::FailScenario::setup();
    let cli = chat_sys::cli::Cli::parse();
    chat_sys::cli::main(cli)
}
