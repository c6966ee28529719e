//! The `topo` binary: everything lives in the library.

#![forbid(unsafe_code)]

/// Training allocates the same large buffers every step; keep them (see `Recycler`).
#[global_allocator]
static ALLOC: topo::kernels::Recycler = topo::kernels::Recycler::new();

fn main() -> std::process::ExitCode {
    topo::cli::main()
}
