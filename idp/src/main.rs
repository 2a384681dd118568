//! The `idp` command: see [`idp::cli`].

fn main() -> std::process::ExitCode {
    idp::cli::main()
}
