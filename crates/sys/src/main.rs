//! The `chat-sys` binary: a thin shell over the `chat_sys` library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = chat_sys::cli::Cli::parse();
    chat_sys::cli::main(cli)
}
