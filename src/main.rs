//! The `topo` binary: everything lives in the library.

fn main() -> std::process::ExitCode {
    topo::cli::main()
}
