//! The `confluencefs` command; everything it does is in `confluencefs::cli`.

fn main() {
    std::process::exit(confluencefs::cli::main());
}
